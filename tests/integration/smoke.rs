//! The harness itself: a cluster, a database per test, pgward in front.

use crate::harness::{PgwardOptions, SERVICE_ROLE, TestDb, self_signed_cert};

#[tokio::test]
async fn service_role_reaches_its_own_database() -> anyhow::Result<()> {
    let db = TestDb::new("service_role_reaches_its_own_database").await?;
    let client = db.service().await?;
    let row = client
        .query_one(
            "SELECT 1::int4, current_user::text, current_database()::text",
            &[],
        )
        .await?;
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, String>(1), SERVICE_ROLE);
    assert_eq!(row.get::<_, String>(2), db.name());
    Ok(())
}

#[tokio::test]
async fn service_role_is_not_privileged_but_owns_the_test_database() -> anyhow::Result<()> {
    let db = TestDb::new("service_role_is_not_privileged").await?;
    let client = db.service().await?;
    let row = client
        .query_one(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    assert!(
        !row.get::<_, bool>(0),
        "the service role must not be a superuser"
    );
    assert!(
        !row.get::<_, bool>(1),
        "the service role must not bypass RLS"
    );
    client
        .batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1); DROP TABLE t;")
        .await?;
    Ok(())
}

#[tokio::test]
async fn each_test_gets_a_fresh_database() -> anyhow::Result<()> {
    let a = TestDb::new("fresh_a").await?;
    let b = TestDb::new("fresh_a").await?;
    assert_ne!(a.name(), b.name());
    a.service()
        .await?
        .batch_execute("CREATE TABLE only_in_a (id int)")
        .await?;
    let found = b
        .service()
        .await?
        .query_one("SELECT to_regclass('only_in_a') IS NOT NULL", &[])
        .await?;
    assert!(!found.get::<_, bool>(0));
    Ok(())
}

#[tokio::test]
async fn select_one_through_pgward() -> anyhow::Result<()> {
    let db = TestDb::new("select_one_through_pgward").await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;
    let client = pgward.connect_as("alice", "alice").await?;
    let row = client.query_one("SELECT 1::int4", &[]).await?;
    assert_eq!(row.get::<_, i32>(0), 1);
    Ok(())
}

#[tokio::test]
async fn pgward_runs_as_a_process_of_its_own_until_dropped() -> anyhow::Result<()> {
    let db = TestDb::new("pgward_process").await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;
    let pid = pgward.pid();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    assert_eq!(
        exe.file_name().and_then(|n| n.to_str()),
        Some("pgward"),
        "pid {pid} is {}",
        exe.display()
    );
    assert!(pgward.rss_kib()? > 0);
    assert!(std::net::TcpStream::connect(("127.0.0.1", pgward.port())).is_ok());
    let port = pgward.port();
    drop(pgward);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    Ok(())
}

#[tokio::test]
async fn select_one_through_pgward_over_tls() -> anyhow::Result<()> {
    let db = TestDb::new("select_one_over_tls").await?;
    let certs = tempfile::tempdir()?;
    let options = PgwardOptions {
        tls: "require".into(),
        cert: Some(self_signed_cert(certs.path())?),
        ..PgwardOptions::default()
    };
    let pgward = db.start_pgward(options).await?;
    let client = pgward.connect_tls("alice", "alice", db.name()).await?;
    let row = client.query_one("SELECT 1::int4", &[]).await?;
    assert_eq!(row.get::<_, i32>(0), 1);
    Ok(())
}

#[tokio::test]
async fn psql_through_pgward() -> anyhow::Result<()> {
    let db = TestDb::new("psql_through_pgward").await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;
    let out = tokio::process::Command::new("psql")
        .arg(pgward.conn_string("bob", "bob", db.name()))
        .args(["-X", "-tAc", "SELECT 40 + 2"])
        .output()
        .await?;
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    Ok(())
}
