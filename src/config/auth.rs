//! `[auth]` beyond the SCRAM basics: the identity sources and the order they
//! are tried in, guests and failed-login throttling (PRODUCT.md §2
//! "Authentication rules"). Raw serde structs and their validated forms.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// An identity source, as named in `auth.order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// `CREATE USER` of the policy files.
    Policy,
    /// JWT bearer tokens sent as the password.
    Jwt,
    /// OAuth2 opaque tokens, checked by RFC 7662 introspection.
    Introspection,
    /// An LDAP directory.
    Ldap,
    /// Users from a table of the upstream database.
    Table,
    /// A script authenticator.
    Script,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Policy => "policy",
            SourceKind::Jwt => "jwt",
            SourceKind::Introspection => "introspection",
            SourceKind::Ldap => "ldap",
            SourceKind::Table => "table",
            SourceKind::Script => "script",
        }
    }
}

/// Where the keys that sign tokens come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeys {
    /// A shared secret (HS*).
    Secret(Vec<u8>),
    /// One public key in PEM (RS*/PS*: RSA, ES*: EC, EdDSA: Ed25519).
    PemFile(PathBuf),
    /// A JWKS document on disk, re-read when it changes.
    JwksFile(PathBuf),
    /// A JWKS document fetched at start and again on an unknown `kid`.
    JwksUrl(String),
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    pub keys: JwtKeys,
    /// Accepted `iss` values (any of them); empty: not checked.
    pub issuers: Vec<String>,
    /// Accepted `aud` values; empty: not checked.
    pub audiences: Vec<String>,
    pub leeway: Duration,
    /// Dotted path of the claim that names the user.
    pub user_claim: String,
    pub user_id_claim: Option<String>,
    pub roles_claim: Option<String>,
    pub groups_claim: Option<String>,
    /// Whether the startup user may differ from the token's user (the
    /// session then runs as the token's user).
    pub allow_user_mismatch: bool,
    /// A JWKS URL is fetched again on an unknown `kid` at most this often.
    pub jwks_refresh_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct IntrospectionConfig {
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    pub user_claim: String,
    pub user_id_claim: Option<String>,
    pub roles_claim: Option<String>,
    pub groups_claim: Option<String>,
    pub timeout: Duration,
    /// Active answers kept at most this long (and never past their `exp`).
    pub max_cache: Duration,
}

/// What the table's verifier column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableVerifiers {
    /// SCRAM-SHA-256 verifiers: the listener can use SCRAM.
    Scram,
    /// bcrypt or argon2 hashes: passwords must be sent in clear text.
    Hash,
}

#[derive(Debug, Clone)]
pub struct TableConfig {
    /// `$1` is the login; columns: verifier, user_id, roles, groups (the
    /// last three may be NULL; roles and groups are text arrays or text).
    pub query: String,
    pub verifiers: TableVerifiers,
}

#[derive(Debug, Clone)]
pub struct GuestConfig {
    pub enabled: bool,
    pub user: String,
}

