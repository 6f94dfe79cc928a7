//! The wire protocol at its edges, over raw TCP with hand-built bytes:
//! startup negotiation, malformed and hostile packets before and after
//! login, and startup settings. pgward must answer as PostgreSQL would (an
//! ErrorResponse with the right SQLSTATE, then close) and never hang or die.
//!
//! `Raw` is also the raw client of the `auth` tests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use rand::{Rng, RngExt, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use pgward::cluster::{quote_ident, quote_literal};

use crate::harness::{Pgward, PgwardOptions, SERVICE_ROLE, TestDb};

/// How long any single read may take before the test calls it a hang.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub const PROTOCOL_3_0: u32 = 3 << 16;
pub const SSL_REQUEST: u32 = 80_877_103;
pub const GSSENC_REQUEST: u32 = 80_877_104;

/// One backend message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// The authentication request code of an 'R' message.
    pub fn auth_code(&self) -> Option<i32> {
        (self.tag == b'R').then(|| be_i32(&self.body))?
    }

    /// The fields of an ErrorResponse.
    pub fn error(&self) -> Option<ErrorFields> {
        (self.tag == b'E').then(|| ErrorFields::decode(&self.body))
    }

    /// Name and value of a ParameterStatus.
    pub fn parameter_status(&self) -> Option<(String, String)> {
        if self.tag != b'S' {
            return None;
        }
        let mut parts = self.body.split(|&b| b == 0);
        let name = String::from_utf8_lossy(parts.next()?).into_owned();
        let value = String::from_utf8_lossy(parts.next()?).into_owned();
        Some((name, value))
    }
}

/// ErrorResponse fields by their one-byte type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFields(pub BTreeMap<u8, String>);

impl ErrorFields {
    fn decode(body: &[u8]) -> ErrorFields {
        let mut fields = BTreeMap::new();
        let mut rest = body;
        while let Some((&kind, after)) = rest.split_first() {
            if kind == 0 {
                break;
            }
            let end = after.iter().position(|&b| b == 0).unwrap_or(after.len());
            fields.insert(kind, String::from_utf8_lossy(&after[..end]).into_owned());
            rest = after.get(end + 1..).unwrap_or_default();
        }
        ErrorFields(fields)
    }

    pub fn code(&self) -> &str {
        self.0.get(&b'C').map_or("", String::as_str)
    }

    pub fn message(&self) -> &str {
        self.0.get(&b'M').map_or("", String::as_str)
    }

    pub fn severity(&self) -> &str {
        self.0.get(&b'V').map_or("", String::as_str)
    }
}

