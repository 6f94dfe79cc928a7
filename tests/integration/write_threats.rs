//! THREATS.md's write rows, attacked through pgward as alice on the demo
//! data set: whole-row use of write targets, RETURNING, write oracles, ON
//! CONFLICT, error fields of a CHECK failure on UPDATE, and the accepted
//! existence oracle of a unique violation. Each attack comes in several
//! spellings (quoting, case, schema qualification, aliases), and every
//! message the client receives (rows, column names, command tags, error and
//! notice fields) is searched for values alice may not see; the database is
//! read afterwards on a superuser connection.
//!
//! The demo policies get two grants more, so that DELETE and writes to
//! `employees` can be attacked too: sales reps may DELETE their orders, and
//! INSERT (id, login, name, department_id) and UPDATE (name) employees;
//! managers may UPDATE (name) employees.

use tokio_postgres::Client;

use crate::harness::{Pgward, PgwardOptions, TestDb};
use crate::policy_reads::{demo_db, demo_policies};
use crate::writes::{Reply, Wire, assert_hidden, fingerprint, tail};

const EXTRA_GRANTS: &str = "
GRANT DELETE ON orders TO sales_rep;
GRANT INSERT (id, login, name, department_id), UPDATE (name) ON employees TO sales_rep;
GRANT UPDATE (name) ON employees TO manager;
";

/// Values of the demo data alice may never receive: SSNs, salaries, every
/// margin, notes and amounts of orders she cannot see (other reps' and her
/// archived one), credit limits.
const HIDDEN: &[&str] = &[
    "111-11-1111",
    "222-22-2222",
    "333-33-3333",
    "444-44-4444",
    "85000.00",
    "72000.00",
    "91000.00",
    "120000.00",
    "18.50",
    "15.75",
    "12.40",
    "25.10",
    "17.30",
    "10.90",
    "19.60",
    "14.20",
    "Closed out last quarter",
    "Follow up in March",
    "Includes installation",
    "Multi-site rollout",
    "Cancelled by customer",
    "Net 60 terms",
    "Priority account",
    "2250.00",
    "1875.50",
    "5200.00",
    "3325.00",
    "9800.00",
    "410.25",
    "760.00",
    "980.00",
    "50000.00",
    "75000.00",
    "100000.00",
];

/// What dave (manager of department 1) may never receive: SSNs, carol's
/// salary, carol's orders, departments, credit limits.
const DAVE_HIDDEN: &[&str] = &[
    "111-11-1111",
    "222-22-2222",
    "333-33-3333",
    "444-44-4444",
    "91000.00",
    "Multi-site rollout",
    "Cancelled by customer",
    "Net 60 terms",
    "Priority account",
    "5200.00",
    "3325.00",
    "9800.00",
    "410.25",
    "50000.00",
    "75000.00",
    "100000.00",
];

const TABLES: &[&str] = &["orders", "employees"];

/// The visible columns of orders, in table order.
const ORDER_COLUMNS: &[&str] = &[
    "id",
    "customer_id",
    "salesrep_id",
    "amount",
    "notes",
    "status",
];

struct Demo {
    // Dropped last: the database outlives pgward.
    pgward: Pgward,
    su: Client,
    /// alice's session, unless a test logs in someone else.
    session: Wire,
    /// What the session's user may never receive.
    hidden: &'static [&'static str],
    base: String,
    db: TestDb,
}

impl Demo {
    async fn start(label: &str) -> anyhow::Result<Demo> {
        let db = demo_db(label).await?;
        let su = db.superuser().await?;
        su.batch_execute(
            "ALTER TABLE orders ADD CONSTRAINT amount_small CHECK (amount < 100000);
             ALTER TABLE orders ALTER status SET NOT NULL;
             CREATE TABLE orders_base AS SELECT * FROM orders;
             CREATE TABLE employees_base AS SELECT * FROM employees;",
        )
        .await?;
        let policies = format!("{}\n{EXTRA_GRANTS}", demo_policies()?);
        let pgward = db
            .start_pgward(PgwardOptions::with_policies(&policies))
            .await?;
        let session = Wire::login(pgward.port(), "alice", "alice", db.name()).await?;
        let (base, _) = fingerprint(&su, TABLES).await?;
        Ok(Demo {
            pgward,
            su,
            session,
            hidden: HIDDEN,
            base,
            db,
        })
    }

    async fn reset(&self) -> anyhow::Result<()> {
        self.su
            .batch_execute(
                "BEGIN; DELETE FROM orders; INSERT INTO orders SELECT * FROM orders_base;
                 DELETE FROM employees; INSERT INTO employees SELECT * FROM employees_base; COMMIT",
            )
            .await?;
        Ok(())
    }

    /// Runs `sql` as alice, checks that no hidden value came back.
    async fn attack(&mut self, sql: &str) -> anyhow::Result<Reply> {
        let reply = self.session.run(sql).await?;
        assert_hidden(sql, &reply, self.hidden);
        Ok(reply)
    }

    /// An attack pgward must refuse with one of `codes`, writing nothing.
    async fn refused(&mut self, sql: &str, codes: &[&str]) -> anyhow::Result<Reply> {
        let reply = self.attack(sql).await?;
        assert!(
            reply.code().is_some_and(|c| codes.contains(&c)),
            "{sql}: wanted one of {codes:?}, got {reply:#?}\npgward's log:\n{}",
            tail(&self.pgward.log())
        );
        assert!(reply.rows.is_empty(), "{sql}: {reply:#?}");
        self.unchanged(sql).await?;
        Ok(reply)
    }

