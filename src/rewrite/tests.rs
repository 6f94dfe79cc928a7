//! Rewriter cases: SQL in, decision or SQL out, over a hand-built catalog
//! shaped like the demo's and a session shaped like alice's (a sales rep
//! who sees her own, non-archived orders without `margin`, every
//! employee's name but not salary or ssn, and no departments).

use std::collections::BTreeSet;

use sqlparser::ast::Expr;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::*;
use crate::catalog::{Catalog, CatalogParts, Column, Function, RelKind, Relation};

pub(super) fn relation(
    oid: u32,
    schema: &str,
    name: &str,
    kind: RelKind,
    cols: &[&str],
) -> Relation {
    Relation {
        oid,
        schema: schema.into(),
        name: name.into(),
        kind,
        columns: cols
            .iter()
            .enumerate()
            .map(|(i, c)| Column {
                name: (*c).into(),
                attnum: i16::try_from(i + 1).unwrap(),
                type_oid: 23,
                type_name: "integer".into(),
                not_null: false,
            })
            .collect(),
        primary_key: vec![cols[0].into()],
        parent: None,
        is_partition: false,
    }
}

pub(super) fn catalog() -> Catalog {
    Catalog::from_parts(CatalogParts {
        schemas: vec![
            "pg_catalog".into(),
            "public".into(),
            "information_schema".into(),
            "other".into(),
        ],
        relations: vec![
            relation(
                1,
                "public",
                "orders",
                RelKind::Table,
                &[
                    "id",
                    "customer_id",
                    "salesrep_id",
                    "amount",
                    "margin",
                    "notes",
                    "status",
                ],
            ),
            relation(
                2,
                "public",
                "employees",
                RelKind::Table,
                &["id", "login", "name", "department_id", "salary", "ssn"],
            ),
            relation(3, "public", "departments", RelKind::Table, &["id", "name"]),
            relation(4, "other", "orders", RelKind::Table, &["id", "x"]),
            relation(5, "public", "Mixed", RelKind::Table, &["id"]),
            relation(
                10,
                "pg_catalog",
                "pg_class",
                RelKind::Table,
                &["oid", "relname", "relkind"],
            ),
            relation(
                11,
                "pg_catalog",
                "pg_authid",
                RelKind::Table,
                &["oid", "rolname", "rolpassword"],
            ),
            relation(
                12,
                "pg_catalog",
                "pg_stat_activity",
                RelKind::View,
                &["pid", "usename", "query"],
            ),
            relation(
                13,
                "pg_catalog",
                "pg_stats",
                RelKind::View,
                &["tablename", "histogram_bounds"],
            ),
            relation(
                14,
                "information_schema",
                "tables",
                RelKind::View,
                &["table_schema", "table_name"],
            ),
        ],
        functions: [
            ("count", false),
            ("max", false),
            ("min", false),
            ("sum", false),
            ("row_number", false),
            ("generate_series", true),
            ("row_to_json", false),
            ("has_table_privilege", false),
            ("current_user", false),
            ("query_to_xml", false),
            ("pg_read_file", false),
            ("pg_stat_get_numscans", false),
            ("pg_terminate_backend", false),
            ("pg_stat_get_activity", true),
        ]
        .iter()
        .enumerate()
        .map(|(i, (name, srf))| builtin(1000 + u32::try_from(i).unwrap(), name, *srf))
        .chain([Function {
            oid: 2000,
            schema: "public".into(),
            name: "order_total".into(),
            arg_types: vec![23],
            return_type: 23,
            kind: 'f',
            volatility: 'v',
            leakproof: false,
            security_definer: false,
            returns_set: false,
        }])
        .collect(),
        types: vec![crate::catalog::Type {
            oid: 20,
            schema: "pg_catalog".into(),
            name: "int8".into(),
            category: 'N',
            element: 0,
            array_type: 1016,
        }],
        ..CatalogParts::default()
    })
}

pub(super) fn builtin(oid: u32, name: &str, returns_set: bool) -> Function {
    Function {
        oid,
        schema: "pg_catalog".into(),
        name: name.into(),
        arg_types: Vec::new(),
        return_type: 20,
        kind: 'f',
        volatility: 's',
        leakproof: false,
        security_definer: false,
        returns_set,
    }
}

pub(super) fn expr(sql: &str) -> Expr {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .unwrap()
        .parse_expr()
        .unwrap()
}

