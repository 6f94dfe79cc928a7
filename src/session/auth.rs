//! Authenticating a client with SCRAM-SHA-256 (-PLUS over TLS) against the
//! users of the policy set. An unknown user, or one without a password, runs
//! the same exchange against a mock verifier and fails at the same step with
//! the same error as a wrong password.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use crate::auth::scram::{self, ScramError, ScramServer, ScramVerifier};
use crate::error::{PgError, code};
use crate::net::Stream;
use crate::wire::io::{WireError, read_body, read_header};
use crate::wire::{MAX_AUTH_LEN, backend, frontend};

use super::Shared;

/// How an authentication attempt ended.
pub enum AuthOutcome {
    Authenticated,
    /// Refused: send this error, then close.
    Refused(PgError),
    /// The client went away (psql does this to prompt for a password).
    Gone,
}

pub async fn authenticate(
    stream: &mut Stream,
    shared: &Shared,
    user: &str,
) -> std::io::Result<AuthOutcome> {
    let known = shared
        .policies
        .users
        .get(user)
        .and_then(|u| u.verifier.clone());
    let is_known = known.is_some();
    let verifier = known.unwrap_or_else(|| {
        ScramVerifier::mock(
            &shared.config.auth.secret,
            user,
            shared.config.auth.scram_iterations,
        )
    });
    let binding = match stream {
        Stream::ServerTls(_) => shared
            .server_tls
            .as_ref()
            .and_then(|t| t.channel_binding.clone()),
        _ => None,
    };
    let mechanisms = scram::mechanisms(binding.is_some());
    let mut server = ScramServer::new(verifier, is_known, binding);

    let mut out = BytesMut::new();
    backend::authentication_sasl(&mut out, &mechanisms);
    stream.write_all(&out).await?;
    stream.flush().await?;

    let Some(first) = read_password_message(stream).await? else {
        return Ok(AuthOutcome::Gone);
    };
    let Some((mechanism, data)) = frontend::decode_sasl_initial(&first) else {
        return Ok(AuthOutcome::Refused(malformed()));
    };
    let server_first = match server.client_first(mechanism, data) {
        Ok(m) => m,
        Err(e) => return Ok(AuthOutcome::Refused(scram_error(e, user))),
    };
    out.clear();
    backend::authentication_sasl_continue(&mut out, &server_first);
    stream.write_all(&out).await?;
    stream.flush().await?;

    let Some(last) = read_password_message(stream).await? else {
        return Ok(AuthOutcome::Gone);
    };
    match server.client_final(&last) {
        Ok(server_final) => {
            out.clear();
            backend::authentication_sasl_final(&mut out, &server_final);
            backend::authentication_ok(&mut out);
            stream.write_all(&out).await?;
            Ok(AuthOutcome::Authenticated)
        }
        Err(e) => Ok(AuthOutcome::Refused(scram_error(e, user))),
    }
}

/// Reads one PasswordMessage-type ('p') message; `None` when the client
/// closed the connection.
async fn read_password_message(stream: &mut Stream) -> std::io::Result<Option<BytesMut>> {
    let header = match read_header(stream, MAX_AUTH_LEN).await {
        Ok(Some(h)) => h,
        Ok(None) | Err(WireError::Eof) => return Ok(None),
        Err(WireError::Io(e)) => return Err(e),
        Err(_) => return Ok(Some(BytesMut::new())),
    };
    if header.tag != b'p' {
        // Anything else here is a protocol violation; an empty body makes
        // the caller refuse it as malformed.
        return Ok(Some(BytesMut::new()));
    }
    match read_body(stream, header.body_len).await {
        Ok(b) => Ok(Some(b)),
        Err(WireError::Io(e)) => Err(e),
        Err(_) => Ok(None),
    }
}

fn malformed() -> PgError {
    PgError::fatal(code::PROTOCOL_VIOLATION, "malformed SASL message")
}

fn scram_error(e: ScramError, user: &str) -> PgError {
    match e.sqlstate() {
        "28P01" => PgError::fatal(
            code::INVALID_PASSWORD,
            format!("password authentication failed for user \"{user}\""),
        ),
        state => {
            let c = if state == code::PROTOCOL_VIOLATION {
                code::PROTOCOL_VIOLATION
            } else {
                code::INVALID_AUTHORIZATION
            };
            PgError::fatal(c, e.to_string())
        }
    }
}