fn be_i32(b: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// A startup-phase packet: length, version (or request code), parameters.
pub fn startup_packet(version: u32, params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    for (name, value) in params {
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    with_length(body)
}

pub fn with_length(body: Vec<u8>) -> Vec<u8> {
    let len = u32::try_from(body.len() + 4).expect("small packet");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// A regular message: tag, length, body.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&with_length(body.to_vec()));
    out
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A Query message.
pub fn query(sql: &str) -> Vec<u8> {
    message(b'Q', &cstr(sql))
}

/// The byte stream under a raw connection: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A hand-driven client connection.
pub struct Raw {
    stream: Box<dyn Io>,
}

/// How a SCRAM exchange ended, with every message the server sent.
#[derive(Debug)]
pub struct Exchange {
    /// Mechanisms offered in AuthenticationSASL.
    pub mechanisms: Vec<String>,
    /// The server-first message, if the server got that far.
    pub server_first: Option<String>,
    /// The ErrorResponse that ended the exchange, if any.
    pub error: Option<ErrorFields>,
    /// The step after which the error came: "startup", "client-first" or
    /// "client-final".
    pub failed_after: Option<&'static str>,
    /// Messages after AuthenticationOk, through the first ReadyForQuery.
    pub after_ok: Vec<Msg>,
}

impl Raw {
    pub async fn connect(port: u16) -> anyhow::Result<Raw> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Raw {
            stream: Box::new(stream),
        })
    }

    /// SSLRequest, then a TLS handshake that trusts only `cert_der`.
    pub async fn connect_tls(port: u16, cert_der: &[u8]) -> anyhow::Result<Raw> {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        tcp.write_all(&with_length(SSL_REQUEST.to_be_bytes().to_vec()))
            .await?;
        let answer = tokio::time::timeout(READ_TIMEOUT, tcp.read_u8()).await??;
        ensure!(
            answer == b'S',
            "SSLRequest answered with {:?}",
            answer as char
        );
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert_der.to_vec().into())?;
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from("localhost")?;
        let tls = tokio::time::timeout(READ_TIMEOUT, connector.connect(name, tcp)).await??;
        Ok(Raw {
            stream: Box::new(tls),
        })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Half-closes the connection: pgward sees end of stream.
    pub async fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.stream.shutdown().await
    }

    /// One byte (the answer to SSLRequest and GSSENCRequest).
    pub async fn read_byte(&mut self) -> anyhow::Result<u8> {
        let b = tokio::time::timeout(READ_TIMEOUT, self.stream.read_u8())
            .await
            .context("no answer byte within the timeout")??;
        Ok(b)
    }

    /// The next message; `None` when the server closed the connection
    /// (cleanly or with a reset). A read that takes longer than
    /// [`READ_TIMEOUT`] is an error: the server hangs.
    pub async fn recv(&mut self) -> anyhow::Result<Option<Msg>> {
        tokio::time::timeout(READ_TIMEOUT, self.recv_inner())
            .await
            .context("the server neither answered nor closed within the timeout")?
    }

    async fn recv_inner(&mut self) -> anyhow::Result<Option<Msg>> {
        let mut head = [0u8; 5];
        match self.stream.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if is_closed(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let body_len = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_sub(4))
            .filter(|&l| l < 1 << 26)
            .with_context(|| format!("server sent a message with length {len}"))?;
        let mut body = vec![0; body_len];
        match self.stream.read_exact(&mut body).await {
            Ok(_) => {}
            Err(e) if is_closed(&e) => bail!("connection closed inside a message"),
            Err(e) => return Err(e.into()),
        }
        Ok(Some(Msg { tag: head[0], body }))
    }

    /// Messages up to and including the next ReadyForQuery; fails on a
    /// close before it.
    pub async fn until_ready(&mut self) -> anyhow::Result<Vec<Msg>> {
        let mut msgs = Vec::new();
        loop {
            let msg = self
                .recv()
                .await?
                .with_context(|| format!("closed before ReadyForQuery, after {msgs:?}"))?;
            let ready = msg.tag == b'Z';
            msgs.push(msg);
            if ready {
                return Ok(msgs);
            }
        }
    }

    /// Reads until the server closes; returns what it sent.
    pub async fn until_closed(&mut self) -> anyhow::Result<Vec<Msg>> {
        let mut msgs = Vec::new();
        while let Some(msg) = self.recv().await? {
            msgs.push(msg);
            ensure!(msgs.len() < 10_000, "the server keeps talking");
        }
        Ok(msgs)
    }

    /// The server must send an ErrorResponse (after anything else) and
    /// close; returns the error.
    pub async fn expect_error_and_close(&mut self) -> anyhow::Result<ErrorFields> {
        let msgs = self.until_closed().await?;
        let last = msgs
            .last()
            .with_context(|| "the server closed without an ErrorResponse".to_string())?;
        last.error().with_context(|| {
            format!("the last message before the close is not an ErrorResponse: {msgs:?}")
        })
    }

    /// Sends a StartupMessage (protocol 3.0) for `user` and `database`.
    pub async fn startup(&mut self, user: &str, database: &str) -> anyhow::Result<()> {
        self.send(&startup_packet(
            PROTOCOL_3_0,
            &[("user", user), ("database", database)],
        ))
        .await?;
        Ok(())
    }

    /// Runs a SCRAM-SHA-256 exchange (without channel binding) after the
    /// StartupMessage was sent, with rust-postgres' client implementation.
    pub async fn scram(&mut self, password: &str) -> anyhow::Result<Exchange> {
        // "n": the client does not support channel binding.
        self.scram_as("SCRAM-SHA-256", password, ChannelBinding::unsupported())
            .await
    }

    /// The same with a chosen mechanism and channel binding; on success the
    /// server's signature is checked too.
    pub async fn scram_as(
        &mut self,
        mechanism: &str,
        password: &str,
        binding: ChannelBinding,
    ) -> anyhow::Result<Exchange> {
        let mut client = ScramSha256::new(password.as_bytes(), binding);
        self.scram_with(mechanism, &mut |step, data| match step {
            Step::First => Ok(client.message().to_vec()),
            Step::Final => {
                client.update(data)?;
                Ok(client.message().to_vec())
            }
            Step::Verify => {
                client.finish(data)?;
                Ok(Vec::new())
            }
        })
        .await
    }

    /// The exchange with a caller-supplied client (see [`ScramClient`]).
    async fn scram_with(
        &mut self,
        mechanism: &str,
        next: &mut ScramClient<'_>,
    ) -> anyhow::Result<Exchange> {
        let mut exchange = Exchange {
            mechanisms: Vec::new(),
            server_first: None,
            error: None,
            failed_after: None,
            after_ok: Vec::new(),
        };
        let mut skipped = Vec::new();
        let sasl = loop {
            let msg = self
                .recv()
                .await?
                .context("closed before AuthenticationSASL")?;
            if let Some(e) = msg.error() {
                exchange.error = Some(e);
                exchange.failed_after = Some("startup");
                return Ok(exchange);
            }
            if msg.auth_code() == Some(10) {
                break msg;
            }
            // NegotiateProtocolVersion may come first.
            ensure!(
                msg.tag == b'v' && skipped.is_empty(),
                "unexpected message before AuthenticationSASL: {msg:?}"
            );
            skipped.push(msg);
        };
        exchange.mechanisms = sasl.body[4..]
            .split(|&b| b == 0)
            .filter(|m| !m.is_empty())
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();

        let first = next(Step::First, &[])?;
        let mut body = cstr(mechanism);
        body.extend_from_slice(&i32::try_from(first.len())?.to_be_bytes());
        body.extend_from_slice(&first);
        self.send(&message(b'p', &body)).await?;

        let msg = self.recv().await?.context("closed after client-first")?;
        if let Some(e) = msg.error() {
            exchange.error = Some(e);
            exchange.failed_after = Some("client-first");
            return Ok(exchange);
        }
        ensure!(
            msg.auth_code() == Some(11),
            "expected AuthenticationSASLContinue, got {msg:?}"
        );
        let server_first = msg.body[4..].to_vec();
        exchange.server_first = Some(String::from_utf8(server_first.clone())?);

        let last = next(Step::Final, &server_first)?;
        self.send(&message(b'p', &last)).await?;
        let msg = self.recv().await?.context("closed after client-final")?;
        if let Some(e) = msg.error() {
            exchange.error = Some(e);
            exchange.failed_after = Some("client-final");
            return Ok(exchange);
        }
        ensure!(
            msg.auth_code() == Some(12),
            "expected AuthenticationSASLFinal, got {msg:?}"
        );
        next(Step::Verify, &msg.body[4..]).context("the server's signature is wrong")?;
        let ok = self.recv().await?.context("closed after SASLFinal")?;
        ensure!(
            ok.auth_code() == Some(0),
            "expected AuthenticationOk, got {ok:?}"
        );
        exchange.after_ok = self.until_ready().await?;
        Ok(exchange)
    }

    /// Startup and SCRAM login; returns the messages after AuthenticationOk
    /// (ParameterStatus, BackendKeyData, ReadyForQuery).
    pub async fn login(
        &mut self,
        user: &str,
        password: &str,
        database: &str,
    ) -> anyhow::Result<Vec<Msg>> {
        self.startup(user, database).await?;
        self.finish_login(password).await
    }

    /// SCRAM login after a StartupMessage the caller sent itself.
    pub async fn finish_login(&mut self, password: &str) -> anyhow::Result<Vec<Msg>> {
        let exchange = self.scram(password).await?;
        if let Some(e) = exchange.error {
            bail!("login refused after {:?}: {e:?}", exchange.failed_after);
        }
        Ok(exchange.after_ok)
    }

    /// Runs `sql` with the simple protocol; returns every message through
    /// ReadyForQuery.
    pub async fn simple_query(&mut self, sql: &str) -> anyhow::Result<Vec<Msg>> {
        self.send(&query(sql)).await?;
        self.until_ready().await
    }
}