pub(super) fn cols(list: &[&str]) -> Columns {
    Columns::Some(list.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>())
}

pub(super) struct Alice;

impl Access for Alice {
    fn table(&self, relation: &crate::catalog::Relation, command: Command) -> Option<TableAccess> {
        if command != Command::Select {
            return None;
        }
        match (relation.schema.as_str(), relation.name.as_str()) {
            ("public", "orders") => Some(TableAccess {
                entries: vec![Entry {
                    rows: Some(expr("salesrep_id = '1'::int4")),
                    columns: cols(&[
                        "id",
                        "customer_id",
                        "salesrep_id",
                        "amount",
                        "notes",
                        "status",
                    ]),
                    check: None,
                }],
                restrictive: vec![expr("status <> 'archived'")],
                restrictive_checks: Vec::new(),
                predicate_relations: Vec::new(),
            }),
            ("public", "employees") => Some(TableAccess {
                entries: vec![
                    Entry {
                        rows: None,
                        columns: cols(&["id", "login", "name", "department_id"]),
                        check: None,
                    },
                    Entry {
                        rows: Some(expr(
                            "department_id = (SELECT d.id FROM public.departments d WHERE d.id = 1)",
                        )),
                        columns: cols(&["id", "salary"]),
                        check: None,
                    },
                ],
                restrictive: Vec::new(),
                restrictive_checks: Vec::new(),
                predicate_relations: vec!["public.departments".into()],
            }),
            ("public", "Mixed") | ("other", "orders") => Some(TableAccess::everything()),
            _ => None,
        }
    }

    fn login(&self) -> &str {
        "alice"
    }
}

pub(super) fn run(sql: &str) -> Result<String, PgError> {
    run_with_path(sql, &["public"])
}

pub(super) fn run_with_path(sql: &str, path: &[&str]) -> Result<String, PgError> {
    let catalog = catalog();
    let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
    let ctx = Context {
        catalog: &catalog,
        search_path: &path,
        access: &Alice,
    };
    secure_text(sql, false, &ctx)
}

pub(super) fn ok(sql: &str) -> String {
    match run(sql) {
        Ok(s) => s,
        Err(e) => panic!("{sql}: refused with {e}"),
    }
}

pub(super) fn refused(sql: &str) -> &'static str {
    match run(sql) {
        Ok(s) => panic!("{sql}: allowed as {s}"),
        Err(e) => e.code,
    }
}

pub(super) const ORDERS: &str = "(SELECT \"id\" AS \"id\", \"customer_id\" AS \"customer_id\", \
    \"salesrep_id\" AS \"salesrep_id\", \"amount\" AS \"amount\", \"notes\" AS \"notes\", \
    \"status\" AS \"status\" FROM \"public\".\"orders\" WHERE ((salesrep_id = '1'::INT4)) AND \
    (status <> 'archived') OFFSET 0)";

#[test]
fn a_table_becomes_its_secured_subquery() {
    // No qual in the outermost SELECT: unfenced (see fence_tests).
    let orders = ORDERS.replace(" OFFSET 0", "");
    assert_eq!(
        ok("SELECT count(*) FROM orders"),
        format!("SELECT count(*) FROM {orders} AS \"orders\"")
    );
}

#[test]
fn aliases_are_kept() {
    let orders = ORDERS.replace(" OFFSET 0", "");
    assert_eq!(
        ok("SELECT o.id FROM orders AS o"),
        format!("SELECT o.id FROM {orders} AS \"o\"")
    );
    assert_eq!(
        ok("SELECT o.id FROM orders o"),
        format!("SELECT o.id FROM {orders} AS \"o\"")
    );
}

#[test]
fn cells_are_tied_to_rows() {
    let sql = ok("SELECT salary FROM employees");
    assert!(
        sql.contains("CASE WHEN (department_id = (SELECT d.id FROM public.departments d WHERE d.id = 1)) THEN \"salary\" END AS \"salary\""),
        "{sql}"
    );
    assert!(sql.contains("WHERE true"), "{sql}");
    assert!(!sql.contains("\"ssn\""), "{sql}");
}

