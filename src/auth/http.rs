//! The one HTTP client of the identity sources (JWKS documents, token
//! introspection): rustls with ring, no proxy from the environment, short
//! timeouts, no redirects (a redirect could carry client credentials to
//! another host).

use std::path::Path;
use std::time::Duration;

/// Builds the client. Called once at start. `ca_file`: PEM certificates
/// trusted as roots on top of the built-in web roots (`auth.http_ca_file`,
/// for an identity provider behind a private CA).
pub fn client(timeout: Duration, ca_file: Option<&Path>) -> Result<reqwest::Client, anyhow::Error> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            anyhow::anyhow!("{}: not a PEM certificate bundle: {e}", path.display())
        })?;
        if roots.is_empty() {
            anyhow::bail!("{}: no certificate in the file", path.display());
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    Ok(builder
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("pgward/", env!("CARGO_PKG_VERSION")))
        .build()?)
}
