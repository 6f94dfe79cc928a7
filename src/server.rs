//! The listener: loads what every session shares, checks the service
//! identity, then accepts clients and runs one session task per connection.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::policy::PolicySet;
use crate::session::{self, Shared, tls::ServerTls};
use crate::upstream;

/// Everything a running proxy shares, built and checked before listening.
pub async fn prepare(config: Config) -> anyhow::Result<Arc<Shared>> {
    let policies = PolicySet::load(&config.policies.paths, config.auth.scram_iterations).map_err(
        |errors| {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("the policy set has errors:\n{}", list.join("\n"))
        },
    )?;
    let server_tls = match (&config.server.cert_file, &config.server.key_file) {
        (Some(c), Some(k)) => Some(ServerTls::load(c, k)?),
        _ => None,
    };
    let upstream_tls = upstream::tls::client_config(&config.upstream)?;
    let control = upstream::control::connect(&config.upstream, upstream_tls.as_ref()).await?;
    upstream::control::check_service_identity(&control, &config.upstream).await?;
    let connections = Arc::new(Semaphore::new(config.server.max_connections));
    Ok(Arc::new(Shared {
        config,
        policies,
        server_tls,
        upstream_tls,
        cancels: Default::default(),
        connections,
    }))
}

/// Serves clients until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let shared = prepare(config).await?;
    let addr = shared.config.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("listening on {}", listener.local_addr()?);
    serve(listener, shared, shutdown).await
}

/// Accepts clients on a bound listener until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tracing::debug!(%peer, "connection");
                    tokio::spawn(session::run(tcp, shared.clone()));
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
