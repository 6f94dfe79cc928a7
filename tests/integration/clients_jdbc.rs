//! The PostgreSQL JDBC driver (Debian's `libpostgresql-jdbc-java`) through
//! pgward: prepared statements before and after the driver switches to
//! server-side statements, `DatabaseMetaData`, `isValid`, batches, a
//! transaction rolled back, errors and recovery. The program
//! `tests/clients/java/PgwardJdbc.java` runs in the JDK's source-launcher mode
//! and reports `key=value` lines; this test judges them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::harness::{PgwardOptions, TestDb};

const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(40);

const TABLE: &str = "CREATE TABLE jdbc_items (
    id serial PRIMARY KEY,
    name text NOT NULL,
    qty int,
    price numeric(10, 2) NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
)";

fn program() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/java/PgwardJdbc.java")
}

/// Parses the program's `key=value` lines, undoing its `\n` and `\\` escapes.
fn parse_report(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| {
            let mut value = String::new();
            let mut chars = v.chars();
            while let Some(c) = chars.next() {
                match (c, c == '\\') {
                    (_, true) => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(other) => value.push(other),
                        None => value.push('\\'),
                    },
                    (c, false) => value.push(c),
                }
            }
            (k.to_string(), value)
        })
        .collect()
}

#[tokio::test]
async fn jdbc_driver_through_pgward() -> anyhow::Result<()> {
    if !Path::new(JDBC_JAR).is_file() {
        bail!("{JDBC_JAR} is missing: run `scripts/install-deps.sh test`");
    }

    let db = TestDb::new("jdbc_driver").await?;
    db.service().await?.batch_execute(TABLE).await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;

    let started = Instant::now();
    let child = tokio::process::Command::new("java")
        .args(["-XX:TieredStopAtLevel=1", "-cp", JDBC_JAR])
        .arg(program())
        .args(["127.0.0.1", &pgward.port().to_string(), db.name()])
        .args(["alice", "alice"])
        .env_remove("JAVA_TOOL_OPTIONS")
        .env_remove("JDK_JAVA_OPTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run `java` (a JDK 17 is needed: scripts/install-deps.sh test)")?;
    let out = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| {
            format!(
                "java did not finish within {}s; pgward's log:\n{}",
                CLIENT_TIMEOUT.as_secs(),
                pgward.log()
            )
        })??;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("JDBC run took {elapsed:?}; output:\n{stdout}");
    let report = parse_report(&stdout);
    let errors: Vec<_> = report
        .iter()
        .filter(|(k, _)| k.ends_with(".error") || k.ends_with(".error_next"))
        .collect();
    assert!(
        out.status.success() && errors.is_empty(),
        "java exited with {}; steps that threw: {errors:#?}\nstderr:\n{stderr}\npgward's log:\n{}",
        out.status,
        pgward.log()
    );
    let get = |key: &str| -> &str {
        report
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("the program reported no {key}"))
    };

    assert_eq!(get("connect.product"), "PostgreSQL");
    assert_eq!(get("connect.database"), db.name());
    assert_eq!(get("connect.greeting"), "hello");
    assert_eq!(get("connect.two"), "2");

    for (key, times) in [("threshold5", 12), ("threshold1", 10)] {
        let expected: Vec<String> = (1..=times)
            .map(|i| format!("{}:t{i}:{}", i * 2, 10_000_000_000_i64 + i64::from(i)))
            .collect();
        assert_eq!(get(&format!("{key}.results")), expected.join(","), "{key}");
    }
    // Whether the driver will use a named server-side statement for the next
    // execution, seen after each one: from the fifth on by default, from the
    // first with prepareThreshold=1. Both paths were exercised.
    assert_eq!(get("threshold5.server_prepared"), "000111111111");
    assert_eq!(get("threshold1.server_prepared"), "1111111111");
    // ... and the server holds the named statement.
    assert_eq!(get("threshold5.server_statements"), "1");
    assert_eq!(get("threshold1.server_statements"), "1");

    assert_eq!(get("valid.is_valid"), "true");
    assert_eq!(get("threshold1_valid.is_valid"), "true");

    assert_eq!(get("tables.list"), "public.jdbc_items:TABLE");
    // ordinal:name:type name:java.sql.Types:nullable:autoincrement
    assert_eq!(
        get("columns.list"),
        "1:id:serial:4:0:YES,\
         2:name:text:12:0:NO,\
         3:qty:int4:4:1:NO,\
         4:price:numeric:2:0:NO,\
         5:created:timestamptz:93:0:NO"
    );

    assert_eq!(get("batch.counts"), "1,1,1,1,1");
    assert_eq!(get("batch.statement_counts"), "2,1,1");
    assert_eq!(
        get("batch.rows"),
        "1:apple:1:1.25,2:pear:2:2.25,3:plum:3:3.25,5:kiwi:50:5.25,6:lime:0:0.50"
    );
    assert_eq!(
        get("lookup.found"),
        ["apple,pear,plum,-,kiwi,lime"; 3].join(",")
    );

    // Row counts: before, inside the transaction, after ROLLBACK, after COMMIT.
    assert_eq!(get("transaction.counts"), "5,6,5,6");
    assert_eq!(get("transaction.rolled_back_rows"), "0");

    assert_eq!(get("errors.divide"), "22012");
    assert_eq!(get("errors.prepared_divide"), "22012");
    assert_eq!(get("errors.syntax"), "42601");
    assert_eq!(get("errors.after"), "ok");
    assert_eq!(get("errors.in_tx"), "22012");
    assert_eq!(get("errors.aborted"), "25P02");
    assert_eq!(get("errors.after_tx"), "ok");
    assert_eq!(get("errors.batch"), "23505");
    assert_eq!(get("errors.batch_rows"), "0");
    assert_eq!(get("errors.valid_after"), "true");
    Ok(())
}
