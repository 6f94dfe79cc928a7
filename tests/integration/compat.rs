//! Client compatibility: the set-up and introspection queries that real
//! clients send (psql, pgJDBC, SQLAlchemy, asyncpg, psycopg, Npgsql,
//! Metabase, Grafana, Superset, DBeaver; `../shared/compat/*.json`), run
//! through pgward as alice on the demo database with the demo policies, and
//! directly as the service role.
//!
//! Every query must succeed through pgward and answer what the direct
//! connection answers (same statements, column names, row counts and rows as
//! text; in order where the statement has a top-level ORDER BY, else as
//! multisets), except for the deliberate differences in [`DIFFERENCES`],
//! each with its reason and a check of its own.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::harness::{Pgward, PgwardOptions, SERVICE_ROLE, TestDb};
use crate::policy_reads::{demo_dir, demo_policies};

/// The login every query runs as through pgward.
const LOGIN: &str = "alice";

/// The files hold 131 queries (two of them empty); fewer means the files
/// were not read in full.
const MIN_QUERIES: usize = 129;

/// A query as the compat files record it.
#[derive(Debug, Deserialize)]
struct ClientQuery {
    client: String,
    purpose: String,
    sql: String,
    /// Whether it succeeded when it was captured.
    #[serde(default)]
    ok: Option<bool>,
}

/// What a cell of an excepted column must read through pgward.
#[derive(Debug, Clone, Copy)]
enum Cell {
    /// NULL (a neutralised function).
    Null,
    /// The login (an identity function); directly it is the service role.
    Login,
    /// A value (not NULL) that differs per connection.
    Present,
}

/// How an excepted query may differ from the direct answer.
#[derive(Debug, Clone, Copy)]
enum Allowed {
    /// Rows equal except in these columns (by name), whose cells read as
    /// given through pgward.
    Columns(&'static [(&'static str, Cell)]),
    /// A plan: same statements and columns, some rows through pgward;
    /// the rows may differ.
    Plan,
}

/// A deliberate difference from a direct connection.
struct Difference {
    client: &'static str,
    purpose: &'static str,
    allowed: Allowed,
    reason: &'static str,
}

/// The queries whose answer through pgward differs from the direct one on
/// purpose, keyed by (client, purpose), each checked for what it must
/// still show. Every entry must name a query of the files.
const DIFFERENCES: &[Difference] = &[
    Difference {
        client: "Metabase",
        purpose: "sync: describe-database (tables with estimated row counts) for schema public",
        allowed: Allowed::Columns(&[("estimated_row_count", Cell::Null)]),
        reason: "the statistics views (`pg_stat_*`, here `pg_stat_user_tables`) read with no \
                 rows, so the row estimate Metabase LEFT JOINs from them is NULL; the tables \
                 are listed as directly",
    },
    Difference {
        client: "DBeaver",
        purpose: "navigator: indexes of public.orders (PostgreSchema.IndexCache)",
        allowed: Allowed::Columns(&[("index_num_scans", Cell::Null)]),
        reason: "`pg_stat_get_*` functions (here `pg_stat_get_numscans`) read as NULL; the \
                 index definitions are as directly",
    },
    Difference {
        client: "Apache Superset",
        purpose: "PostgresEngineSpec.get_cancel_query_id",
        allowed: Allowed::Columns(&[("pg_backend_pid", Cell::Present)]),
        reason: "`pg_backend_pid()` differs per connection: through pgward it is the pid of \
                 the upstream backend serving the session (and `pg_terminate_backend`, which \
                 Superset calls with it to cancel, reads as NULL and signals nothing)",
    },
    Difference {
        client: "Apache Superset",
        purpose: "PostgresEngineSpec.estimate_statement_cost",
        allowed: Allowed::Plan,
        reason: "EXPLAIN shows the plan of the secured statement: the table is read through \
                 its secured subquery, so the plan carries the policy filter and the \
                 estimates of the rows the session may see",
    },
    Difference {
        client: "Metabase",
        purpose: "sync: current-user-table-privileges",
        allowed: Allowed::Columns(&[
            ("select", Cell::Present),
            ("insert", Cell::Present),
            ("update", Cell::Present),
            ("delete", Cell::Present),
        ]),
        reason: "the privilege functions answer for the login from pgward's policies, not for \
                 the service role: alice may not read departments, nor delete anything (the \
                 exact answers are checked in `identity.rs`)",
    },
    Difference {
        client: "DBeaver",
        purpose: "execution context: current schema and user (PostgreExecutionContext)",
        allowed: Allowed::Columns(&[("session_user", Cell::Login)]),
        reason: "`current_user`, `session_user`, `current_role` and `user` read as the login, \
                 not as the service role",
    },
];