    /// An attack that runs: the command tag must be `tag`.
    async fn allowed(&mut self, sql: &str, tag: &str) -> anyhow::Result<Reply> {
        let reply = self.attack(sql).await?;
        assert_eq!(
            reply.outcome(),
            tag,
            "{sql}: {reply:#?}\npgward's log:\n{}",
            tail(&self.pgward.log())
        );
        Ok(reply)
    }

    async fn unchanged(&self, sql: &str) -> anyhow::Result<()> {
        let (md5, rows) = fingerprint(&self.su, TABLES).await?;
        assert_eq!(md5, self.base, "{sql} changed the database:\n{rows}");
        Ok(())
    }

    async fn amounts(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .su
            .query("SELECT amount::text FROM orders ORDER BY id", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }
}

const DENIED: &[&str] = &["42501"];
const REFUSED: &[&str] = &["42501", "0A000"];

#[tokio::test]
async fn whole_row_use_of_a_write_target_is_refused() -> anyhow::Result<()> {
    let mut d = Demo::start("write_threats_whole_row").await?;
    for sql in [
        "UPDATE orders o SET notes = notes WHERE margin(o) > 12 RETURNING o, row_to_json(o)->>'margin'",
        "UPDATE orders o SET notes = notes WHERE margin(o) > 12",
        "UPDATE orders o SET notes = notes WHERE \"margin\"(\"o\") > 12",
        "UPDATE orders o SET notes = notes RETURNING o",
        "UPDATE orders AS o SET notes = notes RETURNING row_to_json(o)",
        "update ORDERS o set NOTES = NOTES returning TO_JSONB(O)",
        "UPDATE public.orders o SET notes = o::text WHERE id = 1",
        "UPDATE \"public\".\"orders\" \"o\" SET \"notes\" = CAST(\"o\" AS text) WHERE \"id\" = 1",
        "UPDATE orders SET notes = orders::text WHERE id = 1",
        "UPDATE orders SET notes = notes WHERE (orders).margin > 12",
        "UPDATE orders o SET notes = notes WHERE (o).margin > 12",
        "UPDATE orders o SET notes = notes WHERE (o.*).margin > 12",
        "UPDATE orders o SET notes = notes WHERE o::text LIKE '%18.5%'",
        "UPDATE orders o SET notes = notes WHERE row_to_json(o)->>'margin' > '12'",
        "UPDATE orders o SET notes = (SELECT o::text) WHERE id = 1",
        "UPDATE orders o SET notes = notes WHERE id = 1 RETURNING to_jsonb(o.*)",
        "UPDATE orders o SET notes = notes FROM customers c WHERE c.id = o.customer_id AND o::text <> c::text",
        "DELETE FROM orders o WHERE o::text LIKE '%18.5%'",
        "DELETE FROM orders o WHERE id = 1 RETURNING o",
        "DELETE FROM public.orders AS \"O\" WHERE \"O\".id = 1 RETURNING row_to_json(\"O\")",
        "INSERT INTO orders AS o (id, customer_id, salesrep_id, amount, status) VALUES (1, 1, 1, 1, 'open') \
         ON CONFLICT (id) DO UPDATE SET notes = o::text",
        "INSERT INTO orders AS o (id, customer_id, salesrep_id, amount, status) VALUES (1, 1, 1, 1, 'open') \
         ON CONFLICT (id) DO UPDATE SET notes = o.notes RETURNING o",
        "INSERT INTO orders AS o (id, customer_id, salesrep_id, amount, status) VALUES (1, 1, 1, 1, 'open') \
         ON CONFLICT (id) DO UPDATE SET notes = o.notes WHERE margin(o) > 12",
        "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (1, 1, 1, 1, 'open') \
         ON CONFLICT (id) DO UPDATE SET notes = orders.notes RETURNING to_jsonb(orders)",
        "WITH u AS (UPDATE orders o SET notes = notes WHERE id = 1 RETURNING o) SELECT * FROM u",
        "WITH u AS (UPDATE orders o SET notes = notes WHERE id = 1 RETURNING o::text AS t) SELECT t FROM u",
    ] {
        d.refused(sql, REFUSED).await?;
    }

    // `RETURNING o.*` lists columns: refused, or only the visible ones.
    for sql in [
        "UPDATE orders o SET notes = notes WHERE id = 1 RETURNING o.*",
        "UPDATE orders o SET notes = notes WHERE id = 1 RETURNING (o).*",
        "WITH u AS (UPDATE orders o SET notes = notes WHERE id = 1 RETURNING o.*) SELECT u::text FROM u",
    ] {
        let reply = d.attack(sql).await?;
        if reply.code().is_none() {
            assert!(
                !reply.columns.iter().any(|c| c == "margin"),
                "{sql}: {reply:#?}"
            );
        }
        d.unchanged(sql).await?;
    }

    // The alias itself is fine, and SET right-hand sides are reads: the
    // subquery sees only alice's orders (max 3100.00, not carol's 9800.00).
    let reply = d
        .allowed(
            "UPDATE orders o SET notes = o.notes WHERE o.id = 1 RETURNING o.id, o.notes",
            "UPDATE 1",
        )
        .await?;
    assert_eq!(reply.rows, ["1|Annual license renewal"]);
    d.unchanged("UPDATE … SET notes = o.notes").await?;
    d.refused(
        "UPDATE orders SET notes = margin::text WHERE id = 1",
        DENIED,
    )
    .await?;
    d.refused(
        "UPDATE orders SET notes = (SELECT x.margin FROM orders x WHERE x.id = 1)::text WHERE id = 1",
        DENIED,
    )
    .await?;
    d.allowed(
        "UPDATE orders SET amount = (SELECT max(amount) FROM orders)",
        "UPDATE 3",
    )
    .await?;
    let amounts = d.amounts().await?;
    assert_eq!(&amounts[..4], ["3100.00", "3100.00", "3100.00", "980.00"]);
    assert_eq!(amounts[11], "9800.00");
    d.reset().await?;
    d.allowed(
        "UPDATE orders SET amount = (SELECT count(*) FROM orders o2 WHERE o2.salesrep_id <> 1)",
        "UPDATE 3",
    )
    .await?;
    assert_eq!(&d.amounts().await?[..3], ["0.00", "0.00", "0.00"]);
    Ok(())
}

#[tokio::test]
async fn returning_follows_select_rules() -> anyhow::Result<()> {
    let mut d = Demo::start("write_threats_returning").await?;
    for sql in [
        "UPDATE orders SET amount = amount RETURNING margin",
        "UPDATE orders SET amount = amount RETURNING \"margin\"",
        "UPDATE orders SET amount = amount RETURNING orders.margin",
        "UPDATE orders SET amount = amount RETURNING public.orders.margin",
        "update ORDERS O set AMOUNT = AMOUNT returning O.MARGIN",
        "UPDATE orders SET amount = amount RETURNING margin * 1 AS m",
        "UPDATE orders SET amount = amount RETURNING (SELECT margin)",
        "UPDATE orders SET amount = amount RETURNING id, margin",
        "UPDATE orders SET amount = amount WHERE id = 1 RETURNING (SELECT max(margin) FROM orders)",
        "UPDATE orders SET amount = amount WHERE id = 1 RETURNING (SELECT x.notes FROM orders x WHERE x.id = 8)::text || margin",
        "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (101, 1, 1, 5, 'open') RETURNING margin",
        "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (101, 1, 1, 5, 'open') RETURNING id, \"margin\"",
        "DELETE FROM orders WHERE id = 1 RETURNING margin",
        "DELETE FROM orders o WHERE o.id = 1 RETURNING o.margin",
        "UPDATE employees SET name = name WHERE id = 1 RETURNING ssn",
        "UPDATE employees e SET name = e.name RETURNING e.salary",
        "WITH u AS (UPDATE orders SET amount = amount RETURNING margin) SELECT 1 FROM u",
    ] {
        d.refused(sql, DENIED).await?;
    }

    // RETURNING * shows the visible columns only.
    let reply = d
        .allowed("DELETE FROM orders WHERE id = 3 RETURNING *", "DELETE 1")
        .await?;
    assert_eq!(reply.columns, ORDER_COLUMNS);
    assert_eq!(reply.rows, ["3|5|1|3100.00|Bulk discount applied|open"]);
    let n: i64 =
        d.su.query_one("SELECT count(*) FROM orders WHERE id = 3", &[])
            .await?
            .get(0);
    assert_eq!(n, 0);
    d.reset().await?;
    for (sql, tag) in [
        // bob's order and her own archived one: not hers to see.
        ("DELETE FROM orders WHERE id = 5 RETURNING *", "DELETE 0"),
        ("DELETE FROM orders WHERE id = 4 RETURNING *", "DELETE 0"),
        ("DELETE FROM orders WHERE id > 3 RETURNING *", "DELETE 0"),
    ] {
        let reply = d.allowed(sql, tag).await?;
        assert!(reply.rows.is_empty(), "{sql}: {reply:#?}");
        d.unchanged(sql).await?;
    }
    let reply = d
        .allowed(
            "UPDATE public.\"orders\" SET status = status WHERE id = 1 RETURNING *",
            "UPDATE 1",
        )
        .await?;
    assert_eq!(reply.columns, ORDER_COLUMNS);
    assert_eq!(reply.rows, ["1|1|1|1200.00|Annual license renewal|open"]);
    let reply = d
        .allowed(
            "insert into ORDERS (id, customer_id, salesrep_id, amount, margin, status) \
             values (101, 1, 1, 5, 33.30, 'open') returning *",
            "INSERT 0 1",
        )
        .await?;
    assert_eq!(reply.columns, ORDER_COLUMNS);
    assert_eq!(reply.rows, ["101|1|1|5.00|NULL|open"]);
    d.reset().await?;
    let reply = d
        .allowed("UPDATE employees SET name = name RETURNING *", "UPDATE 4")
        .await?;
    assert_eq!(reply.columns, ["id", "login", "name", "department_id"]);
    d.unchanged("UPDATE employees SET name = name").await?;
    Ok(())
}

#[tokio::test]
async fn write_oracles_follow_select_rules() -> anyhow::Result<()> {
    let mut d = Demo::start("write_threats_oracles").await?;
    for sql in [
        "UPDATE orders SET notes = notes WHERE margin > 30",
        "UPDATE orders SET notes = notes WHERE \"margin\" > 30",
        "UPDATE orders SET notes = notes WHERE orders.margin > 30",
        "UPDATE public.orders SET notes = notes WHERE public.orders.margin > 30",
        "update Orders o set Notes = Notes where O.Margin > 30",
        "UPDATE orders SET notes = notes WHERE id IN (SELECT id FROM orders WHERE margin > 30)",
        "UPDATE orders SET notes = notes WHERE EXISTS (SELECT 1 FROM orders x WHERE x.margin > 30 AND x.id = orders.id)",
        "UPDATE orders SET notes = notes WHERE margin BETWEEN 10 AND 20 OR id = 1",
        "UPDATE orders o SET notes = notes FROM employees e WHERE e.salary > 80000",
        "UPDATE orders o SET notes = notes FROM employees e WHERE e.id = o.salesrep_id AND e.ssn LIKE '1%'",
        "UPDATE orders SET notes = notes WHERE customer_id IN (SELECT id FROM customers WHERE credit_limit > 60000)",
        "UPDATE orders SET notes = notes WHERE id = (SELECT id FROM departments LIMIT 1)",
        "DELETE FROM orders WHERE margin > 30",
        "DELETE FROM orders o WHERE o.\"margin\" > 30",
        "DELETE FROM orders o USING employees e WHERE e.salary > 80000 AND e.id = o.salesrep_id",
        "WITH u AS (UPDATE orders SET notes = notes WHERE margin > 30 RETURNING id) SELECT count(*) FROM u",
        "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) \
         SELECT 200 + id, 1, 1, 1, 'open' FROM orders WHERE margin > 30",
    ] {
        let reply = d.refused(sql, REFUSED).await?;
        assert!(
            reply.tags.is_empty(),
            "{sql}: a command tag came back: {reply:#?}"
        );
    }

    // Row counts count only rows alice may see: bob's, carol's and her
    // archived order never add to them.
    for (sql, tag) in [
        ("UPDATE orders SET notes = notes WHERE id = 5", "UPDATE 0"),
        ("UPDATE orders SET notes = notes WHERE id = 4", "UPDATE 0"),
        ("UPDATE orders SET notes = notes WHERE id > 0", "UPDATE 3"),
        (
            "UPDATE orders SET notes = notes WHERE amount > 5000",
            "UPDATE 0",
        ),
        (
            "UPDATE orders SET notes = notes WHERE EXISTS (SELECT 1 FROM orders x WHERE x.id = 8)",
            "UPDATE 0",
        ),
        (
            "UPDATE orders SET notes = notes WHERE (SELECT count(*) FROM orders) = 12",
            "UPDATE 0",
        ),
        (
            "UPDATE orders SET notes = notes WHERE (SELECT count(*) FROM orders) = 3",
            "UPDATE 3",
        ),
        (
            "UPDATE orders o SET notes = o.notes FROM orders x WHERE x.salesrep_id = 3 AND x.id = o.id",
            "UPDATE 0",
        ),
        // A division that fails only on a hidden row (bob's 2250.00): the
        // policy filter runs first, so the statement never meets that row.
        (
            "UPDATE orders SET notes = notes WHERE 1 / (amount - 2250) > 0",
            "UPDATE 1",
        ),
        (
            "DELETE FROM orders WHERE 1 / (amount - 9800) < 0 AND amount > 100000",
            "DELETE 0",
        ),
        ("DELETE FROM orders WHERE id IN (5, 8, 4)", "DELETE 0"),
        ("DELETE FROM orders WHERE amount = 980", "DELETE 0"),
    ] {
        d.allowed(sql, tag).await?;
        d.unchanged(sql).await?;
    }
    // EXPLAIN of a write is a read of its plan; EXPLAIN ANALYZE would run
    // the write and count hidden rows, so it is refused and writes nothing.
    for sql in [
        "EXPLAIN (COSTS OFF) UPDATE orders SET notes = notes WHERE id = 5",
        "EXPLAIN (COSTS OFF) DELETE FROM orders WHERE amount > 100",
        "EXPLAIN (COSTS OFF) INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (8, 1, 1, 1, 'open') \
         ON CONFLICT (id) DO UPDATE SET notes = excluded.notes",
    ] {
        let reply = d.allowed(sql, "EXPLAIN").await?;
        assert!(!reply.rows.is_empty(), "{sql}: {reply:#?}");
        d.unchanged(sql).await?;
    }
    for sql in [
        "EXPLAIN UPDATE orders SET notes = notes WHERE margin > 30",
        "EXPLAIN ANALYZE UPDATE orders SET amount = 0",
        "EXPLAIN (ANALYZE) DELETE FROM orders",
        "explain (analyze true, costs off) insert into orders (id, customer_id, salesrep_id, amount, status) \
         values (300, 1, 1, 1, 'open')",
        "EXPLAIN (ANALYZE, FORMAT JSON) UPDATE orders SET notes = 'x' WHERE id = 5",
    ] {
        d.refused(sql, REFUSED).await?;
    }

    // pgward's own check function is not the user's to call.
    for sql in [
        "SELECT pgward.\"check\"(true, 'x')",
        "SELECT \"pgward\".\"check\"(amount > 1000, 'x') FROM orders",
        "UPDATE orders SET notes = notes WHERE pgward.\"check\"(id <> 2, 'new row violates row-level security policy')",
        "UPDATE orders SET notes = notes WHERE id = 1 RETURNING pgward.\"check\"(false, 'spoofed')",
    ] {
        d.refused(sql, REFUSED).await?;
    }

    // The division probe is a real one: directly, it fails.
    let direct =
        d.su.simple_query("UPDATE orders SET notes = notes WHERE 1 / (amount - 2250) > 0")
            .await;
    assert!(direct.is_err(), "the probe must fail without pgward");
    Ok(())
}

#[tokio::test]
async fn on_conflict_follows_update_rules() -> anyhow::Result<()> {
    let mut d = Demo::start("write_threats_on_conflict").await?;
    let ins = "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES";
    for sql in [
        // Carol's order 8 and alice's archived 4: not updatable by alice.
        format!(
            "{ins} (8, 3, 1, 1, 'open') ON CONFLICT (id) DO UPDATE SET notes = orders.notes RETURNING orders.notes"
        ),
        format!(
            "{ins} (8, 3, 1, 1, 'open') ON CONFLICT (id) DO UPDATE SET amount = excluded.amount"
        ),
        format!(
            "{ins} (8, 3, 1, 1, 'open') ON CONFLICT (id) DO UPDATE SET amount = orders.amount RETURNING orders.amount"
        ),
        format!(
            "{ins} (4, 1, 1, 1, 'open') ON CONFLICT (id) DO UPDATE SET notes = orders.notes RETURNING orders.notes"
        ),
        format!(
            "{ins} (8, 3, 1, 1, 'open') ON CONFLICT ON CONSTRAINT orders_pkey DO UPDATE SET status = 'open'"
        ),
        "INSERT INTO public.\"orders\" AS t (id, customer_id, salesrep_id, amount, status) VALUES \
         (9, 4, 1, 1, 'open') ON CONFLICT (id) DO UPDATE SET notes = t.notes RETURNING t.notes"
            .to_string(),
    ] {
        let reply = d.refused(&sql, DENIED).await?;
        assert!(
            reply
                .error
                .as_ref()
                .is_some_and(|e| e.message().contains("row-level security")),
            "{sql}: {reply:#?}"
        );
    }
    for sql in [
        // Hidden columns in SET, WHERE and RETURNING of DO UPDATE.
        format!("{ins} (1, 1, 1, 1, 'open') ON CONFLICT (id) DO UPDATE SET amount = orders.amount RETURNING orders.margin"),
        format!("{ins} (1, 1, 1, 1, 'open') ON CONFLICT (id) DO UPDATE SET notes = orders.margin::text"),
        format!("{ins} (1, 1, 1, 1, 'open') ON CONFLICT (id) DO UPDATE SET notes = excluded.notes WHERE orders.margin > 0"),
        "INSERT INTO orders AS t (id, customer_id, salesrep_id, amount, status) VALUES (1, 1, 1, 1, 'open') \
         ON CONFLICT (id) DO UPDATE SET amount = t.amount RETURNING t.\"margin\""
            .to_string(),
        format!("{ins} (8, 3, 1, 1, 'open') ON CONFLICT (id) DO UPDATE SET amount = orders.amount RETURNING orders.margin"),
        format!("{ins} (1, 1, 1, 1, 'open') ON CONFLICT (id) DO UPDATE SET salesrep_id = 3"),
        // employees: SET x = t.x RETURNING t.ssn
        "INSERT INTO employees (id, login, name, department_id) VALUES (3, 'x', 'y', 2) \
         ON CONFLICT (id) DO UPDATE SET name = employees.name RETURNING employees.ssn".to_string(),
        "INSERT INTO employees AS e (id, login, name, department_id) VALUES (3, 'x', 'y', 2) \
         ON CONFLICT (id) DO UPDATE SET name = e.name RETURNING e.salary"
            .to_string(),
        "insert into EMPLOYEES as E (ID, LOGIN, NAME, DEPARTMENT_ID) values (3, 'x', 'y', 2) \
         on conflict (ID) do update set NAME = E.SSN"
            .to_string(),
        "INSERT INTO public.employees AS e (id, login, name, department_id) VALUES (3, 'x', 'y', 2) \
         ON CONFLICT (id) DO UPDATE SET name = e.name WHERE e.salary > 90000"
            .to_string(),
        "INSERT INTO employees AS e (id, login, name, department_id) VALUES (3, 'x', 'y', 2) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING *, e.ssn"
            .to_string(),
    ] {
        d.refused(&sql, DENIED).await?;
    }

    // DO NOTHING on a row she cannot see: nothing happens, INSERT 0 0.
    for sql in [
        format!("{ins} (8, 3, 1, 1, 'open') ON CONFLICT (id) DO NOTHING"),
        format!("{ins} (8, 3, 1, 1, 'open') ON CONFLICT DO NOTHING RETURNING *"),
    ] {
        let reply = d.allowed(&sql, "INSERT 0 0").await?;
        assert!(reply.rows.is_empty());
        d.unchanged(&sql).await?;
    }
    // Her own row: DO UPDATE works, RETURNING shows visible columns.
    let reply = d
        .allowed(
            &format!("{ins} (1, 1, 1, 1, 'open') ON CONFLICT (id) DO UPDATE SET notes = 'upserted' RETURNING *"),
            "INSERT 0 1",
        )
        .await?;
    assert_eq!(reply.columns, ORDER_COLUMNS);
    assert_eq!(reply.rows, ["1|1|1|1200.00|upserted|open"]);
    let notes: String =
        d.su.query_one("SELECT notes FROM orders WHERE id = 1", &[])
            .await?
            .get(0);
    assert_eq!(notes, "upserted");
    d.reset().await?;
    // employees: SET name = e.name on carol's row (unpoliced for UPDATE).
    let reply = d
        .allowed(
            "INSERT INTO employees AS e (id, login, name, department_id) VALUES (3, 'x', 'y', 2) \
             ON CONFLICT (id) DO UPDATE SET name = e.name RETURNING e.id, e.name",
            "INSERT 0 1",
        )
        .await?;
    assert_eq!(reply.rows, ["3|Carol Chen"]);
    d.unchanged("ON CONFLICT … SET name = e.name").await?;
    Ok(())
}

#[tokio::test]
async fn check_failure_on_update_does_not_quote_the_row() -> anyhow::Result<()> {
    let mut d = Demo::start("write_threats_check_detail").await?;
    // The probe is real: directly, the error's DETAIL quotes the hidden
    // margin and the archived note.
    let direct =
        d.su.simple_query("UPDATE orders SET amount = 200000 WHERE id = 1")
            .await
            .err()
            .and_then(|e| e.as_db_error().and_then(|e| e.detail().map(str::to_string)))
            .unwrap_or_default();
    assert!(direct.contains("18.50"), "{direct}");

    for (sql, code) in [
        ("UPDATE orders SET amount = 200000 WHERE id = 1", "23514"),
        (
            "UPDATE orders SET amount = amount * 1000 WHERE id = 1",
            "23514",
        ),
        ("update ORDERS set AMOUNT = 1e6 where ID = 3", "23514"),
        (
            "UPDATE public.\"orders\" AS o SET \"amount\" = 500000 FROM customers c \
          WHERE c.id = o.customer_id AND o.id = 2",
            "23514",
        ),
        ("UPDATE orders SET amount = 200000", "23514"),
        (
            "WITH u AS (UPDATE orders SET amount = 200000 WHERE id = 1 RETURNING id) SELECT * FROM u",
            "23514",
        ),
        (
            "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (1, 1, 1, 1, 'open') \
          ON CONFLICT (id) DO UPDATE SET amount = 999999",
            "23514",
        ),
        ("UPDATE orders SET status = NULL WHERE id = 1", "23502"),
    ] {
        let reply = d.attack(sql).await?;
        assert_eq!(reply.outcome(), code, "{sql}: {reply:#?}");
        if let Some(e) = &reply.error {
            let fields: Vec<char> = e.0.keys().map(|&k| k as char).collect();
            assert!(
                fields.iter().all(|k| "SVCMH".contains(*k)),
                "{sql}: fields {fields:?} reached the client: {e:?}"
            );
        }
        d.unchanged(sql).await?;
    }

    // psql with every field shown: no DETAIL, no row.
    let conn = d.pgward.conn_string("alice", "alice", d.db.name());
    let out = tokio::process::Command::new("psql")
        .arg(&conn)
        .args(["-X", "-v", "VERBOSITY=verbose"])
        .args(["-c", "UPDATE orders SET amount = 200000 WHERE id = 1"])
        .output()
        .await?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("23514"), "{text}");
    assert!(
        !text.contains("DETAIL") && !text.contains("Failing row"),
        "{text}"
    );
    for h in HIDDEN {
        assert!(!text.contains(h), "{h} in {text}");
    }
    Ok(())
}

