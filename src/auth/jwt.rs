//! JWT bearer tokens sent as the password (`[auth.jwt]`). Signatures are
//! checked by jsonwebtoken with keys from a secret, a PEM public key, a
//! JWKS file (re-read when it changes) or a JWKS URL (fetched at start and
//! again on an unknown `kid`, at most once per `jwks_refresh_interval_s`).
//!
//! Must never: accept `alg: none` or an algorithm the configuration does not
//! list, use a public key as an HMAC secret, or accept a token without
//! `exp`, outside its `exp`/`nbf` (plus the leeway), or, when configured,
//! from another issuer or for another audience.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::{Mutex, RwLock};

use super::identity::{Identity, claim, claim_names, claim_user_id};
use crate::config::{JwtConfig, JwtKeys};
use crate::error::{PgError, code};

/// How a token was judged.
pub enum JwtOutcome {
    /// The password is not a JWT: another source may know it.
    NotAToken,
    Rejected(PgError),
    Accepted(Identity),
}

struct Key {
    kid: Option<String>,
    /// The JWK's `alg`, when it names one.
    alg: Option<String>,
    key: DecodingKey,
}

struct KeySet {
    keys: Vec<Key>,
    /// The JWKS file's modification time when it was read.
    modified: Option<SystemTime>,
}

pub struct JwtSource {
    config: JwtConfig,
    keys: RwLock<KeySet>,
    /// When the JWKS URL was last fetched; held while fetching.
    fetched: Mutex<Option<Instant>>,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtKeyError {
    #[error("cannot read {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("cannot fetch the JWKS at {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{what} is not a usable key: {message}")]
    Key { what: String, message: String },
}

impl JwtKeyError {
    /// A stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            JwtKeyError::File { .. } => "jwt_key_file",
            JwtKeyError::Fetch { .. } => "jwt_jwks_fetch",
            JwtKeyError::Key { .. } => "jwt_key",
        }
    }
}

fn key_error(what: &str, e: impl std::fmt::Display) -> JwtKeyError {
    JwtKeyError::Key {
        what: what.to_string(),
        message: e.to_string(),
    }
}

/// Keys from a JWKS document; keys pgward cannot use (encryption keys,
/// unknown types) are skipped with a warning.
fn jwks_keys(text: &[u8], what: &str) -> Result<Vec<Key>, JwtKeyError> {
    let set: JwkSet = serde_json::from_slice(text).map_err(|e| key_error(what, e))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) {
            continue;
        }
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg: jwk.common.key_algorithm.map(|a| format!("{a:?}")),
                key,
            }),
            Err(e) => tracing::warn!(
                "{what}: skipping key {:?}: {e}",
                jwk.common.key_id.as_deref().unwrap_or("(no kid)")
            ),
        }
    }
    Ok(keys)
}

