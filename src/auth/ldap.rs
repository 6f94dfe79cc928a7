//! LDAP identity source: a simple bind as the user, either to a DN built from
//! a template or to the one entry a search (as a service account) finds;
//! then the user's groups, mapped to pgward roles.
//!
//! Owns the LDAP exchange and the escaping of the login into DNs (RFC 4514)
//! and filters (RFC 4515). Must never: bind with an empty password (LDAP reads
//! that as an anonymous bind, which succeeds: RFC 4513 §5.1.2), splice a login
//! into a DN or filter unescaped, or accept a login that matches more than one
//! entry. What cannot be decided (the directory is down, the service account
//! is refused, a timeout) is an error, never an acceptance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use serde::Deserialize;

/// LDAP result code of a bind with a wrong password or an unknown DN.
const INVALID_CREDENTIALS: u32 = 49;

/// Where Debian keeps the system's trusted roots, used for TLS when no
/// `ca_file` is configured.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// `[auth.ldap]`.
///
/// ```toml
/// [auth.ldap]
/// url = "ldaps://ldap.example.org"          # ldap:// or ldaps://
/// starttls = false                          # StartTLS on an ldap:// URL
/// ca_file = "ldap-ca.pem"                   # roots for ldaps/StartTLS (default: the system's)
/// bind_dn_template = "uid={login},ou=people,dc=example,dc=org"
/// # or, instead of the template, search-then-bind:
/// # [auth.ldap.search]
/// # base = "ou=people,dc=example,dc=org"
/// # filter = "(uid={login})"
/// # bind_dn = "cn=pgward,dc=example,dc=org"
/// # bind_password = "…"
/// [auth.ldap.groups]
/// base = "ou=groups,dc=example,dc=org"
/// filter = "(member={dn})"                  # {dn}: the user's DN, {login}: the login
/// attribute = "cn"                          # the group's name
/// [auth.ldap.role_map]
/// sales = "sales_rep"                       # group name (or DN) → pgward role(s)
/// "cn=admins,ou=groups,dc=example,dc=org" = ["dba", "employee"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapSettings {
    pub url: String,
    pub starttls: bool,
    /// PEM roots for ldaps/StartTLS; relative to the configuration file
    /// once [`LdapSettings::validate`] has run.
    pub ca_file: Option<PathBuf>,
    /// A DN with `{login}` (escaped per RFC 4514). Either this or `search`.
    pub bind_dn_template: Option<String>,
    pub search: Option<LdapSearch>,
    pub groups: Option<LdapGroups>,
    /// Group name (the `groups.attribute` value) or group DN → pgward
    /// role(s); compared without regard to ASCII case, as LDAP compares names.
    pub role_map: BTreeMap<String, RoleNames>,
    /// Plain `ldap://` without StartTLS to a host other than loopback sends
    /// passwords in clear; refused unless this is true.
    pub allow_plaintext: bool,
    pub connect_timeout_ms: u64,
    /// Limit of each LDAP operation, and of the whole exchange four times over.
    pub timeout_ms: u64,
}

impl Default for LdapSettings {
    fn default() -> Self {
        LdapSettings {
            url: "ldap://127.0.0.1:389".into(),
            starttls: false,
            ca_file: None,
            bind_dn_template: None,
            search: None,
            groups: None,
            role_map: BTreeMap::new(),
            allow_plaintext: false,
            connect_timeout_ms: 5000,
            timeout_ms: 5000,
        }
    }
}

/// `[auth.ldap.search]`: find the user's entry, then bind as it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSearch {
    pub base: String,
    /// With `{login}`, escaped per RFC 4515.
    #[serde(default = "default_user_filter")]
    pub filter: String,
    /// The service account; without it the search is anonymous.
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub bind_password: Option<String>,
}

fn default_user_filter() -> String {
    "(uid={login})".into()
}

/// `[auth.ldap.groups]`: the user's groups, searched after the user's bind
/// (as the service account when there is one, else as the user).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapGroups {
    pub base: String,
    /// With `{dn}` and/or `{login}`, escaped per RFC 4515.
    #[serde(default = "default_group_filter")]
    pub filter: String,
    /// The attribute that names a group.
    #[serde(default = "default_group_attribute")]
    pub attribute: String,
}

