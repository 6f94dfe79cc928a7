//! The one place where a failure becomes what a client sees: a PostgreSQL
//! ErrorResponse with a SQLSTATE, a message that is safe to show, and where
//! useful a detail and a hint. Internal details (service credentials, other
//! users' SQL, stack traces) never go into a `PgError`.

use std::fmt;

/// Severity of an ErrorResponse. `Fatal` ends the session after it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

/// An error as the client receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl PgError {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        PgError {
            severity: Severity::Error,
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn fatal(code: &'static str, message: impl Into<String>) -> Self {
        PgError {
            severity: Severity::Fatal,
            ..PgError::error(code, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn into_fatal(mut self) -> Self {
        self.severity = Severity::Fatal;
        self
    }

    /// A stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self.code {
            "28P01" => "auth_failed",
            "28000" => "auth_refused",
            "42501" => "permission_denied",
            "42601" => "syntax_error",
            "0A000" => "not_supported",
            "08P01" => "protocol_violation",
            "08006" => "upstream_unavailable",
            "53300" => "too_many_connections",
            "3D000" => "unknown_database",
            _ => "other",
        }
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.severity.as_str(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for PgError {}

/// SQLSTATE codes pgward raises itself.
pub mod code {
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const CONNECTION_FAILURE: &str = "08006";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const ADMIN_SHUTDOWN: &str = "57P01";

    /// The static form of an upstream SQLSTATE that pgward passes on.
    pub fn known(code: &str) -> Option<&'static str> {
        const PASSED_ON: &[&str] = &[
            "22023", "22P02", "22007", "22008", "22021", "42704", "42501", "42602", "42P01",
        ];
        PASSED_ON.iter().copied().find(|c| *c == code)
    }
}
