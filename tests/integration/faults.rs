//! Failures on either side of pgward: an upstream backend that is killed, a
//! database that restarts, clients that vanish mid-result or mid-statement.
//! pgward must end only the affected session, recover without a restart of
//! its own, and leave no upstream backend busy for a client that is gone.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pgward::cluster::{TempCluster, quote_ident, quote_literal, random_secret};
use tokio_postgres::Client;

use crate::harness::TestDb;
use crate::pool::{Proxy, eventually, is_running, pgward_backends};

/// Waits up to 5 s until no pgward backend of `db` is running a statement.
async fn no_busy_backend(superuser: &Client, db: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let idle = eventually(Duration::from_secs(5), || async {
        Ok(pgward_backends(superuser, db, Some("active")).await? == 0)
    })
    .await?;
    anyhow::ensure!(
        idle,
        "a pgward backend of {db} is still running a statement 5 s after its client left"
    );
    Ok(started.elapsed())
}

#[tokio::test]
async fn a_killed_upstream_backend_ends_only_its_own_session() -> anyhow::Result<()> {
    let db = TestDb::new("faults_backend_killed").await?;
    let proxy = Proxy::start(&db, "", "").await?;
    let superuser = db.superuser().await?;
    let mut alice = proxy.raw("alice", "alice").await?;
    alice.query("SELECT 1").await?.ok()?;
    let bob = proxy.connect_as("bob", "bob").await?;
    bob.simple_query("SELECT 1").await?;

    let killed = superuser
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'pgward:alice'",
            &[&db.name()],
        )
        .await?;
    assert_eq!(killed.len(), 1, "expected one upstream backend for alice");
    assert!(killed[0].get::<_, bool>(0));

    // Alice learns at once, without sending anything: FATAL, then the end.
    let reply = tokio::time::timeout(Duration::from_secs(5), alice.read_reply())
        .await
        .context("alice was not told within 5 s")??;
    let e = reply.error.as_ref().context("no error for alice")?;
    assert!(
        e.severity == "FATAL" && (e.code == "57P01" || e.code == "08006"),
        "{reply:?}"
    );
    assert!(reply.closed, "alice's connection stayed open: {reply:?}");

    // Bob's session is untouched; alice may come back.
    let row = bob.query_one("SELECT 2 + 2", &[]).await?;
    assert_eq!(row.get::<_, i32>(0), 4);
    let alice = proxy.connect_as("alice", "alice").await?;
    assert_eq!(alice.query_one("SELECT 1", &[]).await?.get::<_, i32>(0), 1);
    Ok(())
}

/// Runs `pg_ctl` of `cluster`, as the `postgres` OS user when we are root
/// (PostgreSQL refuses to run as root, and the cluster belongs to it).
fn pg_ctl(cluster: &TempCluster, args: &[&str]) -> anyhow::Result<Output> {
    let pg_ctl = cluster.bin_dir().join("pg_ctl");
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut cmd = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_ctl);
        c
    } else {
        Command::new(pg_ctl)
    };
    cmd.arg("-D")
        .arg(cluster.dir().join("data"))
        .args(args)
        .stdin(Stdio::null());
    cmd.output().context("cannot run pg_ctl")
}

/// After `pg_ctl restart` the postmaster is no longer the one the cluster
/// started and would outlive it: this stops it (immediate mode) when dropped,
/// before the cluster removes its folder.
struct RestartedServer<'a> {
    cluster: &'a TempCluster,
}

impl Drop for RestartedServer<'_> {
    fn drop(&mut self) {
        match pg_ctl(self.cluster, &["stop", "-m", "immediate", "-w", "-t", "30"]) {
            Ok(out) if out.status.success() => {}
            other => eprintln!("warning: could not stop the restarted server: {other:?}"),
        }
    }
}

/// A second cluster with a service role and a database, for a test that
/// restarts its server.
async fn private_cluster() -> anyhow::Result<(TempCluster, String, &'static str)> {
    let cluster = TempCluster::start().await?;
    let password = random_secret();
    let database = "restarts";
    let admin = cluster.superuser_client("postgres").await?;
    admin
        .batch_execute(&format!(
            "CREATE ROLE pgward_service LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS \
             PASSWORD {}",
            quote_literal(&password)
        ))
        .await?;
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} OWNER pgward_service",
            quote_ident(database)
        ))
        .await?;
    let url = format!(
        "postgres://pgward_service:{password}@127.0.0.1:{}/{database}",
        cluster.port()
    );
    Ok((cluster, url, database))
}

