//! node-postgres (npm `pg`) through pgward: simple and extended queries, a
//! named prepared statement, a `pg.Pool` with concurrent clients, a
//! transaction rolled back, errors and recovery. The script
//! `tests/clients/node/pg_client.js` reports what it saw as JSON; this test
//! judges it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::harness::{PgwardOptions, TestDb};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(40);

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node")
}

/// The error a step reported for an expected failure: its SQLSTATE.
fn sqlstate(v: &Value) -> Option<&str> {
    v.get("code").and_then(Value::as_str)
}

#[tokio::test]
async fn node_postgres_through_pgward() -> anyhow::Result<()> {
    let dir = node_dir();
    if !dir.join("node_modules/pg").is_dir() {
        bail!(
            "node-postgres is not installed in {}: run `scripts/install-deps.sh test`",
            dir.display()
        );
    }

    let db = TestDb::new("node_postgres").await?;
    db.service()
        .await?
        .batch_execute(
            "CREATE TABLE node_items (id serial PRIMARY KEY, name text NOT NULL, qty int)",
        )
        .await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;

    let started = Instant::now();
    let child = tokio::process::Command::new("node")
        .arg(dir.join("pg_client.js"))
        .current_dir(&dir)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pgward.port().to_string())
        .env("PGDATABASE", db.name())
        .env("PGUSER", "alice")
        .env("PGPASSWORD", "alice")
        .env_remove("PGSSLMODE")
        .env_remove("PGOPTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run `node` (Node.js 20 is needed)")?;
    let out = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| {
            format!(
                "node did not finish within {}s; pgward's log:\n{}",
                CLIENT_TIMEOUT.as_secs(),
                pgward.log()
            )
        })??;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("node-postgres run took {elapsed:?}; output: {stdout}");
    let report: Value = serde_json::from_str(stdout.trim()).with_context(|| {
        format!(
            "node printed no JSON (status {}); stderr:\n{stderr}\npgward's log:\n{}",
            out.status,
            pgward.log()
        )
    })?;
    assert!(
        out.status.success(),
        "node exited with {}; a step threw: {report:#}\nstderr:\n{stderr}",
        out.status
    );

    let simple = &report["simple"];
    assert_eq!(
        simple["row"],
        json!({"one": 1, "greeting": "hello", "db": db.name()})
    );
    assert_eq!(simple["fields"], json!(["one", "greeting", "db"]));
    assert_eq!(simple["command"], "SELECT");
    assert_eq!(simple["multi"], json!([[{"a": 1}], [{"b": 2, "c": 3}]]));
    assert_eq!(simple["empty_rows"], 0);

    let extended = &report["extended"];
    assert_eq!(extended["sum"], json!({"sum": 42, "label": "it's"}));
    assert_eq!(extended["arr"], json!([1, 2, 3]));
    assert_eq!(extended["doc"], json!({"k": ["v", 1]}));
    assert_eq!(extended["num"], "12345.678");
    assert_eq!(extended["big"], "9007199254740993");
    assert_eq!(extended["bin"], "0001feff");
    assert_eq!(extended["was_null"], true);
    assert_eq!(extended["ts"], "2024-02-29T12:30:00.000Z");
    assert_eq!(extended["flag"], true);

    let named = &report["named"];
    let expected: Vec<Value> = (1..=25).map(|i| json!([i * i, format!("n{i}")])).collect();
    assert_eq!(named["results"], Value::Array(expected));

    let writes = &report["writes"];
    assert_eq!(
        writes["inserted"],
        json!([
            {"id": 1, "name": "apple", "qty": 3},
            {"id": 2, "name": "pear", "qty": 5},
            {"id": 3, "name": "plum", "qty": null},
        ])
    );
    assert_eq!(writes["update_command"], "UPDATE");
    assert_eq!(writes["update_count"], 2);
    assert_eq!(
        writes["rows"],
        json!([
            {"name": "apple", "qty": 13},
            {"name": "pear", "qty": 15},
            {"name": "plum", "qty": null},
        ])
    );

    let pool = &report["pool"];
    assert_eq!(pool["held"]["indexes"], json!([0, 1, 2, 3]));
    assert_eq!(
        pool["held"]["distinct_pids"], 4,
        "four clients held at once must each have a backend of their own"
    );
    let doubled: Vec<Value> = (0..40).map(|i| json!(i * 2)).collect();
    assert_eq!(pool["doubled"], Value::Array(doubled));
    assert_eq!(pool["total_count"], 4);

    let tx = &report["transaction"];
    assert_eq!(tx["before"], 3);
    assert_eq!(tx["inside"], 4);
    assert_eq!(tx["after_rollback"], 3);
    assert_eq!(tx["after_commit"], 4);
    assert_eq!(tx["rolled_back_rows"], 0);

    let errors = &report["errors"];
    assert_eq!(sqlstate(&errors["divide"]), Some("22012"), "{errors:#}");
    assert_eq!(errors["after_simple"], "ok");
    assert_eq!(sqlstate(&errors["extended"]), Some("22012"), "{errors:#}");
    assert_eq!(errors["after_extended"], "ok");
    assert_eq!(sqlstate(&errors["missing"]), Some("42P01"), "{errors:#}");
    assert_eq!(sqlstate(&errors["syntax"]), Some("42601"), "{errors:#}");
    assert_eq!(errors["after_syntax"], 2);
    assert_eq!(sqlstate(&errors["in_tx"]), Some("22012"), "{errors:#}");
    assert_eq!(sqlstate(&errors["aborted"]), Some("25P02"), "{errors:#}");
    assert_eq!(errors["after_tx"], 3);
    assert_eq!(errors["prepared_after"], json!({"sq": 144, "tag": "again"}));
    Ok(())
}
