//! The startup phase of a client connection: SSLRequest / GSSENCRequest /
//! CancelRequest negotiation, protocol version, and the startup parameters,
//! which pass through the settings allowlist.
//!
//! Reads are exact (no read-ahead buffer), so nothing a client sends before
//! the TLS handshake can be mistaken for data inside it (CVE-2021-23214).

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::config::ServerTls as TlsMode;
use crate::error::{PgError, code};
use crate::net::Stream;
use crate::settings::{self, SettingDecision};
use crate::wire::backend;
use crate::wire::frontend::{StartupPacket, decode_startup};
use crate::wire::io::read_startup;

use super::Shared;

/// What the client asked for in its StartupMessage, after validation.
#[derive(Debug, Clone)]
pub struct StartupRequest {
    pub user: String,
    pub database: String,
    /// Settings to apply upstream, already normalised.
    pub settings: Vec<(String, String)>,
}

/// How the startup phase ended.
pub enum Startup {
    /// A session to authenticate.
    Session(Stream, StartupRequest),
    /// A CancelRequest, handled; close the connection.
    Cancel { process_id: i32, secret_key: i32 },
    /// Nothing more to do (the client went away or was refused).
    Closed,
}

/// Runs the startup phase. Errors that must reach the client are sent here.
pub async fn negotiate(tcp: TcpStream, shared: &Shared) -> std::io::Result<Startup> {
    let mut stream = Stream::Plain(tcp);
    loop {
        let body = match read_startup(&mut stream).await {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!("bad startup packet: {e}");
                return Ok(Startup::Closed);
            }
        };
        let packet = match decode_startup(&body) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("invalid startup packet: {e:?}");
                fatal(&mut stream, PgError::fatal(code::PROTOCOL_VIOLATION, msg)).await?;
                return Ok(Startup::Closed);
            }
        };
        match packet {
            StartupPacket::SslRequest => match (&shared.server_tls, stream) {
                (Some(tls), Stream::Plain(mut tcp)) => {
                    tcp.write_all(b"S").await?;
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
                    match acceptor.accept(tcp).await {
                        Ok(s) => stream = Stream::ServerTls(Box::new(s)),
                        Err(e) => {
                            tracing::debug!("TLS handshake failed: {e}");
                            return Ok(Startup::Closed);
                        }
                    }
                }
                (None, Stream::Plain(mut tcp)) => {
                    tcp.write_all(b"N").await?;
                    stream = Stream::Plain(tcp);
                }
                (_, mut other) => {
                    let e = PgError::fatal(code::PROTOCOL_VIOLATION, "SSLRequest inside TLS");
                    fatal(&mut other, e).await?;
                    return Ok(Startup::Closed);
                }
            },
            StartupPacket::GssEncRequest => {
                if stream.is_tls() {
                    let e = PgError::fatal(code::PROTOCOL_VIOLATION, "GSSENCRequest inside TLS");
                    fatal(&mut stream, e).await?;
                    return Ok(Startup::Closed);
                }
                stream.write_all(b"N").await?;
            }
            StartupPacket::Cancel {
                process_id,
                secret_key,
            } => {
                return Ok(Startup::Cancel {
                    process_id,
                    secret_key,
                });
            }
            StartupPacket::Startup {
                major,
                minor,
                params,
            } => {
                if major != 3 {
                    let e = PgError::fatal(
                        code::FEATURE_NOT_SUPPORTED,
                        format!(
                            "unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0"
                        ),
                    );
                    fatal(&mut stream, e).await?;
                    return Ok(Startup::Closed);
                }
                if shared.config.server.tls == TlsMode::Require && !stream.is_tls() {
                    let e = PgError::fatal(
                        code::INVALID_AUTHORIZATION,
                        "pgward accepts only TLS connections",
                    )
                    .with_hint("Connect with sslmode=require.");
                    fatal(&mut stream, e).await?;
                    return Ok(Startup::Closed);
                }
                return match check_params(params) {
                    Ok((request, unrecognised)) => {
                        if minor > 0 || !unrecognised.is_empty() {
                            let mut out = BytesMut::new();
                            backend::negotiate_protocol_version(&mut out, 0, &unrecognised);
                            stream.write_all(&out).await?;
                        }
                        Ok(Startup::Session(stream, request))
                    }
                    Err(e) => {
                        fatal(&mut stream, e.into_fatal()).await?;
                        Ok(Startup::Closed)
                    }
                };
            }
        }
    }
}

