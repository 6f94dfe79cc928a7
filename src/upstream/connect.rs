//! Opening one upstream connection with the service identity: TCP, optional
//! TLS (SSLRequest then rustls), StartupMessage, authentication (trust,
//! cleartext, md5, SCRAM-SHA-256), and the startup parameters up to the first
//! ReadyForQuery.
//!
//! Reference: <https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.3>

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::backend::{ErrorFields, Message};
use postgres_protocol::message::frontend;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{UpstreamConfig, UpstreamTls};
use crate::net::Stream;

#[derive(Debug, Error)]
pub enum UpstreamError {
    #[error("cannot connect to the upstream database: {0}")]
    Io(#[from] std::io::Error),
    #[error("upstream connection timed out")]
    Timeout,
    #[error("upstream refused TLS, which the configuration requires")]
    TlsRefused,
    #[error("upstream TLS handshake failed: {0}")]
    Tls(String),
    #[error("upstream authentication: {0}")]
    Auth(String),
    #[error("upstream error {code}: {message}")]
    Server { code: String, message: String },
    #[error("upstream protocol error: {0}")]
    Protocol(String),
}

/// An authenticated upstream connection, ready for queries.
pub struct UpstreamConn {
    pub stream: Stream,
    /// ParameterStatus values reported at startup, in order.
    pub params: Vec<(String, String)>,
    pub process_id: i32,
    pub secret_key: i32,
    /// The session thread whose runtime the socket is registered with
    /// ([`crate::workers`]); the pool keeps it idle there.
    pub home: usize,
}

/// Connects and authenticates. `startup` holds extra startup parameters
/// (already checked against the settings allowlist).
pub async fn connect(
    cfg: &UpstreamConfig,
    tls: Option<&Arc<rustls::ClientConfig>>,
    startup: &[(String, String)],
) -> Result<UpstreamConn, UpstreamError> {
    tokio::time::timeout(cfg.connect_timeout, connect_inner(cfg, tls, startup))
        .await
        .map_err(|_| UpstreamError::Timeout)?
}

async fn connect_inner(
    cfg: &UpstreamConfig,
    tls: Option<&Arc<rustls::ClientConfig>>,
    startup: &[(String, String)],
) -> Result<UpstreamConn, UpstreamError> {
    let tcp = TcpStream::connect((cfg.host.as_str(), cfg.port)).await?;
    tcp.set_nodelay(true)?;
    let mut stream = negotiate_tls(tcp, cfg, tls).await?;

    let mut buf = BytesMut::new();
    let mut params: Vec<(&str, &str)> = vec![
        ("user", cfg.user.as_str()),
        ("database", cfg.database.as_str()),
    ];
    params.extend(startup.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    frontend::startup_message(params, &mut buf)
        .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
    stream.write_all(&buf).await?;
    stream.flush().await?;

    let mut reader = MessageReader::default();
    authenticate(&mut stream, &mut reader, cfg).await?;

    let mut conn_params = Vec::new();
    let (mut process_id, mut secret_key) = (0, 0);
    loop {
        match reader.next(&mut stream).await? {
            Message::ParameterStatus(body) => {
                let name = body.name().map_err(proto)?.to_string();
                let value = body.value().map_err(proto)?.to_string();
                conn_params.push((name, value));
            }
            Message::BackendKeyData(body) => {
                process_id = body.process_id();
                secret_key = body.secret_key();
            }
            Message::ReadyForQuery(_) => break,
            Message::NoticeResponse(_) => {}
            Message::ErrorResponse(body) => return Err(server_error(body.fields())),
            _ => {
                return Err(UpstreamError::Protocol(
                    "unexpected message at startup".into(),
                ));
            }
        }
    }
    if !reader.buf.is_empty() {
        return Err(UpstreamError::Protocol(
            "unexpected data after ReadyForQuery".into(),
        ));
    }
    Ok(UpstreamConn {
        stream,
        params: conn_params,
        process_id,
        secret_key,
        home: crate::workers::current(),
    })
}

async fn negotiate_tls(
    mut tcp: TcpStream,
    cfg: &UpstreamConfig,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Stream, UpstreamError> {
    let Some(tls) = tls.filter(|_| cfg.tls != UpstreamTls::Disable) else {
        return Ok(Stream::Plain(tcp));
    };
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    tcp.write_all(&buf).await?;
    let answer = tcp.read_u8().await?;
    match answer {
        b'S' => {
            let name = rustls::pki_types::ServerName::try_from(cfg.host.clone())
                .map_err(|e| UpstreamError::Tls(e.to_string()))?;
            let connector = tokio_rustls::TlsConnector::from(tls.clone());
            let s = connector
                .connect(name, tcp)
                .await
                .map_err(|e| UpstreamError::Tls(e.to_string()))?;
            Ok(Stream::ClientTls(Box::new(s)))
        }
        b'N' if cfg.tls == UpstreamTls::Prefer => Ok(Stream::Plain(tcp)),
        b'N' => Err(UpstreamError::TlsRefused),
        _ => Err(UpstreamError::Protocol("bad answer to SSLRequest".into())),
    }
}

async fn authenticate(
    stream: &mut Stream,
    reader: &mut MessageReader,
    cfg: &UpstreamConfig,
) -> Result<(), UpstreamError> {
    let password = || {
        cfg.password.as_deref().ok_or_else(|| {
            UpstreamError::Auth("the upstream asks for a password; upstream.url has none".into())
        })
    };
    let mut scram: Option<ScramSha256> = None;
    let mut out = BytesMut::new();
    loop {
        out.clear();
        match reader.next(stream).await? {
            Message::AuthenticationOk => return Ok(()),
            Message::AuthenticationCleartextPassword => {
                frontend::password_message(password()?.as_bytes(), &mut out).map_err(proto)?;
            }
            Message::AuthenticationMd5Password(body) => {
                let hash = postgres_protocol::authentication::md5_hash(
                    cfg.user.as_bytes(),
                    password()?.as_bytes(),
                    body.salt(),
                );
                frontend::password_message(hash.as_bytes(), &mut out).map_err(proto)?;
            }
            Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut found = false;
                while let Some(m) =
                    fallible_iterator::FallibleIterator::next(&mut mechanisms).map_err(proto)?
                {
                    found |= m == "SCRAM-SHA-256";
                }
                if !found {
                    return Err(UpstreamError::Auth("no supported SASL mechanism".into()));
                }
                // "n,,": pgward does not bind the upstream channel; a server
                // offering -PLUS accepts that (it is not a downgrade claim).
                let s = ScramSha256::new(password()?.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response("SCRAM-SHA-256", s.message(), &mut out)
                    .map_err(proto)?;
                scram = Some(s);
            }
            Message::AuthenticationSaslContinue(body) => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| UpstreamError::Protocol("SASL continue without start".into()))?;
                s.update(body.data())
                    .map_err(|e| UpstreamError::Auth(e.to_string()))?;
                frontend::sasl_response(s.message(), &mut out).map_err(proto)?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let mut s = scram
                    .take()
                    .ok_or_else(|| UpstreamError::Protocol("SASL final without start".into()))?;
                s.finish(body.data())
                    .map_err(|e| UpstreamError::Auth(e.to_string()))?;
                continue;
            }
            Message::ErrorResponse(body) => return Err(server_error(body.fields())),
            _ => {
                return Err(UpstreamError::Auth(
                    "unsupported upstream authentication method".into(),
                ));
            }
        }
        stream.write_all(&out).await?;
        stream.flush().await?;
    }
}

pub(crate) fn proto(e: std::io::Error) -> UpstreamError {
    UpstreamError::Protocol(e.to_string())
}

pub(crate) fn server_error(mut fields: ErrorFields<'_>) -> UpstreamError {
    let (mut code, mut message) = (String::new(), String::new());
    while let Ok(Some(f)) = fallible_iterator::FallibleIterator::next(&mut fields) {
        match f.type_() {
            b'C' => code = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            _ => {}
        }
    }
    UpstreamError::Server { code, message }
}

/// Reads whole backend messages during startup and pool maintenance, when
/// they are few and small (never on the forwarding path).
#[derive(Default)]
pub(crate) struct MessageReader {
    pub(crate) buf: BytesMut,
}

impl MessageReader {
    pub(crate) async fn next(&mut self, stream: &mut Stream) -> Result<Message, UpstreamError> {
        loop {
            if let Some(m) = Message::parse(&mut self.buf).map_err(proto)? {
                return Ok(m);
            }
            if self.buf.remaining() > 1 << 20 {
                return Err(UpstreamError::Protocol("startup message too large".into()));
            }
            if stream.read_buf(&mut self.buf).await? == 0 {
                return Err(UpstreamError::Protocol(
                    "upstream closed the connection during startup".into(),
                ));
            }
        }
    }
}

/// What a maintenance exchange (simple queries pgward sends itself) returned.
#[derive(Debug, Default)]
pub struct Exchange {
    /// ParameterStatus updates, in order.
    pub params: Vec<(String, String)>,
    /// The first error, as (SQLSTATE, message).
    pub error: Option<(String, String)>,
    /// Transaction status of the last ReadyForQuery.
    pub status: u8,
}

/// Sends each text as its own Query message (pipelined) and reads every
/// answer up to the last ReadyForQuery. Used only on connections no client
/// is using.
pub async fn exchange(stream: &mut Stream, queries: &[&str]) -> Result<Exchange, UpstreamError> {
    let mut buf = BytesMut::new();
    for q in queries {
        frontend::query(q, &mut buf).map_err(proto)?;
    }
    stream.write_all(&buf).await?;
    stream.flush().await?;
    let mut reader = MessageReader::default();
    let mut result = Exchange::default();
    let mut remaining = queries.len();
    while remaining > 0 {
        match reader.next(stream).await? {
            Message::ParameterStatus(body) => {
                let name = body.name().map_err(proto)?.to_string();
                let value = body.value().map_err(proto)?.to_string();
                result.params.push((name, value));
            }
            Message::ErrorResponse(body) => {
                if let UpstreamError::Server { code, message } = server_error(body.fields()) {
                    result.error.get_or_insert((code, message));
                }
            }
            Message::ReadyForQuery(body) => {
                result.status = body.status();
                remaining -= 1;
            }
            Message::CopyInResponse(_) | Message::CopyOutResponse(_) => {
                return Err(UpstreamError::Protocol(
                    "unexpected COPY during maintenance".into(),
                ));
            }
            _ => {}
        }
    }
    if !reader.buf.is_empty() {
        return Err(UpstreamError::Protocol(
            "unexpected data after ReadyForQuery".into(),
        ));
    }
    Ok(result)
}
