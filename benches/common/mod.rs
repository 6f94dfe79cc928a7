//! The session and catalog the rewrite benchmark (and the fuzz targets)
//! run against: the demo's policy files plus a pgbench and a TPC-H-style
//! part, with the global values the upstream would have answered, and a
//! hand-built catalog of those tables with PostgreSQL's type, function and
//! operator oids.

use std::path::Path;
use std::sync::Arc;

use pgward::catalog::{Catalog, CatalogParts, Column, Function, Operator, RelKind, Relation, Type};
use pgward::globals::{GlobalValue, GlobalValues};
use pgward::policy::PolicySet;
use pgward::rewrite::Access;
use pgward::session::policy::SessionPolicy;

// ------------------------------------------------------------------ policies

/// The pgbench and TPC-H parts of the policy set; the demo's files come
/// first. `benchuser` is in every role, so one session reaches every table.
pub const BENCH_POLICIES: &str = "\
CREATE ROLE bench_reader;
CREATE ROLE analyst;
CREATE USER benchuser PASSWORD 'bench' IN ROLE bench_reader, analyst, sales_rep;

CREATE GLOBAL bench_branches FOR ROLE bench_reader
  AS SELECT bid FROM pgbench_branches WHERE bid <= 5;
GRANT SELECT ON pgbench_accounts, pgbench_branches, pgbench_tellers TO bench_reader;
CREATE POLICY own_branches ON pgbench_accounts FOR SELECT TO bench_reader
  USING (bid = ANY(@{bench_branches}));

CREATE GLOBAL analyst_nations FOR ROLE analyst
  AS SELECT n_nationkey FROM nation WHERE n_regionkey = 1;
GRANT SELECT ON lineitem, orders_tpch, nation, region, supplier TO analyst;
GRANT SELECT (c_custkey, c_name, c_nationkey, c_acctbal, c_mktsegment) ON customer TO analyst;
CREATE POLICY nation_customers ON customer FOR SELECT TO analyst
  USING (c_nationkey = ANY(@{analyst_nations}));
CREATE POLICY nation_orders ON orders_tpch FOR SELECT TO analyst
  USING (o_custkey IN (SELECT c_custkey FROM customer
                        WHERE c_nationkey = ANY(@{analyst_nations})));
CREATE POLICY nation_lines ON lineitem FOR SELECT TO analyst
  USING (l_suppkey IN (SELECT s_suppkey FROM supplier
                        WHERE s_nationkey = ANY(@{analyst_nations})));
CREATE POLICY recent_lines ON lineitem AS RESTRICTIVE FOR SELECT TO analyst
  USING (l_shipdate >= DATE '1993-01-01');
";

pub const USER: &str = "benchuser";

/// The session of `benchuser`, as `session_mode` builds it at login; global
/// values are the ones the upstream would have answered.
pub fn session() -> (Arc<dyn Access + Send + Sync>, Arc<str>) {
    let text = [
        include_str!("../../policies/demo/10_roles.sql"),
        include_str!("../../policies/demo/20_grants_policies.sql"),
        BENCH_POLICIES,
    ]
    .join("\n");
    let policies = match PolicySet::parse_str(Path::new("bench.sql"), &text, 4096) {
        Ok(p) => p,
        Err(errors) => {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("the bench policy set has errors:\n{}", list.join("\n"));
        }
    };
    let roles = policies.effective_roles(USER);
    let mut values = GlobalValues::builtins(USER, &roles, Some("127.0.0.1"));
    let int4 = "pg_catalog.int4".to_string();
    values.insert(
        "current_employee",
        GlobalValue {
            columns: vec![
                ("id".into(), int4.clone()),
                ("department_id".into(), int4.clone()),
            ],
            rows: vec![vec![Some("1".into()), Some("1".into())]],
        },
    );
    let list = |ids: &[u32]| GlobalValue {
        columns: vec![("value".into(), int4.clone())],
        rows: ids.iter().map(|i| vec![Some(i.to_string())]).collect(),
    };
    values.insert("bench_branches", list(&[1, 2, 3, 4, 5]));
    values.insert("analyst_nations", list(&[1, 2, 3, 17, 24]));
    let context: Arc<str> = Arc::from(format!("{USER}\u{0}{roles:?}\u{0}{values:?}"));
    let access = SessionPolicy::new(USER, roles, values, Arc::new(policies));
    (Arc::new(access), context)
}

