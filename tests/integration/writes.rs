//! Writes under policy (PRODUCT.md §3 semantics 6–8, "Statements", §5):
//! the demo's write lines through `psql`, and a table of write cases run
//! through pgward on a policy set of this file, each checked against the
//! rows the database holds afterwards. Where pgward's semantics coincide
//! with PostgreSQL's own row-level security, the same statement also runs
//! directly, as a PostgreSQL role of the same name under equivalent RLS
//! policies, and must give the same answer (the referee): that checks this
//! table's expectations as much as pgward.
//!
//! The helpers here (a raw-protocol session that keeps every message, the
//! hidden-value check) are shared with `write_threats` and `write_clients`.

use std::fmt::Write as _;

use anyhow::Context;
use tokio_postgres::Client;

use crate::harness::{PgwardOptions, SERVICE_ROLE, TestDb};
use crate::policy_reads::{demo_db, demo_policies, psql};
use crate::protocol::{ErrorFields, Msg, Raw, message, query};

/// Everything the server sent for one Query message, up to ReadyForQuery.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    /// Column names of the last RowDescription.
    pub columns: Vec<String>,
    /// Data rows, cells joined with `|`, NULL as `NULL`.
    pub rows: Vec<String>,
    /// CommandComplete tags (`UPDATE 3`).
    pub tags: Vec<String>,
    pub error: Option<ErrorFields>,
    /// Every NoticeResponse, all fields.
    pub notices: Vec<ErrorFields>,
    /// Every byte of every message, as text: what the client could see.
    pub all: String,
}

impl Reply {
    pub(crate) fn code(&self) -> Option<&str> {
        self.error.as_ref().map(ErrorFields::code)
    }

    pub(crate) fn tag(&self) -> Option<&str> {
        self.tags.last().map(String::as_str)
    }

    /// The SQLSTATE of the error, or else the last command tag.
    pub(crate) fn outcome(&self) -> &str {
        self.code().or(self.tag()).unwrap_or("(nothing)")
    }

    pub(crate) fn sorted_rows(&self) -> Vec<String> {
        let mut rows = self.rows.clone();
        rows.sort();
        rows
    }
}

/// A raw-protocol session (simple Query only) that keeps every message.
pub(crate) struct Wire(Raw);

impl Wire {
    pub(crate) async fn login(
        port: u16,
        user: &str,
        password: &str,
        database: &str,
    ) -> anyhow::Result<Wire> {
        let mut raw = Raw::connect(port).await?;
        raw.login(user, password, database)
            .await
            .with_context(|| format!("login as {user} on port {port}"))?;
        Ok(Wire(raw))
    }

    pub(crate) async fn run(&mut self, sql: &str) -> anyhow::Result<Reply> {
        self.exchange(sql, None).await
    }

    /// Runs a `COPY … FROM STDIN` and sends `data` when the server asks.
    pub(crate) async fn copy_in(&mut self, sql: &str, data: &str) -> anyhow::Result<Reply> {
        self.exchange(sql, Some(data)).await
    }

    /// Runs `sql` with the extended protocol in one cycle, as drivers do:
    /// Parse, Describe (statement), Bind (text results), Describe (portal),
    /// Execute, Sync.
    pub(crate) async fn run_extended(&mut self, sql: &str) -> anyhow::Result<Reply> {
        let mut parse = vec![0];
        parse.extend_from_slice(sql.as_bytes());
        parse.extend_from_slice(&[0, 0, 0]);
        let mut bytes = message(b'P', &parse);
        bytes.extend(message(b'D', b"S\0"));
        bytes.extend(message(b'B', &[0, 0, 0, 0, 0, 0, 0, 0]));
        bytes.extend(message(b'D', b"P\0"));
        bytes.extend(message(b'E', &[0, 0, 0, 0, 0]));
        bytes.extend(message(b'S', &[]));
        self.0.send(&bytes).await?;
        self.collect(sql, None).await
    }

    /// Sends every statement as Parse, Bind, Describe (portal), Execute,
    /// then one Sync: a pipeline in one implicit transaction.
    pub(crate) async fn pipeline(&mut self, statements: &[&str]) -> anyhow::Result<Reply> {
        let mut bytes = Vec::new();
        for sql in statements {
            let mut parse = vec![0];
            parse.extend_from_slice(sql.as_bytes());
            parse.extend_from_slice(&[0, 0, 0]);
            bytes.extend(message(b'P', &parse));
            bytes.extend(message(b'B', &[0, 0, 0, 0, 0, 0, 0, 0]));
            bytes.extend(message(b'D', b"P\0"));
            bytes.extend(message(b'E', &[0, 0, 0, 0, 0]));
        }
        bytes.extend(message(b'S', &[]));
        self.0.send(&bytes).await?;
        self.collect(&statements.join("; "), None).await
    }

    async fn exchange(&mut self, sql: &str, data: Option<&str>) -> anyhow::Result<Reply> {
        self.0.send(&query(sql)).await?;
        self.collect(sql, data).await
    }

    async fn collect(&mut self, sql: &str, data: Option<&str>) -> anyhow::Result<Reply> {
        let mut reply = Reply::default();
        loop {
            let msg = self
                .0
                .recv()
                .await?
                .with_context(|| format!("{sql}: closed before ReadyForQuery: {reply:?}"))?;
            reply.all.push_str(&String::from_utf8_lossy(&msg.body));
            reply.all.push('\n');
            match msg.tag {
                b'T' => reply.columns = row_description(&msg.body),
                b'D' => reply.rows.push(data_row(&msg.body)),
                b'C' => reply.tags.push(cstring(&msg.body)),
                b'E' => reply.error = msg.error(),
                b'N' => reply.notices.extend(
                    Msg {
                        tag: b'E',
                        body: msg.body.clone(),
                    }
                    .error(),
                ),
                b'G' => match data {
                    Some(data) => {
                        self.0.send(&message(b'd', data.as_bytes())).await?;
                        self.0.send(&message(b'c', &[])).await?;
                    }
                    None => self.0.send(&message(b'f', b"no data\0")).await?,
                },
                b'Z' => return Ok(reply),
                _ => {}
            }
        }
    }
}

fn cstring(body: &[u8]) -> String {
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end]).into_owned()
}

fn row_description(body: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = body.get(2..).unwrap_or_default();
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        names.push(String::from_utf8_lossy(&rest[..end]).into_owned());
        // name, NUL, then table oid, column, type oid, size, modifier, format
        rest = rest.get(end + 1 + 18..).unwrap_or_default();
    }
    names
}

fn data_row(body: &[u8]) -> String {
    let mut cells = Vec::new();
    let mut rest = body.get(2..).unwrap_or_default();
    while rest.len() >= 4 {
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        rest = &rest[4..];
        match usize::try_from(len) {
            Ok(n) => {
                let n = n.min(rest.len());
                cells.push(String::from_utf8_lossy(&rest[..n]).into_owned());
                rest = &rest[n..];
            }
            Err(_) => cells.push("NULL".into()),
        }
    }
    cells.join("|")
}

/// Fails when any of `hidden` occurs anywhere in what the client received:
/// rows, column names, command tags, every error and notice field.
pub(crate) fn assert_hidden(what: &str, reply: &Reply, hidden: &[&str]) {
    let found: Vec<&&str> = hidden.iter().filter(|h| reply.all.contains(**h)).collect();
    assert!(
        found.is_empty(),
        "{what}: hidden values {found:?} reached the client: {reply:#?}"
    );
}