#[tokio::test]
async fn unique_violation_reveals_existence_only() -> anyhow::Result<()> {
    let mut d = Demo::start("write_threats_existence").await?;
    for (sql, constraint) in [
        (
            "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (8, 1, 1, 10, 'open')",
            "orders_pkey",
        ),
        (
            "insert into public.ORDERS (ID, CUSTOMER_ID, SALESREP_ID, AMOUNT, STATUS) values (101, 1, 1, 10, 'open'), (9, 1, 1, 10, 'open')",
            "orders_pkey",
        ),
        (
            "INSERT INTO \"orders\" (id, customer_id, salesrep_id, amount, status) SELECT 10 + g, 1, 1, 10, 'open' FROM generate_series(0, 2) g",
            "orders_pkey",
        ),
        (
            "WITH i AS (INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (12, 1, 1, 1, 'open') RETURNING id) SELECT * FROM i",
            "orders_pkey",
        ),
        (
            "INSERT INTO employees (id, login, name, department_id) VALUES (9, 'carol', 'X', 1)",
            "employees_login_key",
        ),
        (
            "INSERT INTO employees AS e (id, login, name, department_id) VALUES (3, 'x', 'y', 2)",
            "employees_pkey",
        ),
    ] {
        let reply = d.attack(sql).await?;
        let e = reply
            .error
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("{sql}: no error: {reply:#?}"))?;
        assert_eq!(e.code(), "23505", "{sql}: {e:?}");
        assert_eq!(
            e.message(),
            format!("duplicate key value violates unique constraint \"{constraint}\""),
            "{sql}"
        );
        let fields: Vec<char> = e.0.keys().map(|&k| k as char).collect();
        assert!(
            fields.iter().all(|k| "SVCMH".contains(*k)),
            "{sql}: fields {fields:?} reached the client: {e:?}"
        );
        assert!(
            !reply.all.contains("already exists") && !reply.all.contains("Key ("),
            "{reply:#?}"
        );
        assert!(reply.tags.is_empty() && reply.rows.is_empty(), "{reply:#?}");
        d.unchanged(sql).await?;
    }
    Ok(())
}

