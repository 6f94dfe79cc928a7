//! Row counts of writes as drivers report them (PRODUCT.md "Statements":
//! the command tag is the one the client's own statement would produce):
//! psycopg's `cursor.rowcount` and the JDBC driver's update counts through
//! pgward must equal those of a direct connection for the same statements.
//! The direct connection logs in as a PostgreSQL role of the same name under
//! row-level security with the same rule (own rows only), so both count the
//! same rows; both reports are also checked against the expected counts.
//!
//! The client programs are `tests/clients/python/write_rowcounts.py` and
//! `tests/clients/java/WriteCounts.java`; see `clients_python` and
//! `clients_jdbc` for how the interpreters are found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::harness::{PgwardOptions, SERVICE_ROLE, TestDb};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";

/// Rows 1–20; the login owns the even ids. `amount` is ten times the id.
fn setup(login: &str) -> String {
    format!(
        "CREATE TABLE ledger (id int PRIMARY KEY, owner text NOT NULL, amount int NOT NULL, note text);
         CREATE TABLE ledger_log (id int, what text);
         INSERT INTO ledger SELECT g, CASE WHEN g % 2 = 0 THEN '{login}' ELSE 'other' END, g * 10
           FROM generate_series(1, 20) g;
         GRANT SELECT, INSERT, UPDATE, DELETE ON ledger, ledger_log TO {SERVICE_ROLE};"
    )
}

fn policies(login: &str) -> String {
    format!(
        "CREATE ROLE {login}_group;
         CREATE USER {login} PASSWORD '{login}' IN ROLE {login}_group;
         GRANT SELECT, INSERT, UPDATE, DELETE ON ledger TO {login}_group;
         GRANT SELECT, INSERT ON ledger_log TO {login}_group;
         CREATE POLICY own ON ledger FOR ALL TO {login}_group USING (owner = @{{login_id}});"
    )
}

fn rls(login: &str) -> String {
    format!(
        "ALTER TABLE ledger ENABLE ROW LEVEL SECURITY;
         GRANT SELECT, INSERT, UPDATE, DELETE ON ledger TO {login}_group;
         GRANT SELECT, INSERT ON ledger_log TO {login}_group;
         CREATE POLICY own ON ledger FOR ALL TO {login}_group USING (owner = current_user);"
    )
}

/// Where the client connects: (port, database).
struct Target {
    port: u16,
    database: String,
}

/// Two databases with the ledger: one behind pgward, one with RLS for a
/// direct connection as the PostgreSQL role `login`.
struct Pair {
    pgward: crate::harness::Pgward,
    via_pgward: Target,
    direct: Target,
    _dbs: (TestDb, TestDb),
}

async fn pair(login: &str) -> anyhow::Result<Pair> {
    let db = TestDb::new(&format!("{login}_pgward")).await?;
    db.superuser().await?.batch_execute(&setup(login)).await?;
    let direct_db = TestDb::new(&format!("{login}_direct")).await?;
    let su = direct_db.superuser().await?;
    let exists: i64 = su
        .query_one(
            "SELECT count(*) FROM pg_roles WHERE rolname = $1",
            &[&login],
        )
        .await?
        .get(0);
    if exists == 0 {
        su.batch_execute(&format!(
            "CREATE ROLE {login}_group NOLOGIN;
             CREATE ROLE {login} LOGIN PASSWORD '{login}' IN ROLE {login}_group;"
        ))
        .await?;
    }
    su.batch_execute(&setup(login)).await?;
    su.batch_execute(&rls(login)).await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&policies(login)))
        .await?;
    Ok(Pair {
        via_pgward: Target {
            port: pgward.port(),
            database: db.name().to_string(),
        },
        direct: Target {
            port: direct_db.cluster().port(),
            database: direct_db.name().to_string(),
        },
        pgward,
        _dbs: (db, direct_db),
    })
}

