//! One client connection from accept to close: startup and TLS, SCRAM
//! authentication, the upstream connection, then forwarding.
//!
//! Must never: forward a client's bytes to the upstream before the client
//! has authenticated, or tell an unauthenticated client whether a user
//! exists.

pub mod auth;
pub mod cancel;
pub mod forward;
pub mod startup;
pub mod tls;

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::{PgError, code};
use crate::policy::PolicySet;
use crate::upstream::{self, UpstreamError};
use crate::wire::backend;

use self::auth::AuthOutcome;
use self::startup::{Startup, fatal};

/// State shared by every session.
pub struct Shared {
    pub config: Config,
    pub policies: PolicySet,
    pub server_tls: Option<tls::ServerTls>,
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
    pub cancels: cancel::CancelRegistry,
    pub connections: Arc<Semaphore>,
}

/// Runs one client connection to its end. Never panics on client input;
/// I/O errors simply end the session.
pub async fn run(tcp: TcpStream, shared: Arc<Shared>) {
    if let Err(e) = run_inner(tcp, &shared).await {
        tracing::debug!("session ended: {e}");
    }
}

async fn run_inner(tcp: TcpStream, shared: &Arc<Shared>) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let (mut stream, request) = match startup::negotiate(tcp, shared).await? {
        Startup::Session(s, r) => (s, r),
        Startup::Cancel {
            process_id,
            secret_key,
        } => {
            shared.cancels.cancel(process_id, secret_key, shared).await;
            return Ok(());
        }
        Startup::Closed => return Ok(()),
    };
    let Ok(_permit) = shared.connections.clone().try_acquire_owned() else {
        let e = PgError::fatal(
            code::TOO_MANY_CONNECTIONS,
            "sorry, too many clients already",
        );
        return fatal(&mut stream, e).await;
    };

    match auth::authenticate(&mut stream, shared, &request.user).await? {
        AuthOutcome::Authenticated => {}
        AuthOutcome::Refused(e) => return fatal(&mut stream, e).await,
        AuthOutcome::Gone => return Ok(()),
    }
    if request.database != shared.config.upstream.database {
        let e = PgError::fatal(
            code::INVALID_CATALOG_NAME,
            format!("database \"{}\" does not exist", request.database),
        );
        return fatal(&mut stream, e).await;
    }

    let conn = match upstream::connect(
        &shared.config.upstream,
        shared.upstream_tls.as_ref(),
        &request.settings,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return fatal(&mut stream, upstream_failure(e)).await,
    };
    tracing::info!(user = %request.user, "session started");

    let key = shared.cancels.register(&conn);
    let mut out = BytesMut::new();
    for (name, value) in &conn.params {
        let value = client_parameter(name, value, &request.user);
        backend::parameter_status(&mut out, name, value);
    }
    backend::backend_key_data(&mut out, key.process_id, key.secret_key);
    backend::ready_for_query(&mut out, b'I');
    stream.write_all(&out).await?;
    stream.flush().await?;

    let result = forward::run(stream, conn, &request.user, &shared.config).await;
    shared.cancels.unregister(key.process_id);
    tracing::info!(user = %request.user, "session ended");
    result
}

/// The value the client is told for a parameter the upstream reported: the
/// service identity never shows.
pub fn client_parameter<'a>(name: &str, value: &'a str, login: &'a str) -> &'a str {
    match name {
        "session_authorization" => login,
        "is_superuser" => "off",
        _ => value,
    }
}

fn upstream_failure(e: UpstreamError) -> PgError {
    tracing::warn!("upstream connection failed: {e}");
    match e {
        // The client's own startup settings were rejected: its own business.
        UpstreamError::Server { code, message }
            if code.starts_with("22") || code == "42704" || code == "42501" =>
        {
            let code = crate::error::code::known(&code).unwrap_or(code::INVALID_PARAMETER_VALUE);
            PgError::fatal(code, message)
        }
        _ => PgError::fatal(
            code::CONNECTION_FAILURE,
            "the upstream database is unavailable",
        ),
    }
}

/// Writes an error to a client that is in the middle of a session.
pub async fn send_error(
    stream: &mut (impl AsyncWriteExt + Unpin),
    err: &PgError,
) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    backend::error_response(&mut out, err);
    stream.write_all(&out).await?;
    stream.flush().await
}