/// The contents of `tables` as one sorted text (each row as `table(…)`)
/// and its md5, read on a superuser connection.
pub(crate) async fn fingerprint(su: &Client, tables: &[&str]) -> anyhow::Result<(String, String)> {
    let union = tables
        .iter()
        .map(|t| format!("SELECT '{t}' || x::text AS r FROM {t} x"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let row = su
        .query_one(
            &format!(
                "SELECT md5(s), s FROM (SELECT coalesce(string_agg(r, E'\\n' ORDER BY r), '') \
                 AS s FROM ({union}) u) q"
            ),
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// psql with every error field shown; stdout and stderr.
async fn psql_verbose(conn: &str, sql: &str) -> anyhow::Result<(String, String)> {
    let out = tokio::process::Command::new("psql")
        .arg(conn)
        .args(["-X", "-v", "ON_ERROR_STOP=0", "-v", "VERBOSITY=verbose"])
        .args(["-c", sql])
        .output()
        .await?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

const ORDERS: &[&str] = &["orders"];

/// PRODUCT.md §5, alice's write lines, through psql; the database is read
/// afterwards on a superuser connection.
#[tokio::test]
async fn demo_write_lines_through_psql() -> anyhow::Result<()> {
    let db = demo_db("writes_demo_lines").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    let su = db.superuser().await?;
    let conn = pgward.conn_string("alice", "alice", db.name());
    let (base, _) = fingerprint(&su, ORDERS).await?;

    // UPDATE 3: ids 1–3; id 4 is hers but archived, so she cannot SELECT it.
    let (out, err) = psql_verbose(&conn, "UPDATE orders SET amount = amount + 1").await?;
    assert_eq!(out.trim(), "UPDATE 3", "{err}");
    let amounts: Vec<(i32, String)> = su
        .query("SELECT id, amount::text FROM orders ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: Vec<(i32, String)> = [
        "1201.00", "451.00", "3101.00", "980.00", "2250.00", "640.00", "1875.50", "5200.00",
        "760.00", "3325.00", "410.25", "9800.00",
    ]
    .iter()
    .enumerate()
    .map(|(i, a)| (i32::try_from(i + 1).unwrap_or(0), a.to_string()))
    .collect();
    assert_eq!(amounts, expected);
    // Nothing else changed: undoing the three increments gives the start.
    su.batch_execute("BEGIN; UPDATE orders SET amount = amount - 1 WHERE id IN (1, 2, 3)")
        .await?;
    assert_eq!(fingerprint(&su, ORDERS).await?.0, base);
    su.batch_execute("ROLLBACK").await?;
    let (after_update, _) = fingerprint(&su, ORDERS).await?;

    // Another rep's order: 42501, no row 100.
    let insert = "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) \
                  VALUES (100, 1, 3, 10, 'open')";
    let (out, err) = psql_verbose(&conn, insert).await?;
    assert!(err.contains("ERROR:  42501"), "{out}\n{err}");
    assert!(!out.contains("INSERT"), "{out}");
    let n: i64 = su
        .query_one("SELECT count(*) FROM orders WHERE id = 100", &[])
        .await?
        .get(0);
    assert_eq!(n, 0);
    assert_eq!(fingerprint(&su, ORDERS).await?.0, after_update);

    // Her own: INSERT 0 1, the row exactly as written (margin and notes
    // not inserted, so NULL).
    let (out, err) = psql_verbose(&conn, &insert.replace("(100, 1, 3,", "(100, 1, 1,")).await?;
    assert_eq!(out.trim(), "INSERT 0 1", "{err}");
    let row = su
        .query_one("SELECT o::text FROM orders o WHERE id = 100", &[])
        .await?;
    assert_eq!(row.get::<_, String>(0), "(100,1,1,10.00,,,open)");
    let n: i64 = su
        .query_one("SELECT count(*) FROM orders", &[])
        .await?
        .get(0);
    assert_eq!(n, 13);

    // And she sees it as one of her orders.
    let (out, err) = psql(&conn, "SELECT count(*) FROM orders").await?;
    assert_eq!(out.trim(), "4", "{err}");

    // dave (manager) holds only SELECT on orders: every write is 42501.
    let (after_alice, _) = fingerprint(&su, ORDERS).await?;
    let dave = pgward.conn_string("dave", "dave", db.name());
    for sql in [
        "UPDATE orders SET amount = amount + 1",
        "DELETE FROM orders WHERE id = 5",
        "INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (101, 1, 2, 10, 'open')",
        "SELECT id FROM orders FOR UPDATE",
    ] {
        let (out, err) = psql_verbose(&dave, sql).await?;
        assert!(err.contains("ERROR:  42501"), "{sql}: {out}\n{err}");
    }
    assert_eq!(fingerprint(&su, ORDERS).await?.0, after_alice);
    Ok(())
}

/// The schema of the write table; loaded into pgward's database and into the
/// referee's (which adds RLS).
const SCHEMA: &str = "
CREATE TABLE items (
    id int PRIMARY KEY DEFAULT 1000,
    owner text NOT NULL DEFAULT 'nobody',
    qty int NOT NULL DEFAULT 1 CHECK (qty >= 0),
    price numeric(10,2),
    status text NOT NULL DEFAULT 'open',
    note text,
    secret text DEFAULT 'none'
);
CREATE TABLE moves (item_id int, delta int);
CREATE TABLE audit (id int, what text);
INSERT INTO moves VALUES (1, 2), (3, 4), (5, 6);
";

/// Puts the rows back before each case.
const RESET: &str = "
TRUNCATE items, audit;
INSERT INTO items VALUES
    (1, 'w3wanda', 5, 10.00, 'open', 'note-wanda-1', 'sec-wanda-1'),
    (2, 'w3wanda', 7, 20.00, 'open', 'note-wanda-2', 'sec-wanda-2'),
    (3, 'w3wanda', 9, 30.00, 'hidden', 'note-hidden-3', 'sec-hidden-3'),
    (4, 'w3wanda', 3, 40.00, 'frozen', 'note-frozen-4', 'sec-frozen-4'),
    (5, 'olga', 11, 50.00, 'open', 'note-olga-5', 'sec-olga-5'),
    (6, 'olga', 13, 60.00, 'closed', 'note-olga-6', 'sec-olga-6'),
    (7, 'w3both', 2, 70.00, 'open', 'note-both-7', 'sec-both-7');
INSERT INTO audit VALUES (1, 'base');
";

const TABLES: &[&str] = &["items", "moves", "audit"];

/// pgward's policies for the write table. w3wanda (writer) owns rows 1–4:
/// 3 has a status her restrictive SELECT policy hides, 4 one her
/// restrictive UPDATE policy excludes; 5 and 6 belong to someone else. Her
/// FOR ALL policy checks new rows with more than it admits (`qty <= 100`),
/// and restrictive INSERT and UPDATE checks refuse `locked`. w3carl (clerk)
/// may update `status` only, under a policy without WITH CHECK. w3rita
/// (reader) may only read; w3uma holds an UPDATE grant but no UPDATE policy
/// applies to her. Nobody sees `secret`.
const POLICIES: &str = "
CREATE ROLE w3writer;
CREATE ROLE w3clerk;
CREATE ROLE w3reader;
CREATE ROLE w3locker;
CREATE USER w3wanda PASSWORD 'w3wanda' IN ROLE w3writer;
CREATE USER w3carl PASSWORD 'w3carl' IN ROLE w3clerk;
CREATE USER w3rita PASSWORD 'w3rita' IN ROLE w3reader;
CREATE USER w3uma PASSWORD 'w3uma' IN ROLE w3locker;
CREATE USER w3both PASSWORD 'w3both' IN ROLE w3writer, w3clerk;

GRANT SELECT (id, owner, qty, price, status, note),
      INSERT (id, owner, qty, price, status, note),
      UPDATE (qty, price, status, note), DELETE ON items TO w3writer;
GRANT SELECT, INSERT, UPDATE ON audit TO w3writer;
GRANT SELECT ON moves TO w3writer;
CREATE POLICY w_own ON items FOR ALL TO w3writer
  USING (owner = @{login_id}) WITH CHECK (owner = @{login_id} AND qty <= 100);
CREATE POLICY w_visible ON items AS RESTRICTIVE FOR SELECT TO w3writer
  USING (status <> 'hidden');
CREATE POLICY w_unfrozen ON items AS RESTRICTIVE FOR UPDATE TO w3writer
  USING (status <> 'frozen') WITH CHECK (status <> 'locked');
CREATE POLICY w_unlocked ON items AS RESTRICTIVE FOR INSERT TO w3writer
  WITH CHECK (status <> 'locked');

GRANT SELECT (id, owner, qty, price, status, note), UPDATE (status) ON items TO w3clerk;
GRANT SELECT ON moves TO w3clerk;
CREATE POLICY c_read ON items FOR SELECT TO w3clerk USING (true);
CREATE POLICY c_status ON items FOR UPDATE TO w3clerk USING (status <> 'closed');

GRANT SELECT (id, owner, qty, price, status, note) ON items TO w3reader;
GRANT SELECT ON audit TO w3reader;
CREATE POLICY r_read ON items FOR SELECT TO w3reader USING (status <> 'closed');

GRANT SELECT (id, owner, qty, price, status, note), UPDATE (note) ON items TO w3locker;
CREATE POLICY l_read ON items FOR SELECT TO w3locker USING (true);
";

/// The same rules as PostgreSQL RLS, for the referee database.
const RLS: &str = "
ALTER TABLE items ENABLE ROW LEVEL SECURITY;
GRANT SELECT (id, owner, qty, price, status, note),
      INSERT (id, owner, qty, price, status, note),
      UPDATE (qty, price, status, note), DELETE ON items TO w3writer;
GRANT SELECT, INSERT, UPDATE ON audit TO w3writer;
GRANT SELECT ON moves TO w3writer;
CREATE POLICY w_own ON items FOR ALL TO w3writer
  USING (owner = current_user) WITH CHECK (owner = current_user AND qty <= 100);
CREATE POLICY w_visible ON items AS RESTRICTIVE FOR SELECT TO w3writer
  USING (status <> 'hidden');
CREATE POLICY w_unfrozen ON items AS RESTRICTIVE FOR UPDATE TO w3writer
  USING (status <> 'frozen') WITH CHECK (status <> 'locked');
CREATE POLICY w_unlocked ON items AS RESTRICTIVE FOR INSERT TO w3writer
  WITH CHECK (status <> 'locked');
GRANT SELECT (id, owner, qty, price, status, note), UPDATE (status) ON items TO w3clerk;
GRANT SELECT ON moves TO w3clerk;
CREATE POLICY c_read ON items FOR SELECT TO w3clerk USING (true);
CREATE POLICY c_status ON items FOR UPDATE TO w3clerk USING (status <> 'closed');
GRANT SELECT (id, owner, qty, price, status, note) ON items TO w3reader;
GRANT SELECT ON audit TO w3reader;
CREATE POLICY r_read ON items FOR SELECT TO w3reader USING (status <> 'closed');
GRANT SELECT (id, owner, qty, price, status, note), UPDATE (note) ON items TO w3locker;
CREATE POLICY l_read ON items FOR SELECT TO w3locker USING (true);
";

/// Cluster-wide PostgreSQL roles for the referee (created once per
/// cluster; only this file's table test uses them).
const REFEREE_ROLES: &str = "
CREATE ROLE w3writer NOLOGIN;
CREATE ROLE w3clerk NOLOGIN;
CREATE ROLE w3reader NOLOGIN;
CREATE ROLE w3locker NOLOGIN;
CREATE ROLE w3wanda LOGIN PASSWORD 'w3wanda' IN ROLE w3writer;
CREATE ROLE w3carl LOGIN PASSWORD 'w3carl' IN ROLE w3clerk;
CREATE ROLE w3rita LOGIN PASSWORD 'w3rita' IN ROLE w3reader;
CREATE ROLE w3uma LOGIN PASSWORD 'w3uma' IN ROLE w3locker;
CREATE ROLE w3both LOGIN PASSWORD 'w3both' IN ROLE w3writer, w3clerk;
";

const USERS: &[&str] = &["w3wanda", "w3carl", "w3rita", "w3uma", "w3both"];

/// What a user may never receive, whatever the statement.
fn hidden_for(user: &str) -> Vec<&'static str> {
    let mut hidden = vec![
        "sec-wanda-1",
        "sec-wanda-2",
        "sec-hidden-3",
        "sec-frozen-4",
        "sec-olga-5",
        "sec-olga-6",
        "sec-both-7",
    ];
    match user {
        "w3wanda" => hidden.extend(["note-olga-5", "note-olga-6", "note-hidden-3", "note-both-7"]),
        "w3rita" => hidden.push("note-olga-6"),
        "w3both" => hidden.push("note-hidden-3"),
        _ => {}
    }
    hidden
}

/// Whether PostgreSQL's RLS must answer the same.
#[derive(Clone, Copy, PartialEq)]
enum Referee {
    Same,
    /// pgward differs on purpose (PRODUCT.md §3): the reason.
    Differs(&'static str),
}

struct Case {
    user: &'static str,
    sql: &'static str,
    /// Data for COPY FROM STDIN.
    copy: Option<&'static str>,
    /// A command tag (`UPDATE 2`), or a SQLSTATE, optionally with a part of
    /// the message after `:` (`42501:new row violates`).
    want: &'static str,
    /// RETURNING or SELECT rows (any order), cells joined with `|`.
    rows: &'static [&'static str],
    /// SQL that turns the reset rows into the rows expected afterwards;
    /// empty when nothing may change.
    effect: &'static str,
    referee: Referee,
}

const W: &str = "w3wanda";
const C: &str = "w3carl";
const R: &str = "w3rita";
const U: &str = "w3uma";
const B: &str = "w3both";

const CHECK: &str = "42501:new row violates row-level security policy";
const DENIED: &str = "42501:permission denied";

fn case(
    user: &'static str,
    sql: &'static str,
    want: &'static str,
    rows: &'static [&'static str],
    effect: &'static str,
) -> Case {
    Case {
        user,
        sql,
        copy: None,
        want,
        rows,
        effect,
        referee: Referee::Same,
    }
}

fn differs(mut c: Case, why: &'static str) -> Case {
    c.referee = Referee::Differs(why);
    c
}

fn copy(
    user: &'static str,
    sql: &'static str,
    data: &'static str,
    want: &'static str,
    effect: &'static str,
) -> Case {
    Case {
        copy: Some(data),
        ..case(user, sql, want, &[], effect)
    }
}

const RETURNING_STAR: &str = "RETURNING * shows the visible columns (PRODUCT.md §3.6); \
                              PostgreSQL needs SELECT on every column";
const LOCK_IN_SUBQUERY: &str = "pgward refuses FOR UPDATE/SHARE below the top level";
const ENTRY_COLUMNS: &str = "an UPDATE entry's rows go with its columns (§3.8); PostgreSQL \
                             ORs the roles' policies whatever the columns";
const CONSTRAINT_FIRST: &str = "pgward checks new rows in RETURNING, after PostgreSQL's NOT NULL, \
                                unique and CHECK constraints: a row failing both gets the \
                                constraint's error (PostgreSQL RLS: 42501); nothing is written \
                                and the error carries no row";
const CONFLICT_SKIPS_CHECK: &str = "ON CONFLICT DO NOTHING skips a conflicting row before \
                                    RETURNING runs, so pgward's INSERT check never sees it: \
                                    INSERT 0 0 (PostgreSQL RLS: 42501); nothing is written";
const CURSOR_LOCK: &str = "pgward refuses DECLARE … FOR UPDATE";
const CURRENT_OF: &str = "sqlparser cannot parse WHERE CURRENT OF: refused";
const UPDATE_NO_READ: &str = "pgward updates only rows the user can SELECT (§3.8); PostgreSQL \
                              applies SELECT policies only when the statement reads columns";

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    vec![
        // INSERT … VALUES
        case(W, "INSERT INTO items (id, owner, qty, price, note) VALUES (20, 'w3wanda', 4, 1.50, 'n20')", "INSERT 0 1", &[],
             "INSERT INTO items (id, owner, qty, price, note) VALUES (20, 'w3wanda', 4, 1.50, 'n20')"),
        case(W, "INSERT INTO items (id, owner, secret) VALUES (20, 'w3wanda', 'x')", DENIED, &[], ""),
        case(W, "INSERT INTO items (id, owner) VALUES (20, 'olga')", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner, qty) VALUES (20, 'w3wanda', 101)", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner, status) VALUES (20, 'w3wanda', 'locked')", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner) VALUES (20, 'w3wanda') RETURNING secret", DENIED, &[], ""),
        case(W, "INSERT INTO items (id, owner) VALUES (20, 'w3wanda') RETURNING id, owner, qty, status", "INSERT 0 1",
             &["20|w3wanda|1|open"], "INSERT INTO items (id, owner) VALUES (20, 'w3wanda')"),
        differs(case(W, "INSERT INTO items (id, owner) VALUES (20, 'w3wanda') RETURNING *", "INSERT 0 1",
             &["20|w3wanda|1|NULL|open|NULL"], "INSERT INTO items (id, owner) VALUES (20, 'w3wanda')"), RETURNING_STAR),
        case(W, "INSERT INTO items (id, owner, status) VALUES (20, 'w3wanda', 'hidden') RETURNING id", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner, status) VALUES (20, 'w3wanda', 'hidden')", "INSERT 0 1", &[],
             "INSERT INTO items (id, owner, status) VALUES (20, 'w3wanda', 'hidden')"),
        case(W, "insert into ITEMS (ID, Owner) values (21, 'w3wanda')", "INSERT 0 1", &[],
             "INSERT INTO items (id, owner) VALUES (21, 'w3wanda')"),
        case(W, "INSERT INTO public.\"items\" (\"id\", \"owner\", \"qty\") VALUES (20, 'w3wanda', DEFAULT)", "INSERT 0 1", &[],
             "INSERT INTO items (id, owner) VALUES (20, 'w3wanda')"),
        case(W, "INSERT INTO items (id, owner) VALUES (5, 'w3wanda')", "23505", &[], ""),
        // no column list: the first columns of the table are the targets
        case(W, "INSERT INTO items VALUES (20, 'w3wanda')", "INSERT 0 1", &[], "INSERT INTO items (id, owner) VALUES (20, 'w3wanda')"),
        case(W, "INSERT INTO items SELECT 20, 'w3wanda', 2", "INSERT 0 1", &[], "INSERT INTO items (id, owner, qty) VALUES (20, 'w3wanda', 2)"),
        case(W, "INSERT INTO items VALUES (20, 'w3wanda', 1, 1.00, 'open', 'n', 's')", DENIED, &[], ""),
        case(W, "INSERT INTO items (id, owner) VALUES (1, 'w3wanda') ON CONFLICT (id) DO UPDATE SET note = excluded.secret", DENIED, &[], ""),
        case(W, "INSERT INTO items AS i (id, owner) VALUES (22, 'w3wanda') RETURNING i.id, i.note", "INSERT 0 1",
             &["22|NULL"], "INSERT INTO items (id, owner) VALUES (22, 'w3wanda')"),
        // multi-row VALUES: a failing row anywhere writes nothing
        case(W, "INSERT INTO items (id, owner, qty) VALUES (20, 'w3wanda', 1), (21, 'w3wanda', 2), (22, 'w3wanda', 3)",
             "INSERT 0 3", &[],
             "INSERT INTO items (id, owner, qty) VALUES (20, 'w3wanda', 1), (21, 'w3wanda', 2), (22, 'w3wanda', 3)"),
        case(W, "INSERT INTO items (id, owner, qty) VALUES (20, 'w3wanda', 1), (21, 'olga', 1), (22, 'w3wanda', 1)", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner, qty) VALUES (20, 'w3wanda', 1), (21, 'w3wanda', 101), (22, 'w3wanda', 1)", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner, status) VALUES (20, 'w3wanda', 'open'), (21, 'w3wanda', 'locked')", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner, qty) VALUES (20, 'w3wanda', 1), (21, 'w3wanda', 2) RETURNING id, qty", "INSERT 0 2",
             &["20|1", "21|2"], "INSERT INTO items (id, owner, qty) VALUES (20, 'w3wanda', 1), (21, 'w3wanda', 2)"),
        case(W, "INSERT INTO items (id, owner, note) VALUES (20, 'w3wanda', 'a'), (21, 'w3wanda', 'b') RETURNING note, secret", DENIED, &[], ""),
        case(W, "INSERT INTO items (id, owner) VALUES (20, 'w3wanda'), (5, 'w3wanda')", "23505", &[], ""),
        // INSERT … SELECT: the SELECT is a read
        case(W, "INSERT INTO items (id, owner, qty) SELECT 100 + id, owner, qty FROM items", "INSERT 0 3", &[],
             "INSERT INTO items (id, owner, qty) SELECT 100 + id, owner, qty FROM items WHERE id IN (1, 2, 4)"),
        case(W, "INSERT INTO items (id, owner, note) SELECT 200 + id, 'w3wanda', secret FROM items", DENIED, &[], ""),
        case(W, "INSERT INTO items (id, owner, qty) SELECT 100 + g, 'w3wanda', g * 30 FROM generate_series(1, 5) g", CHECK, &[], ""),
        case(W, "INSERT INTO audit SELECT id, note FROM items", "INSERT 0 3", &[],
             "INSERT INTO audit SELECT id, note FROM items WHERE id IN (1, 2, 4)"),
        case(W, "INSERT INTO audit (id, what) SELECT item_id, 'move' FROM moves", "INSERT 0 3", &[],
             "INSERT INTO audit (id, what) SELECT item_id, 'move' FROM moves"),
        case(W, "INSERT INTO items (id, owner) SELECT id + 50, 'olga' FROM items WHERE id = 1", CHECK, &[], ""),
        case(W, "INSERT INTO audit SELECT i.id, i.note FROM items i JOIN moves m ON m.item_id = i.id", "INSERT 0 1", &[],
             "INSERT INTO audit VALUES (1, 'note-wanda-1')"),
        case(R, "INSERT INTO items (id, owner) VALUES (20, 'w3rita')", DENIED, &[], ""),
        case(C, "INSERT INTO audit VALUES (1, 'x')", DENIED, &[], ""),
        // DEFAULT VALUES
        case(W, "INSERT INTO audit DEFAULT VALUES", "INSERT 0 1", &[], "INSERT INTO audit DEFAULT VALUES"),
        case(W, "INSERT INTO items DEFAULT VALUES", CHECK, &[], ""),
        case(W, "INSERT INTO items DEFAULT VALUES RETURNING secret", DENIED, &[], ""),
        case(R, "INSERT INTO audit DEFAULT VALUES", DENIED, &[], ""),
        case(W, "INSERT INTO audit DEFAULT VALUES RETURNING id, what", "INSERT 0 1", &["NULL|NULL"], "INSERT INTO audit DEFAULT VALUES"),
        // UPDATE
        case(W, "UPDATE items SET qty = qty + 1", "UPDATE 2", &[], "UPDATE items SET qty = qty + 1 WHERE id IN (1, 2)"),
        differs(case(W, "UPDATE items SET note = 'x'", "UPDATE 2", &[], "UPDATE items SET note = 'x' WHERE id IN (1, 2)"), UPDATE_NO_READ),
        case(W, "UPDATE items SET note = 'x' RETURNING id", "UPDATE 2", &["1", "2"], "UPDATE items SET note = 'x' WHERE id IN (1, 2)"),
        case(W, "UPDATE items SET owner = 'olga' WHERE id = 1", DENIED, &[], ""),
        case(W, "UPDATE items SET secret = 'x' WHERE id = 1", DENIED, &[], ""),
        case(W, "UPDATE items SET qty = 0 WHERE id = 5", "UPDATE 0", &[], ""),
        case(W, "UPDATE items SET qty = 0 WHERE id = 3", "UPDATE 0", &[], ""),
        case(W, "UPDATE items SET qty = 0 WHERE id = 4", "UPDATE 0", &[], ""),
        case(W, "UPDATE items SET qty = 101 WHERE id = 1", CHECK, &[], ""),
        case(W, "UPDATE items SET status = 'locked' WHERE id = 2", CHECK, &[], ""),
        // The new row leaves what she may SELECT: RETURNING it is an error.
        case(W, "UPDATE items SET status = 'hidden' WHERE id = 1 RETURNING id", CHECK, &[], ""),
        // Without RETURNING too: she cannot move a row out of her reach.
        case(W, "UPDATE items SET status = 'hidden' WHERE id = 1", CHECK, &[], ""),
        case(W, "UPDATE items SET status = 'hidden' WHERE id <= 2", CHECK, &[], ""),
        case(W, "UPDATE items SET qty = qty * 15", CHECK, &[], ""),
        case(W, "UPDATE items SET qty = qty WHERE id = 1 RETURNING secret", DENIED, &[], ""),
        case(W, "UPDATE items SET qty = qty + 1 WHERE id <= 2 RETURNING id, qty", "UPDATE 2", &["1|6", "2|8"],
             "UPDATE items SET qty = qty + 1 WHERE id IN (1, 2)"),
        differs(case(W, "UPDATE items SET qty = 0 WHERE id = 1 RETURNING *", "UPDATE 1", &["1|w3wanda|0|10.00|open|note-wanda-1"],
             "UPDATE items SET qty = 0 WHERE id = 1"), RETURNING_STAR),
        case(W, "UPDATE items SET qty = 0 WHERE secret = 'x'", DENIED, &[], ""),
        case(W, "UPDATE items SET note = secret WHERE id = 1", DENIED, &[], ""),
        case(W, "UPDATE items SET note = (SELECT count(*)::text FROM items) WHERE id = 1", "UPDATE 1", &[],
             "UPDATE items SET note = '3' WHERE id = 1"),
        case(W, "UPDATE items SET qty = -1 WHERE id = 1", "23514", &[], ""),
        // A row that fails the policy check and a constraint. pgward's check runs in RETURNING, after PostgreSQL's constraints:
        // the constraint's error comes first (PostgreSQL RLS: 42501).
        differs(case(W, "UPDATE items SET status = NULL WHERE id = 1", "23502:null value in column \"status\"", &[], ""),
                CONSTRAINT_FIRST),
        differs(case(W, "INSERT INTO items (id, owner) VALUES (5, 'olga')", "23505:duplicate key value", &[], ""),
                CONSTRAINT_FIRST),
        differs(case(W, "INSERT INTO items (id, owner, qty) VALUES (20, 'olga', -1)", "23514:violates check constraint", &[], ""),
                CONSTRAINT_FIRST),
        differs(case(W, "INSERT INTO items (id, owner, status) VALUES (20, 'w3wanda', NULL)",
                     "23502:null value in column \"status\"", &[], ""), CONSTRAINT_FIRST),
        // Row 5 is not hers to read: qty and note read as NULL, and qty is NOT NULL.
        differs(case(W, "UPDATE items SET (qty, note) = (SELECT qty, note FROM items WHERE id = 5) WHERE id = 1",
                     "23502:null value in column \"qty\"", &[], ""), CONSTRAINT_FIRST),
        case(W, "UPDATE items SET (qty, note) = (SELECT qty, note FROM items WHERE id = 2) WHERE id = 1", "UPDATE 1", &[],
             "UPDATE items SET qty = 7, note = 'note-wanda-2' WHERE id = 1"),
        case(W, "UPDATE items SET (qty, note) = (SELECT qty, secret FROM items WHERE id = 2) WHERE id = 1", DENIED, &[], ""),
        case(W, "UPDATE items SET (qty, secret) = (1, 'x') WHERE id = 1", DENIED, &[], ""),
        case(W, "UPDATE items SET qty = DEFAULT WHERE id = 2", "UPDATE 1", &[], "UPDATE items SET qty = 1 WHERE id = 2"),
        case(W, "UPDATE items SET secret = DEFAULT WHERE id = 2", DENIED, &[], ""),
        case(W, "UPDATE items SET qty = qty WHERE id = 1 RETURNING (SELECT count(*) FROM items)", "UPDATE 1", &["3"], ""),
        case(W, "UPDATE items SET qty = qty WHERE id = 1 RETURNING qty AS secret", "UPDATE 1", &["5"], ""),
        case(W, "UPDATE items SET qty = 0 WHERE id = (SELECT max(id) FROM items)", "UPDATE 0", &[], ""),
        case(W, "DELETE FROM items WHERE id = (SELECT max(id) FROM items)", "DELETE 1", &[], "DELETE FROM items WHERE id = 4"),
        case(W, "INSERT INTO audit SELECT id, note FROM items ORDER BY secret LIMIT 1", DENIED, &[], ""),
        case(W, "UPDATE items i SET qty = 0 WHERE EXISTS (SELECT 1 FROM moves m WHERE m.item_id = i.id AND i.secret = 'x')", DENIED, &[], ""),
        // several statements in one Query: one implicit transaction
        case(W, "UPDATE items SET qty = 0 WHERE id = 1; UPDATE items SET qty = 500 WHERE id = 2", CHECK, &[], ""),
        case(W, "UPDATE items SET qty = 0 WHERE id = 1; DELETE FROM items WHERE id = 2", "DELETE 1", &[],
             "UPDATE items SET qty = 0 WHERE id = 1; DELETE FROM items WHERE id = 2"),
        case(W, "BEGIN; UPDATE items SET qty = 0 WHERE id = 1; INSERT INTO audit VALUES (2, 'x'); ROLLBACK", "ROLLBACK", &[], ""),
        case(W, "INSERT INTO audit VALUES (2, 'x'); INSERT INTO items (id, owner) VALUES (20, 'olga')", CHECK, &[], ""),
        differs(case(W, "BEGIN; DECLARE c CURSOR FOR SELECT id FROM items WHERE id = 2 FOR UPDATE; FETCH c; \
                 UPDATE items SET qty = 0 WHERE CURRENT OF c; COMMIT", "42501", &[], ""), CURSOR_LOCK),
        differs(case(W, "BEGIN; DECLARE c CURSOR FOR SELECT id FROM items WHERE id = 2 FOR UPDATE; FETCH c; \
                 DELETE FROM items WHERE CURRENT OF c; COMMIT", "42501", &[], ""), CURSOR_LOCK),
        differs(case(W, "BEGIN; DECLARE c CURSOR FOR SELECT id FROM items WHERE id = 2; FETCH c; \
                 UPDATE items SET qty = 0 WHERE CURRENT OF c; COMMIT", "42601", &[], ""), CURRENT_OF),
        differs(case(W, "BEGIN; DECLARE c CURSOR FOR SELECT id FROM items ORDER BY id; FETCH c; FETCH c; \
                 DELETE FROM items WHERE CURRENT OF c; COMMIT", "42601", &[], ""), CURRENT_OF),
        case(W, "UPDATE \"items\" AS \"I\" SET \"qty\" = \"I\".qty + 1 WHERE \"I\".id = 2", "UPDATE 1", &[],
             "UPDATE items SET qty = 8 WHERE id = 2"),
        case(C, "UPDATE items SET status = 'done' WHERE id = 5", "UPDATE 1", &[], "UPDATE items SET status = 'done' WHERE id = 5"),
        case(C, "UPDATE items SET note = 'x' WHERE id = 5", DENIED, &[], ""),
        case(C, "UPDATE items SET status = 'done', qty = 0 WHERE id = 5", DENIED, &[], ""),
        case(C, "UPDATE items SET status = 'closed' WHERE id = 1", CHECK, &[], ""),
        case(C, "UPDATE items SET status = 'open' WHERE id = 6", "UPDATE 0", &[], ""),
        case(C, "UPDATE items SET status = 'done'", "UPDATE 6", &[], "UPDATE items SET status = 'done' WHERE id <> 6"),
        case(C, "UPDATE items SET status = 'done' WHERE id = 1 RETURNING secret", DENIED, &[], ""),
        // Granted, but no UPDATE policy applies to her: no row (§3.3).
        case(U, "UPDATE items SET note = 'x'", "UPDATE 0", &[], ""),
        case(U, "UPDATE items SET note = 'x' WHERE id = 1 RETURNING id, note", "UPDATE 0", &[], ""),
        case(U, "UPDATE items SET status = 'x'", DENIED, &[], ""),
        case(U, "DELETE FROM items", DENIED, &[], ""),
        case(R, "UPDATE items SET note = 'x'", DENIED, &[], ""),
        // UPDATE … FROM
        case(W, "UPDATE items i SET qty = i.qty + m.delta FROM moves m WHERE m.item_id = i.id", "UPDATE 1", &[],
             "UPDATE items SET qty = qty + 2 WHERE id = 1"),
        case(W, "UPDATE items i SET qty = m.delta FROM moves m WHERE m.item_id = i.id AND i.secret = 'x'", DENIED, &[], ""),
        case(W, "UPDATE items i SET note = o.note FROM items o WHERE o.id = 5 AND i.id = 1", "UPDATE 0", &[], ""),
        case(W, "UPDATE items i SET note = o.note FROM items o WHERE o.id = 2 AND i.id = 1", "UPDATE 1", &[],
             "UPDATE items SET note = 'note-wanda-2' WHERE id = 1"),
        case(W, "UPDATE items i SET qty = 500 FROM moves m WHERE m.item_id = i.id", CHECK, &[], ""),
        case(W, "UPDATE items i SET qty = i.qty FROM moves m WHERE m.item_id = i.id RETURNING i.secret", DENIED, &[], ""),
        case(W, "UPDATE items i SET qty = i.qty FROM moves m WHERE m.item_id = i.id RETURNING i.id, m.delta", "UPDATE 1", &["1|2"], ""),
        case(W, "UPDATE items i SET note = o.secret FROM items o WHERE o.id = i.id", DENIED, &[], ""),
        case(C, "UPDATE items i SET status = 'moved' FROM moves m WHERE m.item_id = i.id", "UPDATE 3", &[],
             "UPDATE items SET status = 'moved' WHERE id IN (1, 3, 5)"),
        // DELETE
        case(W, "DELETE FROM items WHERE id = 2", "DELETE 1", &[], "DELETE FROM items WHERE id = 2"),
        case(W, "DELETE FROM items WHERE id = 5", "DELETE 0", &[], ""),
        case(W, "DELETE FROM items WHERE id = 3", "DELETE 0", &[], ""),
        case(W, "DELETE FROM items WHERE id = 4", "DELETE 1", &[], "DELETE FROM items WHERE id = 4"),
        differs(case(W, "DELETE FROM items", "DELETE 3", &[], "DELETE FROM items WHERE id IN (1, 2, 4)"), UPDATE_NO_READ),
        case(W, "DELETE FROM items WHERE secret = 'x'", DENIED, &[], ""),
        case(W, "DELETE FROM items WHERE id = 1 RETURNING secret", DENIED, &[], ""),
        differs(case(W, "DELETE FROM items WHERE id = 1 RETURNING *", "DELETE 1", &["1|w3wanda|5|10.00|open|note-wanda-1"],
             "DELETE FROM items WHERE id = 1"), RETURNING_STAR),
        case(W, "DELETE FROM items WHERE id = 1 RETURNING id, note", "DELETE 1", &["1|note-wanda-1"], "DELETE FROM items WHERE id = 1"),
        case(W, "DELETE FROM items WHERE qty > 4", "DELETE 2", &[], "DELETE FROM items WHERE id IN (1, 2)"),
        differs(case(W, "DELETE FROM ONLY public.items WHERE id = 1", "0A000", &[], ""), "DELETE FROM ONLY is refused"),
        case(C, "DELETE FROM items WHERE id = 1", DENIED, &[], ""),
        case(R, "DELETE FROM items", DENIED, &[], ""),
        // DELETE … USING
        case(W, "DELETE FROM items i USING moves m WHERE m.item_id = i.id", "DELETE 1", &[], "DELETE FROM items WHERE id = 1"),
        case(W, "DELETE FROM items i USING moves m WHERE m.item_id = i.id AND i.secret IS NOT NULL", DENIED, &[], ""),
        case(W, "DELETE FROM items i USING items o WHERE o.id = 5 AND i.id = 1", "DELETE 0", &[], ""),
        case(W, "DELETE FROM items i USING moves m WHERE m.item_id = i.id RETURNING i.id, m.delta", "DELETE 1", &["1|2"],
             "DELETE FROM items WHERE id = 1"),
        case(W, "DELETE FROM items i USING items o WHERE o.secret = i.secret", DENIED, &[], ""),
        // ON CONFLICT
        case(W, "INSERT INTO items (id, owner) VALUES (20, 'w3wanda') ON CONFLICT DO NOTHING", "INSERT 0 1", &[],
             "INSERT INTO items (id, owner) VALUES (20, 'w3wanda')"),
        case(W, "INSERT INTO items (id, owner) VALUES (5, 'w3wanda') ON CONFLICT (id) DO NOTHING", "INSERT 0 0", &[], ""),
        case(W, "INSERT INTO items (id, owner) VALUES (20, 'olga') ON CONFLICT DO NOTHING", CHECK, &[], ""),
        // A proposed row that fails the check and conflicts: DO NOTHING skips
        // it before pgward's check; DO UPDATE checks it (excluded) first.
        differs(case(W, "INSERT INTO items (id, owner) VALUES (5, 'olga') ON CONFLICT DO NOTHING", "INSERT 0 0", &[], ""),
                CONFLICT_SKIPS_CHECK),
        case(W, "INSERT INTO items (id, owner) VALUES (1, 'olga') ON CONFLICT (id) DO UPDATE SET qty = 2", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner, qty) VALUES (1, 'w3wanda', 101) ON CONFLICT (id) DO UPDATE SET qty = 2", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner, qty) VALUES (1, 'w3wanda', 2) ON CONFLICT (id) DO UPDATE SET qty = excluded.qty",
             "INSERT 0 1", &[], "UPDATE items SET qty = 2 WHERE id = 1"),
        case(W, "INSERT INTO items (id, owner, qty) VALUES (5, 'w3wanda', 2) ON CONFLICT (id) DO UPDATE SET qty = excluded.qty", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner, qty) VALUES (3, 'w3wanda', 2) ON CONFLICT (id) DO UPDATE SET qty = excluded.qty", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner, qty) VALUES (4, 'w3wanda', 2) ON CONFLICT (id) DO UPDATE SET qty = excluded.qty", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner, qty) VALUES (1, 'w3wanda', 2) ON CONFLICT (id) DO UPDATE SET qty = 101", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner) VALUES (1, 'w3wanda') ON CONFLICT (id) DO UPDATE SET status = 'locked'", CHECK, &[], ""),
        case(W, "INSERT INTO items (id, owner) VALUES (1, 'w3wanda') ON CONFLICT (id) DO UPDATE SET qty = items.qty RETURNING items.secret", DENIED, &[], ""),
        case(W, "INSERT INTO items (id, owner) VALUES (1, 'w3wanda') ON CONFLICT (id) DO UPDATE SET note = items.secret", DENIED, &[], ""),
        case(W, "INSERT INTO items (id, owner) VALUES (1, 'w3wanda') ON CONFLICT (id) DO UPDATE SET qty = 0 WHERE items.secret = 'x'", DENIED, &[], ""),
        case(W, "INSERT INTO items (id, owner) VALUES (1, 'w3wanda') ON CONFLICT (id) DO UPDATE SET owner = 'olga'", DENIED, &[], ""),
        case(W, "INSERT INTO items (id, owner, qty) VALUES (1, 'w3wanda', 2), (20, 'w3wanda', 3) \
                 ON CONFLICT (id) DO UPDATE SET qty = items.qty + excluded.qty RETURNING id, qty", "INSERT 0 2",
             &["1|7", "20|3"], "UPDATE items SET qty = 7 WHERE id = 1; INSERT INTO items (id, owner, qty) VALUES (20, 'w3wanda', 3)"),
        case(W, "INSERT INTO items AS t (id, owner) VALUES (1, 'w3wanda') ON CONFLICT (id) DO UPDATE SET note = t::text", "42501", &[], ""),
        case(W, "INSERT INTO items AS t (id, owner) VALUES (2, 'w3wanda') ON CONFLICT (id) DO UPDATE SET note = 'seen' WHERE t.qty > 6",
             "INSERT 0 1", &[], "UPDATE items SET note = 'seen' WHERE id = 2"),
        case(W, "INSERT INTO items AS t (id, owner) VALUES (1, 'w3wanda') ON CONFLICT (id) DO UPDATE SET note = 'seen' WHERE t.qty > 6",
             "INSERT 0 0", &[], ""),
        case(C, "INSERT INTO items (id, owner) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET status = 'x'", DENIED, &[], ""),
        // data-modifying CTEs
        case(W, "WITH u AS (UPDATE items SET qty = qty + 1 WHERE id = 1 RETURNING id, qty) SELECT id, qty FROM u", "SELECT 1",
             &["1|6"], "UPDATE items SET qty = 6 WHERE id = 1"),
        case(W, "WITH d AS (DELETE FROM items WHERE id = 5 RETURNING id) SELECT count(*) FROM d", "SELECT 1", &["0"], ""),
        case(W, "WITH u AS (UPDATE items SET secret = 'x' RETURNING id) SELECT count(*) FROM u", DENIED, &[], ""),
        case(W, "WITH i AS (INSERT INTO items (id, owner) VALUES (20, 'olga') RETURNING id) SELECT count(*) FROM i", CHECK, &[], ""),
        case(W, "WITH u AS (UPDATE items SET qty = 500 WHERE id = 1 RETURNING id) SELECT count(*) FROM u", CHECK, &[], ""),
        case(W, "WITH u AS (UPDATE items SET qty = qty WHERE id <= 2 RETURNING id) INSERT INTO audit (id, what) SELECT id, 'touched' FROM u",
             "INSERT 0 2", &[], "INSERT INTO audit VALUES (1, 'touched'), (2, 'touched')"),
        case(W, "WITH d AS (DELETE FROM items WHERE id = 1 RETURNING secret) SELECT * FROM d", DENIED, &[], ""),
        case(W, "WITH d AS (DELETE FROM items RETURNING id) SELECT id FROM d", "SELECT 3", &["1", "2", "4"],
             "DELETE FROM items WHERE id IN (1, 2, 4)"),
        case(W, "WITH a AS (SELECT 1 AS one), u AS (UPDATE items SET qty = qty + (SELECT one FROM a) WHERE id = 2 RETURNING qty) SELECT qty FROM u",
             "SELECT 1", &["8"], "UPDATE items SET qty = 8 WHERE id = 2"),
        case(W, "WITH i AS (INSERT INTO audit VALUES (7, 'cte') RETURNING *) SELECT * FROM i", "SELECT 1", &["7|cte"],
             "INSERT INTO audit VALUES (7, 'cte')"),
        case(W, "WITH u AS (UPDATE items i SET note = 'x' WHERE id = 1 RETURNING i) SELECT * FROM u", "42501", &[], ""),
        case(W, "WITH u AS (UPDATE audit a SET what = a::text RETURNING a) SELECT * FROM u", "SELECT 1", &["(1,\"(1,base)\")"],
             "UPDATE audit SET what = '(1,base)'"),
        case(W, "WITH m AS (SELECT item_id FROM moves), d AS (DELETE FROM items WHERE id IN (SELECT item_id FROM m) RETURNING id) \
                 INSERT INTO audit SELECT id, 'gone' FROM d", "INSERT 0 1", &[],
             "DELETE FROM items WHERE id = 1; INSERT INTO audit VALUES (1, 'gone')"),
        case(R, "WITH u AS (UPDATE items SET note = 'x' RETURNING id) SELECT count(*) FROM u", DENIED, &[], ""),
        // The CTE runs to completion, its rows checked, whether or not the
        // query reads them.
        case(W, "WITH u AS (UPDATE items SET qty = 500 WHERE id = 1 RETURNING id) SELECT 1 LIMIT 0", CHECK, &[], ""),
        case(W, "WITH u AS (UPDATE items SET qty = 500 WHERE id = 1) SELECT 1", CHECK, &[], ""),
        case(W, "WITH i AS (INSERT INTO items (id, owner) VALUES (20, 'olga')) SELECT count(*) FROM items", CHECK, &[], ""),
        case(W, "WITH u AS (UPDATE items SET qty = 0 WHERE id = 1) SELECT 1", "SELECT 1", &["1"], "UPDATE items SET qty = 0 WHERE id = 1"),
        case(W, "WITH d AS (DELETE FROM items WHERE id = 5) SELECT 1", "SELECT 1", &["1"], ""),
        case(U, "WITH u AS (UPDATE items SET note = 'x' RETURNING id) SELECT count(*) FROM u", "SELECT 1", &["0"], ""),
        // a user in two roles: the UPDATE entry must hold every SET column,
        // and its rows are the rows that entry admits (PRODUCT.md §3.8)
        differs(case(B, "UPDATE items SET note = 'x'", "UPDATE 1", &[], "UPDATE items SET note = 'x' WHERE id = 7"), ENTRY_COLUMNS),
        differs(case(B, "UPDATE items SET note = 'x' WHERE qty > 0", "UPDATE 1", &[], "UPDATE items SET note = 'x' WHERE id = 7"), ENTRY_COLUMNS),
        differs(case(B, "UPDATE items SET status = 'done'", "UPDATE 4", &[], "UPDATE items SET status = 'done' WHERE id IN (1, 2, 5, 7)"),
                UPDATE_NO_READ),
        case(B, "UPDATE items SET status = 'done' WHERE qty > 0", "UPDATE 4", &[], "UPDATE items SET status = 'done' WHERE id IN (1, 2, 5, 7)"),
        differs(case(B, "UPDATE items SET status = 'done', note = 'x'", "UPDATE 1", &[],
             "UPDATE items SET status = 'done', note = 'x' WHERE id = 7"), ENTRY_COLUMNS),
        differs(case(B, "UPDATE items SET note = 'x' WHERE id = 5", "UPDATE 0", &[], ""), ENTRY_COLUMNS),
        case(B, "UPDATE items SET status = 'closed' WHERE id = 1", CHECK, &[], ""),
        case(B, "UPDATE items SET status = 'closed' WHERE id = 7", "UPDATE 1", &[], "UPDATE items SET status = 'closed' WHERE id = 7"),
        case(B, "UPDATE items SET status = 'closed' WHERE id = 5", CHECK, &[], ""),
        case(B, "SELECT id FROM items FOR UPDATE", "SELECT 4", &["1", "2", "5", "7"], ""),
        case(B, "SELECT id, note FROM items WHERE id IN (3, 5, 6)", "SELECT 2", &["5|note-olga-5", "6|note-olga-6"], ""),
        // tables without the grant, reads inside VALUES
        case(W, "INSERT INTO moves VALUES (1, 1)", DENIED, &[], ""),
        case(W, "DELETE FROM audit", DENIED, &[], ""),
        case(W, "UPDATE moves SET delta = 0", DENIED, &[], ""),
        case(W, "INSERT INTO audit VALUES ((SELECT count(*) FROM items), 'n')", "INSERT 0 1", &[], "INSERT INTO audit VALUES (3, 'n')"),
        case(W, "INSERT INTO audit VALUES ((SELECT max(note) FROM items WHERE owner = 'olga'), 'n')", "42804", &[], ""),
        case(W, "INSERT INTO audit (what) VALUES ((SELECT max(note) FROM items WHERE owner = 'olga'))", "INSERT 0 1", &[],
             "INSERT INTO audit (what) VALUES (NULL)"),
        // SELECT … FOR UPDATE / SHARE
        case(W, "SELECT id FROM items FOR UPDATE", "SELECT 2", &["1", "2"], ""),
        case(W, "SELECT id FROM items FOR SHARE", "SELECT 2", &["1", "2"], ""),
        differs(case(W, "SELECT id FROM items FOR NO KEY UPDATE", "42601", &[], ""), "sqlparser cannot parse FOR NO KEY UPDATE: refused"),
        case(W, "SELECT i.id FROM items i JOIN moves m ON m.item_id = i.id FOR UPDATE OF i", "SELECT 1", &["1"], ""),
        case(W, "SELECT secret FROM items FOR UPDATE", DENIED, &[], ""),
        case(W, "SELECT item_id FROM moves FOR UPDATE", DENIED, &[], ""),
        case(W, "SELECT id FROM items FOR UPDATE SKIP LOCKED", "SELECT 2", &["1", "2"], ""),
        case(W, "SELECT id FROM items FOR SHARE NOWAIT", "SELECT 2", &["1", "2"], ""),
        case(W, "SELECT i.id FROM items i JOIN moves m ON m.item_id = i.id FOR UPDATE", DENIED, &[], ""),
        case(W, "SELECT i.id FROM items i JOIN moves m ON m.item_id = i.id FOR SHARE OF m", DENIED, &[], ""),
        differs(case(W, "SELECT id FROM (SELECT id FROM items FOR UPDATE) s", "42501", &[], ""), LOCK_IN_SUBQUERY),
        differs(case(W, "WITH l AS (SELECT id FROM items FOR UPDATE) SELECT id FROM l", "42501", &[], ""), LOCK_IN_SUBQUERY),
        case(R, "SELECT id FROM (SELECT id FROM items FOR UPDATE) s", "42501", &[], ""),
        case(R, "WITH l AS (SELECT id FROM items FOR SHARE) SELECT id FROM l", "42501", &[], ""),
        case(R, "SELECT id FROM items WHERE id IN (SELECT id FROM items FOR UPDATE)", "42501", &[], ""),
        case(R, "SELECT id FROM items FOR UPDATE", DENIED, &[], ""),
        case(R, "SELECT id FROM items FOR SHARE", DENIED, &[], ""),
        case(R, "SELECT id FROM items", "SELECT 6", &["1", "2", "3", "4", "5", "7"], ""),
        case(U, "SELECT id FROM items FOR UPDATE", "SELECT 0", &[], ""),
        case(C, "SELECT id FROM items FOR UPDATE", "SELECT 6", &["1", "2", "3", "4", "5", "7"], ""),
        // COPY … FROM STDIN
        copy(W, "COPY audit FROM STDIN", "2\ttwo\n3\tthree\n", "COPY 2", "INSERT INTO audit VALUES (2, 'two'), (3, 'three')"),
        copy(W, "COPY audit (id) FROM STDIN", "5\n", "COPY 1", "INSERT INTO audit (id) VALUES (5)"),
        copy(W, "COPY audit FROM STDIN WITH (FORMAT csv)", "4,\"a,b\"\n", "COPY 1", "INSERT INTO audit VALUES (4, 'a,b')"),
        differs(copy(W, "COPY items FROM STDIN", "20\tw3wanda\t1\t1.00\topen\tn\ts\n", "0A000", ""),
                "no INSERT entry has every column: 0A000 (PRODUCT.md, Statements); PostgreSQL checks the grant first"),
        copy(W, "COPY items (id, owner) FROM STDIN", "20\tw3wanda\n", "0A000", ""),
        copy(R, "COPY audit FROM STDIN", "9\tnine\n", DENIED, ""),
        copy(C, "COPY items (status) FROM STDIN", "open\n", DENIED, ""),
    ]
}

