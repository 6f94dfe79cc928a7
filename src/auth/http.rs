//! The one HTTP client of the identity sources (JWKS documents, token
//! introspection): rustls with ring, no proxy from the environment, short
//! timeouts, no redirects (a redirect could carry client credentials to
//! another host).

use std::time::Duration;

/// Builds the client. Called once at start.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("pgward/", env!("CARGO_PKG_VERSION")))
        .build()
}
