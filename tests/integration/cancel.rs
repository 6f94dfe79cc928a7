//! CancelRequest through pgward: each client gets its own key, a cancel
//! with it reaches the upstream backend serving that client, a wrong or
//! stale key does nothing, and cancels work with TLS required (plaintext, as
//! libpq up to 16 sends them, and inside TLS, as libpq 17 does).
//!
//! Also home of [`RawSession`], a small protocol-level client that sees what
//! tokio-postgres hides: the BackendKeyData, the transaction status of each
//! ReadyForQuery, notifications, and the messages before a connection ends.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::backend::{ErrorFields, Message};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::harness::{TestCert, TestDb, self_signed_cert};
use crate::pool::{Proxy, is_running, sqlstate};

/// Anything a session can run over: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An error or notice as the server sent it.
#[derive(Debug, Clone)]
pub struct ServerError {
    pub severity: String,
    pub code: String,
    pub message: String,
}

/// Everything that arrived up to a ReadyForQuery (or the end of the
/// connection).
#[derive(Debug, Default)]
pub struct Reply {
    /// DataRow values, as text (simple query protocol).
    pub rows: Vec<Vec<Option<String>>>,
    pub error: Option<ServerError>,
    /// Transaction status of the ReadyForQuery; 0 when the connection ended.
    pub status: u8,
    /// Channels of the NotificationResponses that arrived meanwhile.
    pub notifications: Vec<String>,
    /// The connection ended instead of a ReadyForQuery.
    pub closed: bool,
}

impl Reply {
    /// Fails unless the statement succeeded.
    pub fn ok(&self) -> anyhow::Result<()> {
        match &self.error {
            None if !self.closed => Ok(()),
            _ => bail!("statement failed: {self:?}"),
        }
    }

    /// The one value of a one-row, one-column result.
    pub fn single(&self) -> anyhow::Result<String> {
        self.ok()?;
        match self.rows.as_slice() {
            [row] if row.len() == 1 => row[0].clone().context("NULL"),
            _ => bail!("expected one value, got {:?}", self.rows),
        }
    }
}

/// A client session at the protocol level.
pub struct RawSession {
    stream: Box<dyn Io>,
    buf: BytesMut,
    pub process_id: i32,
    pub secret_key: i32,
}