// ------------------------------------------------------------------ catalog

pub const BOOL: u32 = 16;
pub const INT8: u32 = 20;
pub const INT4: u32 = 23;
pub const TEXT: u32 = 25;
pub const FLOAT8: u32 = 701;
pub const BPCHAR: u32 = 1042;
pub const VARCHAR: u32 = 1043;
pub const DATE: u32 = 1082;
pub const TIMESTAMP: u32 = 1114;
pub const INTERVAL: u32 = 1186;
pub const NUMERIC: u32 = 1700;

/// A column type: its oid and `format_type` spelling.
type Ty = (u32, &'static str);

fn table(oid: u32, schema: &str, name: &str, columns: &[(&str, Ty)], key: &[&str]) -> Relation {
    Relation {
        oid,
        schema: schema.into(),
        name: name.into(),
        kind: RelKind::Table,
        columns: columns
            .iter()
            .enumerate()
            .map(|(i, (column, (type_oid, type_name)))| Column {
                name: (*column).into(),
                attnum: i16::try_from(i + 1).expect("few columns"),
                type_oid: *type_oid,
                type_name: (*type_name).into(),
                not_null: key.contains(column),
            })
            .collect(),
        primary_key: key.iter().map(|k| (*k).to_string()).collect(),
        parent: None,
        is_partition: false,
    }
}

fn relations() -> Vec<Relation> {
    let int4: Ty = (INT4, "integer");
    let int8: Ty = (INT8, "bigint");
    let text: Ty = (TEXT, "text");
    let date: Ty = (DATE, "date");
    let money: Ty = (NUMERIC, "numeric(15,2)");
    let ch = |n: &'static str| (BPCHAR, n);
    let vc = |n: &'static str| (VARCHAR, n);
    vec![
        // The demo (policies/demo/setup/01_schema.sql).
        table(
            16384,
            "public",
            "departments",
            &[("id", int4), ("name", text)],
            &["id"],
        ),
        table(
            16389,
            "public",
            "employees",
            &[
                ("id", int4),
                ("login", text),
                ("name", text),
                ("department_id", int4),
                ("salary", (NUMERIC, "numeric(10,2)")),
                ("ssn", text),
            ],
            &["id"],
        ),
        table(
            16398,
            "public",
            "customers",
            &[
                ("id", int4),
                ("name", text),
                ("region", text),
                ("credit_limit", (NUMERIC, "numeric(12,2)")),
            ],
            &["id"],
        ),
        table(
            16405,
            "public",
            "orders",
            &[
                ("id", int4),
                ("customer_id", int4),
                ("salesrep_id", int4),
                ("amount", (NUMERIC, "numeric(10,2)")),
                ("margin", (NUMERIC, "numeric(5,2)")),
                ("notes", text),
                ("status", text),
            ],
            &["id"],
        ),
        // pgbench -i.
        table(
            16412,
            "public",
            "pgbench_accounts",
            &[
                ("aid", int4),
                ("bid", int4),
                ("abalance", int4),
                ("filler", ch("character(84)")),
            ],
            &["aid"],
        ),
        table(
            16415,
            "public",
            "pgbench_branches",
            &[
                ("bid", int4),
                ("bbalance", int4),
                ("filler", ch("character(88)")),
            ],
            &["bid"],
        ),
        table(
            16418,
            "public",
            "pgbench_tellers",
            &[
                ("tid", int4),
                ("bid", int4),
                ("tbalance", int4),
                ("filler", ch("character(84)")),
            ],
            &["tid"],
        ),
        table(
            16421,
            "public",
            "pgbench_history",
            &[
                ("tid", int4),
                ("bid", int4),
                ("aid", int4),
                ("delta", int4),
                ("mtime", (TIMESTAMP, "timestamp without time zone")),
                ("filler", ch("character(22)")),
            ],
            &[],
        ),
        // TPC-H (orders is `orders_tpch`: the demo has an `orders`).
        table(
            16430,
            "public",
            "region",
            &[
                ("r_regionkey", int4),
                ("r_name", ch("character(25)")),
                ("r_comment", vc("character varying(152)")),
            ],
            &["r_regionkey"],
        ),
        table(
            16435,
            "public",
            "nation",
            &[
                ("n_nationkey", int4),
                ("n_name", ch("character(25)")),
                ("n_regionkey", int4),
                ("n_comment", vc("character varying(152)")),
            ],
            &["n_nationkey"],
        ),
        table(
            16440,
            "public",
            "supplier",
            &[
                ("s_suppkey", int4),
                ("s_name", ch("character(25)")),
                ("s_address", vc("character varying(40)")),
                ("s_nationkey", int4),
                ("s_phone", ch("character(15)")),
                ("s_acctbal", money),
                ("s_comment", vc("character varying(101)")),
            ],
            &["s_suppkey"],
        ),
        table(
            16445,
            "public",
            "customer",
            &[
                ("c_custkey", int4),
                ("c_name", vc("character varying(25)")),
                ("c_address", vc("character varying(40)")),
                ("c_nationkey", int4),
                ("c_phone", ch("character(15)")),
                ("c_acctbal", money),
                ("c_mktsegment", ch("character(10)")),
                ("c_comment", vc("character varying(117)")),
            ],
            &["c_custkey"],
        ),
        table(
            16450,
            "public",
            "orders_tpch",
            &[
                ("o_orderkey", int8),
                ("o_custkey", int4),
                ("o_orderstatus", ch("character(1)")),
                ("o_totalprice", money),
                ("o_orderdate", date),
                ("o_orderpriority", ch("character(15)")),
                ("o_clerk", ch("character(15)")),
                ("o_shippriority", int4),
                ("o_comment", vc("character varying(79)")),
            ],
            &["o_orderkey"],
        ),
        table(
            16455,
            "public",
            "lineitem",
            &[
                ("l_orderkey", int8),
                ("l_partkey", int4),
                ("l_suppkey", int4),
                ("l_linenumber", int4),
                ("l_quantity", money),
                ("l_extendedprice", money),
                ("l_discount", money),
                ("l_tax", money),
                ("l_returnflag", ch("character(1)")),
                ("l_linestatus", ch("character(1)")),
                ("l_shipdate", date),
                ("l_commitdate", date),
                ("l_receiptdate", date),
                ("l_shipinstruct", ch("character(25)")),
                ("l_shipmode", ch("character(10)")),
                ("l_comment", vc("character varying(44)")),
            ],
            &["l_orderkey", "l_linenumber"],
        ),
        // Catalog relations clients read.
        table(
            1259,
            "pg_catalog",
            "pg_class",
            &[("oid", (26, "oid")), ("relname", (19, "name"))],
            &["oid"],
        ),
    ]
}

/// The aggregates the statements call, with their pg_proc oids and overloads.
fn functions() -> Vec<Function> {
    let f = |oid: u32, name: &str, args: &[u32], ret: u32, kind: char| Function {
        oid,
        schema: "pg_catalog".into(),
        name: name.into(),
        arg_types: args.to_vec(),
        return_type: ret,
        kind,
        volatility: 'i',
        leakproof: false,
        security_definer: false,
        returns_set: false,
    };
    vec![
        f(2100, "avg", &[INT8], NUMERIC, 'a'),
        f(2101, "avg", &[INT4], NUMERIC, 'a'),
        f(2103, "avg", &[NUMERIC], NUMERIC, 'a'),
        f(2105, "avg", &[FLOAT8], FLOAT8, 'a'),
        f(2107, "sum", &[INT8], NUMERIC, 'a'),
        f(2108, "sum", &[INT4], INT8, 'a'),
        f(2111, "sum", &[FLOAT8], FLOAT8, 'a'),
        f(2114, "sum", &[NUMERIC], NUMERIC, 'a'),
        f(2147, "count", &[2276], INT8, 'a'),
        f(2803, "count", &[], INT8, 'a'),
        f(1299, "now", &[], 1184, 'f'),
        f(1317, "length", &[TEXT], INT4, 'f'),
    ]
}

/// The operators the statements and policies use (leakproof as in
/// PostgreSQL 15: comparisons yes, arithmetic no).
fn operators() -> Vec<Operator> {
    let o =
        |oid: u32, name: &str, left: u32, right: u32, result: u32, function: u32, leak: bool| {
            Operator {
                oid,
                name: name.into(),
                left,
                right,
                result,
                function,
                leakproof: leak,
            }
        };
    vec![
        o(96, "=", INT4, INT4, BOOL, 65, true),
        o(97, "<", INT4, INT4, BOOL, 66, true),
        o(521, ">", INT4, INT4, BOOL, 147, true),
        o(523, "<=", INT4, INT4, BOOL, 149, true),
        o(518, "<>", INT4, INT4, BOOL, 144, true),
        o(410, "=", INT8, INT8, BOOL, 467, true),
        o(416, "=", INT8, INT4, BOOL, 474, true),
        o(98, "=", TEXT, TEXT, BOOL, 67, true),
        o(531, "<>", TEXT, TEXT, BOOL, 157, true),
        o(1054, "=", BPCHAR, BPCHAR, BOOL, 1048, true),
        o(1752, "=", NUMERIC, NUMERIC, BOOL, 1718, true),
        o(1756, ">", NUMERIC, NUMERIC, BOOL, 1720, true),
        o(1758, "+", NUMERIC, NUMERIC, NUMERIC, 1724, false),
        o(1759, "-", NUMERIC, NUMERIC, NUMERIC, 1725, false),
        o(1760, "*", NUMERIC, NUMERIC, NUMERIC, 1726, false),
        o(1093, "=", DATE, DATE, BOOL, 1086, true),
        o(1096, "<=", DATE, DATE, BOOL, 1089, true),
        o(1098, ">=", DATE, DATE, BOOL, 1090, true),
        o(1077, "-", DATE, INTERVAL, TIMESTAMP, 2072, false),
    ]
}

fn types() -> Vec<Type> {
    let t = |oid: u32, name: &str, category: char, element: u32, array_type: u32| Type {
        oid,
        schema: "pg_catalog".into(),
        name: name.into(),
        category,
        element,
        array_type,
    };
    vec![
        t(BOOL, "bool", 'B', 0, 1000),
        t(INT8, "int8", 'N', 0, 1016),
        t(INT4, "int4", 'N', 0, 1007),
        t(TEXT, "text", 'S', 0, 1009),
        t(FLOAT8, "float8", 'N', 0, 1022),
        t(BPCHAR, "bpchar", 'S', 0, 1014),
        t(VARCHAR, "varchar", 'S', 0, 1015),
        t(DATE, "date", 'D', 0, 1182),
        t(TIMESTAMP, "timestamp", 'D', 0, 1115),
        t(INTERVAL, "interval", 'T', 0, 1187),
        t(NUMERIC, "numeric", 'N', 0, 1231),
        t(1007, "_int4", 'A', INT4, 0),
        t(1009, "_text", 'A', TEXT, 0),
    ]
}

pub fn catalog() -> Catalog {
    Catalog::from_parts(CatalogParts {
        schemas: vec![
            "pg_catalog".into(),
            "information_schema".into(),
            "public".into(),
        ],
        relations: relations(),
        functions: functions(),
        operators: operators(),
        types: types(),
    })
}
