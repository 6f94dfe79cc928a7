//! The syntax tree of policy statements, as parsed and before any name is
//! resolved across files.
//!
//! Owns nothing but shapes: names are already case-folded, but whether a role
//! exists or a name is declared twice is decided later, when the whole set is
//! known. Never holds a password in a form that `Debug` would print.

use std::fmt;

use crate::auth::scram::ScramVerifier;

use super::error::Location;

/// An identifier after PostgreSQL's folding rules, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub value: String,
    pub location: Location,
}

#[derive(Debug)]
pub enum Statement {
    CreateRole(CreateRole),
    CreateUser(CreateUser),
}

/// `CREATE ROLE name [WITH] [IN ROLE a, b] [BYPASSPOLICY]`
#[derive(Debug)]
pub struct CreateRole {
    pub name: Name,
    pub in_roles: Vec<Name>,
    pub bypass_policy: bool,
}

/// `CREATE USER name [WITH] [PASSWORD 'x' | PASSWORD NULL] [IN ROLE a, b]`
#[derive(Debug)]
pub struct CreateUser {
    pub name: Name,
    /// None: the user cannot log in with a password.
    pub password: Option<Password>,
    pub in_roles: Vec<Name>,
}

/// A password as written in a policy file.
pub enum Password {
    /// A `SCRAM-SHA-256$…` verifier, already checked.
    Verifier(ScramVerifier),
    /// Plain text, to be hashed when the set is loaded; `location` is where
    /// it was written, for the warning that names the file and line.
    PlainText { text: String, location: Location },
}

// Hand-written so that a plain-text password never reaches a log through
// `{:?}` of a statement.
impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Password::Verifier(_) => f.write_str("Verifier(..)"),
            Password::PlainText { location, .. } => {
                write!(f, "PlainText {{ text: <redacted>, location: {location} }}")
            }
        }
    }
}