#[test]
fn hidden_columns_are_refused() {
    assert_eq!(refused("SELECT margin FROM orders"), "42501");
    assert_eq!(refused("SELECT o.margin FROM orders o"), "42501");
    assert_eq!(refused("SELECT id FROM orders WHERE margin > 3"), "42501");
    assert_eq!(refused("SELECT ssn FROM employees"), "42501");
    assert_eq!(
        refused("SELECT e.ssn FROM employees e JOIN orders o ON o.id = e.id"),
        "42501"
    );
    assert_eq!(
        refused("SELECT id FROM orders WHERE id IN (SELECT id FROM employees WHERE ssn = 'x')"),
        "42501"
    );
}

#[test]
fn ungranted_tables_are_refused() {
    assert_eq!(refused("SELECT * FROM departments"), "42501");
    assert_eq!(
        refused("SELECT 1 FROM orders WHERE EXISTS (SELECT 1 FROM departments)"),
        "42501"
    );
    assert_eq!(
        refused("SELECT (SELECT name FROM departments LIMIT 1)"),
        "42501"
    );
    assert_eq!(
        refused("SELECT * FROM orders, LATERAL (SELECT * FROM departments) d"),
        "42501"
    );
    assert_eq!(
        refused("SELECT 1 UNION SELECT id FROM departments"),
        "42501"
    );
    assert_eq!(
        refused("WITH x AS (SELECT * FROM departments) SELECT 1"),
        "42501"
    );
    // sqlparser 0.63 cannot parse a top-level `TABLE t`: refused unread.
    assert!(matches!(refused("TABLE departments"), "42501" | "42601"));
    assert_eq!(refused("SELECT * FROM public.departments"), "42501");
    assert_eq!(refused("SELECT * FROM \"public\".\"departments\""), "42501");
    assert_eq!(refused("SELECT * FROM PUBLIC.DEPARTMENTS"), "42501");
}

#[test]
fn unknown_relations_are_42p01() {
    assert_eq!(refused("SELECT * FROM nope"), "42P01");
    assert_eq!(refused("SELECT * FROM \"Orders\""), "42P01");
}

#[test]
fn from_only_misparse_is_not_a_bypass() {
    // sqlparser reads `ONLY` as a table name: default deny, and PostgreSQL's
    // reading would not match anyway.
    let code = refused("SELECT * FROM ONLY departments");
    assert!(
        code == "42P01" || code == "42501" || code == "0A000",
        "{code}"
    );
}

#[test]
fn cte_names_shadow_tables_with_postgres_scoping() {
    let sql = ok("WITH departments AS (SELECT 1 AS id) SELECT * FROM departments");
    assert!(sql.ends_with("SELECT * FROM departments"), "{sql}");
    // A non-recursive CTE cannot see itself: `orders` inside is the table.
    let sql = ok("WITH orders AS (SELECT id FROM orders) SELECT * FROM orders");
    assert!(sql.contains("\"public\".\"orders\""), "{sql}");
    assert_eq!(
        refused("WITH departments AS (SELECT * FROM departments) SELECT * FROM departments"),
        "42501"
    );
    // A later CTE sees an earlier one.
    ok("WITH a AS (SELECT 1 AS x), b AS (SELECT x FROM a) SELECT * FROM b");
    // An earlier CTE does not see a later one.
    assert_eq!(
        refused("WITH a AS (SELECT * FROM departments), departments AS (SELECT 1) SELECT * FROM a"),
        "42501"
    );
    // Recursive CTEs see themselves.
    ok(
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t",
    );
    // A CTE is not visible outside its query.
    assert_eq!(
        refused("SELECT (WITH departments AS (SELECT 1) SELECT 1), * FROM departments"),
        "42501"
    );
}

#[test]
fn search_path_resolves_names() {
    let sql = run_with_path("SELECT * FROM orders", &["other", "public"]).unwrap();
    assert!(sql.contains("\"other\".\"orders\""), "{sql}");
    let sql = run_with_path("SELECT * FROM orders", &["public", "other"]).unwrap();
    assert!(sql.contains("\"public\".\"orders\""), "{sql}");
    assert_eq!(
        run_with_path("SELECT * FROM orders", &["nothing"])
            .unwrap_err()
            .code,
        "42P01"
    );
    let sql = ok("SELECT * FROM \"Mixed\"");
    assert!(sql.contains("\"public\".\"Mixed\""), "{sql}");
}

