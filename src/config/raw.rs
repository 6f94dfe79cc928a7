//! The TOML file as written. Every key has a default; unknown keys are errors.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use super::auth::{self, SourceKind};
use super::{
    AuthConfig, Config, ConfigError, PoliciesConfig, ServerConfig, ServerTls, UpstreamConfig,
    UpstreamTls,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawConfig {
    server: RawServer,
    upstream: RawUpstream,
    policies: RawPolicies,
    auth: RawAuth,
    globals: crate::globals::script::GlobalsSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: String,
    tls: String,
    cert_file: Option<String>,
    key_file: Option<String>,
    max_message_size: usize,
    max_connections: usize,
    max_connections_per_user: usize,
    shutdown_timeout_ms: u64,
    workers: usize,
    pin_threads: bool,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:6432".into(),
            tls: "prefer".into(),
            cert_file: None,
            key_file: None,
            max_message_size: 64 * 1024 * 1024,
            max_connections: 1000,
            max_connections_per_user: 0,
            shutdown_timeout_ms: 30_000,
            workers: 0,
            pin_threads: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawUpstream {
    url: Option<String>,
    tls: String,
    ca_file: Option<String>,
    allow_superuser: bool,
    pool_size: usize,
    connect_timeout_ms: u64,
    pool_timeout_ms: u64,
    idle_timeout_ms: u64,
}

impl Default for RawUpstream {
    fn default() -> Self {
        RawUpstream {
            url: None,
            tls: "disable".into(),
            ca_file: None,
            allow_superuser: false,
            pool_size: 20,
            connect_timeout_ms: 10_000,
            pool_timeout_ms: 30_000,
            idle_timeout_ms: 300_000,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPolicies {
    paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAuth {
    secret: Option<String>,
    secret_file: Option<String>,
    scram_iterations: u32,
    order: Vec<String>,
    allow_cleartext_on_loopback: bool,
    http_ca_file: Option<String>,
    jwt: Option<auth::RawJwt>,
    introspection: Option<auth::RawIntrospection>,
    table: Option<auth::RawTable>,
    ldap: Option<crate::auth::ldap::LdapSettings>,
    script: Option<crate::auth::script::ScriptAuthSettings>,
    guest: auth::RawGuest,
    lockout: auth::RawLockout,
}

impl Default for RawAuth {
    fn default() -> Self {
        RawAuth {
            secret: None,
            secret_file: None,
            scram_iterations: 4096,
            order: vec!["policy".into()],
            allow_cleartext_on_loopback: false,
            http_ca_file: None,
            jwt: None,
            introspection: None,
            table: None,
            ldap: None,
            script: None,
            guest: auth::RawGuest::default(),
            lockout: auth::RawLockout::default(),
        }
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
        return Err(ConfigError::Invalid {
            key,
            message: format!("file {} does not exist", path.display()),
        });
    }
    Ok(path)
}

impl RawConfig {
    pub(super) fn validate(self, base: &Path) -> Result<Config, ConfigError> {
        Ok(Config {
            server: self.server.validate(base)?,
            upstream: self.upstream.validate(base)?,
            auth: self.auth.validate(base)?,
            globals: self
                .globals
                .limits()
                .map_err(|(key, message)| ConfigError::Invalid { key, message })?,
            policies: PoliciesConfig {
                paths: self
                    .policies
                    .paths
                    .iter()
                    .map(|p| resolve(base, p).to_string_lossy().into_owned())
                    .collect(),
            },
        })
    }
}

impl RawServer {
    fn validate(self, base: &Path) -> Result<ServerConfig, ConfigError> {
        let listen = self.listen.parse().map_err(|_| ConfigError::Invalid {
            key: "server.listen",
            message: format!(
                "\"{}\" is not an address of the form host:port (for example 127.0.0.1:6432)",
                self.listen
            ),
        })?;
        let tls = match self.tls.as_str() {
            "disable" => ServerTls::Disable,
            "prefer" => ServerTls::Prefer,
            "require" => ServerTls::Require,
            other => {
                return Err(ConfigError::Invalid {
                    key: "server.tls",
                    message: format!("\"{other}\" is not one of disable, prefer, require"),
                });
            }
        };
        let (cert_file, key_file) = match (tls, self.cert_file, self.key_file) {
            (ServerTls::Disable, _, _) => (None, None),
            (_, Some(c), Some(k)) => (
                Some(existing_file(base, "server.cert_file", &c)?),
                Some(existing_file(base, "server.key_file", &k)?),
            ),
            // `prefer` without certificates quietly means "no TLS offered".
            (ServerTls::Prefer, None, None) => (None, None),
            _ => {
                return Err(ConfigError::Invalid {
                    key: "server.cert_file",
                    message: "TLS needs both server.cert_file and server.key_file".into(),
                });
            }
        };
        if self.max_message_size < 1024 {
            return Err(ConfigError::Invalid {
                key: "server.max_message_size",
                message: "must be at least 1024 bytes".into(),
            });
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "server.max_connections",
                message: "must be at least 1".into(),
            });
        }
        if self.workers > 1024 {
            return Err(ConfigError::Invalid {
                key: "server.workers",
                message: "must be at most 1024 (0: one per CPU)".into(),
            });
        }
        Ok(ServerConfig {
            listen,
            tls,
            cert_file,
            key_file,
            max_message_size: self.max_message_size,
            max_connections: self.max_connections,
            max_connections_per_user: self.max_connections_per_user,
            shutdown_timeout: Duration::from_millis(self.shutdown_timeout_ms),
            workers: match self.workers {
                0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
                n => n,
            },
            pin_threads: self.pin_threads,
        })
    }
}

impl RawUpstream {
    fn validate(self, base: &Path) -> Result<UpstreamConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            key: "upstream.url",
            message,
        };
        let url = self
            .url
            .ok_or_else(|| invalid("missing: the service identity's connection URL".into()))?;
        let pg = tokio_postgres::Config::from_str(&url)
            .map_err(|e| invalid(format!("not a PostgreSQL connection URL: {e}")))?;
        let host = match pg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(_) => return Err(invalid("unix-socket hosts are not supported".into())),
            None => "127.0.0.1".to_string(),
        };
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        let user = pg
            .get_user()
            .ok_or_else(|| invalid("the URL names no user".into()))?
            .to_string();
        let password = pg
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let database = pg.get_dbname().unwrap_or(&user).to_string();
        let tls = match self.tls.as_str() {
            "disable" => UpstreamTls::Disable,
            "prefer" => UpstreamTls::Prefer,
            "require" => UpstreamTls::Require,
            "verify-full" => UpstreamTls::VerifyFull,
            other => {
                return Err(ConfigError::Invalid {
                    key: "upstream.tls",
                    message: format!(
                        "\"{other}\" is not one of disable, prefer, require, verify-full"
                    ),
                });
            }
        };
        let ca_file = match self.ca_file {
            Some(c) => Some(existing_file(base, "upstream.ca_file", &c)?),
            None if tls == UpstreamTls::VerifyFull => {
                return Err(ConfigError::Invalid {
                    key: "upstream.ca_file",
                    message: "verify-full needs upstream.ca_file".into(),
                });
            }
            None => None,
        };
        if self.pool_size == 0 {
            return Err(ConfigError::Invalid {
                key: "upstream.pool_size",
                message: "must be at least 1".into(),
            });
        }
        Ok(UpstreamConfig {
            host,
            port,
            user,
            password,
            database,
            tls,
            ca_file,
            allow_superuser: self.allow_superuser,
            pool_size: self.pool_size,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            pool_timeout: Duration::from_millis(self.pool_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
        })
    }
}

impl RawAuth {
    fn validate(self, base: &Path) -> Result<AuthConfig, ConfigError> {
        let secret = match (self.secret, self.secret_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    key: "auth.secret",
                    message: "set auth.secret or auth.secret_file, not both".into(),
                });
            }
            (Some(s), None) => s.into_bytes(),
            (None, Some(f)) => {
                let path = existing_file(base, "auth.secret_file", &f)?;
                std::fs::read(&path).map_err(|e| ConfigError::Invalid {
                    key: "auth.secret_file",
                    message: format!("cannot read {}: {e}", path.display()),
                })?
            }
            // Without a configured secret, a random one per process: unknown
            // users' salts then change across restarts (documented).
            (None, None) => rand::random::<[u8; 32]>().to_vec(),
        };
        if !(1024..=10_000_000).contains(&self.scram_iterations) {
            return Err(ConfigError::Invalid {
                key: "auth.scram_iterations",
                message: "must be between 1024 and 10000000".into(),
            });
        }
        let order = auth::parse_order(&self.order)?;
        let needs = |kind: SourceKind, present: bool| -> Result<(), ConfigError> {
            match (order.contains(&kind), present) {
                (true, false) => Err(ConfigError::Invalid {
                    key: "auth.order",
                    message: format!(
                        "\"{}\" is listed but [auth.{}] is missing",
                        kind.name(),
                        kind.name()
                    ),
                }),
                (false, true) => Err(ConfigError::Invalid {
                    key: "auth.order",
                    message: format!(
                        "[auth.{}] is configured but \"{}\" is not in auth.order",
                        kind.name(),
                        kind.name()
                    ),
                }),
                _ => Ok(()),
            }
        };
        needs(SourceKind::Jwt, self.jwt.is_some())?;
        needs(SourceKind::Introspection, self.introspection.is_some())?;
        needs(SourceKind::Table, self.table.is_some())?;
        needs(SourceKind::Ldap, self.ldap.is_some())?;
        needs(SourceKind::Script, self.script.is_some())?;
        let script = match self.script {
            Some(mut settings) => {
                settings
                    .validate(base)
                    .map_err(|message| ConfigError::Invalid {
                        key: "auth.script",
                        message,
                    })?;
                Some(settings)
            }
            None => None,
        };
        let ldap = match self.ldap {
            Some(mut settings) => {
                settings.validate(base).map_err(|e| ConfigError::Invalid {
                    key: "auth.ldap",
                    message: e.to_string(),
                })?;
                Some(settings)
            }
            None => None,
        };
        Ok(AuthConfig {
            secret,
            scram_iterations: self.scram_iterations,
            order,
            allow_cleartext_on_loopback: self.allow_cleartext_on_loopback,
            http_ca_file: self
                .http_ca_file
                .map(|f| existing_file(base, "auth.http_ca_file", &f))
                .transpose()?,
            jwt: self.jwt.map(|j| j.validate(base)).transpose()?,
            introspection: self.introspection.map(|i| i.validate(base)).transpose()?,
            table: self.table.map(auth::RawTable::validate).transpose()?,
            ldap,
            script,
            guest: self.guest.validate()?,
            lockout: self.lockout.validate(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("/nonexistent"))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = load("[upstream]\nurl = \"postgres://svc:pw@127.0.0.1:5433/app\"\n").unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:6432");
        assert_eq!(c.server.tls, ServerTls::Prefer);
        assert_eq!(c.upstream.port, 5433);
        assert_eq!(c.upstream.user, "svc");
        assert_eq!(c.upstream.password.as_deref(), Some("pw"));
        assert_eq!(c.upstream.database, "app");
        assert_eq!(c.auth.scram_iterations, 4096);
        assert!(c.server.pin_threads);
    }

    #[test]
    fn pinning_can_be_turned_off() {
        let c = load("[server]\npin_threads = false\n[upstream]\nurl = \"postgres://a@b/c\"\n")
            .unwrap();
        assert!(!c.server.pin_threads);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load("[server]\nlisten = \"127.0.0.1:1\"\nlsten = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lsten"), "{e}");
    }

    #[test]
    fn bad_address_is_explained() {
        let e = load("[server]\nlisten = \"localhost\"\n[upstream]\nurl = \"postgres://a@b/c\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("server.listen:"), "{e}");
    }

    #[test]
    fn missing_upstream_url_is_an_error() {
        let e = load("").unwrap_err().to_string();
        assert!(e.starts_with("upstream.url: missing"), "{e}");
    }

    #[test]
    fn missing_certificate_file_is_named() {
        let e = load(
            "[server]\ntls = \"require\"\ncert_file = \"nope.crt\"\nkey_file = \"nope.key\"\n\
             [upstream]\nurl = \"postgres://a@b/c\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("server.cert_file") && e.contains("/nonexistent/nope.crt"),
            "{e}"
        );
    }

    #[test]
    fn require_without_certificates_is_an_error() {
        let e = load("[server]\ntls = \"require\"\n[upstream]\nurl = \"postgres://a@b/c\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs both"), "{e}");
    }
}