/// The client side of a SCRAM exchange: given a step and the server's last
/// message (empty for the first step), the client's next message.
type ScramClient<'a> = dyn FnMut(Step, &[u8]) -> anyhow::Result<Vec<u8>> + 'a;

#[derive(Clone, Copy)]
enum Step {
    /// Produce client-first.
    First,
    /// Given server-first, produce client-final.
    Final,
    /// Check server-final.
    Verify,
}

fn is_closed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

/// The text of the first DataRow's first column.
pub fn first_value(msgs: &[Msg]) -> Option<String> {
    let row = msgs.iter().find(|m| m.tag == b'D')?;
    let len = be_i32(row.body.get(2..)?)?;
    let len = usize::try_from(len).ok()?;
    let value = row.body.get(6..6 + len)?;
    Some(String::from_utf8_lossy(value).into_owned())
}

fn errors(msgs: &[Msg]) -> Vec<ErrorFields> {
    msgs.iter().filter_map(Msg::error).collect()
}

/// pgward is still running and serves a fresh session.
pub async fn assert_still_serving(pgward: &Pgward, database: &str) -> anyhow::Result<()> {
    let pid = pgward.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("pgward (pid {pid}) is gone; its log:\n{}", pgward.log()))?;
    ensure!(
        !status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains("zombie")),
        "pgward (pid {pid}) exited; its log:\n{}",
        pgward.log()
    );
    let mut raw = Raw::connect(pgward.port()).await?;
    raw.login("alice", "alice", database).await?;
    let msgs = raw.simple_query("SELECT 1").await?;
    ensure!(
        first_value(&msgs).as_deref() == Some("1"),
        "SELECT 1 after the abuse: {msgs:?}"
    );
    Ok(())
}

async fn start(label: &str) -> anyhow::Result<(TestDb, Pgward)> {
    let db = TestDb::new(label).await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;
    Ok((db, pgward))
}

/// A logged-in raw session as alice.
async fn logged_in(pgward: &Pgward, db: &TestDb) -> anyhow::Result<Raw> {
    let mut raw = Raw::connect(pgward.port()).await?;
    raw.login("alice", "alice", db.name()).await?;
    Ok(raw)
}

fn negotiate_fields(msg: &Msg) -> anyhow::Result<(i32, Vec<String>)> {
    ensure!(
        msg.tag == b'v',
        "expected NegotiateProtocolVersion, got {msg:?}"
    );
    let minor = be_i32(&msg.body).context("short 'v'")?;
    let count = be_i32(msg.body.get(4..).unwrap_or_default()).context("short 'v'")?;
    let names: Vec<String> = msg.body[8..]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    ensure!(
        usize::try_from(count)? == names.len(),
        "count {count} but names {names:?}"
    );
    Ok((minor, names))
}

#[tokio::test]
async fn protocol_3_2_is_negotiated_down_to_3_0_and_login_continues() -> anyhow::Result<()> {
    let (db, pgward) = start("protocol_3_2").await?;
    let mut raw = Raw::connect(pgward.port()).await?;
    raw.send(&startup_packet(
        PROTOCOL_3_0 | 2,
        &[("user", "alice"), ("database", db.name())],
    ))
    .await?;
    let first = raw.recv().await?.context("closed after a 3.2 startup")?;
    let (minor, unrecognised) = negotiate_fields(&first)?;
    assert_eq!(minor, 0, "pgward speaks 3.0");
    assert!(unrecognised.is_empty(), "{unrecognised:?}");
    raw.finish_login("alice").await?;
    let msgs = raw.simple_query("SELECT 32").await?;
    assert_eq!(first_value(&msgs).as_deref(), Some("32"));
    Ok(())
}

