//! Python clients through pgward: psycopg 3 and asyncpg each run a short
//! workload (`tests/clients/python/*.py`) that prints what it saw as JSON;
//! the tests here judge it and compare the rows with a direct connection.
//!
//! The interpreter is `$PGWARD_TEST_PYTHON` (scripts/test.sh points it at
//! the virtualenv that `scripts/install-deps.sh test` creates), else
//! `python3`. Missing client libraries fail the tests: they are part of the
//! suite, not optional.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::harness::{Pgward, PgwardOptions, TestDb};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The workloads create tables and a type: DDL, which pgward refuses to
/// policy-bound sessions (PRODUCT.md §3, Statements) and forwards for a
/// BYPASSPOLICY role. What is under test here is the wire: startup,
/// SCRAM, extended protocol, binary formats, pipelines, COPY, errors.
const POLICIES: &str = "\
CREATE ROLE dba WITH BYPASSPOLICY;
CREATE USER alice PASSWORD 'alice' IN ROLE dba;
";

fn python() -> String {
    std::env::var("PGWARD_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients/python")
        .join(name)
}

/// Fails with instructions when the interpreter lacks `module`.
async fn require_module(module: &str) -> anyhow::Result<()> {
    let python = python();
    let out = tokio::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .await
        .with_context(|| format!("cannot run the Python interpreter {python:?}"))?;
    if !out.status.success() {
        bail!(
            "the Python interpreter {python:?} cannot import {module}: run \
             `scripts/install-deps.sh test` and set PGWARD_TEST_PYTHON=target/pyenv/bin/python \
             (scripts/test.sh does both)\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Runs a workload script against pgward as alice; returns its JSON report.
async fn run_workload(pgward: &Pgward, db: &TestDb, name: &str) -> anyhow::Result<Value> {
    let python = python();
    let started = Instant::now();
    let child = tokio::process::Command::new(&python)
        .arg(script(name))
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pgward.port().to_string())
        .env("PGDATABASE", db.name())
        .env("PGUSER", "alice")
        .env("PGPASSWORD", "alice")
        .env("PGPASSFILE", "/dev/null")
        .env_remove("PGSSLMODE")
        .env_remove("PGOPTIONS")
        .env_remove("PGCLIENTENCODING")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {python:?}"))?;
    let out = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| {
            format!(
                "{name} did not finish within {}s; pgward's log:\n{}",
                CLIENT_TIMEOUT.as_secs(),
                pgward.log()
            )
        })??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{name} took {:?}: {stdout}", started.elapsed());
    let report: Value = serde_json::from_str(stdout.trim()).with_context(|| {
        format!(
            "{name} printed no JSON (status {}):\n{stdout}\nstderr:\n{stderr}\npgward's log:\n{}",
            out.status,
            pgward.log()
        )
    })?;
    if !out.status.success() || report.get("failed").is_some() {
        bail!(
            "{name} failed {} with {}\n{}\nstderr:\n{stderr}\npgward's log:\n{}",
            report["failed"],
            report["error"],
            report["traceback"].as_str().unwrap_or_default(),
            pgward.log()
        );
    }
    Ok(report)
}

/// Compares one report field with its expected value.
fn expect(report: &Value, key: &str, expected: Value) {
    assert_eq!(report[key], expected, "{key} in {report:#}");
}

#[tokio::test]
async fn psycopg_workload_through_pgward() -> anyhow::Result<()> {
    require_module("psycopg").await?;
    let db = TestDb::new("psycopg_workload").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(POLICIES))
        .await?;
    let report = run_workload(&pgward, &db, "psycopg_workload.py").await?;

    expect(&report, "client_encoding", json!("UTF8"));
    expect(&report, "is_superuser", json!("off"));
    expect(&report, "session_authorization", json!("alice"));
    expect(&report, "insert_rowcount", json!(1));
    expect(&report, "executemany_rowcount", json!(10));
    expect(&report, "binary_formats", json!([1, 1, 1, 1, 1, 1]));
    expect(
        &report,
        "binary_row",
        json!([
            1,
            "widget é✓",
            "9.99",
            "0001feff",
            "2024-01-02T03:04:05+00:00",
            ["a", "b c", "d,e"]
        ]),
    );
    // sum(i/4 for i in 2..=11) = 65/4
    expect(&report, "binary_execute", json!(["16.25", 10, 1]));
    let names: Vec<String> = (2..12).map(|i| format!("item {i}")).collect();
    expect(&report, "prepared_results", json!(names));
    expect(&report, "explicit_prepare", json!("item 3"));
    let threshold = report["prepare_threshold"].as_i64().unwrap_or(0);
    assert!(
        threshold > 0 && threshold < 10,
        "prepare_threshold {threshold}"
    );
    let prepared = report["prepared_statements"].as_i64().unwrap_or(0);
    assert!(prepared >= 1, "psycopg prepared no statement: {report:#}");
    expect(&report, "copy_in_rowcount", json!(10));
    let copied: Vec<Value> = (100..110)
        .map(|i| json!([i.to_string(), format!("copied {i}"), "1.50"]))
        .collect();
    expect(&report, "copy_out", json!(copied));
    expect(&report, "after_rollback", json!([600]));
    expect(&report, "division_error", json!("22012"));
    expect(&report, "status_after_error", json!("INERROR"));
    expect(&report, "missing_table_error", json!("42P01"));
    expect(&report, "duplicate_error", json!("23505"));
    expect(&report, "count_after_errors", json!(22));
    expect(&report, "pipeline", json!([42, "PIPELINED"]));
    let mut ids: Vec<i64> = (1..12).collect();
    ids.extend(100..110);
    ids.push(600);
    expect(&report, "ids", json!(ids));

    // The rows are really upstream, as the client wrote them.
    let direct = db.service().await?;
    let row = direct
        .query_one(
            "SELECT name, price::text, encode(data, 'hex'), created = '2024-01-02 03:04:05+00', \
             tags FROM py_items WHERE id = 1",
            &[],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "widget é✓");
    assert_eq!(row.get::<_, String>(1), "9.99");
    assert_eq!(row.get::<_, String>(2), "0001feff");
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.get::<_, Vec<String>>(4), vec!["a", "b c", "d,e"]);
    let count: i64 = direct
        .query_one("SELECT count(*) FROM py_items", &[])
        .await?
        .get(0);
    assert_eq!(count, 22);
    Ok(())
}

