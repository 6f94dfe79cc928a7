//! Globals: per-session values that policies reference as `@{name}`.
//!
//! Owns what a global is (who it is for, whether it is required, how it is
//! computed) and the list of built-in names. Never evaluates one: that is
//! the session's job, on the service connection, after authentication.

use sqlparser::ast::Query;

use super::{GlobalRef, PUBLIC, WithGlobals};
use crate::policy::error::Location;

/// Globals every session has without a `CREATE GLOBAL` (PRODUCT.md §3): the
/// login, the effective roles, the client's address, and what an identity
/// source provides. `claims` is only referenced with an attribute
/// (`@{claims.sub}`). A `CREATE GLOBAL` of the same name replaces one.
pub const BUILTIN_GLOBALS: [&str; 6] = [
    "login_id",
    "roles",
    "client_addr",
    "user_id",
    "groups",
    "claims",
];

/// The built-in that takes attributes (one per token claim).
pub const CLAIMS: &str = "claims";

pub fn is_builtin(name: &str) -> bool {
    BUILTIN_GLOBALS.contains(&name)
}

/// `CREATE GLOBAL`.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    pub name: String,
    /// `FOR ROLE`: the global is evaluated only for sessions holding one of
    /// these roles (or users); empty: for every session. Elsewhere it is NULL.
    pub roles: Vec<String>,
    /// A session it applies to fails to log in (28000) when it has no row
    /// or a NULL value.
    pub required: bool,
    pub body: GlobalBody,
    /// Where the name was written.
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GlobalBody {
    /// `AS SELECT …`: runs on the service connection; its `@{…}` are
    /// filled in with typed literals first.
    Query(WithGlobals<Box<Query>>),
    /// `LANGUAGE javascript AS $$ … $$`: stored, run by the identity work.
    Script(Script),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Lower case, as PostgreSQL folds a LANGUAGE name: "javascript".
    pub language: String,
    pub source: String,
    /// Where the quoted source starts.
    pub location: Location,
}

impl Global {
    /// Whether the global is evaluated for a session with these effective
    /// roles.
    pub fn applies_to(&self, effective_roles: &[String]) -> bool {
        self.roles.is_empty()
            || self
                .roles
                .iter()
                .any(|role| role == PUBLIC || effective_roles.contains(role))
    }

    pub fn is_script(&self) -> bool {
        matches!(self.body, GlobalBody::Script(_))
    }

    /// The `@{…}` references of its query (none for a script).
    pub fn references(&self) -> &[GlobalRef] {
        match &self.body {
            GlobalBody::Query(query) => &query.globals,
            GlobalBody::Script(_) => &[],
        }
    }
}