#[tokio::test]
async fn unknown_protocol_options_are_listed_as_unrecognised() -> anyhow::Result<()> {
    let (db, pgward) = start("pq_options").await?;
    let mut raw = Raw::connect(pgward.port()).await?;
    raw.send(&startup_packet(
        PROTOCOL_3_0,
        &[
            ("user", "alice"),
            ("database", db.name()),
            ("_pq_.foo", "1"),
        ],
    ))
    .await?;
    let first = raw.recv().await?.context("closed after startup")?;
    let (minor, unrecognised) = negotiate_fields(&first)?;
    assert_eq!(minor, 0);
    assert_eq!(unrecognised, vec!["_pq_.foo".to_string()]);
    raw.finish_login("alice").await?;
    Ok(())
}

#[tokio::test]
async fn protocol_versions_other_than_3_are_refused() -> anyhow::Result<()> {
    let (db, pgward) = start("protocol_2_and_4").await?;
    for major in [2u32, 4] {
        let mut raw = Raw::connect(pgward.port()).await?;
        raw.send(&startup_packet(
            major << 16,
            &[("user", "alice"), ("database", db.name())],
        ))
        .await?;
        let e = raw.expect_error_and_close().await?;
        assert_eq!(e.code(), "0A000", "protocol {major}.0: {e:?}");
        assert_eq!(e.severity(), "FATAL", "protocol {major}.0: {e:?}");
    }
    assert_still_serving(&pgward, db.name()).await
}

#[tokio::test]
async fn gssenc_request_is_declined_then_startup_works() -> anyhow::Result<()> {
    let (db, pgward) = start("gssenc_request").await?;
    let mut raw = Raw::connect(pgward.port()).await?;
    raw.send(&with_length(GSSENC_REQUEST.to_be_bytes().to_vec()))
        .await?;
    assert_eq!(raw.read_byte().await?, b'N');
    raw.login("alice", "alice", db.name()).await?;
    let msgs = raw.simple_query("SELECT 'after gss'").await?;
    assert_eq!(first_value(&msgs).as_deref(), Some("after gss"));
    Ok(())
}

#[tokio::test]
async fn ssl_request_on_a_listener_without_tls_is_declined() -> anyhow::Result<()> {
    let (db, pgward) = start("ssl_request_no_tls").await?;
    let mut raw = Raw::connect(pgward.port()).await?;
    raw.send(&with_length(SSL_REQUEST.to_be_bytes().to_vec()))
        .await?;
    assert_eq!(raw.read_byte().await?, b'N');
    raw.login("alice", "alice", db.name()).await?;
    let msgs = raw.simple_query("SELECT 'plain'").await?;
    assert_eq!(first_value(&msgs).as_deref(), Some("plain"));
    Ok(())
}

#[tokio::test]
async fn replication_connections_are_refused() -> anyhow::Result<()> {
    let (db, pgward) = start("replication").await?;
    for value in ["database", "true"] {
        let mut raw = Raw::connect(pgward.port()).await?;
        raw.send(&startup_packet(
            PROTOCOL_3_0,
            &[
                ("user", "alice"),
                ("database", db.name()),
                ("replication", value),
            ],
        ))
        .await?;
        let e = raw.expect_error_and_close().await?;
        assert_eq!(e.code(), "0A000", "replication={value}: {e:?}");
    }
    Ok(())
}

#[tokio::test]
async fn malformed_startup_packets_close_the_connection() -> anyhow::Result<()> {
    let (db, pgward) = start("malformed_startup").await?;
    let good = startup_packet(PROTOCOL_3_0, &[("user", "alice"), ("database", db.name())]);

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("length 4", 4u32.to_be_bytes().to_vec()),
        ("length 0", 0u32.to_be_bytes().to_vec()),
        ("negative length", (-8i32).to_be_bytes().to_vec()),
    ];
    let mut big = 10_001u32.to_be_bytes().to_vec();
    big.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    big.extend(std::iter::repeat_n(b'a', 10_001 - 8));
    cases.push(("length 10001", big));
    let mut huge = 0x7fff_0000u32.to_be_bytes().to_vec();
    huge.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    cases.push(("length 2 GiB", huge));
    // Claims 100 bytes, then the client stops sending.
    let mut truncated = 100u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&good[4..20]);
    cases.push(("truncated", truncated));
    // The length covers only part of the parameter list.
    let mut short = good.clone();
    let cut = u32::try_from(good.len() - 6)?;
    short[..4].copy_from_slice(&cut.to_be_bytes());
    short.truncate(good.len() - 6);
    cases.push(("unterminated parameters", short));
    // An odd number of strings.
    let mut odd = PROTOCOL_3_0.to_be_bytes().to_vec();
    odd.extend_from_slice(b"user\0alice\0database\0");
    odd.push(0);
    cases.push(("parameter without a value", with_length(odd)));

    for (what, bytes) in cases {
        let started = Instant::now();
        let mut raw = Raw::connect(pgward.port()).await?;
        // pgward may close before reading everything; that is fine.
        let _ = raw.send(&bytes).await;
        let _ = raw.shutdown_write().await;
        let msgs = raw
            .until_closed()
            .await
            .with_context(|| format!("{what}: no close"))?;
        assert!(
            msgs.iter().all(|m| m.tag == b'E'),
            "{what}: only an error may come back, got {msgs:?}"
        );
        for e in errors(&msgs) {
            assert_eq!(e.code(), "08P01", "{what}: {e:?}");
        }
        assert!(started.elapsed() < READ_TIMEOUT, "{what}: slow close");
    }
    assert_still_serving(&pgward, db.name()).await
}