fn default_group_filter() -> String {
    "(member={dn})".into()
}

fn default_group_attribute() -> String {
    "cn".into()
}

/// One role or several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RoleNames {
    One(String),
    Many(Vec<String>),
}

impl RoleNames {
    fn names(&self) -> &[String] {
        match self {
            RoleNames::One(name) => std::slice::from_ref(name),
            RoleNames::Many(names) => names,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapIdentity {
    pub login: String,
    /// pgward roles from `role_map`, in the map's order, without repeats.
    pub roles: Vec<String>,
    /// The names (`groups.attribute`) of the user's groups, sorted.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapOutcome {
    /// The directory has no such user (search-then-bind only: with a DN
    /// template a missing entry and a wrong password look the same to LDAP,
    /// so both are `Rejected`).
    Unknown,
    Rejected,
    Accepted(LdapIdentity),
}

#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("auth.ldap: {0}")]
    Config(String),
    #[error("LDAP server {url}: {message}")]
    Server { url: String, message: String },
    #[error("LDAP server {url} did not answer within {ms} ms")]
    Timeout { url: String, ms: u64 },
}

impl LdapError {
    /// A stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            LdapError::Config(_) => "ldap_config",
            LdapError::Server { .. } => "ldap_server",
            LdapError::Timeout { .. } => "ldap_timeout",
        }
    }
}

impl LdapSettings {
    /// Checks the settings and makes `ca_file` relative to `base` (the
    /// configuration file's folder). Call once at start.
    pub fn validate(&mut self, base: &Path) -> Result<(), LdapError> {
        let config = |m: String| Err(LdapError::Config(m));
        let url = self.url.to_ascii_lowercase();
        let ldaps = url.starts_with("ldaps://");
        if !ldaps && !url.starts_with("ldap://") {
            return config(format!(
                "url must start with ldap:// or ldaps://, not {:?}",
                self.url
            ));
        }
        if ldaps && self.starttls {
            return config("starttls is for ldap:// URLs; ldaps:// is TLS already".into());
        }
        if !ldaps && !self.starttls && !self.allow_plaintext && !is_loopback_url(&self.url) {
            return config(format!(
                "{} would carry passwords in clear: use ldaps://, starttls = true, or set \
                 allow_plaintext = true",
                self.url
            ));
        }
        match (&self.bind_dn_template, &self.search) {
            (Some(_), Some(_)) => {
                return config("set bind_dn_template or [auth.ldap.search], not both".into());
            }
            (None, None) => {
                return config("set bind_dn_template or [auth.ldap.search]".into());
            }
            (Some(template), None) if !template.contains("{login}") => {
                return config("bind_dn_template must contain {login}".into());
            }
            (None, Some(search)) => {
                if !search.filter.contains("{login}") {
                    return config("search.filter must contain {login}".into());
                }
                if search.bind_dn.is_some() != search.bind_password.is_some() {
                    return config("search.bind_dn and search.bind_password go together".into());
                }
                if search.bind_password.as_deref() == Some("") {
                    return config(
                        "search.bind_password is empty, which LDAP reads as an anonymous bind"
                            .into(),
                    );
                }
            }
            _ => {}
        }
        if let Some(groups) = &self.groups
            && !groups.filter.contains("{dn}")
            && !groups.filter.contains("{login}")
        {
            return config("groups.filter must contain {dn} or {login}".into());
        }
        if let Some(ca) = &self.ca_file {
            let path = base.join(ca);
            if !path.is_file() {
                return config(format!("ca_file {} does not exist", path.display()));
            }
            self.ca_file = Some(path);
        }
        if self.connect_timeout_ms == 0 || self.timeout_ms == 0 {
            return config("connect_timeout_ms and timeout_ms must be above 0".into());
        }
        if ldaps || self.starttls {
            tls_config(self)?;
        }
        Ok(())
    }