/// Validates startup parameters. Returns the request and the protocol
/// options (`_pq_.*`) pgward does not know.
pub fn check_params(
    params: Vec<(String, String)>,
) -> Result<(StartupRequest, Vec<String>), PgError> {
    let mut user = None;
    let mut database = None;
    let mut wanted = Vec::new();
    let mut unrecognised = Vec::new();
    for (name, value) in params {
        match name.as_str() {
            "user" => user = Some(value),
            "database" => database = Some(value),
            "replication" => {
                if !matches!(
                    value.to_ascii_lowercase().as_str(),
                    "false" | "off" | "no" | "0"
                ) {
                    return Err(PgError::error(
                        code::FEATURE_NOT_SUPPORTED,
                        "replication connections are not supported by pgward",
                    ));
                }
            }
            "options" => {
                let opts = settings::parse_options(&value).map_err(setting_error)?;
                wanted.extend(opts);
            }
            n if n.starts_with("_pq_.") => unrecognised.push(name),
            _ => wanted.push((name, value)),
        }
    }
    let user = user.filter(|u| !u.is_empty()).ok_or_else(|| {
        PgError::error(
            code::INVALID_AUTHORIZATION,
            "no PostgreSQL user name specified in startup packet",
        )
    })?;
    let database = database
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| user.clone());

    let mut settings_out: Vec<(String, String)> = Vec::new();
    let mut encoding_set = false;
    for (name, value) in wanted {
        let (name, value) = if name.eq_ignore_ascii_case("client_encoding") {
            encoding_set = true;
            let enc = settings::normalize_client_encoding(&value).map_err(setting_error)?;
            ("client_encoding".to_string(), enc.to_string())
        } else {
            match settings::check(&name, &value) {
                SettingDecision::Allow(v) => (name, v),
                // Pinned settings already hold the only value a client may ask for.
                SettingDecision::Pinned => continue,
                SettingDecision::Tracked => (name, value),
                SettingDecision::Refuse(e) => return Err(setting_error(e)),
            }
        };
        settings_out.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        settings_out.push((name, value));
    }
    if !encoding_set {
        settings_out.push(("client_encoding".into(), "UTF8".into()));
    }
    Ok((
        StartupRequest {
            user,
            database,
            settings: settings_out,
        },
        unrecognised,
    ))
}

fn setting_error(e: settings::SettingError) -> PgError {
    let mut err = PgError::error(e.sqlstate, e.message);
    err.hint = e.hint;
    err
}

/// Sends a FATAL error and flushes; the caller then drops the connection.
pub async fn fatal(stream: &mut Stream, err: PgError) -> std::io::Result<()> {
    tracing::info!(
        code = err.code,
        label = err.label(),
        "refused: {}",
        err.message
    );
    let mut out = BytesMut::new();
    backend::error_response(&mut out, &err);
    stream.write_all(&out).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn database_defaults_to_user_and_encoding_to_utf8() {
        let (r, unk) = check_params(p(&[("user", "alice")])).unwrap();
        assert_eq!(r.database, "alice");
        assert!(unk.is_empty());
        assert!(
            r.settings
                .contains(&("client_encoding".into(), "UTF8".into()))
        );
    }

    #[test]
    fn encodings_are_normalised() {
        for enc in ["utf8", "'utf-8'", "UNICODE", "SQL_ASCII"] {
            let (r, _) = check_params(p(&[("user", "a"), ("client_encoding", enc)])).unwrap();
            assert!(
                r.settings
                    .contains(&("client_encoding".into(), "UTF8".into())),
                "{enc}: {:?}",
                r.settings
            );
        }
        assert!(check_params(p(&[("user", "a"), ("client_encoding", "SJIS")])).is_err());
    }

    #[test]
    fn options_go_through_the_allowlist() {
        let e = check_params(p(&[("user", "a"), ("options", "-c role=postgres")])).unwrap_err();
        assert_eq!(e.code, "42501");
        let e = check_params(p(&[
            ("user", "a"),
            ("options", "-c standard_conforming_strings=off"),
        ]))
        .unwrap_err();
        assert_eq!(e.code, "42501");
        let (r, _) = check_params(p(&[("user", "a"), ("options", "-c DateStyle=ISO")])).unwrap();
        assert!(
            r.settings
                .iter()
                .any(|(n, v)| n == "DateStyle" && v == "ISO")
        );
    }

    #[test]
    fn replication_and_missing_user_are_refused() {
        let e = check_params(p(&[("user", "a"), ("replication", "database")])).unwrap_err();
        assert_eq!(e.code, "0A000");
        assert!(check_params(p(&[("user", "a"), ("replication", "false")])).is_ok());
        let e = check_params(p(&[("database", "x")])).unwrap_err();
        assert_eq!(e.code, "28000");
    }

    #[test]
    fn protocol_options_are_reported() {
        let (_, unk) = check_params(p(&[("user", "a"), ("_pq_.foo", "1")])).unwrap();
        assert_eq!(unk, vec!["_pq_.foo".to_string()]);
    }
}