impl RawSession {
    /// Connects and logs in with SCRAM-SHA-256 (without channel binding),
    /// over TLS when `tls` names the server's certificate.
    pub async fn connect(
        port: u16,
        user: &str,
        password: &str,
        database: &str,
        tls: Option<&TestCert>,
    ) -> anyhow::Result<RawSession> {
        let stream = open(port, tls).await?;
        let mut session = RawSession {
            stream,
            buf: BytesMut::new(),
            process_id: 0,
            secret_key: 0,
        };
        let mut out = BytesMut::new();
        frontend::startup_message(
            [
                ("user", user),
                ("database", database),
                ("client_encoding", "UTF8"),
            ],
            &mut out,
        )?;
        session.send(&out).await?;
        let mut scram: Option<ScramSha256> = None;
        let mut key = None;
        loop {
            let message = session
                .next()
                .await?
                .context("the connection closed during startup")?;
            out.clear();
            match message {
                Message::AuthenticationSasl(body) => {
                    let mechanisms: Vec<String> =
                        body.mechanisms().map(|m| Ok(m.to_string())).collect()?;
                    anyhow::ensure!(
                        mechanisms.iter().any(|m| m == SCRAM_SHA_256),
                        "no SCRAM-SHA-256 among {mechanisms:?}"
                    );
                    let s = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out)?;
                    session.send(&out).await?;
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram.as_mut().context("SASL continue before SASL")?;
                    s.update(body.data())?;
                    frontend::sasl_response(s.message(), &mut out)?;
                    session.send(&out).await?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    scram
                        .as_mut()
                        .context("SASL final before SASL")?
                        .finish(body.data())?;
                }
                Message::BackendKeyData(body) => key = Some((body.process_id(), body.secret_key())),
                Message::ErrorResponse(body) => {
                    bail!("login refused: {:?}", server_error(body.fields())?)
                }
                Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        (session.process_id, session.secret_key) = key.context("no BackendKeyData")?;
        Ok(session)
    }

    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The next message; `None` once the server closed the connection.
    pub async fn next(&mut self) -> anyhow::Result<Option<Message>> {
        loop {
            if let Some(message) = Message::parse(&mut self.buf)? {
                return Ok(Some(message));
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => {
                    anyhow::ensure!(self.buf.is_empty(), "the connection ended mid-message");
                    return Ok(None);
                }
                Ok(_) => {}
                // A TLS peer that closes without close_notify, or a reset.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends a simple Query without waiting for the answer.
    pub async fn send_query(&mut self, sql: &str) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out)?;
        self.send(&out).await
    }

    /// Reads up to the next ReadyForQuery, or to the end of the connection.
    pub async fn read_reply(&mut self) -> anyhow::Result<Reply> {
        let mut reply = Reply::default();
        loop {
            let Some(message) = self.next().await? else {
                reply.closed = true;
                return Ok(reply);
            };
            match message {
                Message::DataRow(body) => {
                    let values = body
                        .ranges()
                        .map(|r| {
                            Ok(r.map(|r| String::from_utf8_lossy(&body.buffer()[r]).into_owned()))
                        })
                        .collect()?;
                    reply.rows.push(values);
                }
                Message::ErrorResponse(body) => {
                    let e = server_error(body.fields())?;
                    reply.error.get_or_insert(e);
                }
                Message::NotificationResponse(body) => {
                    reply.notifications.push(body.channel()?.to_string());
                }
                Message::ReadyForQuery(body) => {
                    reply.status = body.status();
                    return Ok(reply);
                }
                _ => {}
            }
        }
    }

    /// Runs one simple Query (up to 30 s).
    pub async fn query(&mut self, sql: &str) -> anyhow::Result<Reply> {
        self.send_query(sql).await?;
        tokio::time::timeout(Duration::from_secs(30), self.read_reply())
            .await
            .with_context(|| format!("no answer to {sql:?} within 30 s"))?
    }

    /// Reads until `n` DataRows have arrived.
    pub async fn read_rows(&mut self, n: usize) -> anyhow::Result<()> {
        let mut seen = 0;
        while seen < n {
            match self.next().await?.context("closed while reading rows")? {
                Message::DataRow(_) => seen += 1,
                Message::ErrorResponse(body) => bail!("{:?}", server_error(body.fields())?),
                _ => {}
            }
        }
        Ok(())
    }

    /// Ends the session politely (Terminate).
    pub async fn close(mut self) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        self.send(&out).await?;
        let _ = self.stream.shutdown().await;
        Ok(())
    }
}

fn server_error(mut fields: ErrorFields<'_>) -> anyhow::Result<ServerError> {
    let mut e = ServerError {
        severity: String::new(),
        code: String::new(),
        message: String::new(),
    };
    while let Some(f) = fields.next()? {
        let value = || String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'V' => e.severity = value(),
            b'S' if e.severity.is_empty() => e.severity = value(),
            b'C' => e.code = value(),
            b'M' => e.message = value(),
            _ => {}
        }
    }
    Ok(e)
}

/// rustls trusting only the test certificate.
pub fn tls_config(cert: &TestCert) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone().into())?;
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// TCP to 127.0.0.1:`port`, then SSLRequest and a TLS handshake when `tls`
/// is given.
async fn open(port: u16, tls: Option<&TestCert>) -> anyhow::Result<Box<dyn Io>> {
    let mut tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
    tcp.set_nodelay(true)?;
    let Some(cert) = tls else {
        return Ok(Box::new(tcp));
    };
    let mut out = BytesMut::new();
    frontend::ssl_request(&mut out);
    tcp.write_all(&out).await?;
    let answer = tcp.read_u8().await?;
    anyhow::ensure!(
        answer == b'S',
        "SSLRequest answered with {:?}",
        answer as char
    );
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(cert)?));
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    Ok(Box::new(connector.connect(name, tcp).await?))
}