    fn uses_tls(&self) -> bool {
        self.starttls || self.url.to_ascii_lowercase().starts_with("ldaps://")
    }
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Escapes a value for an LDAP search filter (RFC 4515 §3): `*`, `(`, `)`,
/// `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a value for an attribute value of a DN (RFC 4514 §2.4): `"`, `+`,
/// `,`, `;`, `<`, `>`, `\` with a backslash; `=` too (allowed by §3 and
/// clearer); a leading `#` or space, a trailing space; NUL as `\00`.
pub fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

/// Authenticates `login` with `password` against the directory.
///
/// Cancel-safe: dropping the future drops the connection.
pub async fn authenticate(
    settings: &LdapSettings,
    login: &str,
    password: &str,
) -> Result<LdapOutcome, LdapError> {
    // LDAP reads a simple bind with an empty password as an anonymous bind,
    // which succeeds for any DN (RFC 4513 §5.1.2).
    if password.is_empty() || login.is_empty() {
        return Ok(LdapOutcome::Rejected);
    }
    let limit = settings
        .connect_timeout_ms
        .saturating_add(settings.timeout_ms.saturating_mul(4));
    match tokio::time::timeout(
        Duration::from_millis(limit),
        exchange(settings, login, password),
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(_) => Err(LdapError::Timeout {
            url: settings.url.clone(),
            ms: limit,
        }),
    }
}

async fn exchange(
    settings: &LdapSettings,
    login: &str,
    password: &str,
) -> Result<LdapOutcome, LdapError> {
    let server = |e: ldap3::LdapError| server_error(settings, e);
    let mut conn_settings = LdapConnSettings::new()
        .set_conn_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .set_starttls(settings.starttls);
    if settings.uses_tls() {
        conn_settings = conn_settings.set_config(tls_config(settings)?);
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &settings.url)
        .await
        .map_err(server)?;
    ldap3::drive!(conn);
    let outcome = session(settings, &mut ldap, login, password).await;
    let _ = ldap.unbind().await;
    outcome
}

async fn session(
    settings: &LdapSettings,
    ldap: &mut Ldap,
    login: &str,
    password: &str,
) -> Result<LdapOutcome, LdapError> {
    let server = |e: ldap3::LdapError| server_error(settings, e);
    let op = Duration::from_millis(settings.timeout_ms);
    let user_dn = match (&settings.bind_dn_template, &settings.search) {
        (Some(template), _) => template.replace("{login}", &escape_dn_value(login)),
        (None, Some(search)) => {
            if let (Some(dn), Some(pw)) = (&search.bind_dn, &search.bind_password) {
                service_bind(settings, ldap, dn, pw).await?;
            }
            let filter = search
                .filter
                .replace("{login}", &escape_filter_value(login));
            let (entries, _) = ldap
                .with_timeout(op)
                .search(&search.base, Scope::Subtree, &filter, vec!["1.1"])
                .await
                .and_then(|r| r.success())
                .map_err(server)?;
            match entries.len() {
                0 => return Ok(LdapOutcome::Unknown),
                1 => {}
                n => {
                    tracing::warn!(
                        "LDAP search for login {login:?} found {n} entries; refusing the login"
                    );
                    return Ok(LdapOutcome::Rejected);
                }
            }
            let entry = entries.into_iter().next().map(SearchEntry::construct);
            match entry {
                Some(entry) if !entry.dn.is_empty() => entry.dn,
                _ => return Ok(LdapOutcome::Rejected),
            }
        }
        (None, None) => {
            return Err(LdapError::Config(
                "set bind_dn_template or [auth.ldap.search]".into(),
            ));
        }
    };
    let bind = ldap
        .with_timeout(op)
        .simple_bind(&user_dn, password)
        .await
        .map_err(server)?;
    match bind.rc {
        0 => {}
        INVALID_CREDENTIALS => return Ok(LdapOutcome::Rejected),
        rc => {
            return Err(LdapError::Server {
                url: settings.url.clone(),
                message: format!("bind answered {rc}: {}", bind.text),
            });
        }
    }
    let groups = match &settings.groups {
        None => Vec::new(),
        Some(groups) => {
            if let Some(search) = &settings.search
                && let (Some(dn), Some(pw)) = (&search.bind_dn, &search.bind_password)
            {
                service_bind(settings, ldap, dn, pw).await?;
            }
            user_groups(settings, groups, ldap, &user_dn, login).await?
        }
    };
    let mut roles: Vec<String> = Vec::new();
    for (group, mapped) in &settings.role_map {
        let member = groups
            .iter()
            .any(|(dn, name)| dn.eq_ignore_ascii_case(group) || name.eq_ignore_ascii_case(group));
        if member {
            for role in mapped.names() {
                if !roles.contains(role) {
                    roles.push(role.clone());
                }
            }
        }
    }
    let mut names: Vec<String> = groups.into_iter().map(|(_, name)| name).collect();
    names.sort();
    names.dedup();
    Ok(LdapOutcome::Accepted(LdapIdentity {
        login: login.to_string(),
        roles,
        groups: names,
    }))
}

async fn service_bind(
    settings: &LdapSettings,
    ldap: &mut Ldap,
    dn: &str,
    password: &str,
) -> Result<(), LdapError> {
    if password.is_empty() {
        return Err(LdapError::Config(
            "search.bind_password is empty, which LDAP reads as an anonymous bind".into(),
        ));
    }
    ldap.with_timeout(Duration::from_millis(settings.timeout_ms))
        .simple_bind(dn, password)
        .await
        .and_then(|r| r.success())
        .map_err(|e| LdapError::Server {
            url: settings.url.clone(),
            message: format!("the service account {dn:?} could not bind: {e}"),
        })?;
    Ok(())
}

/// The user's groups as (DN, name) pairs.
async fn user_groups(
    settings: &LdapSettings,
    groups: &LdapGroups,
    ldap: &mut Ldap,
    user_dn: &str,
    login: &str,
) -> Result<Vec<(String, String)>, LdapError> {
    let filter = groups
        .filter
        .replace("{dn}", &escape_filter_value(user_dn))
        .replace("{login}", &escape_filter_value(login));
    let (entries, _) = ldap
        .with_timeout(Duration::from_millis(settings.timeout_ms))
        .search(
            &groups.base,
            Scope::Subtree,
            &filter,
            vec![groups.attribute.as_str()],
        )
        .await
        .and_then(|r| r.success())
        .map_err(|e| server_error(settings, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = SearchEntry::construct(entry);
        let names = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&groups.attribute))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        for name in names {
            found.push((entry.dn.clone(), name));
        }
    }
    Ok(found)
}