/// Creates the write table's database (with RLS when `rls`).
async fn items_db(label: &str, rls: bool) -> anyhow::Result<(TestDb, Client)> {
    let db = TestDb::new(label).await?;
    let su = db.superuser().await?;
    su.batch_execute(SCHEMA).await?;
    su.batch_execute(RESET).await?;
    su.batch_execute(&format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON items, moves, audit TO {SERVICE_ROLE}"
    ))
    .await?;
    if rls {
        su.batch_execute(RLS).await?;
    }
    Ok((db, su))
}

async fn ensure_referee_roles(su: &Client) -> anyhow::Result<()> {
    let n: i64 = su
        .query_one(
            "SELECT count(*) FROM pg_roles WHERE rolname = ANY($1)",
            &[&USERS.to_vec()],
        )
        .await?
        .get(0);
    if n == 0 {
        su.batch_execute(REFEREE_ROLES).await?;
    }
    Ok(())
}

/// Checks one reply against a case; returns the problems found.
fn judge(c: &Case, who: &str, reply: &Reply, problems: &mut String) {
    let (want_code, want_message) = match c.want.split_once(':') {
        Some((code, message)) => (Some(code), Some(message)),
        None if c.want.len() == 5
            && c.want
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) =>
        {
            (Some(c.want), None)
        }
        None => (None, None),
    };
    match want_code {
        Some(code) => {
            if reply.code() != Some(code) {
                let _ = writeln!(
                    problems,
                    "  {who}: wanted {}, got {}",
                    c.want,
                    describe(reply)
                );
            } else if let Some(m) = want_message
                && !reply
                    .error
                    .as_ref()
                    .is_some_and(|e| e.message().contains(m))
            {
                let _ = writeln!(
                    problems,
                    "  {who}: wanted a message with {m:?}, got {}",
                    describe(reply)
                );
            }
        }
        None => {
            if reply.code().is_some() || reply.tag() != Some(c.want) {
                let _ = writeln!(
                    problems,
                    "  {who}: wanted {}, got {}",
                    c.want,
                    describe(reply)
                );
            }
            let mut want: Vec<String> = c.rows.iter().map(|r| r.to_string()).collect();
            want.sort();
            if reply.sorted_rows() != want {
                let _ = writeln!(
                    problems,
                    "  {who}: wanted rows {want:?}, got {:?}",
                    reply.sorted_rows()
                );
            }
        }
    }
}