#[tokio::test]
async fn asyncpg_workload_through_pgward() -> anyhow::Result<()> {
    require_module("asyncpg").await?;
    let db = TestDb::new("asyncpg_workload").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(POLICIES))
        .await?;
    let report = run_workload(&pgward, &db, "asyncpg_workload.py").await?;

    // asyncpg asked for 'utf-8'; the server side is UTF8.
    expect(&report, "client_encoding", json!("UTF8"));
    expect(&report, "is_superuser", json!("off"));
    expect(&report, "session_authorization", json!("alice"));
    expect(&report, "insert_status", json!("INSERT 0 1"));
    expect(
        &report,
        "row",
        json!([
            1,
            "first é✓",
            "0001feff",
            "123.456",
            "2024-02-29T23:59:58.123456+00:00",
            "12345678-9abc-4def-8123-456789abcdef",
            {"k": [1, 2, null], "s": "v"},
            [1, 2, 3],
            ["x", "y z", null]
        ]),
    );
    expect(
        &report,
        "echo",
        json!([
            -(1i64 << 62),
            "",
            "",
            "-0.000001",
            true,
            true,
            "[]",
            [],
            ["quote'd", "dq\"", "back\\slash"],
            1.5,
            true,
            "2000-01-01"
        ]),
    );
    expect(&report, "many_count", json!(20));
    // sum(i/8 for i in 2..=21) = 230/8
    expect(&report, "many_sum", json!("28.750"));
    let names: Vec<String> = (2..10).map(|i| format!("item {i}")).collect();
    expect(&report, "prepared", json!(names));
    expect(&report, "prepared_params", json!(["int4"]));
    expect(&report, "copy_status", json!("COPY 10"));
    expect(&report, "copied", json!(10));
    expect(&report, "after_rollback", json!([600]));
    expect(&report, "enum", json!("happy"));
    expect(&report, "division_error", json!("22012"));
    expect(&report, "missing_table_error", json!("42P01"));
    expect(&report, "duplicate_error", json!("23505"));
    expect(&report, "in_transaction_error", json!("22012"));
    expect(&report, "count_after_errors", json!(32));
    let mut ids: Vec<i64> = (1..22).collect();
    ids.extend(100..110);
    ids.push(600);
    expect(&report, "ids", json!(ids));

    let direct = db.service().await?;
    let row = direct
        .query_one(
            "SELECT name, amount::text, uid::text, doc::text, nums, mood::text \
             FROM apg_items WHERE id = 1",
            &[],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "first é✓");
    assert_eq!(row.get::<_, String>(1), "123.456");
    assert_eq!(
        row.get::<_, String>(2),
        "12345678-9abc-4def-8123-456789abcdef"
    );
    let doc: Value = serde_json::from_str(&row.get::<_, String>(3))?;
    assert_eq!(doc, json!({"k": [1, 2, null], "s": "v"}));
    assert_eq!(row.get::<_, Vec<i32>>(4), vec![1, 2, 3]);
    assert_eq!(row.get::<_, String>(5), "happy");
    let lost: i64 = direct
        .query_one(
            "SELECT count(*) FROM apg_items WHERE id IN (500, 601, 800)",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(lost, 0, "rolled-back rows reached the database");
    Ok(())
}