fn server_error(settings: &LdapSettings, e: ldap3::LdapError) -> LdapError {
    LdapError::Server {
        url: settings.url.clone(),
        message: e.to_string(),
    }
}

fn tls_config(settings: &LdapSettings) -> Result<Arc<rustls::ClientConfig>, LdapError> {
    let path = settings
        .ca_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(SYSTEM_ROOTS));
    let pem = std::fs::read(&path)
        .map_err(|e| LdapError::Config(format!("ca_file {}: {e}", path.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert =
            cert.map_err(|e| LdapError::Config(format!("ca_file {}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| LdapError::Config(format!("ca_file {}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(LdapError::Config(format!(
            "ca_file {} holds no certificate",
            path.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped_per_rfc_4515() {
        assert_eq!(escape_filter_value("alice"), "alice");
        assert_eq!(escape_filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("a\\b\0c"), "a\\5cb\\00c");
        assert_eq!(escape_filter_value("Zürich"), "Zürich");
        // The escaped value parses as one equality filter whose value is the
        // login, whatever it holds.
        for login in ["*", "*)(uid=*", "x)(|(uid=*", "a\\2a", "(", ")"] {
            let filter = format!("(uid={})", escape_filter_value(login));
            assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
            assert!(
                !filter[5..filter.len() - 1].contains(['*', '(', ')']),
                "{filter}"
            );
        }
    }

    #[test]
    fn dn_values_are_escaped_per_rfc_4514() {
        assert_eq!(escape_dn_value("alice"), "alice");
        assert_eq!(escape_dn_value("x,ou=admins"), "x\\,ou\\=admins");
        assert_eq!(
            escape_dn_value("a+b\"c;d<e>f\\g"),
            "a\\+b\\\"c\\;d\\<e\\>f\\\\g"
        );
        assert_eq!(escape_dn_value("#x"), "\\#x");
        assert_eq!(escape_dn_value("x#"), "x#");
        assert_eq!(escape_dn_value(" a b "), "\\ a b\\ ");
        assert_eq!(escape_dn_value("\0"), "\\00");
        assert_eq!(escape_dn_value("é"), "é");
    }

    fn settings(toml_text: &str) -> Result<LdapSettings, String> {
        let mut s: LdapSettings = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        s.validate(Path::new("/")).map_err(|e| e.to_string())?;
        Ok(s)
    }

    #[test]
    fn settings_are_checked() {
        let ok = settings(
            "url = \"ldap://127.0.0.1:3890\"\nbind_dn_template = \"uid={login},dc=x\"\n\
             [role_map]\nsales = \"sales_rep\"\nadmins = [\"dba\", \"employee\"]",
        )
        .unwrap();
        assert_eq!(ok.role_map["admins"].names(), ["dba", "employee"]);
        assert_eq!(ok.timeout_ms, 5000);
        let err = |t: &str| settings(t).unwrap_err();
        assert!(err("url = \"ldap://127.0.0.1\"\nbind_dn = \"x\"").contains("unknown field"));
        assert!(err("url = \"http://x\"\nbind_dn_template = \"{login}\"").contains("ldap://"));
        assert!(err("url = \"ldap://127.0.0.1\"").contains("bind_dn_template or"));
        assert!(
            err("url = \"ldap://127.0.0.1\"\nbind_dn_template = \"uid=x\"").contains("{login}")
        );
        assert!(
            err("url = \"ldap://ldap.example.org\"\nbind_dn_template = \"uid={login}\"")
                .contains("in clear")
        );
        assert!(
            err("url = \"ldaps://h\"\nstarttls = true\nbind_dn_template = \"uid={login}\"")
                .contains("starttls")
        );
        assert!(
            err("url = \"ldap://[::1]:389\"\n[search]\nbase = \"dc=x\"\nbind_dn = \"cn=s\"")
                .contains("go together")
        );
        assert!(
            err(
                "url = \"ldap://localhost\"\n[search]\nbase = \"dc=x\"\nbind_dn = \"cn=s\"\n\
                 bind_password = \"\""
            )
            .contains("anonymous")
        );
        assert!(
            err("url = \"ldaps://h\"\nbind_dn_template = \"uid={login}\"\nca_file = \"nope.pem\"")
                .contains("does not exist")
        );
    }

    /// The README's LDAP example loads and validates as written (with a CA
    /// file of that name beside it).
    #[test]
    fn the_readme_example_loads() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("\n### LDAP (`[auth.ldap]`)")
            .expect("the README's LDAP section");
        let block = readme[start..]
            .split("```toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("a TOML example");
        let doc: toml::Table = toml::from_str(block).unwrap();
        let ldap = doc["auth"]["ldap"].clone();
        let mut settings: LdapSettings = ldap.try_into().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["ldap.example.org".into()]).unwrap();
        std::fs::write(dir.path().join("ldap-ca.pem"), cert.cert.pem()).unwrap();
        settings.validate(dir.path()).unwrap();
        assert!(settings.search.is_some());
        assert_eq!(settings.role_map.len(), 2);
    }

    #[tokio::test]
    async fn an_empty_password_is_rejected_without_asking_the_directory() {
        // Nothing listens on this port: asking would be an error, not Rejected.
        let s = LdapSettings {
            url: "ldap://127.0.0.1:1".into(),
            bind_dn_template: Some("uid={login},dc=x".into()),
            ..LdapSettings::default()
        };
        assert_eq!(
            authenticate(&s, "alice", "").await.unwrap(),
            LdapOutcome::Rejected
        );
        assert!(authenticate(&s, "alice", "pw").await.is_err());
    }

    #[tokio::test]
    async fn a_directory_that_never_answers_is_a_timeout() {
        // Accepts connections and reads, but never says a word.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let s = LdapSettings {
            url: format!("ldap://127.0.0.1:{port}"),
            search: Some(LdapSearch {
                base: "dc=x".into(),
                filter: default_user_filter(),
                bind_dn: Some("cn=s,dc=x".into()),
                bind_password: Some("pw".into()),
            }),
            connect_timeout_ms: 200,
            timeout_ms: 200,
            ..LdapSettings::default()
        };
        let started = std::time::Instant::now();
        let err = authenticate(&s, "alice", "pw").await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(err, LdapError::Timeout { .. } | LdapError::Server { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&port.to_string()), "{err}");
    }
}
