//! Warnings: things in a policy set that load, but probably do not do what
//! their author meant.
//!
//! Owns their wording and stable labels. A warning never stops a load and
//! never carries a secret; the loader returns them on the set, and the
//! caller decides how to show them (a log line, `pgward check` output).

use std::fmt;

use super::error::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyWarningKind {
    /// A role holds a grant on a table that is policed for that command, no
    /// policy applies to the role itself, and a role IN it has policies
    /// there: the grant gives its own members no rows.
    GrantWithoutPolicy,
    /// An expression references a global that is not evaluated for some of
    /// the roles the expression is for (FOR ROLE), where it reads as NULL.
    GlobalOutOfScope,
}

impl PolicyWarningKind {
    pub fn label(self) -> &'static str {
        match self {
            PolicyWarningKind::GrantWithoutPolicy => "grant_without_policy",
            PolicyWarningKind::GlobalOutOfScope => "global_out_of_scope",
        }
    }
}

/// Displays as `file:line:column: message`, like [`super::PolicyError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWarning {
    pub location: Location,
    pub message: String,
    pub kind: PolicyWarningKind,
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}
