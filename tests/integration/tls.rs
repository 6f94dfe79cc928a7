//! TLS on the client side: libpq's sslmodes against `server.tls`, SCRAM
//! channel binding (-PLUS) as libpq and a hand-driven client use it, and
//! tokio-postgres over rustls.

use std::process::Output;

use anyhow::Context;
use postgres_protocol::authentication::sasl::ChannelBinding;
use sha2::{Digest, Sha256};

use crate::harness::{Pgward, PgwardOptions, TestCert, TestDb, self_signed_cert};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::protocol::{
    GSSENC_REQUEST, PROTOCOL_3_0, READ_TIMEOUT, Raw, SSL_REQUEST, first_value, startup_packet,
    with_length,
};

/// pgward with `server.tls = mode` and a fresh self-signed certificate.
async fn start(
    label: &str,
    mode: &str,
) -> anyhow::Result<(TestDb, Pgward, TestCert, tempfile::TempDir)> {
    let db = TestDb::new(label).await?;
    let certs = tempfile::tempdir()?;
    let cert = self_signed_cert(certs.path())?;
    let pgward = db
        .start_pgward(PgwardOptions {
            tls: mode.into(),
            cert: Some(cert.clone()),
            ..PgwardOptions::default()
        })
        .await?;
    Ok((db, pgward, cert, certs))
}

fn conn_string(pgward: &Pgward, db: &TestDb, user: &str, password: &str, extra: &str) -> String {
    format!(
        "host=127.0.0.1 port={} dbname={} user={user} password={password} {extra}",
        pgward.port(),
        db.name()
    )
}

/// psql with a connection string and commands (`-c` each), without any
/// local configuration that could change the outcome.
async fn psql(conn: &str, commands: &[&str]) -> anyhow::Result<Output> {
    let mut cmd = tokio::process::Command::new("psql");
    cmd.arg(conn).args(["-X", "-w", "-tA"]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    cmd.env("PGPASSFILE", "/dev/null")
        .env("PGSSLROOTCERT", "/nonexistent/root.crt")
        .env_remove("PGSSLMODE")
        .env_remove("PGCHANNELBINDING");
    Ok(cmd.output().await?)
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_tls_session(out: &Output) {
    assert!(out.status.success(), "{}", text(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().next(), Some("1"), "{}", text(out));
    assert!(
        stdout.contains("SSL connection (protocol: TLS"),
        "\\conninfo does not show TLS: {}",
        text(out)
    );
}

#[tokio::test]
async fn psql_with_sslmode_require_gets_tls() -> anyhow::Result<()> {
    let (db, pgward, _cert, _dir) = start("psql_sslmode_require", "require").await?;
    let out = psql(
        &conn_string(&pgward, &db, "alice", "alice", "sslmode=require"),
        &["SELECT 1", "\\conninfo"],
    )
    .await?;
    assert_tls_session(&out);
    Ok(())
}

#[tokio::test]
async fn tls_require_refuses_plaintext_logins() -> anyhow::Result<()> {
    let (db, pgward, _cert, _dir) = start("tls_require_refuses_plaintext", "require").await?;

    let e = pgward
        .connect_as("alice", "alice")
        .await
        .err()
        .context("a plaintext login was accepted")?;
    let pg = e
        .downcast_ref::<tokio_postgres::Error>()
        .context("not a PostgreSQL error")?;
    let db_error = pg.as_db_error().context("no server error")?;
    assert_eq!(db_error.code().code(), "28000", "{db_error:?}");
    assert_eq!(db_error.severity(), "FATAL");

    // The refusal comes before authentication starts: no SCRAM exchange.
    let mut raw = Raw::connect(pgward.port()).await?;
    raw.startup("alice", db.name()).await?;
    let error = raw.expect_error_and_close().await?;
    assert_eq!(error.code(), "28000", "{error:?}");

    let out = psql(
        &conn_string(&pgward, &db, "alice", "alice", "sslmode=disable"),
        &["SELECT 1"],
    )
    .await?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FATAL"),
        "{}",
        text(&out)
    );
    Ok(())
}

#[tokio::test]
async fn libpq_uses_channel_binding_over_tls() -> anyhow::Result<()> {
    let (db, pgward, _cert, _dir) = start("libpq_channel_binding", "require").await?;
    // libpq refuses to finish a login with channel_binding=require unless
    // the server authenticated with SCRAM-SHA-256-PLUS.
    let out = psql(
        &conn_string(
            &pgward,
            &db,
            "alice",
            "alice",
            "sslmode=require channel_binding=require",
        ),
        &["SELECT 1", "\\conninfo"],
    )
    .await?;
    assert_tls_session(&out);

    let out = psql(
        &conn_string(
            &pgward,
            &db,
            "alice",
            "wrong",
            "sslmode=require channel_binding=require",
        ),
        &["SELECT 1"],
    )
    .await?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("password authentication failed for user \"alice\""),
        "{}",
        text(&out)
    );
    Ok(())
}

#[tokio::test]
async fn sslmode_prefer_upgrades_to_tls() -> anyhow::Result<()> {
    let (db, pgward, _cert, _dir) = start("sslmode_prefer", "prefer").await?;
    let out = psql(
        &conn_string(&pgward, &db, "bob", "bob", "sslmode=prefer"),
        &["SELECT 1", "\\conninfo"],
    )
    .await?;
    assert_tls_session(&out);

    // server.tls = prefer still takes plaintext clients.
    let out = psql(
        &conn_string(&pgward, &db, "bob", "bob", "sslmode=disable"),
        &["SELECT 1", "\\conninfo"],
    )
    .await?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("SSL connection"),
        "{}",
        text(&out)
    );
    Ok(())
}

