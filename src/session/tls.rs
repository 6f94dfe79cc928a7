//! The client-facing TLS configuration (rustls) and the channel-binding data
//! that SCRAM-SHA-256-PLUS binds to (tls-server-end-point of our certificate).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

/// A loaded server certificate and key.
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    /// tls-server-end-point channel-binding data for the leaf certificate;
    /// `None` for key types RFC 5929 defines no binding for (then -PLUS is
    /// not offered).
    pub channel_binding: Option<Vec<u8>>,
}

impl ServerTls {
    pub fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<ServerTls> {
        let cert_pem = std::fs::read(cert_file)
            .with_context(|| format!("cannot read server.cert_file {}", cert_file.display()))?;
        let key_pem = std::fs::read(key_file)
            .with_context(|| format!("cannot read server.key_file {}", key_file.display()))?;
        let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{}: not a PEM certificate file", cert_file.display()))?;
        let leaf = certs
            .first()
            .with_context(|| format!("{}: no certificate found", cert_file.display()))?;
        let channel_binding = crate::auth::scram::tls_server_end_point_defined(leaf.as_ref());
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .with_context(|| format!("{}: not a PEM key file", key_file.display()))?
            .with_context(|| format!("{}: no private key found", key_file.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("the server certificate and key do not fit together")?;
        Ok(ServerTls {
            config: Arc::new(config),
            channel_binding,
        })
    }
}