/// The types the captured queries ask about by name (they existed in the
/// cluster the queries were captured from; the demo schema has none).
const COMPAT_TYPES: &str = "
CREATE TYPE public.order_status AS ENUM ('open', 'archived');
CREATE TYPE public.money_pair AS (amount numeric(10,2), currency text);
";

/// A database with the demo schema and rows, readable by the service role,
/// plus [`COMPAT_TYPES`].
async fn demo_db(label: &str) -> anyhow::Result<TestDb> {
    let db = TestDb::new(label).await?;
    let su = db.superuser().await?;
    pgward::demo::load_setup(&su, &demo_dir()).await?;
    su.batch_execute(&format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {SERVICE_ROLE}"
    ))
    .await?;
    su.batch_execute(COMPAT_TYPES).await?;
    Ok(db)
}

fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/compat")
}

fn read_queries() -> anyhow::Result<Vec<ClientQuery>> {
    let mut all = Vec::new();
    for file in ["client_queries.json", "client_queries_extra.json"] {
        let path = compat_dir().join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let queries: Vec<ClientQuery> = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("cannot parse {}: {e}", path.display()))?;
        all.extend(queries);
    }
    Ok(all)
}

/// The captured queries inline the oids of the capture cluster: 16384 is
/// public.orders and 16420 the enum public.order_status (2200 and 11, the
/// schemas public and pg_catalog, are the same everywhere). A client would
/// have sent this database's oids.
fn localise(sql: &str, orders_oid: u32, order_status_oid: u32) -> String {
    sql.replace("16384", &orders_oid.to_string())
        .replace("{16420}", &format!("{{{order_status_oid}}}"))
}

/// Rows as text, NULL as None.
type Rows = Vec<Vec<Option<String>>>;

/// One statement's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    columns: Option<Vec<String>>,
    rows: Rows,
    count: u64,
}

async fn run(client: &Client, sql: &str) -> Result<Vec<Answer>, String> {
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!("{} {}", db.code().code(), db.message()),
            None => e.to_string(),
        })?;
    let mut answers = Vec::new();
    let mut current = Answer {
        columns: None,
        rows: Vec::new(),
        count: 0,
    };
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                current.columns = Some(cols.iter().map(|c| c.name().to_string()).collect());
            }
            SimpleQueryMessage::Row(row) => {
                if current.columns.is_none() {
                    current.columns =
                        Some(row.columns().iter().map(|c| c.name().to_string()).collect());
                }
                current.rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                );
            }
            SimpleQueryMessage::CommandComplete(n) => {
                current.count = n;
                answers.push(std::mem::replace(
                    &mut current,
                    Answer {
                        columns: None,
                        rows: Vec::new(),
                        count: 0,
                    },
                ));
            }
            _ => {}
        }
    }
    Ok(answers)
}

/// Splits SQL text into statements at top-level semicolons, outside
/// literals, quoted identifiers and comments; empty pieces are dropped.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut piece = String::new();
    scan(sql, |c, code, depth| {
        if code && depth == 0 && c == ';' {
            out.push(std::mem::take(&mut piece));
        } else {
            piece.push(c);
        }
    });
    out.push(piece);
    out.retain(|s| !s.trim().is_empty());
    out
}

