//! Write cases (PRODUCT.md §3 semantics 6–8): SQL in, decision, forwarded
//! SQL and result shape out, for alice of `tests.rs` with write entries on
//! top of her reads. Every allowed case has passed verification (the
//! rewriter verifies what it returns); each is also checked for what must
//! never be forwarded (`margin`, `ssn`) and for the shape the forwarder
//! needs.
//!
//! alice's writes: `orders` INSERT (all columns, check `salesrep_id = 1`,
//! restrictive check `amount >= 0`), UPDATE (amount, notes, status; rows
//! and check `salesrep_id = 1`), DELETE (rows `salesrep_id = 1`);
//! `employees` UPDATE (name, unpoliced); `other.orders` everything,
//! unpoliced; `"Mixed"` SELECT only. Her reads are those of `tests.rs`: `orders`
//! without `margin`, rows `salesrep_id = 1` and not archived; `employees`
//! without `ssn`, `salary` only on department 1's rows.

use super::tests::{Alice, catalog, cols, expr};
use super::*;

struct Writer;

impl Access for Writer {
    fn table(&self, relation: &crate::catalog::Relation, command: Command) -> Option<TableAccess> {
        let own = || Some(expr("salesrep_id = '1'::int4"));
        match (relation.schema.as_str(), relation.name.as_str(), command) {
            (_, _, Command::Select) => Alice.table(relation, command),
            ("public", "orders", Command::Insert) => Some(TableAccess {
                entries: vec![Entry {
                    rows: own(),
                    columns: Columns::All,
                    check: own(),
                }],
                restrictive: Vec::new(),
                restrictive_checks: vec![expr("amount >= 0")],
                predicate_relations: Vec::new(),
            }),
            ("public", "orders", Command::Update) => Some(TableAccess {
                entries: vec![Entry {
                    rows: own(),
                    columns: cols(&["amount", "notes", "status"]),
                    check: own(),
                }],
                restrictive: Vec::new(),
                restrictive_checks: Vec::new(),
                predicate_relations: Vec::new(),
            }),
            ("public", "orders", Command::Delete) => Some(TableAccess {
                entries: vec![Entry {
                    rows: own(),
                    columns: Columns::All,
                    check: None,
                }],
                restrictive: Vec::new(),
                restrictive_checks: Vec::new(),
                predicate_relations: Vec::new(),
            }),
            ("public", "employees", Command::Update) => Some(TableAccess {
                entries: vec![Entry {
                    rows: None,
                    columns: cols(&["name"]),
                    check: None,
                }],
                restrictive: Vec::new(),
                restrictive_checks: Vec::new(),
                predicate_relations: Vec::new(),
            }),
            ("other", "orders", _) => Some(TableAccess::everything()),
            _ => None,
        }
    }

    fn login(&self) -> &str {
        "alice"
    }
}

fn run(sql: &str) -> Result<Secured, PgError> {
    let catalog = catalog();
    let path = vec!["public".to_string()];
    let ctx = Context {
        catalog: &catalog,
        search_path: &path,
        access: &Writer,
    };
    secure_text_tracked(sql, false, &ctx)
}

/// The forwarded SQL and the shape of the only statement.
fn ok(sql: &str) -> (String, Option<ResultShape>) {
    match run(sql) {
        Ok(s) => {
            assert!(
                !s.sql.contains("margin") && !s.sql.contains("ssn"),
                "{sql}: a hidden column was forwarded: {}",
                s.sql
            );
            (s.sql, s.shapes.first().map(|(_, shape)| *shape))
        }
        Err(e) => panic!("{sql}: refused with {e}"),
    }
}

const SILENT: Option<ResultShape> = Some(ResultShape::Silent);
const T_INSERT: Option<ResultShape> = Some(ResultShape::Tagged(WriteTag::Insert));
const T_UPDATE: Option<ResultShape> = Some(ResultShape::Tagged(WriteTag::Update));

const CHECK_NEW: &str = "'new row violates row-level security policy for table \"orders\"'";

/// Allowed, with every fragment and the shape.
struct Case {
    sql: &'static str,
    has: &'static [&'static str],
    not: &'static [&'static str],
    shape: Option<ResultShape>,
}