/// THREATS.md "missed relation kinds": the relations a write reads (INSERT …
/// SELECT, UPDATE … FROM, DELETE … USING, SET right-hand sides, CTEs) follow
/// SELECT rules, so no hidden value can be copied into a row alice can read.
#[tokio::test]
async fn writes_read_only_what_select_may_read() -> anyhow::Result<()> {
    let mut d = Demo::start("write_threats_reads").await?;
    for sql in [
        "UPDATE orders o SET notes = x.name FROM departments x WHERE o.id = 1",
        "UPDATE orders SET notes = (SELECT string_agg(ssn, ',') FROM employees) WHERE id = 1",
        "UPDATE orders SET notes = (SELECT e.salary::text FROM public.employees e WHERE e.id = 4) WHERE id = 1",
        "DELETE FROM orders o USING departments x WHERE x.id = o.id",
        "WITH x AS (SELECT name FROM departments) UPDATE orders SET notes = (SELECT name FROM x LIMIT 1) WHERE id = 1",
        "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) SELECT 100 + id, 1, 1, 1, name FROM departments",
        "INSERT INTO orders (id, customer_id, salesrep_id, amount, notes, status) \
         SELECT 100 + id, 1, 1, credit_limit, 'x', 'open' FROM customers",
        "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (1, 1, 1, 1, 'open') \
         ON CONFLICT (id) DO UPDATE SET notes = (SELECT ssn FROM employees WHERE id = 3)",
    ] {
        d.refused(sql, DENIED).await?;
    }

    // Allowed, but every read sees only what alice may SELECT: the hidden
    // notes and amounts of order 8 are never copied into her orders.
    for (sql, tag) in [
        (
            "UPDATE orders SET notes = (SELECT notes FROM orders x WHERE x.id = 8) WHERE id = 1",
            "UPDATE 1",
        ),
        (
            "UPDATE orders SET amount = coalesce((SELECT amount FROM orders x WHERE x.id = 12), 1) WHERE id = 2",
            "UPDATE 1",
        ),
        (
            "UPDATE orders o SET notes = x.notes FROM orders x WHERE x.id = 8 AND o.id = 1",
            "UPDATE 0",
        ),
        (
            "WITH x AS (SELECT notes FROM orders WHERE id = 9) \
             UPDATE orders SET notes = (SELECT notes FROM x) WHERE id = 3",
            "UPDATE 1",
        ),
        (
            "INSERT INTO orders (id, customer_id, salesrep_id, amount, notes, status) \
             SELECT 200 + id, customer_id, 1, amount, notes, 'open' FROM orders",
            "INSERT 0 3",
        ),
        (
            "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) \
             SELECT 300, 1, 1, amount, 'open' FROM orders WHERE id = 8",
            "INSERT 0 0",
        ),
        (
            "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (2, 1, 1, 1, 'open') \
             ON CONFLICT (id) DO UPDATE SET notes = (SELECT max(notes) FROM orders WHERE salesrep_id = 3)",
            "INSERT 0 1",
        ),
        (
            "UPDATE orders SET notes = (SELECT string_agg(name, ',' ORDER BY id) FROM employees) WHERE id = 1",
            "UPDATE 1",
        ),
    ] {
        d.allowed(sql, tag).await?;
        let copied: Vec<String> =
            d.su.query(
                "SELECT (id, customer_id, salesrep_id, amount, notes, status)::text FROM orders \
                 WHERE salesrep_id = 1 AND status <> 'archived'",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let text = copied.join("\n");
        for h in HIDDEN {
            assert!(
                !text.contains(h),
                "{sql}: {h} was copied into alice's rows:\n{text}"
            );
        }
        if sql.starts_with("INSERT INTO orders (id, customer_id, salesrep_id, amount, notes") {
            assert_eq!(copied.len(), 6, "{sql}: {text}");
        }
        d.reset().await?;
    }
    // And what she may read is what gets written.
    d.allowed(
        "UPDATE orders SET notes = (SELECT string_agg(name, ',' ORDER BY id) FROM employees) WHERE id = 1",
        "UPDATE 1",
    )
    .await?;
    let notes: String =
        d.su.query_one("SELECT notes FROM orders WHERE id = 1", &[])
            .await?
            .get(0);
    assert_eq!(notes, "Alice Adams,Bob Brown,Carol Chen,Dave Diaz");
    Ok(())
}

/// Cells a manager may not see (carol's salary: department 2) read as NULL
/// in every part of a write, as in a SELECT (PRODUCT.md §3.5): RETURNING,
/// WHERE and SET right-hand sides.
#[tokio::test]
async fn partly_visible_columns_read_as_null_in_writes() -> anyhow::Result<()> {
    let mut d = Demo::start("write_threats_cells").await?;
    d.session = Wire::login(d.pgward.port(), "dave", "dave", d.db.name()).await?;
    d.hidden = DAVE_HIDDEN;
    let reply = d
        .allowed(
            "UPDATE employees SET name = name RETURNING id, salary",
            "UPDATE 4",
        )
        .await?;
    assert_eq!(
        reply.sorted_rows(),
        ["1|85000.00", "2|72000.00", "3|NULL", "4|120000.00"]
    );
    for (sql, tag, rows) in [
        (
            "UPDATE employees SET name = name WHERE salary > 90000 RETURNING id",
            "UPDATE 1",
            &["4"][..],
        ),
        (
            "UPDATE employees SET name = name WHERE salary IS NULL RETURNING id, salary",
            "UPDATE 1",
            &["3|NULL"],
        ),
        (
            "UPDATE employees e SET name = e.name WHERE e.id = 3 RETURNING e.salary, (SELECT max(salary) FROM employees)",
            "UPDATE 1",
            &["NULL|120000.00"],
        ),
        (
            "UPDATE employees SET name = name WHERE id = (SELECT id FROM employees ORDER BY salary DESC NULLS LAST LIMIT 1) RETURNING id",
            "UPDATE 1",
            &["4"],
        ),
    ] {
        let reply = d.allowed(sql, tag).await?;
        assert_eq!(reply.rows, rows, "{sql}");
        d.unchanged(sql).await?;
    }
    // A SET right-hand side reads the cell as NULL: nothing of carol's
    // salary lands in a name.
    d.allowed(
        "UPDATE employees SET name = coalesce(salary::text, 'none') WHERE id = 3",
        "UPDATE 1",
    )
    .await?;
    let name: String =
        d.su.query_one("SELECT name FROM employees WHERE id = 3", &[])
            .await?
            .get(0);
    assert_eq!(name, "none");
    d.reset().await?;
    // ssn is hidden in every row: naming it, or the whole row, is refused.
    for sql in [
        "UPDATE employees SET name = name RETURNING ssn",
        "UPDATE employees SET name = name WHERE ssn LIKE '3%'",
        "UPDATE employees e SET name = name RETURNING e",
        "UPDATE employees e SET name = e::text WHERE id = 3",
    ] {
        d.refused(sql, REFUSED).await?;
    }
    Ok(())
}

/// Other statements that write are refused and write nothing: TRUNCATE,
/// MERGE (PRODUCT.md: "for now"), SELECT … INTO (creates a table), COPY from
/// files or programs, writes to the catalog.
#[tokio::test]
async fn other_writing_statements_are_refused() -> anyhow::Result<()> {
    let mut d = Demo::start("write_threats_other").await?;
    for sql in [
        "TRUNCATE orders",
        "TRUNCATE TABLE public.orders CASCADE",
        "MERGE INTO orders o USING (SELECT 1 AS id) s ON o.id = s.id WHEN MATCHED THEN UPDATE SET notes = 'x'",
        "MERGE INTO orders o USING orders s ON o.id = s.id WHEN MATCHED THEN DELETE",
        "SELECT * INTO stolen FROM orders",
        "SELECT id, notes INTO TEMP stolen FROM orders",
        "CREATE TABLE stolen AS SELECT * FROM orders",
        "COPY orders FROM '/etc/passwd'",
        "COPY orders FROM PROGRAM 'id'",
        "COPY orders (notes) FROM STDIN WITH (FORMAT text)",
        "UPDATE pg_catalog.pg_class SET relname = 'x' WHERE false",
        "DELETE FROM pg_catalog.pg_description",
    ] {
        d.refused(sql, REFUSED).await?;
    }
    d.refused(
        "INSERT INTO pgward.\"check\" VALUES (1)",
        &["42501", "0A000", "42P01"],
    )
    .await?;
    let n: i64 =
        d.su.query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'stolen'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(n, 0);
    Ok(())
}

/// `COPY t FROM STDIN` runs only when one INSERT entry has every target
/// column and no check applies (PRODUCT.md, Statements); else 0A000.
#[tokio::test]
async fn copy_from_needs_an_entry_without_checks() -> anyhow::Result<()> {
    let mut d = Demo::start("write_threats_copy").await?;
    let salary = "no INSERT entry of this session has column \"salary\"";
    let check = "a row check applies to new rows of orders";
    for (sql, data, code, reason) in [
        (
            "COPY employees FROM STDIN",
            "10\tzed\tZed\t1\t1.00\t999-99-9999\n",
            "0A000",
            salary,
        ),
        (
            "COPY orders FROM STDIN",
            "100\t1\t1\t1\t1\tn\topen\n",
            "0A000",
            check,
        ),
        (
            "COPY orders (id, customer_id, salesrep_id, amount, status) FROM STDIN",
            "100\t1\t1\t1\topen\n",
            "0A000",
            check,
        ),
        (
            "COPY customers (id, name) FROM STDIN",
            "9\tx\n",
            "42501",
            "",
        ),
        (
            "COPY employees (id, salary) FROM STDIN",
            "10\t1\n",
            "0A000",
            salary,
        ),
    ] {
        let reply = d.session.copy_in(sql, data).await?;
        assert_hidden(sql, &reply, HIDDEN);
        assert_eq!(reply.code(), Some(code), "{sql}: {reply:#?}");
        // The 0A000 hint names the actual reason.
        let hint = reply
            .error
            .as_ref()
            .and_then(|e| e.0.get(&b'H'))
            .map_or("", String::as_str);
        assert!(hint.starts_with(reason), "{sql}: hint {hint:?}");
        d.unchanged(sql).await?;
    }
    // employees is policed for SELECT only: INSERT has no check.
    let reply = d
        .session
        .copy_in(
            "COPY employees (id, login, name, department_id) FROM STDIN",
            "10\tzed\tZed\t1\n11\tyve\tYve\t2\n",
        )
        .await?;
    assert_eq!(reply.outcome(), "COPY 2", "{reply:#?}");
    let rows: Vec<String> =
        d.su.query(
            "SELECT e::text FROM employees e WHERE id >= 10 ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, ["(10,zed,Zed,1,,)", "(11,yve,Yve,2,,)"]);
    Ok(())
}

#[tokio::test]
async fn an_update_cannot_move_a_row_out_of_reach() -> anyhow::Result<()> {
    let mut d = Demo::start("write_threats_out_of_reach").await?;
    // Archiving her own order would hide it from her: the new row must stay
    // SELECT-visible, with or without RETURNING, as in PostgreSQL.
    for sql in [
        "UPDATE orders SET status = 'archived' WHERE id = 1",
        "update ORDERS set STATUS = 'archived' where ID = 1",
        "UPDATE public.orders AS o SET status = 'archived' WHERE o.id = 2",
        "UPDATE orders SET status = 'archived'",
        "UPDATE orders SET status = 'archived' WHERE id = 1 RETURNING id",
        "WITH u AS (UPDATE orders SET status = 'archived' WHERE id = 3 RETURNING id) SELECT count(*) FROM u",
        "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (1, 1, 1, 1, 'open') \
         ON CONFLICT (id) DO UPDATE SET status = 'archived'",
    ] {
        let reply = d.refused(sql, DENIED).await?;
        let message = reply.error.as_ref().map_or("", |e| e.message());
        assert_eq!(
            message, "new row violates row-level security policy for table \"orders\"",
            "{sql}"
        );
    }
    // A change that keeps the row hers and visible still runs.
    d.allowed(
        "UPDATE orders SET status = 'pending' WHERE id = 1",
        "UPDATE 1",
    )
    .await?;
    let status: String =
        d.su.query_one("SELECT status FROM orders WHERE id = 1", &[])
            .await?
            .get(0);
    assert_eq!(status, "pending");
    d.reset().await?;
    d.unchanged("reset").await?;
    Ok(())
}