#[tokio::test]
async fn function_call_is_refused_and_closes() -> anyhow::Result<()> {
    let (db, pgward) = start("function_call").await?;
    let mut raw = logged_in(&pgward, &db).await?;
    // FunctionCall of pg_backend_pid() (oid 2026), no arguments, text result.
    let mut body = 2026u32.to_be_bytes().to_vec();
    body.extend_from_slice(&0u16.to_be_bytes()); // argument format codes
    body.extend_from_slice(&0u16.to_be_bytes()); // arguments
    body.extend_from_slice(&0u16.to_be_bytes()); // result format
    raw.send(&message(b'F', &body)).await?;
    let e = raw.expect_error_and_close().await?;
    assert_eq!(e.code(), "0A000", "{e:?}");
    assert_still_serving(&pgward, db.name()).await
}

#[tokio::test]
async fn bad_message_lengths_are_protocol_violations() -> anyhow::Result<()> {
    let (db, pgward) = start("bad_message_lengths").await?;
    for (what, len) in [
        ("negative", -1i32),
        ("most negative", i32::MIN),
        ("zero", 0),
        ("three", 3),
    ] {
        let mut raw = logged_in(&pgward, &db).await?;
        let mut bytes = vec![b'Q'];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(b"SELECT 1\0");
        raw.send(&bytes).await?;
        let e = raw
            .expect_error_and_close()
            .await
            .with_context(|| format!("length {what}"))?;
        assert_eq!(e.code(), "08P01", "length {what}: {e:?}");
    }
    assert_still_serving(&pgward, db.name()).await
}

#[tokio::test]
async fn a_query_claiming_2_gib_is_refused_without_being_read() -> anyhow::Result<()> {
    let (db, pgward) = start("huge_query").await?;
    let before = pgward.rss_kib()?;
    let mut raw = logged_in(&pgward, &db).await?;
    // Only the header: if pgward waited for the body, this would hang.
    let mut bytes = vec![b'Q'];
    bytes.extend_from_slice(&i32::MAX.to_be_bytes());
    bytes.extend_from_slice(b"SELECT ");
    raw.send(&bytes).await?;
    let e = raw.expect_error_and_close().await?;
    assert_eq!(e.code(), "08P01", "{e:?}");
    let after = pgward.rss_kib()?;
    assert!(
        after < before + 64 * 1024,
        "pgward grew from {before} KiB to {after} KiB"
    );
    assert_still_serving(&pgward, db.name()).await
}

#[tokio::test]
async fn unknown_message_types_are_protocol_violations() -> anyhow::Result<()> {
    let (db, pgward) = start("unknown_message_type").await?;
    for tag in [b'z', b'A', 0u8, 0xff] {
        let mut raw = logged_in(&pgward, &db).await?;
        raw.send(&message(tag, b"hello\0")).await?;
        let e = raw
            .expect_error_and_close()
            .await
            .with_context(|| format!("tag {tag}"))?;
        assert_eq!(e.code(), "08P01", "tag {tag}: {e:?}");
    }
    assert_still_serving(&pgward, db.name()).await
}

#[tokio::test]
async fn malformed_query_and_parse_bodies_are_protocol_violations() -> anyhow::Result<()> {
    let (db, pgward) = start("malformed_bodies").await?;
    let mut parse_negative = cstr("");
    parse_negative.extend_from_slice(&cstr("SELECT $1"));
    parse_negative.extend_from_slice(&(-1i16).to_be_bytes());
    let mut parse_short_types = cstr("");
    parse_short_types.extend_from_slice(&cstr("SELECT $1"));
    parse_short_types.extend_from_slice(&2i16.to_be_bytes());
    parse_short_types.extend_from_slice(&23u32.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("Query without NUL", message(b'Q', b"SELECT 1")),
        (
            "Query with bytes after NUL",
            message(b'Q', b"SELECT 1\0; DROP"),
        ),
        ("Parse without query", message(b'P', &cstr("stmt"))),
        (
            "Parse with a negative type count",
            message(b'P', &parse_negative),
        ),
        (
            "Parse with missing types",
            message(b'P', &parse_short_types),
        ),
    ];
    for (what, bytes) in cases {
        let mut raw = logged_in(&pgward, &db).await?;
        raw.send(&bytes).await?;
        let e = raw
            .expect_error_and_close()
            .await
            .with_context(|| what.to_string())?;
        assert_eq!(e.code(), "08P01", "{what}: {e:?}");
    }
    assert_still_serving(&pgward, db.name()).await
}

#[tokio::test]
async fn invalid_utf8_in_a_query_is_an_error_not_a_disconnect() -> anyhow::Result<()> {
    let (db, pgward) = start("invalid_utf8_query").await?;
    let mut raw = logged_in(&pgward, &db).await?;
    raw.send(&message(b'Q', b"SELECT '\xff\xfe'\0")).await?;
    let msgs = raw.until_ready().await?;
    let errors = errors(&msgs);
    assert_eq!(errors.len(), 1, "{msgs:?}");
    assert_eq!(errors[0].code(), "22021", "{:?}", errors[0]);
    assert_eq!(errors[0].severity(), "ERROR");
    let msgs = raw.simple_query("SELECT 'fine'").await?;
    assert_eq!(first_value(&msgs).as_deref(), Some("fine"));
    Ok(())
}