const fn a(sql: &'static str, has: &'static [&'static str], shape: Option<ResultShape>) -> Case {
    Case {
        sql,
        has,
        not: &[],
        shape,
    }
}

const ALLOWED: &[Case] = &[
    // ---- INSERT -------------------------------------------------------------
    a(
        "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (100, 1, 1, 10, 'open')",
        &[
            "INSERT INTO \"public\".\"orders\"",
            "RETURNING pgward.\"check\"(",
        ],
        SILENT,
    ),
    a(
        "INSERT INTO orders VALUES (100, 1, 1, 10, 5, 'n', 'open')",
        &["RETURNING pgward.\"check\"("],
        SILENT,
    ),
    a(
        "INSERT INTO orders (id, amount) VALUES (1, 2), (3, 4), (5, DEFAULT)",
        &["VALUES (1, 2), (3, 4), (5, DEFAULT)"],
        SILENT,
    ),
    a(
        "INSERT INTO orders DEFAULT VALUES",
        &["DEFAULT VALUES"],
        SILENT,
    ),
    a(
        "INSERT INTO orders (id, amount) SELECT id, amount FROM orders WHERE id = 1",
        &[
            "SELECT id, amount FROM (SELECT",
            "AS \"orders\" WHERE id = 1",
        ],
        SILENT,
    ),
    a(
        "INSERT INTO orders (id, notes) SELECT id, name FROM employees",
        &["FROM (SELECT \"id\" AS \"id\""],
        SILENT,
    ),
    a(
        "INSERT INTO orders AS o (id) VALUES (7)",
        &["AS o (id)", "(\"o\".salesrep_id = '1'::INT4)"],
        SILENT,
    ),
    a(
        "INSERT INTO orders (id, amount) VALUES (1, 2) RETURNING id, amount",
        &[
            "WITH \"pgward_w\" AS (INSERT INTO",
            "RETURNING id AS \"pgward_1\", amount AS \"pgward_2\"",
            "AS \"pgward_ok\") SELECT \"pgward_1\" AS \"id\", \"pgward_2\" AS \"amount\" FROM \"pgward_w\"",
            "(\"orders\".status <> 'archived')",
        ],
        T_INSERT,
    ),
    a(
        "INSERT INTO orders (id) VALUES (1) RETURNING *",
        &[
            "\"pgward_6\" AS \"status\"",
            "\"orders\".\"notes\" AS \"pgward_5\"",
        ],
        T_INSERT,
    ),
    a(
        "INSERT INTO orders (id) VALUES (1) RETURNING id + 1, amount::text, CASE WHEN id > 1 THEN 1 END, 1::int",
        &[
            "AS \"?column?\"",
            "AS \"amount\"",
            "AS \"case\"",
            "AS \"int4\"",
        ],
        T_INSERT,
    ),
    a(
        "INSERT INTO orders (id) VALUES (1) ON CONFLICT DO NOTHING",
        &["ON CONFLICT DO NOTHING RETURNING pgward.\"check\""],
        SILENT,
    ),
    a(
        "INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO NOTHING",
        &["ON CONFLICT(id) DO NOTHING"],
        SILENT,
    ),
    a(
        "INSERT INTO orders (id, amount) VALUES (1, 5) ON CONFLICT (id) DO UPDATE SET amount = excluded.amount",
        &[
            "DO UPDATE SET amount = excluded.amount WHERE pgward.\"check\"(",
            "(USING expression) for table \"orders\"",
            "CASE WHEN \"orders\".xmax = 0 THEN",
        ],
        SILENT,
    ),
    a(
        "INSERT INTO orders AS o (id, amount) VALUES (1, 5) ON CONFLICT (id) DO UPDATE SET amount = o.amount + excluded.amount WHERE o.status = 'open' RETURNING o.id",
        &[
            "SET amount = o.amount + excluded.amount WHERE CASE WHEN pgward.\"check\"(",
            "THEN (o.status = 'open') END",
            "SELECT \"pgward_1\" AS \"id\" FROM \"pgward_w\"",
        ],
        T_INSERT,
    ),
    a(
        "INSERT INTO other.orders (id, x) VALUES (1, 2)",
        &["INSERT INTO \"other\".\"orders\" (id, x) VALUES (1, 2)"],
        None,
    ),
    a(
        "INSERT INTO other.orders (id, x) VALUES (1, 2) RETURNING *",
        &["RETURNING \"orders\".\"id\" AS \"id\", \"orders\".\"x\" AS \"x\""],
        None,
    ),
    a(
        "INSERT INTO other.orders (id) SELECT id FROM orders",
        &["INSERT INTO \"other\".\"orders\" (id) SELECT id FROM (SELECT"],
        None,
    ),
    a(
        "WITH src AS (SELECT id FROM orders) INSERT INTO orders (id) SELECT id FROM src",
        &[
            "WITH src AS (SELECT id FROM (SELECT",
            "INSERT INTO \"public\".\"orders\" (id) SELECT id FROM src",
        ],
        SILENT,
    ),
    a(
        "WITH src AS (SELECT 1 AS id) INSERT INTO orders (id) SELECT id FROM src RETURNING id",
        &["WITH src AS (SELECT 1 AS id), \"pgward_w\" AS (INSERT"],
        T_INSERT,
    ),
    a(
        "INSERT INTO orders (id, notes) VALUES (1, (SELECT name FROM employees WHERE id = 2))",
        &["(SELECT name FROM (SELECT"],
        SILENT,
    ),
    a(
        "EXPLAIN INSERT INTO orders (id) VALUES (1)",
        &["EXPLAIN INSERT INTO \"public\".\"orders\""],
        None,
    ),
    a(
        "PREPARE p AS INSERT INTO other.orders (id) VALUES ($1)",
        &["PREPARE p AS INSERT INTO \"other\".\"orders\""],
        None,
    ),
    // ---- UPDATE -------------------------------------------------------------
    a(
        "UPDATE orders SET amount = amount + 1",
        &["UPDATE \"public\".\"orders\" SET amount = amount + 1 WHERE"],
        SILENT,
    ),
    a(
        "UPDATE orders o SET notes = 'x' WHERE o.id = 3",
        &[
            "UPDATE \"public\".\"orders\" AS o SET notes = 'x' WHERE (\"o\".salesrep_id = '1'::INT4) AND (\"o\".status <> 'archived') AND",
        ],
        SILENT,
    ),
    a(
        "UPDATE orders SET notes = 'x' WHERE 1 / (amount - 85000) = 0",
        &[
            "CASE WHEN (\"orders\".salesrep_id = '1'::INT4) AND (\"orders\".status <> 'archived') THEN (1 / (amount - 85000) = 0) END",
        ],
        SILENT,
    ),
    a(
        "UPDATE orders SET status = 'closed', amount = 0 WHERE id = 1 RETURNING id, status",
        &[
            "WITH \"pgward_w\" AS (UPDATE",
            "RETURNING id AS \"pgward_1\", status AS \"pgward_2\"",
            "SELECT \"pgward_1\" AS \"id\", \"pgward_2\" AS \"status\" FROM \"pgward_w\"",
        ],
        T_UPDATE,
    ),
    a(
        "UPDATE orders o SET notes = e.name FROM employees e WHERE e.id = o.salesrep_id",
        &[
            "FROM (SELECT",
            "AS \"e\" WHERE (\"o\".salesrep_id = '1'::INT4)",
            "THEN (e.id = o.salesrep_id) END",
        ],
        SILENT,
    ),
    a(
        "UPDATE orders SET notes = (SELECT name FROM employees e WHERE e.id = orders.salesrep_id)",
        &["SET notes = (SELECT name FROM (SELECT"],
        SILENT,
    ),
    a(
        "UPDATE orders SET (amount, notes) = (1, 'x')",
        &["SET (amount, notes) = (1, 'x')"],
        SILENT,
    ),
    a(
        "UPDATE employees SET name = name || 'x'",
        &["UPDATE \"public\".\"employees\" SET name = name || 'x'"],
        None,
    ),
    a(
        "UPDATE employees SET name = 'x' WHERE salary > 100",
        &[
            "CASE WHEN ((\"employees\".department_id = (SELECT d.id FROM public.departments d WHERE d.id = 1))) THEN (salary) END > 100",
        ],
        None,
    ),
    a(
        "UPDATE employees e SET name = 'x' RETURNING e.salary",
        &["RETURNING CASE WHEN", "THEN (e.salary) END AS \"salary\""],
        None,
    ),
    a(
        "UPDATE other.orders SET x = 1 RETURNING *",
        &["UPDATE \"other\".\"orders\" SET x = 1 RETURNING"],
        None,
    ),
    a(
        "UPDATE orders SET notes = notes WHERE id = $1",
        &[
            "AND CASE WHEN (\"orders\".salesrep_id = '1'::INT4) AND (\"orders\".status <> 'archived') THEN (id = $1) END",
        ],
        SILENT,
    ),
    a(
        "WITH v AS (SELECT 5 AS n) UPDATE orders SET amount = v.n FROM v",
        &["WITH v AS (SELECT 5 AS n) UPDATE \"public\".\"orders\" SET amount = v.n FROM v WHERE"],
        SILENT,
    ),
    a(
        "EXPLAIN UPDATE orders SET amount = 1",
        &["EXPLAIN UPDATE \"public\".\"orders\" SET amount = 1 WHERE"],
        None,
    ),
    a(
        "UPDATE orders SET amount = current_user::text::int",
        &["'alice'::pg_catalog.name"],
        SILENT,
    ),
    // ---- DELETE -------------------------------------------------------------
    a(
        "DELETE FROM orders",
        &[
            "DELETE FROM \"public\".\"orders\" WHERE (\"orders\".salesrep_id = '1'::INT4) AND (\"orders\".status <> 'archived')",
        ],
        None,
    ),
    a(
        "DELETE FROM orders o WHERE o.id = 3 RETURNING o.id, o.amount",
        &["RETURNING o.id AS \"id\", o.amount AS \"amount\""],
        None,
    ),
    a(
        "DELETE FROM orders WHERE 1 / (amount - 85000) = 0",
        &["CASE WHEN", "THEN (1 / (amount - 85000) = 0) END"],
        None,
    ),
    a(
        "DELETE FROM orders o USING employees e WHERE e.id = o.salesrep_id",
        &["USING (SELECT"],
        None,
    ),
    a(
        "DELETE FROM orders RETURNING *",
        &["RETURNING \"orders\".\"id\" AS \"id\""],
        None,
    ),
    a(
        "DELETE FROM other.orders WHERE x = 1",
        &["DELETE FROM \"other\".\"orders\" WHERE x = 1"],
        None,
    ),
    a(
        "PREPARE d AS DELETE FROM orders WHERE id = $1",
        &["PREPARE d AS DELETE FROM \"public\".\"orders\""],
        None,
    ),
    // ---- Data-modifying WITH queries -------------------------------------------
    a(
        "WITH u AS (UPDATE orders SET amount = amount + 1 WHERE id < 3 RETURNING id, amount) SELECT * FROM u",
        &[
            "WITH \"pgward_u\" AS (UPDATE \"public\".\"orders\" SET amount = amount + 1 WHERE",
            "RETURNING id AS \"pgward_1\", amount AS \"pgward_2\", pgward.\"check\"(",
            "AS \"pgward_ok\"), u AS (SELECT \"pgward_1\" AS \"id\", \"pgward_2\" AS \"amount\" FROM \"pgward_u\") SELECT * FROM u",
        ],
        None,
    ),
    a(
        "WITH u AS (UPDATE orders SET amount = 1) SELECT 1",
        &["WITH \"pgward_u\" AS (UPDATE", "AS \"pgward_ok\") SELECT 1"],
        None,
    ),
    a(
        "WITH d AS (DELETE FROM orders WHERE id = 1) SELECT 1",
        &[
            "WITH \"pgward_d\" AS (DELETE FROM \"public\".\"orders\" WHERE",
            ") SELECT 1",
        ],
        None,
    ),
    a(
        "WITH s AS (SELECT id FROM orders), d(n) AS (DELETE FROM other.orders WHERE id IN (SELECT id FROM orders) RETURNING id) SELECT n FROM d, s",
        &[
            "WITH s AS (SELECT id FROM (SELECT",
            "d (n) AS (SELECT \"pgward_1\" AS \"id\" FROM \"pgward_d\") SELECT n FROM d, s",
        ],
        None,
    ),
    a(
        "WITH i AS (INSERT INTO orders (id) VALUES (9) RETURNING id), j AS (INSERT INTO other.orders (id) VALUES (9)) SELECT id FROM i",
        &[
            "\"pgward_i\" AS (INSERT",
            "\"pgward_j\" AS (INSERT INTO \"other\".\"orders\" (id) VALUES (9))",
        ],
        None,
    ),
    a(
        "WITH s AS (SELECT 1 AS id), d AS (DELETE FROM other.orders WHERE id IN (SELECT id FROM s) RETURNING id) SELECT * FROM d",
        &[
            "WITH s AS (SELECT 1 AS id), \"pgward_d\" AS (DELETE FROM \"other\".\"orders\" WHERE id IN (SELECT id FROM s) RETURNING id AS \"pgward_1\"), d AS",
        ],
        None,
    ),
    a(
        "WITH d AS (DELETE FROM orders) UPDATE other.orders SET x = 1",
        &[
            "WITH \"pgward_d\" AS (DELETE FROM \"public\".\"orders\" WHERE",
            ") UPDATE \"other\".\"orders\" SET x = 1",
        ],
        None,
    ),
    a(
        "WITH u AS (UPDATE orders SET amount = 1 WHERE id = 1 RETURNING id) INSERT INTO other.orders (id) SELECT id FROM u RETURNING id",
        &[
            "WITH \"pgward_u\" AS (UPDATE",
            "u AS (SELECT \"pgward_1\" AS \"id\" FROM \"pgward_u\") INSERT INTO \"other\".\"orders\" (id) SELECT id FROM u RETURNING id",
        ],
        None,
    ),
    a(
        "WITH u AS (UPDATE other.orders SET x = 1 RETURNING id) INSERT INTO orders (id) SELECT id FROM u RETURNING id",
        &[
            "WITH \"pgward_u\" AS (UPDATE \"other\".\"orders\" SET x = 1 RETURNING id AS \"pgward_1\"), u AS",
            "\"pgward_w\" AS (INSERT INTO \"public\".\"orders\" (id) SELECT id FROM u RETURNING",
        ],
        T_INSERT,
    ),
    // ---- FOR UPDATE / SHARE ---------------------------------------------------
    a(
        "SELECT id FROM orders FOR UPDATE",
        &[
            "WHERE ((salesrep_id = '1'::INT4)) AND (status <> 'archived') AND (((salesrep_id = '1'::INT4)))) AS \"orders\" FOR UPDATE",
        ],
        None,
    ),
    a(
        "SELECT o.id FROM orders o FOR SHARE OF o",
        &["FOR SHARE OF o"],
        None,
    ),
    a(
        "SELECT id FROM other.orders FOR UPDATE NOWAIT",
        &["FROM \"other\".\"orders\" WHERE true) AS \"orders\" FOR UPDATE NOWAIT"],
        None,
    ),
    a(
        "SELECT e.name FROM employees e FOR UPDATE",
        &["FOR UPDATE"],
        None,
    ),
    // ---- COPY FROM ------------------------------------------------------------
    a(
        "COPY other.orders FROM STDIN",
        &["COPY \"other\".\"orders\" FROM STDIN"],
        None,
    ),
    a(
        "COPY other.orders (id) FROM STDIN WITH (FORMAT csv)",
        &["COPY \"other\".\"orders\" (id) FROM STDIN"],
        None,
    ),
];

/// Refused, with the SQLSTATE.
const REFUSED: &[(&str, &str)] = &[
    // Columns
    ("INSERT INTO employees (id) VALUES (1)", "42501"),
    ("UPDATE orders SET margin = 1", "42501"),
    ("UPDATE orders SET salesrep_id = 2", "42501"),
    ("UPDATE orders SET amount = 1, customer_id = 2", "42501"),
    ("UPDATE employees SET salary = 1", "42501"),
    ("UPDATE orders SET nope = 1", "42703"),
    ("INSERT INTO orders (nope) VALUES (1)", "42703"),
    // Commands without a grant
    ("DELETE FROM employees", "42501"),
    ("INSERT INTO departments (id) VALUES (1)", "42501"),
    ("UPDATE departments SET name = 'x'", "42501"),
    ("DELETE FROM pg_catalog.pg_class", "42501"),
    ("INSERT INTO nope (id) VALUES (1)", "42P01"),
    // Hidden columns read
    ("UPDATE orders SET notes = notes WHERE margin > 30", "42501"),
    ("UPDATE orders SET notes = margin::text", "42501"),
    ("UPDATE orders SET amount = 1 RETURNING margin", "42501"),
    ("UPDATE orders o SET amount = 1 RETURNING o.margin", "42501"),
    ("DELETE FROM orders WHERE margin > 1", "42501"),
    ("DELETE FROM orders RETURNING margin", "42501"),
    (
        "INSERT INTO orders (id) VALUES (1) RETURNING margin",
        "42501",
    ),
    ("UPDATE employees SET name = ssn", "42501"),
    (
        "UPDATE orders SET notes = (SELECT ssn FROM employees LIMIT 1)",
        "42501",
    ),
    (
        "UPDATE orders o SET notes = 'x' FROM employees e WHERE e.ssn = '1'",
        "42501",
    ),
    (
        "INSERT INTO orders (id, notes) SELECT id, ssn FROM employees",
        "42501",
    ),
    (
        "INSERT INTO orders (id, amount) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET amount = excluded.margin",
        "42501",
    ),
    (
        "INSERT INTO orders (id, amount) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET amount = 1 WHERE orders.margin > 1",
        "42501",
    ),
    (
        "UPDATE orders SET notes = 'x' RETURNING (SELECT margin FROM orders LIMIT 1)",
        "42501",
    ),
    (
        "UPDATE orders SET notes = 'x' WHERE id IN (SELECT id FROM orders o2 WHERE o2.margin > 1)",
        "42501",
    ),
    (
        "WITH u AS (UPDATE orders SET amount = 1 RETURNING id) SELECT count(*) FROM pgward_u",
        "0A000",
    ),
    // Whole-row use of a write target with hidden columns
    (
        "UPDATE orders o SET notes = notes WHERE margin(o) > 12",
        "42501",
    ),
    ("UPDATE orders o SET notes = 'x' RETURNING o", "42501"),
    (
        "UPDATE orders o SET notes = 'x' RETURNING row_to_json(o)",
        "42501",
    ),
    ("UPDATE orders o SET notes = o::text", "42501"),
    ("UPDATE orders o SET notes = (o).notes", "42501"),
    ("DELETE FROM orders o RETURNING o", "42501"),
    (
        "UPDATE orders o SET notes = 'x' WHERE row_to_json(o.*) IS NOT NULL",
        "42501",
    ),
    (
        "UPDATE orders o SET notes = (SELECT row_to_json(x) FROM (SELECT o.*) x)",
        "42501",
    ),
    (
        "INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET notes = excluded::text",
        "42501",
    ),
    // ON CONFLICT DO UPDATE without the UPDATE columns
    (
        "INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET customer_id = 2",
        "42501",
    ),
    (
        "INSERT INTO other.orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET x = (SELECT margin FROM orders)",
        "42501",
    ),
    // Functions still follow the rules
    ("UPDATE orders SET notes = pg_read_file('x')", "42501"),
    // A client's own call of pgward's check function follows the function
    // rules (the fixture catalog does not have it: 42883; upstream 42501).
    (
        "INSERT INTO orders (id) VALUES (1) RETURNING pgward.\"check\"(false, 'x')",
        "42883",
    ),
    (
        "UPDATE orders SET notes = 'x' WHERE pgward.\"check\"(true, 'x')",
        "42883",
    ),
    // FOR UPDATE
    ("SELECT * FROM \"Mixed\" FOR UPDATE", "42501"),
    ("SELECT o.id FROM orders o, \"Mixed\" m FOR UPDATE", "42501"),
    (
        "SELECT o.id FROM orders o, \"Mixed\" m FOR UPDATE OF m",
        "42501",
    ),
    (
        "SELECT id FROM (SELECT id FROM orders) s FOR UPDATE",
        "0A000",
    ),
    (
        "SELECT id FROM orders WHERE id IN (SELECT id FROM orders FOR UPDATE)",
        "42501",
    ),
    (
        "WITH x AS (SELECT 1) SELECT id FROM orders FOR UPDATE",
        "0A000",
    ),
    // COPY FROM
    ("COPY orders FROM STDIN", "0A000"),
    ("COPY employees FROM STDIN", "42501"),
    ("COPY other.orders FROM '/tmp/x'", "42501"),
    // Forms pgward does not secure
    ("WITH d AS (DELETE FROM orders) SELECT * FROM d", "0A000"),
    (
        "WITH d AS (DELETE FROM orders) SELECT 1 FROM other.orders, d",
        "0A000",
    ),
    (
        "WITH d AS (UPDATE orders SET margin = 1 RETURNING id) SELECT * FROM d",
        "42501",
    ),
    (
        "WITH d AS (UPDATE orders SET amount = 1 RETURNING margin) SELECT * FROM d",
        "42501",
    ),
    (
        "WITH d AS (DELETE FROM employees RETURNING id) SELECT * FROM d",
        "42501",
    ),
    (
        "WITH RECURSIVE d AS (DELETE FROM orders RETURNING id) SELECT * FROM d",
        "0A000",
    ),
    (
        "SELECT * FROM (WITH d AS (DELETE FROM orders RETURNING id) SELECT * FROM d) s",
        "42501",
    ),
    // A write in WITH reads the WITH queries before it only through names
    // pgward can list.
    (
        "WITH s AS (SELECT * FROM other.orders), d AS (DELETE FROM other.orders WHERE id IN (SELECT id FROM s) RETURNING id) SELECT * FROM d",
        "42P01",
    ),
    (
        "WITH d AS (DELETE FROM orders) UPDATE other.orders SET x = 1 FROM d",
        "0A000",
    ),
    ("PREPARE p AS UPDATE orders SET amount = 1", "0A000"),
    ("PREPARE p AS INSERT INTO orders (id) VALUES (1)", "0A000"),
    (
        "MERGE INTO orders o USING employees e ON o.id = e.id WHEN MATCHED THEN DELETE",
        "42501",
    ),
    ("UPDATE orders AS o(a, b) SET amount = 1", "0A000"),
    ("SELECT 1; UPDATE employees SET salary = 0", "42501"),
];

#[test]
fn allowed_writes_are_secured_as_expected() {
    assert!(ALLOWED.len() + REFUSED.len() >= 80);
    let mut failures = Vec::new();
    for case in ALLOWED {
        let (sql, shape) = match run(case.sql) {
            Ok(_) => ok(case.sql),
            Err(e) => {
                failures.push(format!("{}: refused with {e}", case.sql));
                continue;
            }
        };
        for fragment in case.has {
            if !sql.contains(fragment) {
                failures.push(format!("{}: missing {fragment:?} in\n{sql}", case.sql));
            }
        }
        for fragment in case.not {
            if sql.contains(fragment) {
                failures.push(format!("{}: has {fragment:?}", case.sql));
            }
        }
        if shape != case.shape {
            failures.push(format!("{}: shape {shape:?}; forwarded\n{sql}", case.sql));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn refused_writes_have_their_sqlstate() {
    let mut failures = Vec::new();
    for (sql, code) in REFUSED {
        match run(sql) {
            Ok(s) => failures.push(format!("{sql}: allowed as {}", s.sql)),
            Err(e) if e.code != *code => failures.push(format!("{sql}: {e}")),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_demo_update_and_insert_print_exactly() {
    assert_eq!(
        ok("UPDATE orders SET amount = amount + 1"),
        (
            format!(
                "UPDATE \"public\".\"orders\" SET amount = amount + 1 WHERE (\"orders\".salesrep_id = '1'::INT4) \
                 AND (\"orders\".status <> 'archived') RETURNING pgward.\"check\"((\"orders\".salesrep_id = '1'::INT4) \
                 AND (\"orders\".status <> 'archived'), {CHECK_NEW})"
            ),
            SILENT
        )
    );
    assert_eq!(
        ok(
            "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (100, 1, 3, 10, 'open')"
        ),
        (
            format!(
                "INSERT INTO \"public\".\"orders\" (id, customer_id, salesrep_id, amount, status) VALUES (100, 1, 3, 10, 'open') \
                 RETURNING pgward.\"check\"((\"orders\".salesrep_id = '1'::INT4) AND (\"orders\".amount >= 0), {CHECK_NEW})"
            ),
            SILENT
        )
    );
}

#[test]
fn a_delete_with_a_leaky_where_is_guarded_and_keeps_the_plain_policy_outside() {
    assert_eq!(
        ok("DELETE FROM orders WHERE 1 / (amount - 85000) = 0").0,
        "DELETE FROM \"public\".\"orders\" WHERE (\"orders\".salesrep_id = '1'::INT4) AND (\"orders\".status <> 'archived') \
         AND CASE WHEN (\"orders\".salesrep_id = '1'::INT4) AND (\"orders\".status <> 'archived') \
         THEN (1 / (amount - 85000) = 0) END"
    );
}

#[test]
fn a_checked_update_with_returning_is_wrapped_with_postgres_column_names() {
    assert_eq!(
        ok("UPDATE orders AS o SET amount = 5 WHERE id = 2 RETURNING id, amount * 2").0,
        format!(
            "WITH \"pgward_w\" AS (UPDATE \"public\".\"orders\" AS o SET amount = 5 WHERE \
             (\"o\".salesrep_id = '1'::INT4) AND (\"o\".status <> 'archived') AND CASE WHEN \
             (\"o\".salesrep_id = '1'::INT4) AND (\"o\".status <> 'archived') THEN (id = 2) END \
             RETURNING id AS \"pgward_1\", amount * 2 AS \"pgward_2\", \
             pgward.\"check\"((\"o\".salesrep_id = '1'::INT4) AND (\"o\".status <> 'archived'), {CHECK_NEW}) AS \"pgward_ok\") \
             SELECT \"pgward_1\" AS \"id\", \"pgward_2\" AS \"?column?\" FROM \"pgward_w\""
        )
    );
}

#[test]
fn policy_columns_are_qualified_next_to_from_items() {
    let (sql, _) = ok("UPDATE orders o SET notes = 'x' FROM other.orders x WHERE x.id = o.id");
    assert!(sql.contains("(\"o\".salesrep_id = '1'::INT4)"), "{sql}");
    assert!(!sql.contains("(salesrep_id = '1'::INT4)"), "{sql}");
}

#[test]
fn multi_statement_texts_report_the_shape_at_its_position() {
    let s = run("SELECT 1; UPDATE orders SET amount = 1; DELETE FROM orders").unwrap();
    assert_eq!(s.shapes, vec![(1, ResultShape::Silent)]);
}

#[test]
fn a_text_sqlparser_cannot_read_whole_keeps_the_shape_of_its_write() {
    // `MOVE` is read by PostgreSQL's grammar only (see `fallback`).
    let s = run("MOVE NEXT c; UPDATE orders SET amount = 1").unwrap();
    assert_eq!(s.shapes, vec![(1, ResultShape::Silent)]);
}

#[test]
fn unpoliced_writes_need_no_shape() {
    for sql in [
        "UPDATE other.orders SET x = 1",
        "DELETE FROM other.orders",
        "INSERT INTO other.orders (id) VALUES (1) RETURNING id",
    ] {
        let s = run(sql).unwrap();
        assert!(s.shapes.is_empty(), "{sql}: {:?}", s.shapes);
        assert!(!s.sql.contains("pgward"), "{sql}: {}", s.sql);
    }
}

#[test]
fn on_conflict_do_update_checks_the_existing_row_and_each_path_of_the_new_one() {
    let own = "(\"orders\".salesrep_id = '1'::INT4)";
    let seen = "(\"orders\".status <> 'archived')";
    assert_eq!(
        ok(
            "INSERT INTO orders (id, salesrep_id, amount) VALUES (200, 1, 7) ON CONFLICT (id) DO UPDATE SET amount = 1"
        ),
        (
            format!(
                "INSERT INTO \"public\".\"orders\" (id, salesrep_id, amount) VALUES (200, 1, 7) ON CONFLICT(id) \
                 DO UPDATE SET amount = 1 WHERE pgward.\"check\"((\"excluded\".salesrep_id = '1'::INT4) \
                 AND (\"excluded\".amount >= 0), {CHECK_NEW}) AND pgward.\"check\"({own} AND {seen}, \
                 'new row violates row-level security policy (USING expression) for table \"orders\"') \
                 RETURNING pgward.\"check\"(CASE WHEN \"orders\".xmax = 0 THEN {own} AND (\"orders\".amount >= 0) AND {seen} \
                 ELSE {own} AND {seen} END, {CHECK_NEW})"
            ),
            SILENT
        )
    );
}

#[test]
fn a_write_in_with_is_renamed_and_read_through_its_returning_columns() {
    assert_eq!(
        ok("WITH d(n) AS (DELETE FROM orders WHERE id = 2 RETURNING id) SELECT n FROM d").0,
        "WITH \"pgward_d\" AS (DELETE FROM \"public\".\"orders\" WHERE (\"orders\".salesrep_id = '1'::INT4) \
         AND (\"orders\".status <> 'archived') AND CASE WHEN (\"orders\".salesrep_id = '1'::INT4) \
         AND (\"orders\".status <> 'archived') THEN (id = 2) END RETURNING id AS \"pgward_1\"), \
         d (n) AS (SELECT \"pgward_1\" AS \"id\" FROM \"pgward_d\") SELECT n FROM d"
    );
}

#[test]
fn an_update_without_returning_checks_that_the_new_row_stays_visible() {
    // Archiving her own order would move it out of her SELECT reach: the
    // new row is checked against her SELECT rows, RETURNING or not.
    let (sql, shape) = ok("UPDATE orders SET status = 'archived' WHERE id = 1");
    assert_eq!(shape, SILENT);
    let (_, returning) = sql
        .split_once(" RETURNING ")
        .unwrap_or_else(|| panic!("no check in {sql}"));
    assert_eq!(
        returning,
        format!(
            "pgward.\"check\"((\"orders\".salesrep_id = '1'::INT4) AND (\"orders\".status <> 'archived'), {CHECK_NEW})"
        )
    );
}

/// The rewriter over a real session: `u` in role `r` under these policy
/// statements (the catalog of `tests.rs`).
fn run_as_u(statements: &str, sql: &str) -> Result<Secured, PgError> {
    use crate::globals::GlobalValues;
    use crate::policy::PolicySet;
    use crate::session::policy::SessionPolicy;
    let text = format!("CREATE ROLE r; CREATE USER u PASSWORD 'u' IN ROLE r;\n{statements}");
    let set = PolicySet::parse_str(std::path::Path::new("t.sql"), &text, 4096)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let roles = vec!["u".to_string(), "r".to_string(), "public".to_string()];
    let session = SessionPolicy::new(
        "u",
        roles.clone(),
        GlobalValues::builtins("u", &roles, None),
        std::sync::Arc::new(set),
    );
    let catalog = catalog();
    let path = vec!["public".to_string()];
    let ctx = Context {
        catalog: &catalog,
        search_path: &path,
        access: &session,
    };
    secure_text_tracked(sql, false, &ctx)
}

/// `orders` is policed (a SELECT policy and a DELETE policy for another
/// role); `u` holds UPDATE (notes) and DELETE grants but no UPDATE or
/// DELETE policy applies to her.
const GRANTED_WITHOUT_POLICY: &str = "CREATE ROLE other;\n\
     GRANT SELECT (id, salesrep_id, notes), UPDATE (notes), DELETE ON orders TO r;\n\
     CREATE POLICY mine ON orders FOR SELECT TO r USING (salesrep_id = 1);\n\
     GRANT SELECT, UPDATE, DELETE ON orders TO other;\n\
     CREATE POLICY theirs ON orders FOR ALL TO other USING (true);";

#[test]
fn a_granted_update_or_delete_without_an_applicable_policy_touches_no_rows() {
    for (sql, write) in [
        (
            "UPDATE orders SET notes = 'x'",
            "UPDATE \"public\".\"orders\" SET notes = 'x' WHERE (false)",
        ),
        (
            "UPDATE orders SET notes = 'x' WHERE id = 1",
            "UPDATE \"public\".\"orders\" SET notes = 'x' WHERE (false) AND",
        ),
        (
            "DELETE FROM orders",
            "DELETE FROM \"public\".\"orders\" WHERE (false)",
        ),
        (
            "DELETE FROM orders WHERE id = 1 RETURNING id",
            "DELETE FROM \"public\".\"orders\" WHERE (false) AND",
        ),
    ] {
        let secured = run_as_u(GRANTED_WITHOUT_POLICY, sql)
            .unwrap_or_else(|e| panic!("{sql}: refused with {e}"));
        assert!(
            secured.sql.starts_with(write),
            "{sql}: forwarded {}",
            secured.sql
        );
    }
}

#[test]
fn a_set_column_without_the_grant_is_still_refused_without_an_applicable_policy() {
    for sql in [
        "UPDATE orders SET amount = 1",
        "UPDATE orders SET notes = 'x', status = 'open'",
    ] {
        let e = run_as_u(GRANTED_WITHOUT_POLICY, sql)
            .err()
            .unwrap_or_else(|| panic!("{sql}: allowed"));
        assert_eq!(e.code, "42501", "{sql}: {e}");
        assert!(
            e.message.starts_with("permission denied for column"),
            "{sql}: {e}"
        );
    }
    // Without any UPDATE grant the table itself is refused.
    let e = match run_as_u(
        "GRANT SELECT ON orders TO r;\n\
         CREATE POLICY mine ON orders FOR SELECT TO r USING (true);",
        "UPDATE orders SET notes = 'x'",
    ) {
        Ok(s) => panic!("an UPDATE without the grant was allowed as {}", s.sql),
        Err(e) => e,
    };
    assert_eq!(e.code, "42501");
    assert!(e.message.starts_with("permission denied for table"), "{e}");
}

#[test]
fn a_refused_copy_from_names_its_reason_in_the_hint() {
    let hint = |statements: &str, sql: &str| -> String {
        match run_as_u(statements, sql) {
            Ok(s) => panic!("{sql}: allowed as {}", s.sql),
            Err(e) => {
                assert_eq!(e.code, "0A000", "{sql}: {e}");
                e.hint.unwrap_or_default()
            }
        }
    };
    // INSERT granted on two columns, not policed for INSERT.
    let two = "GRANT SELECT, INSERT (id, notes) ON orders TO r;\n\
               CREATE POLICY mine ON orders FOR SELECT TO r USING (true);";
    let h = hint(two, "COPY orders FROM STDIN");
    assert!(
        h.starts_with("no INSERT entry of this session has column \"amount\"")
            && h.ends_with("list the columns to copy, or use INSERT"),
        "{h}"
    );
    let h = hint(two, "COPY orders (id, margin) FROM STDIN");
    assert!(
        h.starts_with("no INSERT entry of this session has column \"margin\"")
            && h.ends_with("; use INSERT"),
        "{h}"
    );
    let copied = run_as_u(two, "COPY orders (id, notes) FROM STDIN")
        .unwrap_or_else(|e| panic!("{e}"))
        .sql;
    assert!(
        copied.starts_with("COPY \"public\".\"orders\" (id, notes) FROM STDIN"),
        "{copied}"
    );
    // Every column in some entry, but not all in one.
    let split = "GRANT INSERT (id, notes) ON orders TO r;\n\
                 GRANT INSERT (amount) ON orders TO u;\n\
                 CREATE POLICY a ON orders FOR INSERT TO r WITH CHECK (true);\n\
                 CREATE POLICY b ON orders FOR INSERT TO u WITH CHECK (true);";
    let h = hint(split, "COPY orders (id, amount) FROM STDIN");
    assert!(
        h.starts_with("no single INSERT entry has every target column"),
        "{h}"
    );
    // The columns fit, but new rows are checked.
    let checked = "GRANT INSERT ON orders TO r;\n\
                   CREATE POLICY a ON orders FOR INSERT TO r WITH CHECK (salesrep_id = 1);";
    let h = hint(checked, "COPY orders (id, salesrep_id) FROM STDIN");
    assert!(
        h.starts_with("a row check applies to new rows of orders"),
        "{h}"
    );
    let restricted = "GRANT INSERT ON orders TO r;\n\
                      CREATE POLICY a ON orders FOR INSERT TO r WITH CHECK (true);\n\
                      CREATE POLICY b ON orders AS RESTRICTIVE FOR INSERT TO r WITH CHECK (amount > 0);";
    let h = hint(restricted, "COPY orders (id, amount) FROM STDIN");
    assert!(
        h.starts_with("a row check applies to new rows of orders"),
        "{h}"
    );
    // Granted, but no INSERT policy applies to the session.
    let other = "CREATE ROLE other;\n\
                 GRANT INSERT ON orders TO r, other;\n\
                 CREATE POLICY theirs ON orders FOR INSERT TO other WITH CHECK (true);";
    let h = hint(other, "COPY orders (id) FROM STDIN");
    assert!(
        h.starts_with("no INSERT policy on orders applies to this session"),
        "{h}"
    );
}