#[tokio::test]
async fn sslmode_require_fails_cleanly_without_server_tls() -> anyhow::Result<()> {
    let db = TestDb::new("require_without_server_tls").await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;
    let out = psql(
        &conn_string(&pgward, &db, "alice", "alice", "sslmode=require"),
        &["SELECT 1"],
    )
    .await?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server does not support SSL"),
        "{}",
        text(&out)
    );
    Ok(())
}

#[tokio::test]
async fn tokio_postgres_over_tls() -> anyhow::Result<()> {
    for mode in ["prefer", "require"] {
        let (db, pgward, _cert, _dir) = start(&format!("tokio_postgres_tls_{mode}"), mode).await?;
        let client = pgward.connect_tls("alice", "alice", db.name()).await?;
        let row = client.query_one("SELECT 7::int4 * $1", &[&6i32]).await?;
        assert_eq!(row.get::<_, i32>(0), 42, "tls = {mode}");

        let e = pgward
            .connect_tls("alice", "wrong", db.name())
            .await
            .err()
            .context("a wrong password was accepted over TLS")?;
        let pg = e
            .downcast_ref::<tokio_postgres::Error>()
            .context("not a PostgreSQL error")?;
        let code = pg.as_db_error().map(|e| e.code().code().to_string());
        assert_eq!(code.as_deref(), Some("28P01"), "tls = {mode}: {e:#}");
    }
    Ok(())
}

/// tls-server-end-point (RFC 5929): the hash of the certificate with its
/// signature's hash function, SHA-256 for rcgen's ECDSA P-256 default.
fn end_point(cert: &TestCert) -> Vec<u8> {
    Sha256::digest(&cert.der).to_vec()
}