fn pem_key(path: &PathBuf, alg: Algorithm) -> Result<Key, JwtKeyError> {
    let pem = std::fs::read(path).map_err(|e| JwtKeyError::File {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let what = path.display().to_string();
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
        _ => DecodingKey::from_rsa_pem(&pem),
    }
    .map_err(|e| key_error(&what, e))?;
    Ok(Key {
        kid: None,
        alg: None,
        key,
    })
}

fn file_modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl JwtSource {
    /// Loads the keys (fetching a JWKS URL now). Fails when none can be had.
    pub async fn start(config: JwtConfig, http: reqwest::Client) -> Result<JwtSource, JwtKeyError> {
        let source = JwtSource {
            keys: RwLock::new(KeySet {
                keys: Vec::new(),
                modified: None,
            }),
            fetched: Mutex::new(None),
            config,
            http,
        };
        let set = source.load().await?;
        *source.keys.write().await = set;
        if let JwtKeys::JwksUrl(_) = &source.config.keys {
            *source.fetched.lock().await = Some(Instant::now());
        }
        Ok(source)
    }

    async fn load(&self) -> Result<KeySet, JwtKeyError> {
        match &self.config.keys {
            JwtKeys::Secret(secret) => Ok(KeySet {
                keys: vec![Key {
                    kid: None,
                    alg: None,
                    key: DecodingKey::from_secret(secret),
                }],
                modified: None,
            }),
            JwtKeys::PemFile(path) => Ok(KeySet {
                keys: vec![pem_key(path, self.config.algorithms[0])?],
                modified: None,
            }),
            JwtKeys::JwksFile(path) => {
                let modified = file_modified(path);
                let text = std::fs::read(path).map_err(|e| JwtKeyError::File {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                Ok(KeySet {
                    keys: jwks_keys(&text, &path.display().to_string())?,
                    modified,
                })
            }
            JwtKeys::JwksUrl(url) => {
                let fetch = |message: String| JwtKeyError::Fetch {
                    url: url.clone(),
                    message,
                };
                let response = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| fetch(e.to_string()))?;
                if !response.status().is_success() {
                    return Err(fetch(format!("HTTP {}", response.status())));
                }
                let body = response.bytes().await.map_err(|e| fetch(e.to_string()))?;
                Ok(KeySet {
                    keys: jwks_keys(&body, url)?,
                    modified: None,
                })
            }
        }
    }

    /// Reloads the keys when they may have changed: a JWKS file whose
    /// modification time moved, or a JWKS URL not fetched within the
    /// refresh interval. Returns whether anything was reloaded.
    async fn refresh(&self) -> bool {
        match &self.config.keys {
            JwtKeys::JwksFile(path) => {
                let now = file_modified(path);
                if now.is_some() && now == self.keys.read().await.modified {
                    return false;
                }
            }
            JwtKeys::JwksUrl(_) => {
                let mut fetched = self.fetched.lock().await;
                if fetched.is_some_and(|t| t.elapsed() < self.config.jwks_refresh_interval) {
                    return false;
                }
                *fetched = Some(Instant::now());
                // Held across the fetch: concurrent logins wait for it
                // rather than fetching again.
                return match self.load().await {
                    Ok(set) => {
                        *self.keys.write().await = set;
                        true
                    }
                    Err(e) => {
                        tracing::warn!("{e}");
                        false
                    }
                };
            }
            _ => return false,
        }
        match self.load().await {
            Ok(set) => {
                *self.keys.write().await = set;
                true
            }
            Err(e) => {
                tracing::warn!("{e}");
                false
            }
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.algorithms = vec![alg];
        v.leeway = self.config.leeway.as_secs();
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if self.config.audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.config.audiences);
            required.push("aud");
        }
        if !self.config.issuers.is_empty() {
            v.set_issuer(&self.config.issuers);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// Checks a token sent as the password of `startup_user`.
    pub async fn authenticate(&self, startup_user: &str, token: &str) -> JwtOutcome {
        let Some(alg_name) = token_alg(token) else {
            return JwtOutcome::NotAToken;
        };
        let Some(alg) = self
            .config
            .algorithms
            .iter()
            .copied()
            .find(|a| format!("{a:?}") == alg_name)
        else {
            tracing::info!(
                user = startup_user,
                "token refused: algorithm {alg_name:?} is not accepted"
            );
            return JwtOutcome::Rejected(invalid_token());
        };
        let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
        let validation = self.validation(alg);
        let mut result = self.try_keys(token, alg, kid.as_deref(), &validation).await;
        if matches!(result, Err(None)) && self.refresh().await {
            result = self.try_keys(token, alg, kid.as_deref(), &validation).await;
        }
        let claims = match result {
            Ok(claims) => claims,
            Err(e) => {
                let kind = e.as_ref().map(|e| format!("{e:?}"));
                tracing::info!(
                    user = startup_user,
                    "token refused: {}",
                    kind.unwrap_or_else(|| "no key verifies it".into())
                );
                return JwtOutcome::Rejected(refusal(e.as_ref()));
            }
        };
        self.identity(startup_user, claims)
    }

    /// Verifies with each candidate key. `Err(None)`: no key verified the
    /// signature (an unknown `kid`, or a signature by another key).
    async fn try_keys(
        &self,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
        validation: &Validation,
    ) -> Result<serde_json::Value, Option<ErrorKind>> {
        let set = self.keys.read().await;
        let alg_name = format!("{alg:?}");
        for key in &set.keys {
            if kid.is_some() && key.kid.is_some() && key.kid.as_deref() != kid {
                continue;
            }
            if key.alg.as_ref().is_some_and(|a| *a != alg_name) {
                continue;
            }
            match jsonwebtoken::decode::<serde_json::Value>(token, &key.key, validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => match e.kind() {
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidAlgorithm
                    | ErrorKind::InvalidKeyFormat
                    | ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidRsaKey(_) => continue,
                    other => return Err(Some(other.clone())),
                },
            }
        }
        Err(None)
    }

    fn identity(&self, startup_user: &str, claims: serde_json::Value) -> JwtOutcome {
        let user = match claim(&claims, &self.config.user_claim) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => {
                tracing::info!(
                    user = startup_user,
                    "token refused: no user claim {:?}",
                    self.config.user_claim
                );
                return JwtOutcome::Rejected(
                    PgError::fatal(code::INVALID_AUTHORIZATION, "invalid token").with_detail(
                        format!("The token has no \"{}\" claim.", self.config.user_claim),
                    ),
                );
            }
        };
        if user != startup_user && !self.config.allow_user_mismatch {
            return JwtOutcome::Rejected(
                PgError::fatal(
                    code::INVALID_AUTHORIZATION,
                    format!("the token is not for user \"{startup_user}\""),
                )
                .with_hint("Connect with the user name the token was issued to."),
            );
        }
        let mut identity = Identity::new(&user, "jwt");
        if let Some(path) = &self.config.roles_claim {
            identity.roles = claim_names(&claims, path);
        }
        if let Some(path) = &self.config.groups_claim {
            identity.groups = claim_names(&claims, path);
        }
        if let Some(path) = &self.config.user_id_claim {
            identity.user_id = claim_user_id(&claims, path);
        }
        identity.expires = claims
            .get("exp")
            .and_then(serde_json::Value::as_u64)
            .map(|exp| SystemTime::UNIX_EPOCH + Duration::from_secs(exp) + self.config.leeway);
        identity.claims = claims;
        JwtOutcome::Accepted(identity)
    }
}

/// The `alg` of a password that has the shape of a JWS (three base64url
/// parts, the first a JSON object with an `alg` string); `None` otherwise.
pub fn token_alg(password: &str) -> Option<String> {
    let mut parts = password.split('.');
    let (header, _payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_string)
}

fn invalid_token() -> PgError {
    PgError::fatal(code::INVALID_AUTHORIZATION, "invalid token")
}

/// The error a refused token gets: 28000 with what went wrong, which tells
/// a token holder nothing about other users.
fn refusal(kind: Option<&ErrorKind>) -> PgError {
    match kind {
        Some(ErrorKind::ExpiredSignature) => {
            PgError::fatal(code::INVALID_AUTHORIZATION, "token expired")
        }
        Some(ErrorKind::ImmatureSignature) => {
            PgError::fatal(code::INVALID_AUTHORIZATION, "token not yet valid")
        }
        Some(ErrorKind::InvalidIssuer) => {
            invalid_token().with_detail("Its issuer is not accepted.")
        }
        Some(ErrorKind::InvalidAudience) => {
            invalid_token().with_detail("It is not meant for this audience.")
        }
        Some(ErrorKind::MissingRequiredClaim(c)) => {
            invalid_token().with_detail(format!("It has no \"{c}\" claim."))
        }
        _ => invalid_token(),
    }
}

/// Claim names a token must carry under the configured checks (for docs
/// and tests).
pub fn required_claims(config: &JwtConfig) -> HashSet<&'static str> {
    let mut set = HashSet::from(["exp"]);
    if !config.audiences.is_empty() {
        set.insert("aud");
    }
    if !config.issuers.is_empty() {
        set.insert("iss");
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn config() -> JwtConfig {
        JwtConfig {
            algorithms: vec![Algorithm::HS256],
            keys: JwtKeys::Secret(SECRET.to_vec()),
            issuers: vec!["https://issuer".into()],
            audiences: vec!["pgward".into()],
            leeway: Duration::ZERO,
            user_claim: "sub".into(),
            user_id_claim: Some("uid".into()),
            roles_claim: Some("realm_access.roles".into()),
            groups_claim: Some("groups".into()),
            allow_user_mismatch: false,
            jwks_refresh_interval: Duration::from_secs(60),
        }
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn good() -> serde_json::Value {
        json!({"sub": "ann", "uid": 7, "iss": "https://issuer", "aud": "pgward",
               "exp": now() + 60, "realm_access": {"roles": ["r1", "r2"]}, "groups": "g1 g2"})
    }

    async fn check(
        claims: serde_json::Value,
        secret: &[u8],
        user: &str,
    ) -> Result<Identity, PgError> {
        let http = crate::auth::http::client(Duration::from_secs(1), None).unwrap();
        let source = JwtSource::start(config(), http).await.unwrap();
        match source.authenticate(user, &token(claims, secret)).await {
            JwtOutcome::Accepted(i) => Ok(i),
            JwtOutcome::Rejected(e) => Err(e),
            JwtOutcome::NotAToken => panic!("not a token"),
        }
    }

    #[tokio::test]
    async fn claims_map_to_an_identity_and_checks_refuse() {
        let id = check(good(), SECRET, "ann").await.unwrap();
        assert_eq!(id.login, "ann");
        assert_eq!(id.roles, ["r1", "r2"]);
        assert_eq!(id.groups, ["g1", "g2"]);
        assert_eq!(id.user_id, Some(("7".into(), "pg_catalog.int8".into())));
        assert!(id.expires.is_some());

        let with = |k: &str, v: serde_json::Value| {
            let mut c = good();
            c[k] = v;
            c
        };
        let msg = |r: Result<Identity, PgError>| {
            let e = r.unwrap_err();
            (e.code, e.message, e.detail)
        };
        assert_eq!(
            msg(check(with("exp", json!(now() - 5)), SECRET, "ann").await).1,
            "token expired"
        );
        assert_eq!(
            msg(check(with("nbf", json!(now() + 60)), SECRET, "ann").await).1,
            "token not yet valid"
        );
        assert!(
            msg(check(with("iss", json!("https://evil")), SECRET, "ann").await)
                .2
                .unwrap()
                .contains("issuer")
        );
        assert!(
            msg(check(with("aud", json!("other")), SECRET, "ann").await)
                .2
                .unwrap()
                .contains("audience")
        );
        assert_eq!(
            msg(check(good(), b"another secret of 32 bytes......", "ann").await).1,
            "invalid token"
        );
        assert_eq!(
            msg(check(good(), SECRET, "bob").await).1,
            "the token is not for user \"bob\""
        );
        let mut no_exp = good();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(msg(check(no_exp, SECRET, "ann").await).0, "28000");
    }

    #[tokio::test]
    async fn alg_none_and_non_tokens() {
        let http = crate::auth::http::client(Duration::from_secs(1), None).unwrap();
        let source = JwtSource::start(config(), http).await.unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(good().to_string());
        for t in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.c2ln"),
        ] {
            assert!(matches!(
                source.authenticate("ann", &t).await,
                JwtOutcome::Rejected(e) if e.message == "invalid token"
            ));
        }
        for p in ["hunter2", "a.b.c", "", "x.y"] {
            assert!(matches!(
                source.authenticate("ann", p).await,
                JwtOutcome::NotAToken
            ));
        }
        assert_eq!(required_claims(&config()).len(), 3);
    }

    const ASYMMETRIC: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// A test key: the algorithms it signs, its signing key, its public key
    /// in PEM and as a JWK without `alg` (so that it serves every algorithm
    /// of its type).
    struct TestKey {
        algorithms: Vec<Algorithm>,
        signing: EncodingKey,
        pem: String,
        jwk: serde_json::Value,
    }

    fn test_keys() -> Vec<TestKey> {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/identity/");
        let read = |name: &str| std::fs::read(format!("{fixtures}{name}")).unwrap();
        let rsa_jwks: serde_json::Value =
            serde_json::from_slice(&read("rsa_public.jwks.json")).unwrap();
        let rsa = &rsa_jwks["keys"][0];
        let mut keys = vec![TestKey {
            algorithms: ASYMMETRIC[..6].to_vec(),
            signing: EncodingKey::from_rsa_pem(&read("rsa_private.pem")).unwrap(),
            pem: String::from_utf8(read("rsa_public.pem")).unwrap(),
            jwk: json!({"kty": "RSA", "kid": "rsa", "n": rsa["n"], "e": rsa["e"]}),
        }];
        for (alg, rcgen_alg, crv, size) in [
            (
                Algorithm::ES256,
                &rcgen::PKCS_ECDSA_P256_SHA256,
                "P-256",
                32,
            ),
            (
                Algorithm::ES384,
                &rcgen::PKCS_ECDSA_P384_SHA384,
                "P-384",
                48,
            ),
        ] {
            let pair = rcgen::KeyPair::generate_for(rcgen_alg).unwrap();
            let raw = pair.public_key_raw();
            assert_eq!((raw.len(), raw[0]), (1 + 2 * size, 4), "uncompressed point");
            keys.push(TestKey {
                algorithms: vec![alg],
                signing: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
                pem: pair.public_key_pem(),
                jwk: json!({"kty": "EC", "crv": crv, "kid": crv,
                            "x": URL_SAFE_NO_PAD.encode(&raw[1..1 + size]),
                            "y": URL_SAFE_NO_PAD.encode(&raw[1 + size..])}),
            });
        }
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        keys.push(TestKey {
            algorithms: vec![Algorithm::EdDSA],
            signing: EncodingKey::from_ed_pem(ed.serialize_pem().as_bytes()).unwrap(),
            pem: ed.public_key_pem(),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed",
                        "x": URL_SAFE_NO_PAD.encode(ed.public_key_raw())}),
        });
        keys
    }

    fn signed(alg: Algorithm, kid: Option<&str>, key: &EncodingKey) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        encode(&header, &good(), key).unwrap()
    }

    /// The login a token gets, or the refusal's message.
    async fn judged(source: &JwtSource, token: &str) -> Result<String, String> {
        match source.authenticate("ann", token).await {
            JwtOutcome::Accepted(i) => Ok(i.login),
            JwtOutcome::Rejected(e) => Err(format!("{} {}", e.code, e.message)),
            JwtOutcome::NotAToken => Err("not a token".into()),
        }
    }

    async fn source(algorithms: &[Algorithm], keys: JwtKeys) -> JwtSource {
        let http = crate::auth::http::client(Duration::from_secs(1), None).unwrap();
        let config = JwtConfig {
            algorithms: algorithms.to_vec(),
            keys,
            ..config()
        };
        JwtSource::start(config, http).await.unwrap()
    }

    #[tokio::test]
    async fn every_algorithm_verifies_and_unlisted_ones_are_refused() {
        let refused = Err("28000 invalid token".to_string());
        // HMAC: one secret, three algorithms.
        let secret = EncodingKey::from_secret(SECRET);
        let hs = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
        let all = source(&hs, JwtKeys::Secret(SECRET.to_vec())).await;
        for alg in hs {
            assert_eq!(
                judged(&all, &signed(alg, None, &secret)).await,
                Ok("ann".into()),
                "{alg:?}"
            );
        }
        for (listed, unlisted) in [(hs[0], hs[1]), (hs[1], hs[2]), (hs[2], hs[0])] {
            let one = source(&[listed], JwtKeys::Secret(SECRET.to_vec())).await;
            assert_eq!(
                judged(&one, &signed(listed, None, &secret)).await,
                Ok("ann".into())
            );
            assert_eq!(
                judged(&one, &signed(unlisted, None, &secret)).await,
                refused,
                "{unlisted:?}"
            );
        }

        // Every public key in one JWKS, with and without a kid; and each key
        // alone as a PEM file.
        let keys = test_keys();
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        let jwks_doc = json!({"keys": keys.iter().map(|k| &k.jwk).collect::<Vec<_>>()});
        std::fs::write(&jwks, jwks_doc.to_string()).unwrap();
        let everything = source(&ASYMMETRIC, JwtKeys::JwksFile(jwks.clone())).await;
        let mut verified = 0;
        for key in &keys {
            let kid = key.jwk["kid"].as_str();
            let pem = dir.path().join(format!("{}.pem", kid.unwrap()));
            std::fs::write(&pem, &key.pem).unwrap();
            let by_pem = source(&key.algorithms, JwtKeys::PemFile(pem)).await;
            for &alg in &key.algorithms {
                for kid in [kid, None] {
                    let token = signed(alg, kid, &key.signing);
                    assert_eq!(
                        judged(&everything, &token).await,
                        Ok("ann".into()),
                        "{alg:?}"
                    );
                    assert_eq!(
                        judged(&by_pem, &token).await,
                        Ok("ann".into()),
                        "{alg:?} PEM"
                    );
                    verified += 1;
                }
                // The same token, once its algorithm is not listed, is
                // refused as a bad signature is.
                let others: Vec<Algorithm> =
                    ASYMMETRIC.iter().copied().filter(|a| *a != alg).collect();
                let without = source(&others, JwtKeys::JwksFile(jwks.clone())).await;
                let token = signed(alg, kid, &key.signing);
                assert_eq!(judged(&without, &token).await, refused, "{alg:?} unlisted");
                let mut parts: Vec<&str> = token.split('.').collect();
                let mut claims = good();
                claims["uid"] = json!(8);
                let other_payload = URL_SAFE_NO_PAD.encode(claims.to_string());
                parts[1] = &other_payload;
                assert_eq!(
                    judged(&everything, &parts.join(".")).await,
                    refused,
                    "{alg:?} forged"
                );
            }
        }
        assert_eq!(verified, 2 * 9);
    }
}
