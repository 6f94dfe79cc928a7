//! Graceful shutdown on SIGTERM: pgward stops accepting at once, lets
//! running statements finish, ends each session with FATAL 57P01 once it is
//! at rest, and exits with status 0 within `server.shutdown_timeout_ms`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::harness::TestDb;
use crate::pool::{Proxy, eventually, is_running, pgward_backends};

/// Whether a TCP connection to pgward's port is refused.
async fn refuses_connections(port: u16) -> anyhow::Result<bool> {
    Ok(tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .is_err())
}

#[tokio::test]
async fn sigterm_lets_a_running_statement_finish_then_ends_the_session() -> anyhow::Result<()> {
    let db = TestDb::new("shutdown_running_statement").await?;
    let mut proxy = Proxy::start(&db, "shutdown_timeout_ms = 10000", "").await?;
    let superuser = db.superuser().await?;
    let mut session = proxy.raw("alice", "alice").await?;

    session.send_query("SELECT pg_sleep(2), 'finished'").await?;
    let running = eventually(Duration::from_secs(5), || {
        is_running(&superuser, db.name(), "alice", "pg_sleep")
    })
    .await?;
    assert!(running, "pg_sleep did not start");
    let started = Instant::now();
    proxy.terminate()?;

    // New clients are turned away while the statement still runs.
    let refused = eventually(Duration::from_secs(1), || refuses_connections(proxy.port())).await?;
    assert!(refused, "pgward still accepts connections after SIGTERM");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "checked too late to tell"
    );
    assert!(
        proxy.wait_exit(Duration::ZERO).await?.is_none(),
        "pgward exited while a statement was running"
    );

    // The statement completes with its result …
    let reply = tokio::time::timeout(Duration::from_secs(10), session.read_reply())
        .await
        .context("no result within 10 s")??;
    assert!(reply.error.is_none() && !reply.closed, "{reply:?}");
    assert_eq!(
        reply.rows,
        vec![vec![Some(String::new()), Some("finished".to_string())]]
    );
    assert_eq!(reply.status, b'I');

    // … then the session ends with 57P01 …
    let end = tokio::time::timeout(Duration::from_secs(5), session.read_reply())
        .await
        .context("the session was not ended within 5 s of its statement")??;
    let e = end.error.as_ref().context("no error at the end")?;
    assert_eq!((e.severity.as_str(), e.code.as_str()), ("FATAL", "57P01"));
    assert!(end.closed, "{end:?}");

    // … and pgward exits cleanly, well within the shutdown timeout.
    let status = proxy
        .wait_exit(Duration::from_secs(10))
        .await?
        .with_context(|| format!("pgward still runs; its log:\n{}", proxy.log()))?;
    assert!(status.success(), "pgward exited with {status}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
    eprintln!("shutdown with a 2 s statement running took {took:?}");

    // The upstream connection did not stay behind busy.
    let quiet = eventually(Duration::from_secs(5), || async {
        Ok(pgward_backends(&superuser, db.name(), Some("active")).await? == 0)
    })
    .await?;
    assert!(quiet);
    Ok(())
}

#[tokio::test]
async fn sigterm_ends_idle_sessions_promptly() -> anyhow::Result<()> {
    let db = TestDb::new("shutdown_idle").await?;
    let mut proxy = Proxy::start(&db, "shutdown_timeout_ms = 20000", "").await?;
    let mut alice = proxy.raw("alice", "alice").await?;
    alice.query("SELECT 1").await?.ok()?;
    let bob = proxy.connect_as("bob", "bob").await?;
    bob.simple_query("SELECT 1").await?;

    let started = Instant::now();
    proxy.terminate()?;
    let end = tokio::time::timeout(Duration::from_secs(2), alice.read_reply())
        .await
        .context("an idle session was not ended within 2 s")??;
    let e = end.error.as_ref().context("no error at the end")?;
    assert_eq!((e.severity.as_str(), e.code.as_str()), ("FATAL", "57P01"));
    assert!(end.closed);

    let status = proxy
        .wait_exit(Duration::from_secs(3))
        .await?
        .with_context(|| {
            format!(
                "pgward waited for idle sessions instead of ending them; its log:\n{}",
                proxy.log()
            )
        })?;
    assert!(status.success(), "pgward exited with {status}");
    eprintln!("shutdown with idle sessions took {:?}", started.elapsed());
    assert!(bob.simple_query("SELECT 1").await.is_err());
    Ok(())
}

#[tokio::test]
async fn shutdown_timeout_stops_statements_that_run_too_long() -> anyhow::Result<()> {
    let db = TestDb::new("shutdown_timeout").await?;
    let mut proxy = Proxy::start(&db, "shutdown_timeout_ms = 1000", "").await?;
    let superuser = db.superuser().await?;
    let mut session = proxy.raw("alice", "alice").await?;
    session.send_query("SELECT pg_sleep(30)").await?;
    let running = eventually(Duration::from_secs(5), || {
        is_running(&superuser, db.name(), "alice", "pg_sleep")
    })
    .await?;
    assert!(running, "pg_sleep did not start");

    let started = Instant::now();
    proxy.terminate()?;
    let status = proxy
        .wait_exit(Duration::from_secs(5))
        .await?
        .context("pgward did not exit within 5 s with shutdown_timeout_ms = 1000")?;
    assert!(status.success(), "pgward exited with {status}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "pgward did not wait for the running statement"
    );
    // The cancelled statement's error may arrive first; then the session
    // must be closed.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let reply = session.read_reply().await?;
            if reply.closed {
                return anyhow::Ok(true);
            }
        }
    })
    .await
    .context("the client was not disconnected")??;
    assert!(closed);

    // The statement pgward gave up on must not go on running upstream.
    let stopped = eventually(Duration::from_secs(5), || async {
        Ok(pgward_backends(&superuser, db.name(), Some("active")).await? == 0)
    })
    .await?;
    assert!(
        stopped,
        "pg_sleep(30) still runs upstream 5 s after pgward exited"
    );
    Ok(())
}