#[tokio::test]
async fn a_refused_parse_skips_the_pipeline_to_sync() -> anyhow::Result<()> {
    let (db, pgward) = start("refused_parse_pipeline").await?;
    let mut raw = logged_in(&pgward, &db).await?;
    let mut bind = cstr(""); // portal
    bind.extend_from_slice(&cstr("")); // statement
    bind.extend_from_slice(&0i16.to_be_bytes()); // parameter formats
    bind.extend_from_slice(&0i16.to_be_bytes()); // parameters
    bind.extend_from_slice(&0i16.to_be_bytes()); // result formats
    let mut execute = cstr("");
    execute.extend_from_slice(&0i32.to_be_bytes());
    let mut parse = cstr("");
    parse.extend_from_slice(&cstr("SELEC 1"));
    parse.extend_from_slice(&0i16.to_be_bytes());
    let mut pipeline = message(b'P', &parse);
    pipeline.extend(message(b'B', &bind));
    pipeline.extend(message(b'E', &execute));
    pipeline.extend(message(b'S', b""));
    raw.send(&pipeline).await?;
    let msgs = raw.until_ready().await?;
    let tags: Vec<char> = msgs.iter().map(|m| m.tag as char).collect();
    assert_eq!(tags, vec!['E', 'Z'], "{msgs:?}");
    assert_eq!(
        msgs[0].error().map(|e| e.code().to_string()).as_deref(),
        Some("42601")
    );
    assert_eq!(msgs[1].body, b"I");

    // The same pipeline with valid SQL runs.
    let mut parse = cstr("");
    parse.extend_from_slice(&cstr("SELECT 'piped'"));
    parse.extend_from_slice(&0i16.to_be_bytes());
    let mut pipeline = message(b'P', &parse);
    pipeline.extend(message(b'B', &bind));
    pipeline.extend(message(b'E', &execute));
    pipeline.extend(message(b'S', b""));
    raw.send(&pipeline).await?;
    let msgs = raw.until_ready().await?;
    let tags: Vec<char> = msgs.iter().map(|m| m.tag as char).collect();
    assert_eq!(tags, vec!['1', '2', 'D', 'C', 'Z'], "{msgs:?}");
    assert_eq!(first_value(&msgs).as_deref(), Some("piped"));
    Ok(())
}

#[tokio::test]
async fn terminate_closes_cleanly() -> anyhow::Result<()> {
    let (db, pgward) = start("terminate").await?;
    let mut raw = logged_in(&pgward, &db).await?;
    raw.send(&message(b'X', b"")).await?;
    let rest = raw.until_closed().await?;
    assert!(rest.is_empty(), "{rest:?}");
    assert_still_serving(&pgward, db.name()).await
}

#[tokio::test]
async fn password_message_after_login_is_a_protocol_violation() -> anyhow::Result<()> {
    let (db, pgward) = start("password_after_login").await?;
    let mut raw = logged_in(&pgward, &db).await?;
    raw.send(&message(b'p', &cstr("alice"))).await?;
    let e = raw.expect_error_and_close().await?;
    assert_eq!(e.code(), "08P01", "{e:?}");
    Ok(())
}

#[tokio::test]
async fn empty_query_gets_empty_query_response() -> anyhow::Result<()> {
    let (db, pgward) = start("empty_query").await?;
    let mut raw = logged_in(&pgward, &db).await?;
    for sql in ["", " ", ";"] {
        let msgs = raw.simple_query(sql).await?;
        let tags: Vec<char> = msgs.iter().map(|m| m.tag as char).collect();
        assert_eq!(tags, vec!['I', 'Z'], "{sql:?}: {msgs:?}");
        assert_eq!(msgs[1].body, b"I", "idle afterwards");
    }
    let msgs = raw.simple_query("SELECT 'still here'").await?;
    assert_eq!(first_value(&msgs).as_deref(), Some("still here"));
    Ok(())
}

/// Sends a startup packet with extra parameters and returns the error, if
/// the server refused it, or the messages after login.
async fn startup_with(
    pgward: &Pgward,
    db: &TestDb,
    extra: &[(&str, &str)],
) -> anyhow::Result<Result<Vec<Msg>, ErrorFields>> {
    let mut params = vec![("user", "alice"), ("database", db.name())];
    params.extend_from_slice(extra);
    let mut raw = Raw::connect(pgward.port()).await?;
    raw.send(&startup_packet(PROTOCOL_3_0, &params)).await?;
    let exchange = raw.scram("alice").await?;
    if let Some(e) = exchange.error {
        // A refused session must also be closed.
        let rest = raw.until_closed().await?;
        ensure!(
            rest.is_empty(),
            "messages after the refusal {e:?}: {rest:?}"
        );
        return Ok(Err(e));
    }
    Ok(Ok(exchange.after_ok))
}