fn describe(reply: &Reply) -> String {
    match &reply.error {
        Some(e) => format!("{} {:?}", e.code(), e.message()),
        None => format!("{:?} rows {:?}", reply.tags, reply.rows),
    }
}

async fn run_case(wire: &mut Wire, c: &Case) -> anyhow::Result<Reply> {
    match c.copy {
        Some(data) => wire.copy_in(c.sql, data).await,
        None => wire.run(c.sql).await,
    }
}

/// The rows expected after `c`: reset, apply the effect in a transaction
/// that is rolled back, read.
async fn expected_state(su: &Client, c: &Case) -> anyhow::Result<(String, String)> {
    su.batch_execute(RESET).await?;
    if c.effect.is_empty() {
        return fingerprint(su, TABLES).await;
    }
    su.batch_execute("BEGIN").await?;
    su.batch_execute(c.effect)
        .await
        .with_context(|| format!("effect of {}: {}", c.sql, c.effect))?;
    let state = fingerprint(su, TABLES).await;
    su.batch_execute("ROLLBACK").await?;
    state
}

#[tokio::test]
async fn write_cases_against_the_database_and_native_rls() -> anyhow::Result<()> {
    let cases = cases();
    assert!(cases.len() >= 80, "{} cases", cases.len());
    let started = std::time::Instant::now();

    let (db, su) = items_db("writes_cases", false).await?;
    ensure_referee_roles(&db.cluster().superuser_client("postgres").await?).await?;
    let (referee_db, referee_su) = items_db("writes_cases_rls", true).await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(POLICIES))
        .await?;

    let mut via_pgward = Vec::new();
    let mut direct = Vec::new();
    for user in USERS {
        via_pgward.push(Wire::login(pgward.port(), user, user, db.name()).await?);
        direct.push(Wire::login(db.cluster().port(), user, user, referee_db.name()).await?);
    }
    let index = |user: &str| USERS.iter().position(|u| *u == user).unwrap_or(0);

    let mut failures = String::new();
    let (base, _) = fingerprint(&su, TABLES).await?;
    for (n, c) in cases.iter().enumerate() {
        let mut problems = String::new();
        let (want_md5, want_rows) = expected_state(&su, c).await?;
        if !c.effect.is_empty() && want_md5 == base {
            let _ = writeln!(problems, "  the effect changes nothing: {}", c.effect);
        }

        // The referee first: it checks the case itself.
        if c.referee == Referee::Same {
            referee_su.batch_execute(RESET).await?;
            let reply = run_case(&mut direct[index(c.user)], c).await?;
            judge(c, "PostgreSQL RLS", &reply, &mut problems);
            let (md5, rows) = fingerprint(&referee_su, TABLES).await?;
            if md5 != want_md5 {
                let _ = writeln!(
                    problems,
                    "  PostgreSQL RLS left\n{rows}\n  instead of\n{want_rows}"
                );
            }
        }

        let reply = run_case(&mut via_pgward[index(c.user)], c).await?;
        judge(c, "pgward", &reply, &mut problems);
        assert_hidden(c.sql, &reply, &hidden_for(c.user));
        let (md5, rows) = fingerprint(&su, TABLES).await?;
        if md5 != want_md5 {
            let _ = writeln!(problems, "  pgward left\n{rows}\n  instead of\n{want_rows}");
        }

        // Again with the extended protocol, where pgward reshapes results.
        if c.copy.is_none() && !c.sql.contains(';') {
            su.batch_execute(RESET).await?;
            let reply = via_pgward[index(c.user)].run_extended(c.sql).await?;
            judge(c, "pgward (extended)", &reply, &mut problems);
            assert_hidden(c.sql, &reply, &hidden_for(c.user));
            let (md5, rows) = fingerprint(&su, TABLES).await?;
            if md5 != want_md5 {
                let _ = writeln!(
                    problems,
                    "  pgward (extended) left\n{rows}\n  instead of\n{want_rows}"
                );
            }
        }
        if !problems.is_empty() {
            let _ = writeln!(failures, "case {n} ({}): {}\n{problems}", c.user, c.sql);
        }
    }
    eprintln!("{} write cases in {:?}", cases.len(), started.elapsed());
    assert!(
        failures.is_empty(),
        "{failures}\npgward's warnings:\n{}",
        warnings(&pgward.log())
    );
    Ok(())
}