#[tokio::test]
async fn new_sessions_work_after_the_database_restarts() -> anyhow::Result<()> {
    let (cluster, url, database) = private_cluster().await?;
    let mut proxy = Proxy::start_for(&url, database, "", "").await?;

    // One session open, one connection idle in the pool.
    let mut open = proxy.raw("bob", "bob").await?;
    open.query("SELECT 1").await?.ok()?;
    let earlier = proxy.connect_as("alice", "alice").await?;
    earlier.simple_query("SELECT 1").await?;
    drop(earlier);
    let admin = cluster.superuser_client(database).await?;
    let pooled = eventually(Duration::from_secs(2), || async {
        Ok(pgward_backends(&admin, database, None).await? == 2)
    })
    .await?;
    assert!(pooled, "expected a pooled and an open upstream connection");
    drop(admin);

    let restarted = RestartedServer { cluster: &cluster };
    let log = cluster.dir().join("restart.log");
    let out = pg_ctl(
        restarted.cluster,
        &[
            "restart",
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
            "-l",
            &path_str(&log)?,
        ],
    )?;
    if !out.status.success() {
        bail!(
            "pg_ctl restart failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The open session is over: the server ended its backend.
    let reply = tokio::time::timeout(Duration::from_secs(5), open.read_reply())
        .await
        .context("the open session was not ended within 5 s")??;
    assert!(reply.closed, "{reply:?}");
    let e = reply.error.context("no error for the open session")?;
    assert!(e.code == "57P01" || e.code == "08006", "{e:?}");

    // New sessions work at once, through the same pgward process (the dead
    // pooled connection must not be handed out).
    for user in ["alice", "bob", "alice"] {
        let client = proxy.connect_as(user, user).await?;
        let row = client.query_one("SELECT 6 * 7", &[]).await?;
        assert_eq!(row.get::<_, i32>(0), 42);
    }
    assert!(
        proxy.wait_exit(Duration::ZERO).await?.is_none(),
        "pgward exited"
    );
    drop(proxy);
    drop(restarted);
    Ok(())
}

fn path_str(p: &Path) -> anyhow::Result<String> {
    p.to_str()
        .map(str::to_string)
        .context("a non-UTF-8 temporary path")
}

#[tokio::test]
async fn a_client_killed_mid_result_leaves_no_busy_backend() -> anyhow::Result<()> {
    let db = TestDb::new("faults_killed_mid_result").await?;
    let proxy = Proxy::start(&db, "", "").await?;
    let superuser = db.superuser().await?;
    let mut session = proxy.raw("alice", "alice").await?;
    session
        .send_query("SELECT g, repeat('x', 200) FROM generate_series(1, 1000000) AS g")
        .await?;
    session.read_rows(200).await?;
    assert!(
        is_running(&superuser, db.name(), "alice", "generate_series").await?,
        "the big query should still be running while the client reads slowly"
    );
    drop(session);
    let took = no_busy_backend(&superuser, db.name()).await?;
    eprintln!("backend free {took:?} after the client vanished mid-result");

    // pgward itself is fine.
    let client = proxy.connect_as("bob", "bob").await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}

#[tokio::test]
async fn a_client_leaving_during_a_statement_has_it_cancelled() -> anyhow::Result<()> {
    let db = TestDb::new("faults_client_leaves").await?;
    let proxy = Proxy::start(&db, "", "").await?;
    let superuser = db.superuser().await?;

    // The socket just closes.
    let mut session = proxy.raw("alice", "alice").await?;
    session.send_query("SELECT pg_sleep(30)").await?;
    crate::pool::eventually(Duration::from_secs(5), || {
        is_running(&superuser, db.name(), "alice", "pg_sleep")
    })
    .await?
    .then_some(())
    .context("pg_sleep did not start")?;
    drop(session);
    let took = no_busy_backend(&superuser, db.name()).await?;
    eprintln!("statement stopped {took:?} after the socket closed");

    // A Terminate in the middle of the statement.
    let mut session = proxy.raw("bob", "bob").await?;
    session.send_query("SELECT pg_sleep(30)").await?;
    crate::pool::eventually(Duration::from_secs(5), || {
        is_running(&superuser, db.name(), "bob", "pg_sleep")
    })
    .await?
    .then_some(())
    .context("pg_sleep did not start")?;
    session.close().await?;
    let took = no_busy_backend(&superuser, db.name()).await?;
    eprintln!("statement stopped {took:?} after a Terminate");
    Ok(())
}