fn parameter(msgs: &[Msg], name: &str) -> Option<String> {
    msgs.iter()
        .filter_map(Msg::parameter_status)
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

#[tokio::test]
async fn startup_settings_pass_the_allowlist() -> anyhow::Result<()> {
    let (db, pgward) = start("startup_settings").await?;

    let refused = startup_with(&pgward, &db, &[("options", "-c role=postgres")]).await?;
    let e = refused
        .err()
        .context("options=-c role=postgres was accepted")?;
    assert_eq!(e.code(), "42501", "{e:?}");

    let refused = startup_with(
        &pgward,
        &db,
        &[("options", "-c standard_conforming_strings=off")],
    )
    .await?;
    let e = refused
        .err()
        .context("standard_conforming_strings=off was accepted")?;
    assert_eq!(e.severity(), "FATAL", "{e:?}");

    let refused = startup_with(&pgward, &db, &[("client_encoding", "SJIS")]).await?;
    let e = refused.err().context("client_encoding=SJIS was accepted")?;
    assert_eq!(e.severity(), "FATAL", "{e:?}");

    let refused = startup_with(&pgward, &db, &[("role", "postgres")]).await?;
    refused.err().context("role=postgres was accepted")?;

    let refused = startup_with(&pgward, &db, &[("options", "-c client_encoding=SJIS")]).await?;
    refused
        .err()
        .context("client_encoding=SJIS inside options was accepted")?;

    let refused = startup_with(&pgward, &db, &[("session_authorization", "postgres")]).await?;
    refused
        .err()
        .context("session_authorization=postgres was accepted")?;

    for encoding in ["unicode", "UTF8", "'utf-8'", "SQL_ASCII"] {
        let accepted = startup_with(&pgward, &db, &[("client_encoding", encoding)]).await?;
        let msgs =
            accepted.map_err(|e| anyhow::anyhow!("client_encoding={encoding} refused: {e:?}"))?;
        assert_eq!(
            parameter(&msgs, "client_encoding").as_deref(),
            Some("UTF8"),
            "client_encoding={encoding}"
        );
    }

    let accepted = startup_with(
        &pgward,
        &db,
        &[
            ("options", "-c DateStyle=German"),
            ("application_name", "raw"),
        ],
    )
    .await?;
    let msgs = accepted.map_err(|e| anyhow::anyhow!("DateStyle refused: {e:?}"))?;
    assert_eq!(
        parameter(&msgs, "DateStyle").as_deref(),
        Some("German, DMY")
    );
    assert_eq!(parameter(&msgs, "application_name").as_deref(), Some("raw"));
    Ok(())
}

#[tokio::test]
async fn a_startup_packet_without_a_user_is_refused() -> anyhow::Result<()> {
    let (db, pgward) = start("startup_without_user").await?;
    for params in [
        vec![("database", db.name())],
        vec![("user", ""), ("database", db.name())],
    ] {
        let mut raw = Raw::connect(pgward.port()).await?;
        raw.send(&startup_packet(PROTOCOL_3_0, &params)).await?;
        let e = raw.expect_error_and_close().await?;
        assert_eq!(e.code(), "28000", "{params:?}: {e:?}");
    }
    Ok(())
}

#[tokio::test]
async fn parameter_status_shows_the_login_not_the_service_role() -> anyhow::Result<()> {
    let (db, pgward) = start("identity_parameters").await?;
    let mut raw = Raw::connect(pgward.port()).await?;
    let msgs = raw.login("bob", "bob", db.name()).await?;
    assert_eq!(parameter(&msgs, "is_superuser").as_deref(), Some("off"));
    assert_eq!(
        parameter(&msgs, "session_authorization").as_deref(),
        Some("bob")
    );
    for msg in &msgs {
        if let Some((name, value)) = msg.parameter_status() {
            assert!(
                !value.contains("pgward_service"),
                "{name} shows the service role"
            );
        }
    }
    assert!(msgs.iter().any(|m| m.tag == b'K'), "no BackendKeyData");
    assert_eq!(msgs.last().map(|m| m.body.clone()), Some(b"I".to_vec()));
    Ok(())
}

/// A SCRAM client that derives the salted password once per salt: the
/// random-input test logs in thousands of times, and a debug build spends
/// tens of milliseconds on each PBKDF2.
struct FastScram {
    password: String,
    cache: std::sync::Mutex<Option<SaltedPassword>>,
}

/// Salt, iteration count and the PBKDF2 result for them.
type SaltedPassword = (Vec<u8>, u32, [u8; 32]);

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl FastScram {
    fn salted(&self, salt: &[u8], iterations: u32) -> [u8; 32] {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, i, key)) = cache.as_ref()
            && s == salt
            && *i == iterations
        {
            return *key;
        }
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(self.password.as_bytes(), salt, iterations, &mut key);
        *cache = Some((salt.to_vec(), iterations, key));
        key
    }

    async fn login(&self, raw: &mut Raw, user: &str, database: &str) -> anyhow::Result<()> {
        raw.startup(user, database).await?;
        let nonce = format!("{:032x}", rand::random::<u128>());
        let first_bare = format!("n=,r={nonce}");
        let mut next = |step: Step, server_first: &[u8]| -> anyhow::Result<Vec<u8>> {
            match step {
                Step::First => Ok(format!("n,,{first_bare}").into_bytes()),
                Step::Final => {
                    let server_first = std::str::from_utf8(server_first)?;
                    let mut r = "";
                    let mut s = "";
                    let mut i = "";
                    for part in server_first.split(',') {
                        match part.split_at_checked(2) {
                            Some(("r=", v)) => r = v,
                            Some(("s=", v)) => s = v,
                            Some(("i=", v)) => i = v,
                            _ => {}
                        }
                    }
                    let salted = self.salted(&STANDARD.decode(s)?, i.parse()?);
                    let without_proof = format!("c=biws,r={r}");
                    let auth_message = format!("{first_bare},{server_first},{without_proof}");
                    let client_key = hmac(&salted, b"Client Key");
                    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
                    let signature = hmac(&stored_key, auth_message.as_bytes());
                    let proof: Vec<u8> = client_key
                        .iter()
                        .zip(signature)
                        .map(|(a, b)| a ^ b)
                        .collect();
                    Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
                }
                Step::Verify => Ok(Vec::new()),
            }
        };
        let exchange = raw.scram_with("SCRAM-SHA-256", &mut next).await?;
        if let Some(e) = exchange.error {
            bail!("login refused: {e:?}");
        }
        Ok(())
    }
}

