//! The syntax tree of policy statements, as parsed and before any name is
//! resolved across files.
//!
//! Owns nothing but shapes: names are already case-folded, but whether a role
//! exists or a name is declared twice is decided later, when the whole set is
//! known. Never holds a password in a form that `Debug` would print.

use std::fmt;

use sqlparser::ast::{DataType, Expr};

use crate::auth::scram::ScramVerifier;

use super::embedded::WithGlobals;
use super::error::Location;
use super::model::{GlobalBody, PolicyCommand, PolicyKind, QualifiedName, RoutineKind};

/// An identifier after PostgreSQL's folding rules, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub value: String,
    pub location: Location,
}

/// A possibly schema-qualified name: `t`, `s.t`, `"S"."T"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    pub schema: Option<Name>,
    pub name: Name,
}

impl ObjectName {
    /// Where the name starts.
    pub fn location(&self) -> &Location {
        match &self.schema {
            Some(schema) => &schema.location,
            None => &self.name.location,
        }
    }

    pub fn qualified(&self) -> QualifiedName {
        QualifiedName {
            schema: self.schema.as_ref().map(|s| s.value.clone()),
            name: self.name.value.clone(),
        }
    }
}

#[derive(Debug)]
pub enum Statement {
    CreateRole(CreateRole),
    CreateUser(CreateUser),
    Grant(Grant),
    CreatePolicy(Box<CreatePolicy>),
    CreateGlobal(CreateGlobal),
    TableBits(Box<super::model::bits::TableBits>),
    FunctionBits(super::model::bits::FunctionBits),
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

/// `GRANT privileges ON target TO grantees`
#[derive(Debug)]
pub struct Grant {
    pub privileges: Vec<Privilege>,
    pub target: GrantTarget,
    /// Roles or users; `public` (value "public") for PUBLIC.
    pub grantees: Vec<Name>,
}

/// One privilege of a GRANT, already checked against its target kind.
#[derive(Debug)]
pub struct Privilege {
    pub kind: PrivilegeKind,
    /// `SELECT (a, b)`; None: every column.
    pub columns: Option<Vec<Name>>,
    pub location: Location,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivilegeKind {
    Select,
    Insert,
    Update,
    Delete,
    Execute,
    /// `ALL [PRIVILEGES]`: every privilege the target has.
    All,
}

#[derive(Debug)]
pub enum GrantTarget {
    Tables(Vec<ObjectName>),
    AllTablesInSchemas(Vec<Name>),
    Routines {
        kind: RoutineKind,
        routines: Vec<RoutineSignature>,
    },
    AllRoutinesInSchemas {
        kind: RoutineKind,
        schemas: Vec<Name>,
    },
}

/// `schema.f(int, text)`; `args` None when no list was written.
#[derive(Debug)]
pub struct RoutineSignature {
    pub name: ObjectName,
    pub args: Option<Vec<DataType>>,
}

/// `CREATE POLICY name ON table [AS kind] [FOR command] [TO roles]
/// [USING (expr)] [WITH CHECK (expr)]`
#[derive(Debug)]
pub struct CreatePolicy {
    pub name: Name,
    pub table: ObjectName,
    pub kind: PolicyKind,
    pub command: PolicyCommand,
    /// `public` (value "public") for PUBLIC, the default.
    pub roles: Vec<Name>,
    pub using: Option<WithGlobals<Expr>>,
    pub check: Option<WithGlobals<Expr>>,
}

/// `CREATE GLOBAL name [FOR ROLE a, b] [REQUIRED] AS query`, or with
/// `LANGUAGE javascript AS $$ source $$`.
#[derive(Debug)]
pub struct CreateGlobal {
    pub name: Name,
    pub roles: Vec<Name>,
    pub required: bool,
    pub body: GlobalBody,
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
