//! OAuth2 opaque tokens sent as the password, checked by RFC 7662 token
//! introspection (`[auth.introspection]`): a POST of the token with the
//! client credentials (HTTP Basic). An active answer is cached, keyed by
//! the SHA-256 of the token (never the token itself), until its `exp` and
//! at most `max_cache_s`.
//!
//! Must never: accept an answer that is not `"active": true`, or keep one
//! past its `exp`. An endpoint that cannot be reached refuses the login.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::identity::{Identity, claim, claim_names, claim_user_id};
use crate::config::IntrospectionConfig;
use crate::error::{PgError, code};

/// Cached answers at most.
const MAX_CACHED: usize = 10_000;

pub enum IntrospectionOutcome {
    /// Not an active token: another source may know the password.
    Inactive,
    Rejected(PgError),
    Accepted(Identity),
}

pub struct IntrospectionSource {
    config: IntrospectionConfig,
    http: reqwest::Client,
    cache: Mutex<HashMap<[u8; 32], (Identity, Instant)>>,
}

impl IntrospectionSource {
    pub fn new(config: IntrospectionConfig, http: reqwest::Client) -> IntrospectionSource {
        IntrospectionSource {
            config,
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn authenticate(&self, startup_user: &str, token: &str) -> IntrospectionOutcome {
        if token.is_empty() {
            return IntrospectionOutcome::Inactive;
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        let cached = {
            let mut cache = self.cache.lock().await;
            match cache.get(&key) {
                Some((identity, until)) if *until > now => Some(identity.clone()),
                Some(_) => {
                    cache.remove(&key);
                    None
                }
                None => None,
            }
        };
        let identity = match cached {
            Some(identity) => identity,
            None => match self.ask(token).await {
                Ok(Some(answer)) => match self.identity(answer) {
                    Some(identity) => {
                        self.remember(key, &identity).await;
                        identity
                    }
                    None => {
                        return IntrospectionOutcome::Rejected(
                            PgError::fatal(code::INVALID_AUTHORIZATION, "invalid token")
                                .with_detail(format!(
                                    "The introspection answer has no \"{}\".",
                                    self.config.user_claim
                                )),
                        );
                    }
                },
                Ok(None) => return IntrospectionOutcome::Inactive,
                Err(e) => {
                    tracing::warn!("token introspection at {} failed: {e}", self.config.url);
                    return IntrospectionOutcome::Rejected(PgError::fatal(
                        code::INVALID_AUTHORIZATION,
                        "the token could not be checked: the introspection endpoint is unavailable",
                    ));
                }
            },
        };
        if identity.login != startup_user {
            return IntrospectionOutcome::Rejected(
                PgError::fatal(
                    code::INVALID_AUTHORIZATION,
                    format!("the token is not for user \"{startup_user}\""),
                )
                .with_hint("Connect with the user name the token was issued to."),
            );
        }
        IntrospectionOutcome::Accepted(identity)
    }

    async fn remember(&self, key: [u8; 32], identity: &Identity) {
        let now = Instant::now();
        let mut ttl = self.config.max_cache;
        if let Some(exp) = identity.expires {
            ttl = ttl.min(
                exp.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            );
        }
        if ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().await;
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, (identity.clone(), now + ttl));
    }

    /// The endpoint's answer when the token is active; `None` when not.
    async fn ask(&self, token: &str) -> Result<Option<serde_json::Value>, String> {
        let response = self
            .http
            .post(&self.config.url)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .timeout(self.config.timeout)
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        if answer.get("active") != Some(&serde_json::Value::Bool(true)) {
            return Ok(None);
        }
        // An active token already past its exp is not active.
        if let Some(exp) = answer.get("exp").and_then(serde_json::Value::as_u64) {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if exp <= now {
                return Ok(None);
            }
        }
        Ok(Some(answer))
    }

    fn identity(&self, answer: serde_json::Value) -> Option<Identity> {
        let login = match claim(&answer, &self.config.user_claim)? {
            serde_json::Value::String(s) if !s.is_empty() => s.clone(),
            _ => return None,
        };
        let mut identity = Identity::new(&login, "introspection");
        if let Some(path) = &self.config.roles_claim {
            identity.roles = claim_names(&answer, path);
        }
        if let Some(path) = &self.config.groups_claim {
            identity.groups = claim_names(&answer, path);
        }
        if let Some(path) = &self.config.user_id_claim {
            identity.user_id = claim_user_id(&answer, path);
        }
        identity.expires = answer
            .get("exp")
            .and_then(serde_json::Value::as_u64)
            .map(|exp| SystemTime::UNIX_EPOCH + Duration::from_secs(exp));
        identity.claims = answer;
        Some(identity)
    }
}