#[test]
fn every_read_form_is_secured() {
    for sql in [
        "SELECT * FROM orders",
        "SELECT o.* FROM orders o",
        "SELECT * FROM orders WHERE id = 1 ORDER BY id LIMIT 1 OFFSET 0",
        "SELECT status, count(*) FROM orders GROUP BY status HAVING count(*) > 0",
        "SELECT id, row_number() OVER (PARTITION BY status ORDER BY id) FROM orders",
        "SELECT status, sum(amount) FROM orders GROUP BY GROUPING SETS ((status), ())",
        "SELECT * FROM orders o JOIN employees e ON e.id = o.salesrep_id",
        "SELECT * FROM orders o LEFT JOIN employees e ON e.id = o.salesrep_id",
        "SELECT * FROM orders o FULL JOIN employees e USING (id)",
        "SELECT * FROM orders CROSS JOIN employees",
        "SELECT * FROM orders o, LATERAL (SELECT e.name FROM employees e WHERE e.id = o.salesrep_id) x",
        "SELECT (SELECT max(amount) FROM orders)",
        "SELECT id FROM orders WHERE EXISTS (SELECT 1 FROM employees e WHERE e.id = orders.salesrep_id)",
        "SELECT id FROM orders UNION SELECT id FROM employees",
        "SELECT id FROM orders INTERSECT SELECT id FROM employees",
        "SELECT id FROM orders EXCEPT ALL SELECT id FROM employees",
        "SELECT * FROM (SELECT id FROM orders) s",
        "VALUES (1), (2)",
        "SELECT * FROM (VALUES (1, 'a')) v(x, y)",
        "WITH RECURSIVE r AS (SELECT id FROM orders UNION SELECT id FROM r) SELECT * FROM r",
        "SELECT CASE WHEN id > (SELECT min(id) FROM employees) THEN 1 END FROM orders",
        "SELECT * FROM generate_series(1, 3) g",
        "EXPLAIN SELECT * FROM orders",
        "PREPARE p AS SELECT * FROM orders WHERE id = $1",
        "DECLARE c CURSOR FOR SELECT * FROM orders",
        "COPY orders TO STDOUT",
        "COPY (SELECT id FROM orders) TO STDOUT",
        "SELECT e FROM employees e",
        "SELECT row_to_json(e) FROM employees e",
    ] {
        let out = ok(sql);
        let reads_orders =
            sql.contains("orders") && !sql.contains("FROM (SELECT id FROM orders) s");
        if reads_orders {
            assert!(
                out.contains("FROM \"public\".\"orders\" WHERE ((salesrep_id"),
                "{sql} -> {out}"
            );
        }
        assert!(!out.contains("margin"), "{sql} -> {out}");
        assert!(!out.contains("ssn"), "{sql} -> {out}");
    }
}

#[test]
fn copy_with_columns_and_hidden_columns() {
    let sql = ok("COPY orders (id, status) TO STDOUT");
    assert!(sql.starts_with("COPY (SELECT id, status FROM"), "{sql}");
    assert_eq!(refused("COPY orders (margin) TO STDOUT"), "42501");
}

#[test]
fn catalog_allowlist() {
    let sql = ok("SELECT relname FROM pg_class");
    assert!(sql.contains("FROM \"pg_catalog\".\"pg_class\""), "{sql}");
    ok("SELECT * FROM information_schema.tables");
    assert_eq!(refused("SELECT * FROM pg_authid"), "42501");
    assert_eq!(refused("SELECT * FROM pg_catalog.pg_stats"), "42501");
    let sql = ok("SELECT query FROM pg_stat_activity");
    assert!(sql.contains("WHERE false"), "{sql}");
}

#[test]
fn identity_functions_read_as_the_login() {
    let sql = ok("SELECT current_user, session_user, CURRENT_ROLE, user");
    assert_eq!(
        sql,
        "SELECT 'alice'::pg_catalog.name AS \"current_user\", 'alice'::pg_catalog.name AS \"session_user\", \
         'alice'::pg_catalog.name AS \"current_role\", 'alice'::pg_catalog.name AS \"user\""
    );
}

#[test]
fn statements_outside_reads_are_refused() {
    for sql in [
        "INSERT INTO orders (id) VALUES (1)",
        "UPDATE orders SET amount = 1",
        "DELETE FROM orders",
        "CREATE TABLE t (id int)",
        "DROP TABLE orders",
        "DO $$ BEGIN END $$",
        "SET ROLE postgres",
        "SET SESSION AUTHORIZATION postgres",
        "SET standard_conforming_strings = off",
        "SET client_encoding = 'SJIS'",
        "LISTEN payroll",
        "NOTIFY payroll",
        "VACUUM orders",
        "EXPLAIN ANALYZE SELECT * FROM orders",
        "SELECT * FROM orders FOR UPDATE",
        "COPY orders FROM STDIN",
        "COPY orders TO '/tmp/x'",
        "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
        "SELECT * INTO newtable FROM orders",
    ] {
        let code = refused(sql);
        assert!(
            matches!(code, "42501" | "0A000" | "42601" | "22023" | "42704"),
            "{sql}: {code}"
        );
    }
}

