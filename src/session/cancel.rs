//! Cancel keys: each client gets its own BackendKeyData, and a CancelRequest
//! carrying it is passed to the upstream backend serving that client, with
//! the upstream's own key. A wrong secret does nothing, as in PostgreSQL.

use bytes::BytesMut;
use dashmap::DashMap;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

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

    /// Forwards a cancel to the upstream when the key matches.
    pub async fn cancel(&self, process_id: i32, secret_key: i32, shared: &Shared) {
        let upstream = match self.targets.get(&process_id) {
            Some(t) if t.secret_key == secret_key => (t.upstream_pid, t.upstream_secret),
            _ => {
                tracing::info!("cancel request with an unknown key ignored");
                return;
            }
        };
        let cfg = &shared.config.upstream;
        let mut buf = BytesMut::new();
        postgres_protocol::message::frontend::cancel_request(upstream.0, upstream.1, &mut buf);
        // PostgreSQL accepts plaintext cancel requests whatever its TLS settings.
        match TcpStream::connect((cfg.host.as_str(), cfg.port)).await {
            Ok(mut s) => {
                if let Err(e) = s.write_all(&buf).await {
                    tracing::warn!("cancel request not delivered: {e}");
                }
            }
            Err(e) => tracing::warn!("cancel request not delivered: {e}"),
        }
    }
}