/// Sends a CancelRequest, over TLS when `tls` is given, and waits until
/// pgward closes the connection (it has handled the request by then).
pub async fn send_cancel(
    port: u16,
    process_id: i32,
    secret_key: i32,
    tls: Option<&TestCert>,
) -> anyhow::Result<()> {
    let mut stream = open(port, tls).await?;
    let mut out = BytesMut::new();
    frontend::cancel_request(process_id, secret_key, &mut out);
    stream.write_all(&out).await?;
    stream.flush().await?;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    anyhow::ensure!(closed.is_ok(), "pgward kept a cancel connection open");
    anyhow::ensure!(rest.is_empty(), "pgward answered a CancelRequest: {rest:?}");
    Ok(())
}

/// Waits until `login` runs a statement containing `text` upstream.
async fn wait_running(superuser: &Client, db: &str, login: &str, text: &str) -> anyhow::Result<()> {
    let running = crate::pool::eventually(Duration::from_secs(5), || {
        is_running(superuser, db, login, text)
    })
    .await?;
    anyhow::ensure!(running, "{login} is not running {text:?} upstream");
    Ok(())
}

#[tokio::test]
async fn client_cancel_stops_the_statement_and_the_session_goes_on() -> anyhow::Result<()> {
    let db = TestDb::new("cancel_by_client").await?;
    let proxy = Proxy::start(&db, "", "").await?;
    let superuser = db.superuser().await?;
    let client = proxy.connect_as("alice", "alice").await?;
    let token = client.cancel_token();

    let started = Instant::now();
    let sleep = client.simple_query("SELECT pg_sleep(30)");
    let cancel = async {
        wait_running(&superuser, db.name(), "alice", "pg_sleep").await?;
        token.cancel_query(NoTls).await?;
        anyhow::Ok(Instant::now())
    };
    let (slept, cancelled) =
        tokio::join!(tokio::time::timeout(Duration::from_secs(20), sleep), cancel);
    let cancelled_at = cancelled?;
    let e = slept
        .context("the cancelled statement did not end")?
        .err()
        .context("the cancelled statement succeeded")?;
    assert_eq!(sqlstate(&e), Some(&SqlState::QUERY_CANCELED), "{e}");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(5)
            && started.elapsed() < Duration::from_secs(10),
        "the cancel took {:?}",
        cancelled_at.elapsed()
    );

    let row = client.query_one("SELECT 40 + 2", &[]).await?;
    assert_eq!(row.get::<_, i32>(0), 42);
    Ok(())
}

#[tokio::test]
async fn cancel_with_a_wrong_secret_does_nothing() -> anyhow::Result<()> {
    let db = TestDb::new("cancel_wrong_secret").await?;
    let proxy = Proxy::start(&db, "", "").await?;
    let superuser = db.superuser().await?;
    let mut session = proxy.raw("alice", "alice").await?;

    let started = Instant::now();
    session.send_query("SELECT pg_sleep(2), 'done'").await?;
    wait_running(&superuser, db.name(), "alice", "pg_sleep").await?;
    for wrong in [
        session.secret_key ^ 1,
        session.secret_key.wrapping_add(1 << 20),
        0,
    ] {
        send_cancel(proxy.port(), session.process_id, wrong, None).await?;
    }
    let reply = session.read_reply().await?;
    assert!(
        reply.error.is_none(),
        "cancelled by a wrong secret: {reply:?}"
    );
    assert_eq!(
        reply.rows,
        vec![vec![Some(String::new()), Some("done".into())]]
    );
    assert!(started.elapsed() >= Duration::from_millis(1900));

    // The right key does cancel, so the requests above were well formed.
    session.send_query("SELECT pg_sleep(30)").await?;
    wait_running(&superuser, db.name(), "alice", "pg_sleep").await?;
    send_cancel(proxy.port(), session.process_id, session.secret_key, None).await?;
    let reply = tokio::time::timeout(Duration::from_secs(5), session.read_reply())
        .await
        .context("the right key did not cancel within 5 s")??;
    assert_eq!(reply.error.map(|e| e.code).as_deref(), Some("57014"));
    assert_eq!(session.query("SELECT 1").await?.single()?, "1");
    Ok(())
}

