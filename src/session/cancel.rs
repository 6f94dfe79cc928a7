//! Cancel keys: each client gets its own BackendKeyData, and a CancelRequest
//! carrying it is passed to the upstream backend serving that client, with
//! the upstream's own key. A wrong secret does nothing, as in PostgreSQL.

use bytes::BytesMut;
use dashmap::DashMap;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::config::UpstreamConfig;
use crate::upstream::UpstreamConn;

use super::Shared;

/// The key handed to a client.
#[derive(Debug, Clone, Copy)]
pub struct ClientKey {
    pub process_id: i32,
    pub secret_key: i32,
}

struct Target {
    secret_key: i32,
    upstream_pid: i32,
    upstream_secret: i32,
}

#[derive(Default)]
pub struct CancelRegistry {
    targets: DashMap<i32, Target>,
}

impl CancelRegistry {
    /// Issues a fresh client key for an upstream connection.
    pub fn register(&self, conn: &UpstreamConn) -> ClientKey {
        loop {
            let process_id = rand::random::<i32>() & i32::MAX;
            if process_id == 0 {
                continue;
            }
            let secret_key = rand::random::<i32>();
            if let dashmap::Entry::Vacant(v) = self.targets.entry(process_id) {
                v.insert(Target {
                    secret_key,
                    upstream_pid: conn.process_id,
                    upstream_secret: conn.secret_key,
                });
                return ClientKey {
                    process_id,
                    secret_key,
                };
            }
        }
    }

    pub fn unregister(&self, process_id: i32) {
        self.targets.remove(&process_id);
    }

    /// Cancels what every live session is running upstream (shutdown after
    /// its timeout: a backend would otherwise go on until it next writes).
    pub async fn cancel_all(&self, cfg: &UpstreamConfig) {
        let targets: Vec<(i32, i32)> = self
            .targets
            .iter()
            .map(|t| (t.upstream_pid, t.upstream_secret))
            .collect();
        let cancels = targets
            .into_iter()
            .map(|(pid, secret)| cancel_upstream(cfg, pid, secret));
        futures_util::future::join_all(cancels).await;
    }

    /// Forwards a cancel to the upstream when the key matches.
    pub async fn cancel(&self, process_id: i32, secret_key: i32, shared: &Shared) {
        let upstream = match self.targets.get(&process_id) {
            Some(t) if t.secret_key == secret_key => (t.upstream_pid, t.upstream_secret),
            _ => {
                tracing::info!("cancel request with an unknown key ignored");
                return;
            }
        };
        cancel_upstream(&shared.config.upstream, upstream.0, upstream.1).await;
    }
}

/// Sends a CancelRequest for an upstream backend. PostgreSQL accepts
/// plaintext cancel requests whatever its TLS settings.
pub async fn cancel_upstream(cfg: &UpstreamConfig, process_id: i32, secret_key: i32) {
    let mut buf = BytesMut::new();
    postgres_protocol::message::frontend::cancel_request(process_id, secret_key, &mut buf);
    let sent = async {
        let mut s = TcpStream::connect((cfg.host.as_str(), cfg.port)).await?;
        s.write_all(&buf).await?;
        s.flush().await?;
        // PostgreSQL closes the connection once it has read the request.
        let mut sink = [0u8; 1];
        let _ = tokio::io::AsyncReadExt::read(&mut s, &mut sink).await;
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(cfg.connect_timeout, sent).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("cancel request not delivered: {e}"),
        Err(_) => tracing::warn!("cancel request not delivered: timed out"),
    }
}
