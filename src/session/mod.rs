//! One client connection from accept to close: startup and TLS,
//! authentication against the identity sources, the session's identity
//! (roles and globals), the upstream connection, then forwarding until the
//! client leaves or its credentials expire.
//!
//! Must never: forward a client's bytes to the upstream before the client
//! has authenticated, or tell an unauthenticated client whether a user
//! exists.

pub mod auth;
pub mod cancel;
pub mod forward;
pub mod policy;
pub mod startup;
pub mod tls;

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::catalog::CatalogHandle;
use crate::config::Config;
use crate::error::{PgError, code};
use crate::policy::PolicySet;
use crate::statement::cache::RewriteCache;
use crate::statement::hook::{Hook, Mode};
use crate::upstream::UpstreamConn;
use crate::upstream::control::Control;
use crate::upstream::pool::{Checkout, Pool, PoolError};
use dashmap::DashMap;
use tokio::sync::watch;

use self::forward::Ended;
use crate::wire::backend;

use self::auth::AuthOutcome;
use self::startup::{Startup, fatal};

/// State shared by every session.
pub struct Shared {
    pub config: Config,
    pub policies: Arc<PolicySet>,
    pub catalog: Arc<CatalogHandle>,
    pub control: Arc<Control>,
    pub rewrite_cache: Arc<RewriteCache>,
    pub server_tls: Option<tls::ServerTls>,
    /// The identity sources' keys, caches and throttle.
    pub identity: crate::auth::Sources,
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
    pub cancels: cancel::CancelRegistry,
    pub connections: Arc<Semaphore>,
    pub pool: Pool,
    /// Sessions per login, for `server.max_connections_per_user`.
    pub per_user: DashMap<String, usize>,
    /// Turns true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// Counts a session against its login's limit while it lives.
struct UserSlot<'a> {
    shared: &'a Shared,
    login: String,
}

impl<'a> UserSlot<'a> {
    fn take(shared: &'a Shared, login: &str) -> Option<UserSlot<'a>> {
        let limit = shared.config.server.max_connections_per_user;
        let mut count = shared.per_user.entry(login.to_string()).or_insert(0);
        if limit > 0 && *count >= limit {
            return None;
        }
        *count += 1;
        Some(UserSlot {
            shared,
            login: login.to_string(),
        })
    }
}

impl Drop for UserSlot<'_> {
    fn drop(&mut self) {
        self.shared.per_user.remove_if_mut(&self.login, |_, count| {
            *count -= 1;
            *count == 0
        });
    }
}

/// How long a client may take from connecting to a finished login, as
/// PostgreSQL's authentication_timeout.
const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs one client connection to its end. Never panics on client input;
/// I/O errors simply end the session.
pub async fn run(tcp: TcpStream, shared: Arc<Shared>) {
    if let Err(e) = run_inner(tcp, &shared).await {
        tracing::debug!("session ended: {e}");
    }
}

/// Runs `f` within the login deadline; a client that stalls is dropped.
async fn before_deadline<T>(
    deadline: tokio::time::Instant,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout_at(deadline, f)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "login timed out"))?
}

