//! Configuration in two phases: `raw` mirrors the TOML file (serde, unknown
//! keys refused), `Config` is the validated form the rest of pgward uses.
//! Relative paths in the file are resolved against the file's own folder.

mod auth;
mod raw;

pub use auth::{
    GuestConfig, IntrospectionConfig, JwtConfig, JwtKeys, LockoutConfig, SourceKind, TableConfig,
    TableVerifiers,
};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// How the client side offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    Disable,
    Prefer,
    Require,
}

/// How pgward reaches the upstream over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTls {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: ServerTls,
    /// Present whenever `tls` is not `Disable`.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Largest frontend message accepted after startup, in bytes.
    pub max_message_size: usize,
    /// Connections accepted at once; further clients get 53300.
    pub max_connections: usize,
    /// Sessions one login may hold at once (0: no limit); further get 53300.
    pub max_connections_per_user: usize,
    /// On SIGTERM/SIGINT, how long running statements may take to finish.
    pub shutdown_timeout: std::time::Duration,
    /// Threads that serve sessions, each with its own single-threaded
    /// runtime (`server.workers`, 0 in the file: one per CPU).
    pub workers: usize,
    /// Session thread `i` runs on the `i`-th CPU only, when there are as
    /// many CPUs as threads (`server.pin_threads`).
    pub pin_threads: bool,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub tls: UpstreamTls,
    pub ca_file: Option<PathBuf>,
    pub allow_superuser: bool,
    /// Upstream connections at most; each serves one client session at a time.
    pub pool_size: usize,
    pub connect_timeout: std::time::Duration,
    /// How long a client waits for an upstream connection before 53300.
    pub pool_timeout: std::time::Duration,
    /// Idle upstream connections older than this are closed.
    pub idle_timeout: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Key for the salts of unknown users (HMAC(secret, name)), so that they
    /// stay stable across restarts like real users' salts do.
    pub secret: Vec<u8>,
    /// Iteration count for verifiers hashed from plain-text passwords and for
    /// unknown users.
    pub scram_iterations: u32,
    /// The identity sources, in the order they are tried.
    pub order: Vec<SourceKind>,
    /// Cleartext passwords (needed by every source but policy and SCRAM
    /// table users) are accepted without TLS from loopback clients.
    pub allow_cleartext_on_loopback: bool,
    /// Extra root certificates (PEM) for the HTTPS requests of the
    /// identity sources (a JWKS URL, token introspection).
    pub http_ca_file: Option<PathBuf>,
    pub jwt: Option<JwtConfig>,
    pub introspection: Option<IntrospectionConfig>,
    pub table: Option<TableConfig>,
    pub ldap: Option<crate::auth::ldap::LdapSettings>,
    pub script: Option<crate::auth::script::ScriptAuthSettings>,
    pub guest: GuestConfig,
    pub lockout: LockoutConfig,
}

#[derive(Debug, Clone)]
pub struct PoliciesConfig {
    /// Glob patterns, already resolved against the configuration folder.
    pub paths: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub auth: AuthConfig,
    pub policies: PoliciesConfig,
    /// `[globals]`: limits of script globals.
    pub globals: crate::globals::script::ScriptLimits,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text; relative paths resolve against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        raw.validate(base)
    }
}