#[tokio::test]
async fn a_stale_key_cannot_cancel_the_next_session_on_the_same_backend() -> anyhow::Result<()> {
    let db = TestDb::new("cancel_stale_key").await?;
    let proxy = Proxy::start(&db, "", "pool_size = 1").await?;
    let superuser = db.superuser().await?;
    let mut alice = proxy.raw("alice", "alice").await?;
    let backend = alice.query("SELECT pg_backend_pid()").await?.single()?;
    let stale = (alice.process_id, alice.secret_key);
    alice.close().await?;

    let mut bob = proxy.raw("bob", "bob").await?;
    assert_eq!(
        bob.query("SELECT pg_backend_pid()").await?.single()?,
        backend
    );
    assert_ne!(bob.process_id, stale.0, "a client key was handed out twice");
    bob.send_query("SELECT pg_sleep(2), 'done'").await?;
    wait_running(&superuser, db.name(), "bob", "pg_sleep").await?;
    send_cancel(proxy.port(), stale.0, stale.1, None).await?;
    let reply = bob.read_reply().await?;
    assert!(
        reply.error.is_none(),
        "alice's old key cancelled bob: {reply:?}"
    );
    assert_eq!(reply.rows.len(), 1);
    Ok(())
}

#[tokio::test]
async fn cancel_works_with_tls_required_plaintext_and_inside_tls() -> anyhow::Result<()> {
    let db = TestDb::new("cancel_tls_required").await?;
    let certs = tempfile::tempdir()?;
    let cert = self_signed_cert(certs.path())?;
    let server = format!(
        "tls = \"require\"\ncert_file = \"{}\"\nkey_file = \"{}\"",
        cert.cert_file.display(),
        cert.key_file.display()
    );
    let proxy = Proxy::start(&db, &server, "").await?;
    let superuser = db.superuser().await?;

    // Plaintext CancelRequest for a TLS session (libpq up to 16).
    let mut session =
        RawSession::connect(proxy.port(), "alice", "alice", db.name(), Some(&cert)).await?;
    session.send_query("SELECT pg_sleep(30)").await?;
    wait_running(&superuser, db.name(), "alice", "pg_sleep").await?;
    send_cancel(proxy.port(), session.process_id, session.secret_key, None).await?;
    let reply = tokio::time::timeout(Duration::from_secs(5), session.read_reply())
        .await
        .context("a plaintext cancel did not stop the statement within 5 s")??;
    assert_eq!(reply.error.map(|e| e.code).as_deref(), Some("57014"));
    assert_eq!(session.query("SELECT 7").await?.single()?, "7");

    // SSLRequest, then the CancelRequest inside TLS (libpq 17).
    let conn = format!(
        "host=localhost hostaddr=127.0.0.1 port={} dbname={} user=bob password=bob sslmode=require",
        proxy.port(),
        db.name()
    );
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(&cert)?);
    let (client, connection) = tokio_postgres::connect(&conn, tls.clone()).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let token = client.cancel_token();
    let sleep = client.simple_query("SELECT pg_sleep(30)");
    let cancel = async {
        wait_running(&superuser, db.name(), "bob", "pg_sleep").await?;
        token.cancel_query(tls.clone()).await?;
        anyhow::Ok(Instant::now())
    };
    let (slept, cancelled) =
        tokio::join!(tokio::time::timeout(Duration::from_secs(20), sleep), cancel);
    let cancelled_at = cancelled?;
    let e = slept
        .context("the statement did not end")?
        .err()
        .context("the statement was not cancelled")?;
    assert_eq!(sqlstate(&e), Some(&SqlState::QUERY_CANCELED), "{e}");
    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    assert_eq!(client.query_one("SELECT 1", &[]).await?.get::<_, i32>(0), 1);

    // A plaintext session is still refused: only cancels skip TLS.
    let refused = RawSession::connect(proxy.port(), "alice", "alice", db.name(), None).await;
    assert!(
        refused.is_err(),
        "a plaintext session got in with tls = require"
    );
    Ok(())
}
