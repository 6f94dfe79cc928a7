//! Policy-bound reads through pgward with `psql`, on the demo data set and
//! the demo policies: the read lines of PRODUCT.md §5, and refusals that
//! keep their place in a session.

use std::path::PathBuf;

use crate::harness::{PgwardOptions, SERVICE_ROLE, TestDb};

pub(crate) fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies/demo")
}

/// The demo policy files, concatenated in lexical order.
pub(crate) fn demo_policies() -> anyhow::Result<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(demo_dir())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut text = String::new();
    for f in files {
        text.push_str(&std::fs::read_to_string(f)?);
        text.push('\n');
    }
    Ok(text)
}

/// A database with the demo schema and rows, readable by the service role.
pub(crate) async fn demo_db(label: &str) -> anyhow::Result<TestDb> {
    let db = TestDb::new(label).await?;
    let su = db.superuser().await?;
    pgward::demo::load_setup(&su, &demo_dir()).await?;
    su.batch_execute(&format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {SERVICE_ROLE}"
    ))
    .await?;
    Ok(db)
}

/// Runs SQL with psql (unaligned, tuples only); returns stdout, stderr.
pub(crate) async fn psql(conn: &str, sql: &str) -> anyhow::Result<(String, String)> {
    let out = tokio::process::Command::new("psql")
        .arg(conn)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=0", "-c", sql])
        .output()
        .await?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn what_alice_sees() -> anyhow::Result<()> {
    let db = demo_db("policy_alice").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    let conn = pgward.conn_string("alice", "alice", db.name());

    let (out, err) = psql(&conn, "SELECT count(*) FROM orders").await?;
    assert_eq!(out.trim(), "3", "{err}");
    let (out, err) = psql(&conn, "SELECT id FROM orders ORDER BY id").await?;
    assert_eq!(out.trim(), "1\n2\n3", "{err}");

    // `*` has no margin column.
    let c = pgward.connect_as("alice", "alice").await?;
    let stmt = c.prepare("SELECT * FROM orders").await?;
    let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "id",
            "customer_id",
            "salesrep_id",
            "amount",
            "notes",
            "status"
        ]
    );

    let (_, err) = psql(&conn, "SELECT margin FROM orders").await?;
    assert!(err.contains("permission denied for column margin"), "{err}");
    let (_, err) = psql(&conn, "SELECT * FROM departments").await?;
    assert!(
        err.contains("permission denied for table departments"),
        "{err}"
    );

    let stmt = c.prepare("SELECT * FROM employees").await?;
    assert_eq!(stmt.columns().len(), 4);
    let rows = c.query(&stmt, &[]).await?;
    assert_eq!(rows.len(), 4);

    // Identity functions read as the login.
    let row = c
        .query_one("SELECT current_user::text, session_user::text", &[])
        .await?;
    assert_eq!(row.get::<_, String>(0), "alice");
    assert_eq!(row.get::<_, String>(1), "alice");
    Ok(())
}

#[tokio::test]
async fn what_dave_sees() -> anyhow::Result<()> {
    let db = demo_db("policy_dave").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    let conn = pgward.conn_string("dave", "dave", db.name());
    let (out, err) = psql(&conn, "SELECT name, salary FROM employees ORDER BY id").await?;
    assert_eq!(
        out.trim(),
        "Alice Adams|85000.00\nBob Brown|72000.00\nCarol Chen|\nDave Diaz|120000.00",
        "{err}"
    );
    let (out, err) = psql(&conn, "SELECT count(*) FROM orders").await?;
    assert_eq!(out.trim(), "7", "{err}");
    Ok(())
}

#[tokio::test]
async fn eve_cannot_log_in() -> anyhow::Result<()> {
    let db = demo_db("policy_eve").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    let (_, err) = psql(&pgward.conn_string("eve", "eve", db.name()), "SELECT 1").await?;
    assert!(err.contains("FATAL"), "{err}");
    assert!(err.contains("current_employee"), "{err}");
    let e = pgward.connect_as("eve", "eve").await.unwrap_err();
    let code = e
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.code())
        .map(|c| c.code().to_string());
    assert_eq!(code.as_deref(), Some("28000"), "{e:#}");
    Ok(())
}

