//! Control-plane connections with tokio-postgres: start-up checks (and later
//! catalog snapshots and globals) on the service identity.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Mutex;

use crate::config::{UpstreamConfig, UpstreamTls};

/// Opens a control connection; its driver task runs in the background.
pub async fn connect(
    cfg: &UpstreamConfig,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> anyhow::Result<tokio_postgres::Client> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&cfg.host)
        .port(cfg.port)
        .user(&cfg.user)
        .dbname(&cfg.database)
        .application_name("pgward control")
        .connect_timeout(cfg.connect_timeout);
    if let Some(p) = &cfg.password {
        pg.password(p);
    }
    let what = || format!("cannot connect to the upstream {}:{}", cfg.host, cfg.port);
    match tls {
        Some(tls) if cfg.tls != UpstreamTls::Disable => {
            pg.ssl_mode(match cfg.tls {
                UpstreamTls::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone());
            let (client, conn) = pg.connect(connector).await.with_context(what)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("control connection ended: {e}");
                }
            });
            Ok(client)
        }
        _ => {
            let (client, conn) = pg.connect(tokio_postgres::NoTls).await.with_context(what)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("control connection ended: {e}");
                }
            });
            Ok(client)
        }
    }
}

/// Refuses a service identity that could bypass row security, unless the
/// configuration explicitly allows it.
pub async fn check_service_identity(
    client: &tokio_postgres::Client,
    cfg: &UpstreamConfig,
) -> anyhow::Result<()> {
    let row = client
        .query_one(
            "SELECT rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .context("cannot read the service role's attributes")?;
    let (superuser, bypassrls): (bool, bool) = (row.get(0), row.get(1));
    if (superuser || bypassrls) && !cfg.allow_superuser {
        anyhow::bail!(
            "upstream.url: the service role \"{}\" is a {}; pgward refuses to run with it \
             (set upstream.allow_superuser = true to override)",
            cfg.user,
            if superuser {
                "superuser"
            } else {
                "role with BYPASSRLS"
            }
        );
    }
    if superuser || bypassrls {
        tracing::warn!(
            "the service role \"{}\" is a {}: allowed by upstream.allow_superuser; \
             row security in the database does not apply to it",
            cfg.user,
            if superuser {
                "superuser"
            } else {
                "role with BYPASSRLS"
            }
        );
    }
    Ok(())
}

/// The shared control connection, reopened when it has closed.
pub struct Control {
    cfg: UpstreamConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    client: Mutex<Option<Arc<tokio_postgres::Client>>>,
}

impl Control {
    pub fn new(
        cfg: UpstreamConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
        client: tokio_postgres::Client,
    ) -> Control {
        Control {
            cfg,
            tls,
            client: Mutex::new(Some(Arc::new(client))),
        }
    }

    /// The open control connection, reconnecting if needed.
    pub async fn client(&self) -> anyhow::Result<Arc<tokio_postgres::Client>> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        let fresh = Arc::new(connect(&self.cfg, self.tls.as_ref()).await?);
        *slot = Some(fresh.clone());
        Ok(fresh)
    }
}