/// The WARN and ERROR lines of a log (at most the last 8,000 bytes), for
/// failure messages.
pub(crate) fn warnings(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    let text = lines.join("\n");
    tail_of(&text, 8000).to_string()
}

fn tail_of(text: &str, n: usize) -> &str {
    let start = text.len().saturating_sub(n);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[start..]
}

/// The end of a log, for failure messages.
pub(crate) fn tail(log: &str) -> &str {
    tail_of(log, 4000)
}

/// The SQLSTATE of a failed call, for assertions.
fn code_of<T: std::fmt::Debug>(r: Result<T, tokio_postgres::Error>) -> String {
    match r {
        Ok(v) => format!("no error: {v:?}"),
        Err(e) => e
            .code()
            .map_or_else(|| e.to_string(), |c| c.code().to_string()),
    }
}

/// Prepared writes (extended protocol with parameters, and SQL PREPARE):
/// the check runs on every execution's values, the same text with other
/// values is not decided once for all.
#[tokio::test]
async fn prepared_writes_are_checked_per_execution() -> anyhow::Result<()> {
    let (db, su) = items_db("writes_prepared", false).await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(POLICIES))
        .await?;
    let c = pgward.connect_as(W, W).await?;

    let update = c.prepare("UPDATE items SET qty = $1 WHERE id = $2").await?;
    assert_eq!(c.execute(&update, &[&50i32, &1i32]).await?, 1);
    assert_eq!(
        code_of(c.execute(&update, &[&101i32, &1i32]).await),
        "42501"
    );
    assert_eq!(c.execute(&update, &[&50i32, &5i32]).await?, 0);
    assert_eq!(c.execute(&update, &[&50i32, &3i32]).await?, 0);
    assert_eq!(c.execute(&update, &[&60i32, &2i32]).await?, 1);
    // The same text again, unprepared, with a failing value.
    assert_eq!(
        code_of(
            c.execute("UPDATE items SET qty = $1 WHERE id = $2", &[&101i32, &2i32])
                .await
        ),
        "42501"
    );

    let insert = c
        .prepare("INSERT INTO items (id, owner, qty) VALUES ($1, $2, $3)")
        .await?;
    assert_eq!(c.execute(&insert, &[&20i32, &W, &1i32]).await?, 1);
    assert_eq!(
        code_of(c.execute(&insert, &[&21i32, &"olga", &1i32]).await),
        "42501"
    );
    assert_eq!(
        code_of(c.execute(&insert, &[&22i32, &W, &101i32]).await),
        "42501"
    );
    assert_eq!(
        code_of(c.execute(&insert, &[&5i32, &W, &1i32]).await),
        "23505"
    );
    let rows = c
        .query(
            "INSERT INTO items (id, owner, qty) VALUES ($1, $2, $3) RETURNING id, qty",
            &[&23i32, &W, &4i32],
        )
        .await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].get::<_, i32>(0), rows[0].get::<_, i32>(1)),
        (23, 4)
    );

    let upsert = c
        .prepare(
            "INSERT INTO items (id, owner, qty) VALUES ($1, 'w3wanda', $2) \
             ON CONFLICT (id) DO UPDATE SET qty = excluded.qty",
        )
        .await?;
    assert_eq!(c.execute(&upsert, &[&2i32, &7i32]).await?, 1);
    assert_eq!(code_of(c.execute(&upsert, &[&5i32, &7i32]).await), "42501");
    assert_eq!(code_of(c.execute(&upsert, &[&4i32, &7i32]).await), "42501");
    assert_eq!(c.execute(&upsert, &[&24i32, &7i32]).await?, 1);

    let delete = c.prepare("DELETE FROM items WHERE id = $1").await?;
    assert_eq!(c.execute(&delete, &[&5i32]).await?, 0);
    assert_eq!(c.execute(&delete, &[&3i32]).await?, 0);
    assert_eq!(c.execute(&delete, &[&24i32]).await?, 1);

    // SQL-level PREPARE: a write pgward checks is refused (prepare it with
    // a Parse message instead); one without a check (DELETE) is secured and
    // runs.
    let refused = code_of(
        c.batch_execute("PREPARE p(int, int) AS UPDATE items SET qty = $1 WHERE id = $2")
            .await,
    );
    assert!(refused == "0A000" || refused == "42501", "{refused}");
    c.batch_execute("PREPARE d(int) AS DELETE FROM items WHERE id = $1")
        .await?;
    let deleted = |m: Vec<tokio_postgres::SimpleQueryMessage>| -> Vec<u64> {
        m.iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
                _ => None,
            })
            .collect()
    };
    assert_eq!(deleted(c.simple_query("EXECUTE d(5)").await?), [0]);
    assert_eq!(deleted(c.simple_query("EXECUTE d(3)").await?), [0]);
    assert_eq!(deleted(c.simple_query("EXECUTE d(20)").await?), [1]);

    // In a transaction: a failing check aborts it, ROLLBACK undoes the rest.
    c.batch_execute("BEGIN").await?;
    assert_eq!(c.execute(&update, &[&0i32, &1i32]).await?, 1);
    assert_eq!(
        code_of(c.execute(&update, &[&101i32, &2i32]).await),
        "42501"
    );
    assert_eq!(code_of(c.execute(&update, &[&0i32, &2i32]).await), "25P02");
    c.batch_execute("ROLLBACK").await?;

    let (got, rows) = fingerprint(&su, TABLES).await?;
    su.batch_execute(&format!(
        "BEGIN; {RESET}
         UPDATE items SET qty = 50 WHERE id = 1;
         UPDATE items SET qty = 7 WHERE id = 2;
         INSERT INTO items (id, owner, qty) VALUES (23, 'w3wanda', 4);"
    ))
    .await?;
    let (want, want_rows) = fingerprint(&su, TABLES).await?;
    su.batch_execute("ROLLBACK").await?;
    assert_eq!(got, want, "left\n{rows}\ninstead of\n{want_rows}");
    Ok(())
}

