//! The listener: loads what every session shares, checks the service
//! identity, then accepts clients and runs one session task per connection.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::catalog::CatalogHandle;
use crate::config::Config;
use crate::policy::PolicySet;
use crate::session::{Shared, tls::ServerTls};
use crate::statement::cache::RewriteCache;
use crate::upstream;
use crate::upstream::control::Control;
use crate::upstream::pool::Pool;
use crate::workers::Workers;

/// A proxy ready to serve: what every session shares, and the switch that
/// tells sessions to finish.
pub struct Prepared {
    pub shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

/// Everything a running proxy shares, built and checked before listening.
pub async fn prepare(config: Config) -> anyhow::Result<Prepared> {
    let policies = PolicySet::load_keyed(
        &config.policies.paths,
        config.auth.scram_iterations,
        &config.auth.secret,
    )
    .map_err(|errors| {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the policy set has errors:\n{}", list.join("\n"))
    })?;
    let server_tls = match (&config.server.cert_file, &config.server.key_file) {
        (Some(c), Some(k)) => Some(ServerTls::load(c, k)?),
        _ => None,
    };
    let upstream_tls = upstream::tls::client_config(&config.upstream)?;
    let control = upstream::control::connect(&config.upstream, upstream_tls.as_ref()).await?;
    upstream::control::check_service_identity(&control, &config.upstream).await?;
    crate::check::helper::warn_if_unusable(&control, &config.upstream.user).await;
    let catalog = Arc::new(
        CatalogHandle::load(&control)
            .await
            .context("cannot read the upstream catalog")?,
    );
    let control = Arc::new(Control::new(
        config.upstream.clone(),
        upstream_tls.clone(),
        control,
    ));
    let identity = crate::auth::Sources::start(&config.auth).await?;
    let connections = Arc::new(Semaphore::new(config.server.max_connections));
    let pool = Pool::new(
        config.upstream.clone(),
        upstream_tls.clone(),
        config.server.workers,
    );
    let (shutdown, shutdown_rx) = watch::channel(false);
    Ok(Prepared {
        shared: Arc::new(Shared {
            config,
            policies: Arc::new(policies),
            catalog,
            control,
            rewrite_cache: Arc::new(RewriteCache::new(10_000)),
            server_tls,
            identity,
            upstream_tls,
            cancels: Default::default(),
            connections,
            pool,
            per_user: Default::default(),
            shutdown: shutdown_rx,
        }),
        shutdown,
    })
}

/// Serves clients until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let prepared = prepare(config).await?;
    let addr = prepared.shared.config.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("listening on {}", listener.local_addr()?);
    serve(listener, prepared, shutdown).await
}

/// Accepts clients on a bound listener until `shutdown` completes.
///
/// Shutdown is graceful: pgward stops accepting, lets running statements
/// finish, ends each session with 57P01 once it is at rest, and after
/// `server.shutdown_timeout` closes whatever is left.
pub async fn serve(
    listener: TcpListener,
    prepared: Prepared,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Prepared {
        shared,
        shutdown: stop,
    } = prepared;
    start_reaper(&shared).context("cannot start the idle connection reaper")?;
    let mut workers = Workers::start(
        shared.config.server.workers,
        shared.config.server.pin_threads,
        &shared,
    )
    .context("cannot start the session threads")?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                drop(listener);
                let _ = stop.send(true);
                let max = u32::try_from(shared.config.server.max_connections).unwrap_or(u32::MAX);
                let timeout = shared.config.server.shutdown_timeout;
                tracing::info!("shutting down: waiting up to {timeout:?} for sessions to finish");
                match tokio::time::timeout(timeout, shared.connections.acquire_many(max)).await {
                    Ok(_) => tracing::info!("all sessions finished"),
                    Err(_) => {
                        tracing::warn!("shutdown timeout: cancelling and closing the remaining sessions");
                        shared.cancels.cancel_all(&shared.config.upstream).await;
                    }
                }
                return Ok(());
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tracing::debug!(%peer, "connection");
                    workers.dispatch(tcp, &shared);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Closes idle upstream connections past `upstream.idle_timeout`, until
/// the server's state is gone. On a thread of its own: a timer on a session
/// thread's runtime would cost each of that thread's wake-ups a look at it.
fn start_reaper(shared: &Arc<Shared>) -> std::io::Result<()> {
    let every = (shared.config.upstream.idle_timeout / 2).max(std::time::Duration::from_secs(1));
    let shared = Arc::downgrade(shared);
    std::thread::Builder::new()
        .name("pgward-reaper".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                shared.pool.reap();
            }
        })
        .map(drop)
}