/// Whether a statement has an ORDER BY outside parentheses (its result is
/// ordered, not one of a subquery, aggregate or window).
fn ordered(statement: &str) -> bool {
    let mut words = Vec::new();
    let mut word = String::new();
    scan(statement, |c, code, depth| {
        if code && depth == 0 && (c.is_ascii_alphanumeric() || c == '_') {
            word.push(c.to_ascii_lowercase());
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    });
    words.push(word);
    words.windows(2).any(|w| w[0] == "order" && w[1] == "by")
}

/// Calls `f(char, is_code, paren_depth)` for every character: `is_code` is
/// false inside string literals, quoted identifiers and comments.
fn scan(sql: &str, mut f: impl FnMut(char, bool, usize)) {
    #[derive(PartialEq)]
    enum State {
        Code,
        Str { escapes: bool },
        Ident,
        Line,
        Block,
    }
    let chars: Vec<char> = sql.chars().collect();
    let mut state = State::Code;
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match state {
            State::Code => match c {
                '\'' => {
                    let escapes = i > 0
                        && matches!(chars[i - 1], 'e' | 'E')
                        && (i < 2
                            || !(chars[i - 2].is_ascii_alphanumeric() || chars[i - 2] == '_'));
                    state = State::Str { escapes };
                    f(c, false, depth);
                }
                '"' => {
                    state = State::Ident;
                    f(c, false, depth);
                }
                '-' if next == Some('-') => {
                    state = State::Line;
                    f(c, false, depth);
                }
                '/' if next == Some('*') => {
                    state = State::Block;
                    f(c, false, depth);
                }
                '(' => {
                    depth += 1;
                    f(c, true, depth);
                }
                ')' => {
                    f(c, true, depth);
                    depth = depth.saturating_sub(1);
                }
                _ => f(c, true, depth),
            },
            State::Str { escapes } => {
                f(c, false, depth);
                if escapes && c == '\\' {
                    if let Some(n) = next {
                        f(n, false, depth);
                        i += 1;
                    }
                } else if c == '\'' {
                    if next == Some('\'') {
                        f('\'', false, depth);
                        i += 1;
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::Ident => {
                f(c, false, depth);
                if c == '"' {
                    if next == Some('"') {
                        f('"', false, depth);
                        i += 1;
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::Line => {
                f(c, false, depth);
                if c == '\n' {
                    state = State::Code;
                }
            }
            State::Block => {
                f(c, false, depth);
                if c == '*' && next == Some('/') {
                    f('/', false, depth);
                    i += 1;
                    state = State::Code;
                }
            }
        }
        i += 1;
    }
}

fn sorted(rows: &[Vec<Option<String>>]) -> Rows {
    let mut rows = rows.to_vec();
    rows.sort();
    rows
}

fn show_rows(rows: &[Vec<Option<String>>]) -> String {
    const MAX: usize = 12;
    let mut text = String::new();
    for row in rows.iter().take(MAX) {
        let cells: Vec<String> = row
            .iter()
            .map(|c| {
                c.as_deref()
                    .map_or("NULL".to_string(), |s| format!("{s:?}"))
            })
            .collect();
        text += &format!("      ({})\n", cells.join(", "));
    }
    if rows.len() > MAX {
        text += &format!("      … {} rows in all\n", rows.len());
    }
    text
}

/// Where two answers differ, or None when they are equal.
fn compare_exact(sql: &str, via: &[Answer], direct: &[Answer]) -> Option<String> {
    if let Some(problem) = compare_shape(via, direct) {
        return Some(problem);
    }
    let stmts = statements(sql);
    let mut problems = String::new();
    for (i, (v, d)) in via.iter().zip(direct).enumerate() {
        let in_order = stmts.len() == direct.len() && ordered(&stmts[i]);
        let equal = if in_order {
            v.rows == d.rows
        } else {
            sorted(&v.rows) == sorted(&d.rows)
        };
        if !equal || v.count != d.count {
            let (only_via, only_direct) = multiset_difference(&v.rows, &d.rows);
            problems += &format!(
                "  statement {}: {} rows through pgward, {} directly{}\n",
                i + 1,
                v.rows.len(),
                d.rows.len(),
                if in_order { " (ordered)" } else { "" }
            );
            if only_via.is_empty() && only_direct.is_empty() {
                problems += "    same rows, in another order\n";
            }
            if !only_via.is_empty() {
                problems += &format!("    only through pgward:\n{}", show_rows(&only_via));
            }
            if !only_direct.is_empty() {
                problems += &format!("    only directly:\n{}", show_rows(&only_direct));
            }
        }
    }
    (!problems.is_empty()).then_some(problems)
}

/// Statements and their column names must match.
fn compare_shape(via: &[Answer], direct: &[Answer]) -> Option<String> {
    if via.len() != direct.len() {
        return Some(format!(
            "  {} statement results through pgward, {} directly\n",
            via.len(),
            direct.len()
        ));
    }
    let mut problems = String::new();
    for (i, (v, d)) in via.iter().zip(direct).enumerate() {
        if v.columns != d.columns {
            problems += &format!(
                "  statement {}: columns {:?} through pgward, {:?} directly\n",
                i + 1,
                v.columns,
                d.columns
            );
        }
    }
    (!problems.is_empty()).then_some(problems)
}

/// Other tests create and drop databases and roles while this one runs,
/// so cluster-wide listings (psql's list of databases and of roles,
/// getCatalogs) differ between two moments: rows naming another test's
/// database or role (harness names hold `t<n>_<label>`) are left out of
/// both answers.
fn without_other_test_databases(mut answers: Vec<Answer>, own: &str) -> Vec<Answer> {
    // A harness name `t<n>_…`, alone or inside a role name such as
    // `svc_bypassrls_t12_upstream_bypassrls`, other than this test's own.
    let names_other = |cell: &str| {
        let cell = cell.replace(own, "");
        let bytes = cell.as_bytes();
        (0..bytes.len()).any(|i| {
            (i == 0 || bytes[i - 1] == b'_')
                && bytes[i] == b't'
                && cell[i + 1..]
                    .find(|c: char| !c.is_ascii_digit())
                    .is_some_and(|d| d > 0 && cell[i + 1 + d..].starts_with('_'))
        })
    };
    let is_other = |cell: &Option<String>| cell.as_deref().is_some_and(names_other);
    for a in &mut answers {
        let before = a.rows.len();
        a.rows.retain(|row| !row.iter().any(is_other));
        // The command tag counted the rows left out too.
        a.count = a.count.saturating_sub((before - a.rows.len()) as u64);
    }
    answers
}

fn multiset_difference(a: &[Vec<Option<String>>], b: &[Vec<Option<String>>]) -> (Rows, Rows) {
    let mut only_b = b.to_vec();
    let mut only_a = Vec::new();
    for row in a {
        match only_b.iter().position(|r| r == row) {
            Some(p) => {
                only_b.remove(p);
            }
            None => only_a.push(row.clone()),
        }
    }
    (only_a, only_b)
}

/// Checks an excepted query: what it may and must differ in.
fn check_difference(
    sql: &str,
    allowed: Allowed,
    via: &[Answer],
    direct: &[Answer],
) -> Option<String> {
    if let Some(problem) = compare_shape(via, direct) {
        return Some(problem);
    }
    match allowed {
        Allowed::Plan => via
            .iter()
            .any(|v| v.rows.is_empty())
            .then(|| "  an empty plan through pgward\n".to_string()),
        Allowed::Columns(columns) => {
            let mut problems = String::new();
            let mut masked_via = via.to_vec();
            let mut masked_direct = direct.to_vec();
            let mut found = BTreeSet::new();
            for (i, (v, d)) in masked_via.iter_mut().zip(&mut masked_direct).enumerate() {
                let names = v.columns.clone().unwrap_or_default();
                for (name, cell) in columns {
                    for (c, _) in names.iter().enumerate().filter(|(_, n)| n == name) {
                        found.insert(*name);
                        for row in &v.rows {
                            let value = row[c].as_deref();
                            let ok = match cell {
                                Cell::Null => value.is_none(),
                                Cell::Login => value == Some(LOGIN),
                                Cell::Present => value.is_some(),
                            };
                            if !ok {
                                problems += &format!(
                                    "  statement {}: column {name} reads {value:?} through pgward, expected {cell:?}\n",
                                    i + 1
                                );
                            }
                        }
                        for row in &d.rows {
                            if matches!(cell, Cell::Login)
                                && row[c].as_deref() != Some(SERVICE_ROLE)
                            {
                                problems += &format!(
                                    "  statement {}: column {name} reads {:?} directly, expected {SERVICE_ROLE}\n",
                                    i + 1,
                                    row[c]
                                );
                            }
                        }
                        for row in v.rows.iter_mut().chain(d.rows.iter_mut()) {
                            row[c] = None;
                        }
                    }
                }
            }
            for (name, _) in columns {
                if !found.contains(name) {
                    problems += &format!("  no column {name} in the answer\n");
                }
            }
            if let Some(rest) = compare_exact(sql, &masked_via, &masked_direct) {
                problems += "  other columns differ:\n";
                problems += &rest;
            }
            (!problems.is_empty()).then_some(problems)
        }
    }
}

fn difference(client: &str, purpose: &str) -> Option<&'static Difference> {
    DIFFERENCES
        .iter()
        .find(|d| d.client == client && d.purpose == purpose)
}

#[tokio::test]
async fn client_queries_answer_as_directly() -> anyhow::Result<()> {
    let started = Instant::now();
    let queries = read_queries()?;
    assert!(
        queries.len() >= MIN_QUERIES,
        "read {} queries from {}, expected at least {MIN_QUERIES}",
        queries.len(),
        compat_dir().display()
    );
    for q in &queries {
        assert_ne!(
            q.ok,
            Some(false),
            "[{}] {} did not succeed when captured",
            q.client,
            q.purpose
        );
    }
    for d in DIFFERENCES {
        assert!(
            queries
                .iter()
                .any(|q| q.client == d.client && q.purpose == d.purpose),
            "the difference for ({}, {}) names no query",
            d.client,
            d.purpose
        );
    }

    let db = demo_db("compat").await?;
    let pgward: Pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    let setup = db.service().await?;
    let orders_oid: u32 = setup
        .query_one("SELECT 'public.orders'::regclass::oid", &[])
        .await?
        .get(0);
    let order_status_oid: u32 = setup
        .query_one("SELECT 'public.order_status'::regtype::oid", &[])
        .await?
        .get(0);
    drop(setup);

    let mut failures = Vec::new();
    let mut differences = Vec::new();
    for q in &queries {
        let sql = localise(&q.sql, orders_oid, order_status_oid);
        let label = format!("[{}] {}", q.client, q.purpose);
        // Other tests create and drop roles and databases at any moment, so a
        // cluster-wide listing may differ between the two answers; a real
        // difference shows on every attempt.
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A session of its own each: some queries set session state.
            let via = pgward.connect_as(LOGIN, LOGIN).await?;
            let via_answer = run(&via, &sql).await;
            drop(via);
            let direct = db.service().await?;
            let direct_answer = run(&direct, &sql).await;
            drop(direct);
            let (via_answer, direct_answer) = match (via_answer, direct_answer) {
                (Ok(v), Ok(d)) => (
                    without_other_test_databases(v, db.name()),
                    without_other_test_databases(d, db.name()),
                ),
                (Err(e), _) => {
                    failures.push(format!("{label}\n  through pgward: {e}\n"));
                    break;
                }
                (Ok(_), Err(e)) => {
                    failures.push(format!("{label}\n  directly (the test's fault): {e}\n"));
                    break;
                }
            };
            let problem = match difference(&q.client, &q.purpose) {
                Some(d) => check_difference(&sql, d.allowed, &via_answer, &direct_answer)
                    .map(|p| format!("  (listed difference: {})\n{p}", d.reason)),
                None => compare_exact(&sql, &via_answer, &direct_answer),
            };
            match problem {
                Some(problem) if attempt >= 4 => {
                    differences.push(format!("{label}\n{problem}"));
                    break;
                }
                Some(_) => tokio::time::sleep(std::time::Duration::from_millis(300)).await,
                None => break,
            }
        }
    }

    let mut report = String::new();
    if !failures.is_empty() {
        report += &format!("{} queries failed:\n", failures.len());
        report += &failures.join("");
    }
    if !differences.is_empty() {
        report += &format!(
            "{} queries answered differently through pgward than directly:\n",
            differences.len()
        );
        report += &differences.join("");
    }
    eprintln!(
        "{} client queries ({} listed differences) in {:.1}s",
        queries.len(),
        DIFFERENCES.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(report.is_empty(), "{report}");
    Ok(())
}

#[test]
fn statements_split_and_top_level_order_is_found() {
    assert_eq!(
        statements("SELECT ';' ; SELECT \"a;b\" -- x;y\n; /* ; */ ;"),
        ["SELECT ';' ", " SELECT \"a;b\" -- x;y\n", " /* ; */ "]
    );
    assert!(ordered("SELECT a FROM t ORDER BY 1"));
    assert!(!ordered("SELECT array_agg(a ORDER BY b) FROM t"));
    assert!(!ordered(
        "SELECT * FROM (SELECT a FROM t ORDER BY a) x GROUP BY a"
    ));
    assert!(!ordered("SELECT 'order by' FROM t"));
    assert!(ordered("SELECT E'\\'' FROM t ORDER BY 1"));
}

fn answer(columns: &[&str], rows: &[&[Option<&str>]]) -> Answer {
    Answer {
        columns: Some(columns.iter().map(|c| c.to_string()).collect()),
        rows: rows
            .iter()
            .map(|r| r.iter().map(|c| c.map(str::to_string)).collect())
            .collect(),
        count: rows.len() as u64,
    }
}

#[test]
fn listed_differences_still_check_the_rest() {
    let sql = "SELECT current_schema(), session_user, pg_stat_get_numscans(1)";
    let cols = ["current_schema", "session_user", "n"];
    let direct = [answer(
        &cols,
        &[&[Some("public"), Some(SERVICE_ROLE), Some("0")]],
    )];
    let allowed = Allowed::Columns(&[("session_user", Cell::Login), ("n", Cell::Null)]);
    let good = [answer(&cols, &[&[Some("public"), Some(LOGIN), None]])];
    assert_eq!(check_difference(sql, allowed, &good, &direct), None);
    // Another column differs.
    let other = [answer(&cols, &[&[Some("pg_catalog"), Some(LOGIN), None]])];
    assert!(check_difference(sql, allowed, &other, &direct).is_some());
    // The excepted cell is not what the rule makes of it.
    let service = [answer(
        &cols,
        &[&[Some("public"), Some(SERVICE_ROLE), None]],
    )];
    assert!(check_difference(sql, allowed, &service, &direct).is_some());
    let not_null = [answer(&cols, &[&[Some("public"), Some(LOGIN), Some("0")]])];
    assert!(check_difference(sql, allowed, &not_null, &direct).is_some());
    // Column names must stay.
    let renamed = [answer(
        &["current_schema", "name", "n"],
        &[&[Some("public"), Some(LOGIN), None]],
    )];
    assert!(check_difference(sql, allowed, &renamed, &direct).is_some());
    // A row too many or too few.
    let more = [answer(
        &cols,
        &[
            &[Some("public"), Some(LOGIN), None],
            &[Some("public"), Some(LOGIN), None],
        ],
    )];
    assert!(check_difference(sql, allowed, &more, &direct).is_some());
    // Unordered statements compare as multisets, ordered ones in order.
    let two = |a: &str, b: &str| [answer(&["x"], &[&[Some(a)], &[Some(b)]])];
    assert_eq!(
        compare_exact("SELECT x FROM t", &two("1", "2"), &two("2", "1")),
        None
    );
    assert!(compare_exact("SELECT x FROM t ORDER BY x", &two("1", "2"), &two("2", "1")).is_some());
}
