//! The identity sources a running pgward holds (keys, caches, the HTTP
//! client, the throttle), built once at start from `[auth]`.

use std::time::Duration;

use super::introspection::IntrospectionSource;
use super::jwt::JwtSource;
use super::throttle::Throttle;
use crate::config::{AuthConfig, SourceKind, TableVerifiers};

pub struct Sources {
    pub jwt: Option<JwtSource>,
    pub introspection: Option<IntrospectionSource>,
    pub throttle: Throttle,
    /// Whether the listener uses SCRAM (every source has verifiers) or
    /// asks for a cleartext password.
    pub scram: bool,
}

/// How long an HTTP request of an identity source may take at most.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

impl Sources {
    /// Loads keys (fetching a JWKS URL) and builds the sources.
    pub async fn start(config: &AuthConfig) -> anyhow::Result<Sources> {
        let needs_http = config.jwt.is_some() || config.introspection.is_some();
        let http = if needs_http {
            Some(super::http::client(
                HTTP_TIMEOUT,
                config.http_ca_file.as_deref(),
            )?)
        } else {
            None
        };
        let jwt = match (&config.jwt, &http) {
            (Some(c), Some(http)) => Some(
                JwtSource::start(c.clone(), http.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("auth.jwt: {e}"))?,
            ),
            _ => None,
        };
        let introspection = match (&config.introspection, &http) {
            (Some(c), Some(http)) => Some(IntrospectionSource::new(c.clone(), http.clone())),
            _ => None,
        };
        Ok(Sources {
            jwt,
            introspection,
            throttle: Throttle::new(config.lockout.clone()),
            scram: uses_scram(config),
        })
    }
}

/// SCRAM when every configured source has verifiers: policy-file users and
/// a users table of SCRAM verifiers. Any other source needs the password
/// itself (a token, an LDAP bind, a bcrypt hash), and then every user is
/// asked for a cleartext password, so that the method tells nothing about
/// who exists.
pub fn uses_scram(config: &AuthConfig) -> bool {
    config.order.iter().all(|kind| match kind {
        SourceKind::Policy => true,
        SourceKind::Table => config
            .table
            .as_ref()
            .is_some_and(|t| t.verifiers == TableVerifiers::Scram),
        _ => false,
    })
}