#[tokio::test]
async fn refusals_keep_the_session_and_the_transaction_rules() -> anyhow::Result<()> {
    let db = demo_db("policy_refusals").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    let c = pgward.connect_as("alice", "alice").await?;
    // Refused statements answer like PostgreSQL errors and the session goes on.
    let e = c
        .simple_query("SELECT * FROM departments")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    assert_eq!(c.query_one("SELECT 1", &[]).await?.get::<_, i32>(0), 1);
    // Extended protocol: a refused Parse is an error at its place.
    let e = c.prepare("SELECT ssn FROM employees").await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    // Inside a transaction a refusal aborts it, as a PostgreSQL error would.
    c.batch_execute("BEGIN").await?;
    let e = c.query("SELECT margin FROM orders", &[]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    let e = c.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("25P02"));
    c.batch_execute("ROLLBACK").await?;
    assert_eq!(c.query_one("SELECT 2", &[]).await?.get::<_, i32>(0), 2);
    // Writes wait for their issue: refused, nothing written.
    let e = c
        .simple_query("INSERT INTO orders (id, customer_id, salesrep_id, amount, status) VALUES (100, 1, 3, 10, 'open')")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    let su = db.superuser().await?;
    let n: i64 = su
        .query_one("SELECT count(*) FROM orders WHERE id = 100", &[])
        .await?
        .get(0);
    assert_eq!(n, 0);
    // Multi-statement text: every statement is secured.
    let e = c
        .simple_query("SELECT 1; SELECT * FROM departments")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    Ok(())
}

#[tokio::test]
async fn printer_differential_and_smuggled_relations_are_refused() -> anyhow::Result<()> {
    let db = demo_db("policy_threats").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    let c = pgward.connect_as("alice", "alice").await?;
    // THREATS.md: sqlparser printed `- -1` as `--1`.
    let r = c
        .simple_query("SELECT - -1, '\n * FROM employees --' FROM orders")
        .await;
    match r {
        Err(e) => assert!(
            matches!(e.code().map(|c| c.code()), Some("0A000") | Some("42501")),
            "{e}"
        ),
        Ok(rows) => {
            // If allowed, nothing beyond orders' secured rows came back.
            let data = rows
                .iter()
                .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
                .count();
            assert!(data <= 3, "{data} rows");
        }
    }
    // `FROM ONLY` is misread by sqlparser: never a bypass.
    let e = c
        .simple_query("SELECT * FROM ONLY departments")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.code().map(|c| c.code()),
            Some("42P01") | Some("42501") | Some("0A000")
        ),
        "{e}"
    );
    // Whole-row references carry only visible columns.
    let row = c
        .query_one(
            "SELECT row_to_json(e)::text FROM employees e WHERE id = 4",
            &[],
        )
        .await?;
    let json: String = row.get(0);
    assert!(!json.contains("salary") && !json.contains("ssn"), "{json}");
    // Statistics and other sessions' activity.
    let e = c
        .simple_query("SELECT histogram_bounds FROM pg_stats WHERE tablename = 'employees'")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    let rows = c.query("SELECT query FROM pg_stat_activity", &[]).await?;
    assert!(rows.is_empty());
    Ok(())
}

#[tokio::test]
async fn leaky_predicates_never_see_hidden_rows() -> anyhow::Result<()> {
    let db = demo_db("policy_leaky").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    let su = db.superuser().await?;
    // Amounts that only rows hidden from alice hold (other reps' orders and
    // her archived one).
    let hidden: Vec<String> = su
        .query(
            "SELECT amount::text FROM orders WHERE (salesrep_id <> 1 OR status = 'archived') \
             AND amount NOT IN (SELECT amount FROM orders WHERE salesrep_id = 1 AND status <> 'archived')",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(hidden.len() >= 5, "{hidden:?}");
    let c = pgward.connect_as("alice", "alice").await?;
    for v in &hidden {
        // Directly, this division fails on the hidden row holding v; through
        // pgward the policy filter runs first, so it never meets that row.
        let sql = format!("SELECT count(*) FROM orders WHERE 1 / (amount - {v}) <> 0");
        let direct = su.simple_query(&sql).await;
        assert!(direct.is_err(), "the probe must fail directly for {v}");
        let n: i64 = c.query_one(sql.as_str(), &[]).await?.get(0);
        assert_eq!(n, 3, "{sql}");
    }
    Ok(())
}

#[tokio::test]
async fn explain_prints_the_decision_and_the_forwarded_sql() -> anyhow::Result<()> {
    let db = demo_db("policy_explain").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    let config = pgward.dir().join("pgward.toml");
    let explain = |user: &str, sql: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pgward"))
            .args(["explain", "--config"])
            .arg(&config)
            .args(["--user", user, sql])
            .output()
    };
    let out = explain("alice", "SELECT count(*) FROM orders")?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("decision: allowed"), "{text}");
    assert!(text.contains("FROM \"public\".\"orders\" WHERE"), "{text}");
    assert!(
        text.contains("salesrep_id = '1'::pg_catalog.int4"),
        "{text}"
    );

    let out = explain("alice", "SELECT margin FROM orders")?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("decision: refused"), "{text}");
    assert!(text.contains("42501"), "{text}");

    let out = explain("eve", "SELECT 1")?;
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("current_employee"), "{all}");
    Ok(())
}
