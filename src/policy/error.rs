//! Positions in policy files and the one error type the policy loader reports.
//!
//! Owns how a problem in a policy set is located and worded. It never carries
//! secrets: messages may name users and roles, but never quote a password or
//! the contents of a string literal.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a policy file: 1-based line and column (columns count
/// characters, as PostgreSQL's own error positions do).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
}

impl Location {
    pub fn new(file: &Path, line: u64, column: u64) -> Self {
        Location {
            file: file.to_path_buf(),
            line,
            column,
        }
    }

    /// The location of a token start as sqlparser reports it.
    pub(crate) fn from_sql(file: &Path, at: sqlparser::tokenizer::Location) -> Self {
        Location::new(file, at.line, at.column)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// What went wrong, as a stable label that can become a metric label or be
/// matched in tests without parsing the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyErrorKind {
    /// A file or glob pattern could not be read or matched nothing.
    Io,
    /// The text does not follow the grammar.
    Syntax,
    /// A statement the grammar knows but this version does not load yet.
    Unsupported,
    /// A name is declared twice, or an option is given twice.
    Duplicate,
    /// A name that is reserved (PUBLIC, pg_*, …) or is not allowed where it is used.
    InvalidName,
    /// A reference to a role that no file declares.
    UnknownRole,
    /// Role membership loops back on itself.
    Cycle,
    /// A password or SCRAM verifier that cannot be used.
    Password,
    /// A policy whose roles hold no grant for its command on its table.
    NoGrant,
    /// `@{name}` of a global that no file declares and is not built in, or
    /// `@{name.attr}` of a column its query does not return.
    UnknownGlobal,
    /// A reference in a shape its global does not have (`@{login_id.x}`,
    /// `@{claims}`, no attribute for a global of several columns).
    InvalidReference,
}

impl PolicyErrorKind {
    pub fn label(self) -> &'static str {
        match self {
            PolicyErrorKind::Io => "io",
            PolicyErrorKind::Syntax => "syntax",
            PolicyErrorKind::Unsupported => "unsupported",
            PolicyErrorKind::Duplicate => "duplicate",
            PolicyErrorKind::InvalidName => "invalid_name",
            PolicyErrorKind::UnknownRole => "unknown_role",
            PolicyErrorKind::Cycle => "cycle",
            PolicyErrorKind::Password => "password",
            PolicyErrorKind::NoGrant => "no_grant",
            PolicyErrorKind::UnknownGlobal => "unknown_global",
            PolicyErrorKind::InvalidReference => "invalid_reference",
        }
    }
}

/// One problem in a policy set. Displays as `file:line:column: message`, or
/// just the message when there is no position (an unmatched glob pattern).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", LocationPrefix(.location.as_ref()), .message)]
pub struct PolicyError {
    pub location: Option<Location>,
    pub message: String,
    pub kind: PolicyErrorKind,
}

impl PolicyError {
    pub fn at(location: Location, kind: PolicyErrorKind, message: impl Into<String>) -> Self {
        PolicyError {
            location: Some(location),
            message: message.into(),
            kind,
        }
    }

    pub fn without_location(kind: PolicyErrorKind, message: impl Into<String>) -> Self {
        PolicyError {
            location: None,
            message: message.into(),
            kind,
        }
    }
}

struct LocationPrefix<'a>(Option<&'a Location>);

impl fmt::Display for LocationPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(location) => write!(f, "{location}: "),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_with_and_without_location() {
        let located = PolicyError::at(
            Location::new(Path::new("p/roles.sql"), 3, 14),
            PolicyErrorKind::Syntax,
            "expected ROLE, found TABLE",
        );
        assert_eq!(
            located.to_string(),
            "p/roles.sql:3:14: expected ROLE, found TABLE"
        );
        let bare = PolicyError::without_location(PolicyErrorKind::Io, "no file matches");
        assert_eq!(bare.to_string(), "no file matches");
        assert_eq!(located.kind.label(), "syntax");
    }
}
