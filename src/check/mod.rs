//! `pgward check`: the policy set validated against the live catalog,
//! reported as `file:line:column: error|warning: message` on stderr.
//!
//! Owns the order of the checks and how diagnostics are printed; each kind
//! of check has a file of its own: `names` (tables, columns, schemas and
//! routines that GRANT and CREATE POLICY name), `filters` (globals' column
//! types and every USING / WITH CHECK planned by PostgreSQL), `coverage`
//! (the grants behind each policy, and grants that policies make useless),
//! `helper` (the helper schema of `pgward install` that writes need),
//! `bits` (tables, columns and functions of permission bits).
//! Never changes anything upstream: every statement it plans runs inside a
//! transaction that is rolled back, and nothing is executed.

mod bits;
mod coverage;
mod filters;
pub mod helper;
mod names;

use std::fmt;

use crate::config::Config;
use crate::policy::{Location, PolicyError, PolicySet, PolicyWarning, PolicyWarningKind};
use crate::upstream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding; displays as `file:line:column: error: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Option<Location>,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(location: &Location, message: impl Into<String>) -> Self {
        Diagnostic {
            location: Some(location.clone()),
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(location: &Location, message: impl Into<String>) -> Self {
        Diagnostic {
            location: Some(location.clone()),
            severity: Severity::Warning,
            message: message.into(),
        }
    }
}

impl From<&PolicyError> for Diagnostic {
    fn from(e: &PolicyError) -> Self {
        Diagnostic {
            location: e.location.clone(),
            severity: Severity::Error,
            message: e.message.clone(),
        }
    }
}

impl From<&PolicyWarning> for Diagnostic {
    fn from(w: &PolicyWarning) -> Self {
        Diagnostic::warning(&w.location, w.message.clone())
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}: {}", self.message)
    }
}

/// Loads the policies, checks them against the upstream's catalog, prints
/// every diagnostic, and fails when any of them is an error. A configuration
/// or connection problem is an error of its own.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let diagnostics = match PolicySet::load_keyed(
        &config.policies.paths,
        config.auth.scram_iterations,
        &config.auth.secret,
    ) {
        // The loader never returns a set with errors, and the catalog
        // checks need one: report what it found and stop there.
        Err(errors) => errors.iter().map(Diagnostic::from).collect(),
        Ok(set) => check_live(&config, &set).await?,
    };
    report(diagnostics)
}

/// The checks that need the upstream, plus the loader's warnings.
async fn check_live(config: &Config, set: &PolicySet) -> anyhow::Result<Vec<Diagnostic>> {
    let tls = upstream::tls::client_config(&config.upstream)?;
    let client = upstream::control::connect(&config.upstream, tls.as_ref()).await?;
    let mut diagnostics = Vec::new();
    if let Err(e) = upstream::control::check_service_identity(&client, &config.upstream).await {
        diagnostics.push(Diagnostic {
            location: None,
            severity: Severity::Error,
            message: format!("{e:#}"),
        });
    }
    if let Err(problem) = helper::verify(&client, &config.upstream.user).await {
        diagnostics.push(Diagnostic {
            location: None,
            severity: Severity::Error,
            message: format!("{problem}; hint: {}", helper::HINT),
        });
    }
    let catalog = crate::catalog::Catalog::load(&client)
        .await
        .map_err(|e| anyhow::anyhow!("{e}: {}", source_text(&e)))?;
    let resolved = names::check(set, &catalog, &mut diagnostics);
    names::check_routines(set, &catalog, &client, &mut diagnostics).await;
    filters::check(set, &resolved, &client, &mut diagnostics).await?;
    coverage::check(set, &resolved, &mut diagnostics);
    bits::check(set, &catalog, &client, &mut diagnostics).await;
    // The loader's grant warning goes by table names as written; coverage
    // redoes it on the relations the names denote.
    diagnostics.extend(
        set.warnings
            .iter()
            .filter(|w| w.kind != PolicyWarningKind::GrantWithoutPolicy)
            .map(Diagnostic::from),
    );
    Ok(diagnostics)
}

fn source_text(e: &dyn std::error::Error) -> String {
    e.source().map_or_else(String::new, ToString::to_string)
}

/// Prints the diagnostics in file order, each once, and a summary line.
fn report(mut diagnostics: Vec<Diagnostic>) -> anyhow::Result<()> {
    diagnostics.sort_by(|a, b| {
        (&a.location, a.severity, &a.message).cmp(&(&b.location, b.severity, &b.message))
    });
    diagnostics.dedup();
    for d in &diagnostics {
        eprintln!("{d}");
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    if errors > 0 {
        anyhow::bail!("check failed: {errors} error(s), {warnings} warning(s)");
    }
    eprintln!("pgward: check passed: 0 errors, {warnings} warning(s)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn diagnostics_print_as_file_line_column_severity_message() {
        let at = Location::new(Path::new("p/20.sql"), 4, 7);
        assert_eq!(
            Diagnostic::error(&at, "relation \"x\" does not exist").to_string(),
            "p/20.sql:4:7: error: relation \"x\" does not exist"
        );
        assert_eq!(
            Diagnostic::warning(&at, "w").to_string(),
            "p/20.sql:4:7: warning: w"
        );
        let bare = Diagnostic {
            location: None,
            severity: Severity::Error,
            message: "no file matches".into(),
        };
        assert_eq!(bare.to_string(), "error: no file matches");
        assert!(report(vec![bare]).is_err());
        assert!(report(vec![Diagnostic::warning(&at, "w")]).is_ok());
    }
}