#[tokio::test]
async fn scram_plus_is_offered_to_every_name_and_checks_the_binding() -> anyhow::Result<()> {
    let (db, pgward, cert, _dir) = start("scram_plus_raw", "require").await?;
    let plus = "SCRAM-SHA-256-PLUS";
    let login = |user: &'static str, password: &'static str, binding: ChannelBinding, mech| {
        let port = pgward.port();
        let der = cert.der.clone();
        let database = db.name().to_string();
        async move {
            let mut raw = Raw::connect_tls(port, &der).await?;
            raw.startup(user, &database).await?;
            let exchange = raw.scram_as(mech, password, binding).await?;
            anyhow::Ok((raw, exchange))
        }
    };

    // The right binding logs in (and pgward's server signature checks out).
    let (mut raw, ok) = login(
        "alice",
        "alice",
        ChannelBinding::tls_server_end_point(end_point(&cert)),
        plus,
    )
    .await?;
    assert!(ok.error.is_none(), "{ok:?}");
    assert_eq!(
        ok.mechanisms,
        vec![plus.to_string(), "SCRAM-SHA-256".into()]
    );
    let msgs = raw.simple_query("SELECT 'bound'").await?;
    assert_eq!(first_value(&msgs).as_deref(), Some("bound"));

    // An unknown name is offered the same mechanisms and fails the same way.
    let mut failures = Vec::new();
    for (user, password) in [("alice", "wrong"), ("mallory", "alice")] {
        let binding = ChannelBinding::tls_server_end_point(end_point(&cert));
        let (_, exchange) = login(user, password, binding, plus).await?;
        assert_eq!(exchange.mechanisms, ok.mechanisms, "{user}");
        assert_eq!(exchange.failed_after, Some("client-final"), "{user}");
        let e = exchange.error.context("logged in")?;
        assert_eq!(e.code(), "28P01", "{user}: {e:?}");
        failures.push(e.message().replace(user, "<user>"));
    }
    assert_eq!(failures[0], failures[1]);

    // A binding to another certificate (a man in the middle) is refused.
    let other = ChannelBinding::tls_server_end_point(vec![0x5a; 32]);
    let (_, exchange) = login("alice", "alice", other, plus).await?;
    let e = exchange
        .error
        .context("a wrong channel binding logged in")?;
    assert!(["28000", "28P01"].contains(&e.code()), "{e:?}");

    // "y": the client could bind but believes the server cannot, although
    // PLUS was offered, so someone stripped it: refused.
    let (_, exchange) = login(
        "alice",
        "alice",
        ChannelBinding::unrequested(),
        "SCRAM-SHA-256",
    )
    .await?;
    let e = exchange.error.context("a downgraded exchange logged in")?;
    assert!(["28000", "28P01", "08P01"].contains(&e.code()), "{e:?}");

    // "n": a client without channel binding support may still log in.
    let (_, exchange) = login(
        "alice",
        "alice",
        ChannelBinding::unsupported(),
        "SCRAM-SHA-256",
    )
    .await?;
    assert!(exchange.error.is_none(), "{exchange:?}");
    Ok(())
}

#[tokio::test]
async fn negotiation_requests_inside_tls_are_protocol_violations() -> anyhow::Result<()> {
    let (db, pgward, cert, _dir) = start("requests_inside_tls", "require").await?;
    for code in [SSL_REQUEST, GSSENC_REQUEST] {
        let mut raw = Raw::connect_tls(pgward.port(), &cert.der).await?;
        raw.send(&with_length(code.to_be_bytes().to_vec())).await?;
        let e = raw.expect_error_and_close().await?;
        assert_eq!(e.code(), "08P01", "request {code}: {e:?}");
    }
    // Still serving over TLS.
    let client = pgward.connect_tls("alice", "alice", db.name()).await?;
    client.query_one("SELECT 1", &[]).await?;
    Ok(())
}

/// CVE-2021-23214: bytes a man in the middle appends to the client's
/// SSLRequest must not be read as a plaintext startup packet before the
/// handshake (nor as data inside the TLS session).
#[tokio::test]
async fn bytes_after_ssl_request_are_not_read_as_plaintext() -> anyhow::Result<()> {
    let (db, pgward, _cert, _dir) = start("bytes_after_ssl_request", "prefer").await?;
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", pgward.port())).await?;
    let mut bytes = with_length(SSL_REQUEST.to_be_bytes().to_vec());
    bytes.extend(startup_packet(
        PROTOCOL_3_0,
        &[("user", "alice"), ("database", db.name())],
    ));
    tcp.write_all(&bytes).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(READ_TIMEOUT, tcp.read_to_end(&mut answer))
        .await
        .context("pgward neither answered nor closed")?
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::ConnectionReset => Ok(0),
            _ => Err(e),
        })?;
    assert_eq!(answer.first(), Some(&b'S'), "{answer:02x?}");
    // After 'S' only TLS records may follow (an alert), never a protocol
    // message such as an authentication request.
    if let Some(&next) = answer.get(1) {
        assert_eq!(next, 0x15, "not a TLS alert after 'S': {answer:02x?}");
    }
    Ok(())
}