/// Writes pipelined in the extended protocol (one Sync): results keep their
/// place, a failing check or a refusal in the middle skips the rest and
/// rolls back the implicit transaction, so nothing is written.
#[tokio::test]
async fn pipelined_writes_fail_as_one_transaction() -> anyhow::Result<()> {
    let (db, su) = items_db("writes_pipeline", false).await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(POLICIES))
        .await?;
    let mut w = Wire::login(pgward.port(), W, W, db.name()).await?;
    let (base, _) = fingerprint(&su, TABLES).await?;
    let hidden = hidden_for(W);

    for (statements, tags, code) in [
        (
            &[
                "UPDATE items SET qty = 1 WHERE id = 1",
                "UPDATE items SET qty = 500 WHERE id = 2",
                "UPDATE items SET qty = 2 WHERE id = 2",
            ][..],
            &["UPDATE 1"][..],
            "42501",
        ),
        (
            &[
                "INSERT INTO items (id, owner) VALUES (20, 'w3wanda') RETURNING id",
                "UPDATE items SET qty = 0 WHERE id = 2 RETURNING secret",
                "DELETE FROM items WHERE id = 2",
            ],
            &["INSERT 0 1"],
            "42501",
        ),
        (
            &[
                "DELETE FROM items WHERE id = 1",
                "INSERT INTO items (id, owner) VALUES (21, 'w3wanda'), (22, 'olga')",
            ],
            &["DELETE 1"],
            "42501",
        ),
        (
            &[
                "UPDATE items SET qty = 0 WHERE id = 1",
                "UPDATE items SET qty = -1 WHERE id = 2",
            ],
            &["UPDATE 1"],
            "23514",
        ),
    ] {
        su.batch_execute(RESET).await?;
        let reply = w.pipeline(statements).await?;
        assert_hidden(&statements.join("; "), &reply, &hidden);
        assert_eq!(reply.tags, tags, "{statements:?}: {reply:#?}");
        assert_eq!(reply.code(), Some(code), "{statements:?}: {reply:#?}");
        let (md5, rows) = fingerprint(&su, TABLES).await?;
        assert_eq!(md5, base, "{statements:?} wrote:\n{rows}");
    }

    // All allowed: every result in its place, RETURNING rows included.
    su.batch_execute(RESET).await?;
    let statements = [
        "INSERT INTO items (id, owner) VALUES (20, 'w3wanda') RETURNING id, owner",
        "UPDATE items SET qty = qty + 1 WHERE id <= 2 RETURNING id, qty",
        "DELETE FROM items WHERE id = 5",
        "INSERT INTO items (id, owner, qty) VALUES (1, 'w3wanda', 9) ON CONFLICT (id) DO UPDATE SET qty = excluded.qty",
        "SELECT id FROM items WHERE id > 10 FOR UPDATE",
    ];
    let reply = w.pipeline(&statements).await?;
    assert_hidden("pipeline", &reply, &hidden);
    assert!(reply.error.is_none(), "{reply:#?}");
    assert_eq!(
        reply.tags,
        [
            "INSERT 0 1",
            "UPDATE 2",
            "DELETE 0",
            "INSERT 0 1",
            "SELECT 1"
        ]
    );
    assert_eq!(reply.rows, ["20|w3wanda", "1|6", "2|8", "20"]);
    let (md5, rows) = fingerprint(&su, TABLES).await?;
    su.batch_execute(&format!(
        "BEGIN; {RESET}
         INSERT INTO items (id, owner) VALUES (20, 'w3wanda');
         UPDATE items SET qty = 9 WHERE id = 1;
         UPDATE items SET qty = 8 WHERE id = 2;"
    ))
    .await?;
    let (want, want_rows) = fingerprint(&su, TABLES).await?;
    su.batch_execute("ROLLBACK").await?;
    assert_eq!(md5, want, "left\n{rows}\ninstead of\n{want_rows}");

    // In an explicit transaction: the failure aborts it, COMMIT rolls back.
    su.batch_execute(RESET).await?;
    w.run("BEGIN").await?;
    let reply = w
        .pipeline(&[
            "UPDATE items SET qty = 0 WHERE id = 1",
            "UPDATE items SET qty = 101 WHERE id = 2",
        ])
        .await?;
    assert_eq!(reply.code(), Some("42501"), "{reply:#?}");
    let reply = w.run("COMMIT").await?;
    assert_eq!(reply.tag(), Some("ROLLBACK"), "{reply:#?}");
    assert_eq!(fingerprint(&su, TABLES).await?.0, base);
    Ok(())
}