#[derive(Debug, Clone)]
pub struct LockoutConfig {
    /// Failures (per name or per address) before a lockout; 0: never.
    pub max_failures: u32,
    /// Added to the refusal of each failure after the first, per failure so
    /// far, up to `max_delay`.
    pub delay: Duration,
    pub max_delay: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// How long a locked-out name or address is refused.
    pub duration: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawJwt {
    algorithms: Vec<String>,
    secret: Option<String>,
    secret_file: Option<String>,
    public_key_file: Option<String>,
    jwks_file: Option<String>,
    jwks_url: Option<String>,
    issuer: OneOrMany,
    audience: OneOrMany,
    leeway_s: u64,
    user_claim: String,
    user_id_claim: Option<String>,
    roles_claim: Option<String>,
    groups_claim: Option<String>,
    allow_user_mismatch: bool,
    jwks_refresh_interval_s: u64,
}

impl Default for RawJwt {
    fn default() -> Self {
        RawJwt {
            algorithms: vec!["RS256".into()],
            secret: None,
            secret_file: None,
            public_key_file: None,
            jwks_file: None,
            jwks_url: None,
            issuer: OneOrMany::default(),
            audience: OneOrMany::default(),
            leeway_s: 30,
            user_claim: "sub".into(),
            user_id_claim: None,
            roles_claim: None,
            groups_claim: None,
            allow_user_mismatch: false,
            jwks_refresh_interval_s: 60,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawIntrospection {
    url: Option<String>,
    client_id: String,
    client_secret: Option<String>,
    client_secret_file: Option<String>,
    user_claim: String,
    user_id_claim: Option<String>,
    roles_claim: Option<String>,
    groups_claim: Option<String>,
    timeout_ms: u64,
    max_cache_s: u64,
}

impl Default for RawIntrospection {
    fn default() -> Self {
        RawIntrospection {
            url: None,
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            user_claim: "username".into(),
            user_id_claim: None,
            roles_claim: None,
            groups_claim: None,
            timeout_ms: 5_000,
            max_cache_s: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawTable {
    query: Option<String>,
    verifiers: String,
}

impl Default for RawTable {
    fn default() -> Self {
        RawTable {
            query: None,
            verifiers: "scram".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawGuest {
    enabled: bool,
    user: String,
}

impl Default for RawGuest {
    fn default() -> Self {
        RawGuest {
            enabled: false,
            user: "guest".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLockout {
    max_failures: u32,
    delay_ms: u64,
    max_delay_ms: u64,
    window_s: u64,
    duration_s: u64,
}

impl Default for RawLockout {
    fn default() -> Self {
        RawLockout {
            max_failures: 10,
            delay_ms: 250,
            max_delay_ms: 2_000,
            window_s: 300,
            duration_s: 300,
        }
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn existing_file(base: &Path, key: &'static str, p: &str) -> Result<PathBuf, ConfigError> {
    let path = resolve(base, p);
    if !path.is_file() {
        return Err(invalid(
            key,
            format!("file {} does not exist", path.display()),
        ));
    }
    Ok(path)
}

fn read_secret(
    base: &Path,
    key: &'static str,
    file_key: &'static str,
    inline: Option<String>,
    file: Option<String>,
) -> Result<Option<Vec<u8>>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(key, format!("set {key} or {file_key}, not both"))),
        (Some(s), None) => Ok(Some(s.into_bytes())),
        (None, Some(f)) => {
            let path = existing_file(base, file_key, &f)?;
            let bytes = std::fs::read(&path)
                .map_err(|e| invalid(file_key, format!("cannot read {}: {e}", path.display())))?;
            // A trailing newline from an editor is not part of the secret.
            let trimmed = bytes.trim_ascii_end().to_vec();
            Ok(Some(trimmed))
        }
        (None, None) => Ok(None),
    }
}

fn http_url(key: &'static str, url: &str) -> Result<String, ConfigError> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(invalid(
            key,
            format!("\"{url}\" is not an http:// or https:// URL"),
        ));
    }
    Ok(url.to_string())
}

fn claim_path(key: &'static str, path: Option<String>) -> Result<Option<String>, ConfigError> {
    match path {
        Some(p) if p.is_empty() || p.split('.').any(str::is_empty) => Err(invalid(
            key,
            format!("\"{p}\" is not a claim path (names separated by dots)"),
        )),
        other => Ok(other),
    }
}

pub(super) fn parse_order(order: &[String]) -> Result<Vec<SourceKind>, ConfigError> {
    let mut kinds = Vec::new();
    for name in order {
        let kind = match name.as_str() {
            "policy" => SourceKind::Policy,
            "jwt" => SourceKind::Jwt,
            "introspection" => SourceKind::Introspection,
            "ldap" => SourceKind::Ldap,
            "table" => SourceKind::Table,
            "script" => SourceKind::Script,
            other => {
                return Err(invalid(
                    "auth.order",
                    format!(
                        "\"{other}\" is not one of policy, jwt, introspection, ldap, table, script"
                    ),
                ));
            }
        };
        if kinds.contains(&kind) {
            return Err(invalid("auth.order", format!("\"{name}\" is listed twice")));
        }
        kinds.push(kind);
    }
    if kinds.is_empty() {
        return Err(invalid("auth.order", "names no identity source"));
    }
    Ok(kinds)
}

impl RawJwt {
    pub(super) fn validate(self, base: &Path) -> Result<JwtConfig, ConfigError> {
        use jsonwebtoken::Algorithm;
        let mut algorithms = Vec::new();
        for name in &self.algorithms {
            let alg = match name.as_str() {
                "HS256" => Algorithm::HS256,
                "HS384" => Algorithm::HS384,
                "HS512" => Algorithm::HS512,
                "RS256" => Algorithm::RS256,
                "RS384" => Algorithm::RS384,
                "RS512" => Algorithm::RS512,
                "PS256" => Algorithm::PS256,
                "PS384" => Algorithm::PS384,
                "PS512" => Algorithm::PS512,
                "ES256" => Algorithm::ES256,
                "ES384" => Algorithm::ES384,
                "EdDSA" => Algorithm::EdDSA,
                "none" => {
                    return Err(invalid(
                        "auth.jwt.algorithms",
                        "\"none\" is never accepted: unsigned tokens prove nothing",
                    ));
                }
                other => {
                    return Err(invalid(
                        "auth.jwt.algorithms",
                        format!(
                            "\"{other}\" is not one of HS256, HS384, HS512, RS256, RS384, RS512, \
                             PS256, PS384, PS512, ES256, ES384, EdDSA"
                        ),
                    ));
                }
            };
            algorithms.push(alg);
        }
        if algorithms.is_empty() {
            return Err(invalid("auth.jwt.algorithms", "names no algorithm"));
        }
        let secret = read_secret(
            base,
            "auth.jwt.secret",
            "auth.jwt.secret_file",
            self.secret,
            self.secret_file,
        )?;
        let mut sources = Vec::new();
        if let Some(s) = secret {
            sources.push(JwtKeys::Secret(s));
        }
        if let Some(f) = self.public_key_file {
            sources.push(JwtKeys::PemFile(existing_file(
                base,
                "auth.jwt.public_key_file",
                &f,
            )?));
        }
        if let Some(f) = self.jwks_file {
            sources.push(JwtKeys::JwksFile(existing_file(
                base,
                "auth.jwt.jwks_file",
                &f,
            )?));
        }
        if let Some(u) = self.jwks_url {
            sources.push(JwtKeys::JwksUrl(http_url("auth.jwt.jwks_url", &u)?));
        }
        if sources.len() != 1 {
            return Err(invalid(
                "auth.jwt",
                "set exactly one of secret (or secret_file), public_key_file, jwks_file, jwks_url",
            ));
        }
        let keys = sources.remove(0);
        let hmac =
            |a: &Algorithm| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
        match &keys {
            JwtKeys::Secret(s) => {
                if !algorithms.iter().all(hmac) {
                    return Err(invalid(
                        "auth.jwt.algorithms",
                        "a secret signs only HS256, HS384 and HS512 tokens",
                    ));
                }
                if s.len() < 32 {
                    return Err(invalid("auth.jwt.secret", "must be at least 32 bytes long"));
                }
            }
            _ => {
                // A public key must never be usable as an HMAC secret
                // (algorithm confusion).
                if algorithms.iter().any(hmac) {
                    return Err(invalid(
                        "auth.jwt.algorithms",
                        "HS256, HS384 and HS512 need auth.jwt.secret, not public keys",
                    ));
                }
            }
        }
        if let JwtKeys::PemFile(_) = &keys {
            let family = |a: &Algorithm| match a {
                Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512 => "RSA",
                Algorithm::ES256 | Algorithm::ES384 => "EC",
                _ => "Ed25519",
            };
            let first = family(&algorithms[0]);
            if algorithms.iter().any(|a| family(a) != first) {
                return Err(invalid(
                    "auth.jwt.algorithms",
                    "one public key file serves one key type: list RSA (RS*, PS*), EC (ES*) or \
                     EdDSA algorithms only, or use a JWKS",
                ));
            }
        }
        if self.user_claim.is_empty() {
            return Err(invalid("auth.jwt.user_claim", "must not be empty"));
        }
        Ok(JwtConfig {
            algorithms,
            keys,
            issuers: self.issuer.into_vec(),
            audiences: self.audience.into_vec(),
            leeway: Duration::from_secs(self.leeway_s),
            user_claim: claim_path("auth.jwt.user_claim", Some(self.user_claim))?
                .unwrap_or_default(),
            user_id_claim: claim_path("auth.jwt.user_id_claim", self.user_id_claim)?,
            roles_claim: claim_path("auth.jwt.roles_claim", self.roles_claim)?,
            groups_claim: claim_path("auth.jwt.groups_claim", self.groups_claim)?,
            allow_user_mismatch: self.allow_user_mismatch,
            jwks_refresh_interval: Duration::from_secs(self.jwks_refresh_interval_s),
        })
    }
}

impl RawIntrospection {
    pub(super) fn validate(self, base: &Path) -> Result<IntrospectionConfig, ConfigError> {
        let url = self
            .url
            .ok_or_else(|| invalid("auth.introspection.url", "missing"))?;
        let url = http_url("auth.introspection.url", &url)?;
        let secret = read_secret(
            base,
            "auth.introspection.client_secret",
            "auth.introspection.client_secret_file",
            self.client_secret,
            self.client_secret_file,
        )?
        .ok_or_else(|| invalid("auth.introspection.client_secret", "missing"))?;
        let client_secret = String::from_utf8(secret)
            .map_err(|_| invalid("auth.introspection.client_secret", "is not UTF-8"))?;
        if self.client_id.is_empty() {
            return Err(invalid("auth.introspection.client_id", "missing"));
        }
        Ok(IntrospectionConfig {
            url,
            client_id: self.client_id,
            client_secret,
            user_claim: claim_path("auth.introspection.user_claim", Some(self.user_claim))?
                .unwrap_or_default(),
            user_id_claim: claim_path("auth.introspection.user_id_claim", self.user_id_claim)?,
            roles_claim: claim_path("auth.introspection.roles_claim", self.roles_claim)?,
            groups_claim: claim_path("auth.introspection.groups_claim", self.groups_claim)?,
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            max_cache: Duration::from_secs(self.max_cache_s),
        })
    }
}

impl RawTable {
    pub(super) fn validate(self) -> Result<TableConfig, ConfigError> {
        let query = self
            .query
            .ok_or_else(|| invalid("auth.table.query", "missing"))?;
        if !query.contains("$1") {
            return Err(invalid("auth.table.query", "must take the login as $1"));
        }
        let verifiers = match self.verifiers.as_str() {
            "scram" => TableVerifiers::Scram,
            "hash" => TableVerifiers::Hash,
            other => {
                return Err(invalid(
                    "auth.table.verifiers",
                    format!("\"{other}\" is not one of scram, hash"),
                ));
            }
        };
        Ok(TableConfig { query, verifiers })
    }
}

impl RawGuest {
    pub(super) fn validate(self) -> Result<GuestConfig, ConfigError> {
        if self.enabled && self.user.is_empty() {
            return Err(invalid("auth.guest.user", "must not be empty"));
        }
        Ok(GuestConfig {
            enabled: self.enabled,
            user: self.user,
        })
    }
}

impl RawLockout {
    pub(super) fn validate(self) -> LockoutConfig {
        LockoutConfig {
            max_failures: self.max_failures,
            delay: Duration::from_millis(self.delay_ms),
            max_delay: Duration::from_millis(self.max_delay_ms.max(self.delay_ms)),
            window: Duration::from_secs(self.window_s.max(1)),
            duration: Duration::from_secs(self.duration_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use std::path::Path;

    fn load(auth: &str) -> Result<Config, String> {
        Config::from_toml(
            &format!("[upstream]\nurl = \"postgres://a@b/c\"\n{auth}"),
            Path::new("/nonexistent"),
        )
        .map_err(|e| e.to_string())
    }

    const SECRET: &str = "secret = \"0123456789abcdef0123456789abcdef\"";

    #[test]
    fn order_and_sections_must_agree() {
        let c = load("").unwrap();
        assert_eq!(c.auth.order, [super::SourceKind::Policy]);
        assert!(!c.auth.guest.enabled);
        assert_eq!(c.auth.lockout.max_failures, 10);
        assert_eq!(
            load("[auth]\norder = [\"jwt\"]\n").unwrap_err(),
            "auth.order: \"jwt\" is listed but [auth.jwt] is missing"
        );
        assert_eq!(
            load(&format!("[auth.jwt]\nalgorithms = [\"HS256\"]\n{SECRET}\n")).unwrap_err(),
            "auth.order: [auth.jwt] is configured but \"jwt\" is not in auth.order"
        );
        assert!(
            load("[auth]\norder = [\"policy\", \"policy\"]\n")
                .unwrap_err()
                .contains("listed twice")
        );
        assert!(
            load("[auth]\norder = [\"kerberos\"]\n")
                .unwrap_err()
                .starts_with("auth.order: \"kerberos\" is not one of")
        );
        assert!(
            load("[auth]\norder = []\n")
                .unwrap_err()
                .contains("names no identity source")
        );
    }

    #[test]
    fn jwt_keys_and_algorithms_are_checked() {
        let jwt = |body: &str| load(&format!("[auth]\norder = [\"jwt\"]\n[auth.jwt]\n{body}\n"));
        let c = jwt(&format!("algorithms = [\"HS256\", \"HS512\"]\n{SECRET}\nissuer = \"i\"\naudience = [\"a\", \"b\"]")).unwrap();
        let j = c.auth.jwt.unwrap();
        assert_eq!(j.issuers, ["i"]);
        assert_eq!(j.audiences, ["a", "b"]);
        assert!(
            jwt(&format!("algorithms = [\"none\"]\n{SECRET}"))
                .unwrap_err()
                .contains("never accepted")
        );
        assert!(
            jwt(&format!("algorithms = [\"RS256\"]\n{SECRET}"))
                .unwrap_err()
                .contains("only HS256")
        );
        assert!(
            jwt("algorithms = [\"HS256\"]\njwks_url = \"https://idp/jwks\"")
                .unwrap_err()
                .contains("need auth.jwt.secret")
        );
        assert!(
            jwt("algorithms = [\"HS256\"]\nsecret = \"short\"")
                .unwrap_err()
                .contains("at least 32 bytes")
        );
        assert!(
            jwt("algorithms = [\"ES256\"]")
                .unwrap_err()
                .contains("exactly one of")
        );
        assert!(
            jwt("jwks_url = \"ftp://x\"")
                .unwrap_err()
                .contains("not an http")
        );
        assert!(
            jwt("public_key_file = \"k.pem\"")
                .unwrap_err()
                .contains("/nonexistent/k.pem")
        );
        assert!(
            jwt(&format!(
                "algorithms = [\"HS256\"]\n{SECRET}\nroles_claim = \"a..b\""
            ))
            .unwrap_err()
            .contains("claim path")
        );
    }

    #[test]
    fn other_sections() {
        let c = load(
            "[auth]\norder = [\"table\", \"introspection\"]\n\
             [auth.table]\nquery = \"SELECT v, i, r, g FROM u WHERE l = $1\"\nverifiers = \"hash\"\n\
             [auth.introspection]\nurl = \"https://idp/introspect\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             [auth.guest]\nenabled = true\n",
        )
        .unwrap();
        assert_eq!(c.auth.table.unwrap().verifiers, super::TableVerifiers::Hash);
        assert_eq!(c.auth.introspection.unwrap().user_claim, "username");
        assert_eq!(c.auth.guest.user, "guest");
        assert!(
            load("[auth]\norder = [\"table\"]\n[auth.table]\nquery = \"SELECT 1\"\n")
                .unwrap_err()
                .contains("$1")
        );
        assert!(
            load("[auth.lockout]\nmax_failure = 3\n")
                .unwrap_err()
                .contains("max_failure")
        );
    }
}

#[cfg(test)]
mod readme {
    use super::super::Config;
    use std::path::Path;

    /// Every TOML example of the README's Identity section loads as written.
    #[test]
    fn identity_examples_load() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let start = readme.find("\n## Identity\n").expect("an Identity section");
        let end = start
            + readme[start..]
                .find("\n### LDAP (`[auth.ldap]`)")
                .expect("the LDAP section after it");
        let mut blocks = 0;
        for block in readme[start..end].split("```toml\n").skip(1) {
            let toml = block.split("```").next().unwrap_or_default();
            let text = format!("[upstream]\nurl = \"postgres://a@b/c\"\n{toml}");
            // A lone [auth] order snippet names sources it does not
            // configure; the others are complete.
            match Config::from_toml(&text, Path::new("/nonexistent")) {
                Ok(_) => {}
                Err(e) if toml.contains("\"script\"]   # default") => {
                    assert!(e.to_string().contains("is listed but"), "{e}")
                }
                Err(e) => panic!("{e}\n{toml}"),
            }
            blocks += 1;
        }
        assert!(blocks >= 6, "{blocks}");
    }
}