/// Most random inputs end a session with a fatal error, so pgward opens a
/// new upstream connection for nearly every one, and a debug build of pgward
/// spends tens of milliseconds on the PBKDF2 of each SCRAM login upstream.
/// This stores the service role's verifier (same password) with the lowest
/// iteration count; returns the statement that restores the old one.
async fn cheap_service_login(db: &TestDb) -> anyhow::Result<String> {
    let url = db.service_url();
    let password = url
        .split_once(&format!("{SERVICE_ROLE}:"))
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(p, _)| p)
        .context("no password in the service URL")?;
    let superuser = db.superuser().await?;
    let old: String = superuser
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&SERVICE_ROLE],
        )
        .await?
        .get(0);
    let cheap = pgward::auth::scram::ScramVerifier::from_password(password, b"pgward-test-salt", 1);
    let alter = |verifier: &str| {
        format!(
            "ALTER ROLE {} PASSWORD {}",
            quote_ident(SERVICE_ROLE),
            quote_literal(verifier)
        )
    };
    superuser.batch_execute(&alter(&cheap.to_string())).await?;
    Ok(alter(&old))
}

/// One random input: mostly a known message type with a random length and
/// body, sometimes bytes with no structure at all.
fn random_input(rng: &mut impl Rng) -> Vec<u8> {
    const TAGS: &[u8] = b"QPBEDCHSXdcfFpz\0";
    let len = rng.random_range(0..64usize);
    let mut body = vec![0u8; len];
    rng.fill_bytes(&mut body);
    match rng.random_range(0..4) {
        0 => body,
        1 => {
            // A well-framed message with a random body.
            let tag = TAGS[rng.random_range(0..TAGS.len())];
            message(tag, &body)
        }
        2 => {
            // A known tag with a random length word.
            let tag = TAGS[rng.random_range(0..TAGS.len())];
            let mut out = vec![tag];
            let len: i32 = match rng.random_range(0..3) {
                0 => rng.random_range(-8..16),
                1 => rng.random_range(0..1 << 16),
                _ => rng.random(),
            };
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&body);
            out
        }
        _ => {
            // A valid message followed by random bytes.
            let mut out = query("SELECT 1");
            out.extend_from_slice(&body);
            out
        }
    }
}

/// Message types pgward takes from a logged-in client; any other first byte
/// (with a whole header behind it) must be refused.
const FORWARDED_TAGS: &[u8] = b"QPSXBDECHdcf";

#[tokio::test]
async fn random_bytes_after_login_end_in_an_error_or_a_close() -> anyhow::Result<()> {
    const INPUTS: usize = 2_000;
    const IN_FLIGHT: usize = 16;
    let started = Instant::now();
    let db = TestDb::new("random_bytes_after_login").await?;
    let restore = cheap_service_login(&db).await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
    let inputs: Vec<Vec<u8>> = (0..INPUTS).map(|_| random_input(&mut rng)).collect();
    let scram = FastScram {
        password: "alice".into(),
        cache: std::sync::Mutex::new(None),
    };
    let port = pgward.port();
    let name = db.name();

    let outcomes: Vec<anyhow::Result<bool>> = futures_util::stream::iter(inputs.iter().enumerate())
        .map(|(n, input)| {
            let scram = &scram;
            async move {
                let run = async {
                    let mut raw = Raw::connect(port).await?;
                    scram.login(&mut raw, "alice", name).await?;
                    // pgward may close before taking every byte.
                    let _ = raw.send(input).await;
                    // Then end of stream, so that a partial message cannot
                    // leave pgward rightly waiting for the rest.
                    let _ = raw.shutdown_write().await;
                    let msgs = raw.until_closed().await?;
                    let refused = input.len() >= 5 && !FORWARDED_TAGS.contains(&input[0]);
                    if refused {
                        let e = msgs.last().and_then(Msg::error).with_context(|| {
                            format!("no ErrorResponse before the close: {msgs:?}")
                        })?;
                        ensure!(
                            ["08P01", "0A000"].contains(&e.code()) && e.severity() == "FATAL",
                            "unexpected refusal {e:?}"
                        );
                    }
                    anyhow::Ok(msgs.iter().any(|m| m.tag == b'E'))
                };
                run.await
                    .with_context(|| format!("input #{n} ({} bytes): {input:02x?}", input.len()))
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    db.superuser().await?.batch_execute(&restore).await?;

    let mut failures = Vec::new();
    let mut with_error = 0;
    for outcome in outcomes {
        match outcome {
            Ok(error) => with_error += usize::from(error),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {INPUTS} inputs failed, e.g.:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    // Most inputs are malformed; if hardly any drew an error, they never
    // reached pgward's framing.
    assert!(
        with_error > INPUTS / 2,
        "only {with_error} of {INPUTS} inputs drew an ErrorResponse"
    );
    assert_still_serving(&pgward, db.name()).await?;
    eprintln!(
        "{INPUTS} random inputs ({with_error} drew an error) in {:?}",
        started.elapsed()
    );
    Ok(())
}