async fn output(
    mut cmd: tokio::process::Command,
    what: &str,
) -> anyhow::Result<(bool, String, String)> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    let out = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("{what} did not finish within {CLIENT_TIMEOUT:?}"))??;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn python() -> String {
    std::env::var("PGWARD_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

async fn psycopg_report(target: &Target, login: &str) -> anyhow::Result<Value> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python/write_rowcounts.py");
    let mut cmd = tokio::process::Command::new(python());
    cmd.arg(script)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", target.port.to_string())
        .env("PGDATABASE", &target.database)
        .env("PGUSER", login)
        .env("PGPASSWORD", login)
        .env("PGPASSFILE", "/dev/null")
        .env_remove("PGSSLMODE")
        .env_remove("PGOPTIONS");
    let (ok, stdout, stderr) = output(cmd, "write_rowcounts.py").await?;
    let report: Value = serde_json::from_str(stdout.trim())
        .with_context(|| format!("no JSON from write_rowcounts.py:\n{stdout}\n{stderr}"))?;
    if !ok || report.get("failed").is_some() {
        bail!(
            "write_rowcounts.py failed on port {}: {report:#}\n{stderr}",
            target.port
        );
    }
    Ok(report)
}

#[tokio::test]
async fn psycopg_rowcounts_match_a_direct_connection() -> anyhow::Result<()> {
    let login = "w3py";
    let p = pair(login).await?;
    let direct = psycopg_report(&p.direct, login).await?;
    let through = psycopg_report(&p.via_pgward, login)
        .await
        .with_context(|| format!("pgward's log:\n{}", crate::writes::tail(&p.pgward.log())))?;
    let expected = json!({
        "insert_one": 1,
        "executemany": 5,
        "update_all": 16,
        "update_param": 6,
        "update_hidden": 0,
        "delete_param": 1,
        "delete_range": 3,
        "upsert_nothing": 0,
        "upsert_update": 1,
        "insert_select": 7,
        "update_returning": 7,
        "update_returning_ids": [201, 202, 203, 204, 205, 206, 207],
        "copy": 3,
        "prepared": [1, 1, 1, 1, 1, 1],
        "pipeline": [5, 1, 0],
        "delete_most": 11,
        "cte": [1, 3],
        "delete_rest": 4,
        "left": 0,
    });
    assert_eq!(direct, expected, "direct vs expected");
    assert_eq!(through, direct, "through pgward vs direct");
    Ok(())
}

async fn jdbc_report(target: &Target, login: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let program =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/java/WriteCounts.java");
    let mut cmd = tokio::process::Command::new("java");
    cmd.args(["-XX:TieredStopAtLevel=1", "-cp", JDBC_JAR])
        .arg(program)
        .args([
            "127.0.0.1",
            &target.port.to_string(),
            &target.database,
            login,
            login,
        ])
        .env_remove("JAVA_TOOL_OPTIONS")
        .env_remove("JDK_JAVA_OPTIONS");
    let (ok, stdout, stderr) = output(cmd, "java WriteCounts.java").await?;
    let report: BTreeMap<String, String> = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !ok || report.contains_key("error") {
        bail!(
            "WriteCounts.java failed on port {}: {stdout}\n{stderr}",
            target.port
        );
    }
    Ok(report)
}

#[tokio::test]
async fn jdbc_update_counts_match_a_direct_connection() -> anyhow::Result<()> {
    if !Path::new(JDBC_JAR).is_file() {
        bail!("{JDBC_JAR} is missing: run `scripts/install-deps.sh test`");
    }
    let login = "w3java";
    let p = pair(login).await?;
    let direct = jdbc_report(&p.direct, login).await?;
    let through = jdbc_report(&p.via_pgward, login)
        .await
        .with_context(|| format!("pgward's log:\n{}", crate::writes::tail(&p.pgward.log())))?;
    let expected: BTreeMap<String, String> = [
        ("insert_one", "1"),
        ("prepared_batch", "1,1,1,1,1"),
        ("update_all", "16"),
        ("update_param", "6"),
        ("update_hidden", "0"),
        ("statement_batch", "1,1,0,0"),
        ("large_delete", "3"),
        ("insert_select", "false:7"),
        ("upsert_update", "1"),
        (
            "update_returning",
            "true:[201, 202, 203, 204, 205, 206, 207]",
        ),
        ("prepared_repeat", "1010101"),
        ("rolled_back", "5"),
        ("delete_most", "12"),
        ("cte_deleted", "3"),
        ("delete_rest", "4"),
        ("left", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(direct, expected, "direct vs expected");
    assert_eq!(through, direct, "through pgward vs direct");
    Ok(())
}