#[test]
fn pass_through_statements() {
    for sql in [
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT a",
        "RELEASE SAVEPOINT a",
        "ROLLBACK TO SAVEPOINT a",
        "FETCH 10 FROM c",
        "CLOSE c",
        "CLOSE ALL",
        "DEALLOCATE p",
        "DEALLOCATE ALL",
        "EXECUTE p(1)",
        "DISCARD ALL",
        "SHOW search_path",
        "SHOW TRANSACTION ISOLATION LEVEL",
        "SET search_path = public",
        "SET DateStyle = 'ISO'",
        "SET extra_float_digits = 3",
        "SET SESSION AUTHORIZATION DEFAULT",
        "RESET ALL",
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET TIME ZONE 'UTC'",
    ] {
        ok(sql);
    }
    assert_eq!(
        ok("SET client_encoding = 'utf8'"),
        "SET client_encoding = 'UTF8'"
    );
}

#[test]
fn printer_differential_is_refused() {
    // sqlparser prints `- -1` as `--1`, making the rest of the line a
    // comment for PostgreSQL: the relations PostgreSQL reads differ.
    let r = run("SELECT - -1, '\n * FROM departments --' FROM orders");
    match r {
        Err(e) => assert_eq!(e.code, "0A000"),
        Ok(sql) => {
            let tables = pg_query::parse(&sql).unwrap().tables();
            assert!(!tables.iter().any(|t| t.contains("departments")), "{sql}");
        }
    }
}

#[test]
fn multi_statement_texts_secure_every_statement() {
    assert_eq!(refused("SELECT 1; SELECT * FROM departments"), "42501");
    let sql = ok("SELECT 1; SELECT id FROM orders");
    assert!(sql.contains("\"public\".\"orders\""), "{sql}");
}

#[test]
fn privilege_functions_answer_for_the_login() {
    // Answered from alice's policies (orders: some entry; departments:
    // none), never by the upstream role's privileges.
    let sql = ok(
        "SELECT has_table_privilege(current_user, 'orders', 'select'), \
                  has_table_privilege('departments', 'SELECT') AS d, current_user",
    );
    assert_eq!(
        sql,
        "SELECT true AS \"has_table_privilege\", false AS d, \
         'alice'::pg_catalog.name AS \"current_user\""
    );
    // For another role pgward does not answer.
    assert_eq!(
        refused("SELECT has_table_privilege('bob', 'orders', 'select')"),
        "42501"
    );
}

#[test]
fn unlisten_all_passes_and_a_channel_does_not() {
    ok("UNLISTEN *");
    assert_eq!(refused("UNLISTEN payroll"), "42501");
}

#[test]
fn functions_by_category() {
    // SQL given as text, files: refused.
    assert_eq!(
        refused("SELECT query_to_xml('select ssn from employees', true, false, '')"),
        "42501"
    );
    assert_eq!(refused("SELECT pg_read_file('/etc/passwd')"), "42501");
    assert_eq!(refused("SELECT * FROM pg_stat_get_activity(NULL)"), "42501");
    // Other sessions and signals read as NULL.
    assert_eq!(
        ok("SELECT pg_stat_get_numscans(1), pg_catalog.pg_terminate_backend(2)"),
        "SELECT NULL::pg_catalog.int8 AS \"pg_stat_get_numscans\", \
         NULL::pg_catalog.int8 AS \"pg_terminate_backend\""
    );
    // Outside pg_catalog: needs GRANT EXECUTE (Alice has none).
    assert_eq!(refused("SELECT order_total(1)"), "42501");
    assert_eq!(refused("SELECT public.order_total(1)"), "42501");
    // Unknown names are refused; SQL syntax forms are not functions.
    assert_eq!(refused("SELECT no_such_function()"), "42883");
    ok("SELECT coalesce(1, 2), greatest(1, 2), nullif(1, 2)");
}