async fn run_inner(tcp: TcpStream, shared: &Arc<Shared>) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let peer_ip = tcp.peer_addr().ok().map(|a| a.ip());
    let peer = peer_ip.map(|ip| ip.to_string());
    let deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;
    let (mut stream, request) =
        match before_deadline(deadline, startup::negotiate(tcp, shared)).await? {
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

    let identity = match before_deadline(
        deadline,
        auth::authenticate(&mut stream, shared, &request.user, peer_ip),
    )
    .await?
    {
        AuthOutcome::Authenticated(identity) => *identity,
        AuthOutcome::Refused(e) => return fatal(&mut stream, e).await,
        AuthOutcome::Gone => return Ok(()),
    };
    // The name the session runs as: the identity's (a token's user when
    // `auth.jwt.allow_user_mismatch` lets it differ from the startup user).
    let login = identity.login.clone();
    if request.database != shared.config.upstream.database {
        let e = PgError::fatal(
            code::INVALID_CATALOG_NAME,
            format!("database \"{}\" does not exist", request.database),
        );
        return fatal(&mut stream, e).await;
    }

    let Some(_user_slot) = UserSlot::take(shared, &login) else {
        let e = PgError::fatal(
            code::TOO_MANY_CONNECTIONS,
            format!("too many connections for role \"{login}\""),
        );
        return fatal(&mut stream, e).await;
    };

    let session_deadline = match auth::remaining(&identity) {
        Some(left) if left.is_zero() => return fatal(&mut stream, token_expired()).await,
        Some(left) => Some(forward::Deadline {
            at: tokio::time::Instant::now() + left,
            error: token_expired(),
        }),
        None => None,
    };
    let mode = match session_mode(shared, identity, peer.as_deref()).await {
        Ok(m) => m,
        Err(e) => return fatal(&mut stream, e).await,
    };
    // PostgreSQL's error and notice fields can quote rows the policies
    // hide; only BYPASSPOLICY sessions see them as sent.
    let upstream_fields = match mode {
        Mode::Bypass => forward::UpstreamFields::AsSent,
        Mode::Policy { .. } => forward::UpstreamFields::Scrubbed,
    };
    // Read as PostgreSQL reads the setting (unquoted names lower-cased,
    // quoted ones kept, split at commas outside quotes); a malformed list
    // fails the login, as in PostgreSQL.
    let search_path = request
        .settings
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("search_path"))
        .map(|(_, v)| v.as_str());
    let hook = Hook::new(
        mode,
        &login,
        search_path,
        shared.catalog.clone(),
        shared.control.clone(),
        shared.rewrite_cache.clone(),
    );
    let mut hook = match hook {
        Ok(hook) => hook,
        Err(e) => {
            let e = PgError {
                severity: crate::error::Severity::Fatal,
                ..e
            };
            return fatal(&mut stream, e).await;
        }
    };

    let checkout = match shared.pool.checkout(&login, &request.settings).await {
        Ok(c) => c,
        Err(e) => return fatal(&mut stream, pool_failure(e)).await,
    };
    tracing::info!(user = %login, "session started");

    let Checkout { conn, params, slot } = checkout;
    let key = shared.cancels.register(&conn);
    let own_app_name = request
        .settings
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("application_name"))
        .map_or("", |(_, v)| v.as_str());
    let mut out = BytesMut::new();
    for (name, value) in &params {
        let value = match name.as_str() {
            "application_name" => own_app_name,
            _ => client_parameter(name, value, &login),
        };
        backend::parameter_status(&mut out, name, value);
    }
    backend::backend_key_data(&mut out, key.process_id, key.secret_key);
    backend::ready_for_query(&mut out, b'I');
    stream.write_all(&out).await?;
    stream.flush().await?;

    let UpstreamConn {
        stream: upstream_stream,
        params: conn_params,
        process_id,
        secret_key,
        home,
    } = conn;
    let ended = forward::run(
        stream,
        upstream_stream,
        &login,
        &shared.config,
        &mut hook,
        upstream_fields,
        shared.shutdown.clone(),
        session_deadline,
    )
    .await;
    shared.cancels.unregister(key.process_id);
    tracing::info!(user = %login, "session ended");
    match ended {
        Ok(Ended {
            upstream: Some(s),
            status,
        }) => {
            let conn = UpstreamConn {
                stream: s,
                params: conn_params,
                process_id,
                secret_key,
                home,
            };
            shared.pool.give_back(conn, slot, status);
        }
        _ => {
            // The client left mid-statement or something broke: stop the
            // backend's work and drop the connection.
            cancel::cancel_upstream(&shared.config.upstream, process_id, secret_key).await;
            drop(slot);
        }
    }
    Ok(())
}

fn token_expired() -> PgError {
    PgError::fatal(code::INVALID_AUTHORIZATION, "token expired")
}

/// Bypass for BYPASSPOLICY roles; otherwise the session's effective roles
/// and globals, resolved now on the service connection. The policy files'
/// `user_id`, `groups` and `roles` globals extend the identity first (see
/// [`crate::globals`] for the order).
async fn session_mode(
    shared: &Shared,
    mut identity: crate::auth::Identity,
    peer: Option<&str>,
) -> Result<Mode, PgError> {
    let policies = &shared.policies;
    let user = identity.login.clone();
    let user = user.as_str();
    let mut roles = identity.effective_roles(policies);
    let dynamic = crate::globals::has_identity_globals(policies);
    if !dynamic && identity.bypasses_policies(policies, &roles) {
        tracing::info!(user, "session bypasses policies (BYPASSPOLICY)");
        return Ok(Mode::Bypass);
    }
    let client = shared.control.client().await.map_err(|e| {
        tracing::warn!("control connection failed: {e}");
        PgError::fatal(
            code::CONNECTION_FAILURE,
            "the upstream database is unavailable",
        )
    })?;
    if dynamic {
        roles = crate::globals::extend_identity(
            policies,
            &mut identity,
            roles,
            peer,
            &client,
            &shared.config.globals,
        )
        .await?;
        if identity.bypasses_policies(policies, &roles) {
            tracing::info!(user, "session bypasses policies (BYPASSPOLICY)");
            return Ok(Mode::Bypass);
        }
    }
    let values = crate::globals::resolve_identity(
        policies,
        &identity,
        &roles,
        peer,
        &client,
        &shared.config.globals,
    )
    .await?;
    let context: Arc<str> = Arc::from(format!("{user}\u{0}{roles:?}\u{0}{values:?}"));
    Ok(Mode::Policy {
        access: Arc::new(
            policy::SessionPolicy::new(user, roles, values, shared.policies.clone())
                .with_catalog(shared.catalog.clone()),
        ),
        context,
    })
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

fn pool_failure(e: PoolError) -> PgError {
    match e {
        PoolError::Timeout(waited) => PgError::fatal(
            code::TOO_MANY_CONNECTIONS,
            format!(
                "no upstream connection became free within {} ms",
                waited.as_millis()
            ),
        )
        .with_hint("Raise upstream.pool_size or upstream.pool_timeout_ms."),
        // The client's own startup settings were rejected: its own business.
        PoolError::Setting { code, message } => {
            let code = crate::error::code::known(&code).unwrap_or(code::INVALID_PARAMETER_VALUE);
            PgError::fatal(code, message)
        }
        PoolError::Upstream(e) => {
            tracing::warn!("upstream connection failed: {e}");
            PgError::fatal(
                code::CONNECTION_FAILURE,
                "the upstream database is unavailable",
            )
        }
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
