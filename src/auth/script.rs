//! `auth.script`: custom authentication logic in JavaScript, run by the
//! same sandboxed engine as script globals (`crate::globals::script`), with
//! its own time and memory limits.
//!
//! The script sees `login`, `password`, `client_addr` and `sql(text,
//! ...params)` (one read-only SELECT on the service connection) and answers:
//! an object `{ user_id, roles, groups }` (each optional) accepts the login;
//! `null` or `undefined` means the user is not this source's (the next
//! source in `auth.order` decides); `false`, or an exception, rejects it.
//!
//! Must never: accept on anything but an object, or on a script that timed
//! out, ran out of memory or returned something else — those are errors,
//! which fail the login.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::globals::script::{ScriptError, ScriptLimits, check_syntax, run};

/// `[auth.script]`.
///
/// ```toml
/// [auth.script]
/// source_file = "auth.js"       # or: source = "return login === 'x' ? {} : null"
/// timeout_ms = 1000
/// memory_limit = 16777216       # bytes
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptAuthSettings {
    /// A file with the script; relative to the configuration file. Read
    /// once, by [`ScriptAuthSettings::validate`].
    #[serde(default)]
    pub source_file: Option<PathBuf>,
    /// The script itself (instead of `source_file`).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_memory_limit")]
    pub memory_limit: usize,
}

fn default_timeout_ms() -> u64 {
    ScriptLimits::default().timeout.as_millis() as u64
}

fn default_memory_limit() -> usize {
    ScriptLimits::default().memory_limit
}

impl ScriptAuthSettings {
    /// Reads `source_file` (relative to `base`) into `source` and checks
    /// that the script compiles. Call once at start.
    pub fn validate(&mut self, base: &Path) -> Result<(), String> {
        match (&self.source_file, &self.source) {
            (Some(_), Some(_)) => {
                return Err("auth.script: set source_file or source, not both".into());
            }
            (None, None) => return Err("auth.script: set source_file or source".into()),
            (Some(file), None) => {
                let path = base.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("auth.script.source_file {}: {e}", path.display()))?;
                self.source_file = Some(path);
                self.source = Some(text);
            }
            (None, Some(_)) => {}
        }
        if self.timeout_ms == 0 || self.memory_limit < 1024 * 1024 {
            return Err(
                "auth.script: timeout_ms must be above 0 and memory_limit at least 1048576".into(),
            );
        }
        check_syntax(self.source.as_deref().unwrap_or_default())
            .map_err(|e| format!("auth.script: {e}"))
    }

    fn limits(&self) -> ScriptLimits {
        ScriptLimits {
            timeout: Duration::from_millis(self.timeout_ms),
            memory_limit: self.memory_limit,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptIdentity {
    pub login: String,
    pub user_id: Option<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptAuthOutcome {
    Unknown,
    Rejected,
    Accepted(ScriptIdentity),
}

/// Runs the authentication script for one login.
///
/// Cancel-safe: dropping the future interrupts the script.
pub async fn authenticate(
    settings: &ScriptAuthSettings,
    login: &str,
    password: &str,
    client_addr: Option<&str>,
    client: &tokio_postgres::Client,
) -> Result<ScriptAuthOutcome, ScriptError> {
    let Some(source) = settings.source.as_deref() else {
        return Err(ScriptError::Engine(
            "auth.script has no source: validate() was not called".into(),
        ));
    };
    let mut bindings = serde_json::Map::new();
    bindings.insert("login".into(), Json::String(login.into()));
    bindings.insert("password".into(), Json::String(password.into()));
    bindings.insert(
        "client_addr".into(),
        client_addr.map_or(Json::Null, |a| Json::String(a.into())),
    );
    let result = match run(source, bindings, Some(client), &settings.limits()).await {
        Ok(result) => result,
        Err(ScriptError::Thrown(message)) => {
            tracing::info!("auth.script rejected {login:?}: {message}");
            return Ok(ScriptAuthOutcome::Rejected);
        }
        Err(e) => return Err(e),
    };
    match result {
        None | Some(Json::Null) => Ok(ScriptAuthOutcome::Unknown),
        Some(Json::Bool(false)) => Ok(ScriptAuthOutcome::Rejected),
        Some(Json::Object(map)) => {
            let user_id = match map.get("user_id") {
                None | Some(Json::Null) => None,
                Some(Json::String(s)) => Some(s.clone()),
                Some(Json::Number(n)) => Some(n.to_string()),
                Some(other) => {
                    return Err(ScriptError::Result(format!(
                        "a user_id that is neither a string nor a number: {other}"
                    )));
                }
            };
            Ok(ScriptAuthOutcome::Accepted(ScriptIdentity {
                login: login.to_string(),
                user_id,
                roles: names(&map, "roles")?,
                groups: names(&map, "groups")?,
            }))
        }
        Some(other) => Err(ScriptError::Result(format!(
            "{other}; an authentication script returns an object to accept, null for an \
             unknown user, or false to reject"
        ))),
    }
}

/// `roles` or `groups`: a string or an array of strings, or nothing.
fn names(map: &serde_json::Map<String, Json>, key: &str) -> Result<Vec<String>, ScriptError> {
    let bad = || ScriptError::Result(format!("{key} that is not a string or an array of strings"));
    match map.get(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::String(s)) => Ok(vec![s.clone()]),
        Some(Json::Array(items)) => {
            let mut out: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let Json::String(s) = item else {
                    return Err(bad());
                };
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
            Ok(out)
        }
        Some(_) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_need_exactly_one_source_that_compiles() {
        let parse = |t: &str| -> Result<ScriptAuthSettings, String> {
            let mut s: ScriptAuthSettings = toml::from_str(t).map_err(|e| e.to_string())?;
            s.validate(Path::new("/nonexistent"))?;
            Ok(s)
        };
        let s = parse("source = \"return null\"").unwrap();
        assert_eq!((s.timeout_ms, s.memory_limit), (1000, 16 * 1024 * 1024));
        assert!(parse("").unwrap_err().contains("set source_file or source"));
        assert!(
            parse("source = \"x\"\nsource_file = \"a.js\"")
                .unwrap_err()
                .contains("not both")
        );
        assert!(
            parse("source_file = \"a.js\"")
                .unwrap_err()
                .contains("a.js")
        );
        assert!(
            parse("source = \"return {\"")
                .unwrap_err()
                .contains("does not compile")
        );
        assert!(
            parse("source = \"1\"\npath = \"x\"")
                .unwrap_err()
                .contains("unknown field")
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("auth.js"), "return false").unwrap();
        let mut s: ScriptAuthSettings = toml::from_str("source_file = \"auth.js\"").unwrap();
        s.validate(dir.path()).unwrap();
        assert_eq!(s.source.as_deref(), Some("return false"));
    }

    #[test]
    fn role_and_group_lists() {
        let map = |j: Json| match j {
            Json::Object(m) => m,
            _ => unreachable!(),
        };
        let m = map(serde_json::json!({"roles": ["a", "b", "a"], "groups": "g"}));
        assert_eq!(names(&m, "roles").unwrap(), ["a", "b"]);
        assert_eq!(names(&m, "groups").unwrap(), ["g"]);
        assert!(names(&map(serde_json::json!({"roles": [1]})), "roles").is_err());
        assert!(names(&map(serde_json::json!({"roles": {}})), "roles").is_err());
    }
}
