//! `GRANT EXECUTE` on functions and procedures, as written.
//!
//! Owns only the shape of a routine grant. Which routine a signature names
//! (overloads, argument types, the search path) is decided against the
//! catalog by later stages; nothing here ever treats an ungranted function
//! as allowed.

use sqlparser::ast::DataType;

use super::QualifiedName;
use crate::policy::error::Location;

/// The keyword the GRANT used: PostgreSQL refuses `ON FUNCTION` for a
/// procedure and the reverse; `ROUTINE` accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoutineKind {
    Function,
    Procedure,
    Routine,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RoutineTarget {
    /// `f(int, text)`; `args` None when the GRANT gave no argument list
    /// (valid in PostgreSQL only when the name is not overloaded).
    One {
        name: QualifiedName,
        args: Option<Vec<DataType>>,
    },
    /// `ALL FUNCTIONS IN SCHEMA s` (or PROCEDURES, ROUTINES).
    AllInSchema(String),
}

/// `GRANT EXECUTE ON FUNCTION … TO …`: one entry per routine named.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionGrant {
    pub kind: RoutineKind,
    pub target: RoutineTarget,
    /// Roles or users; `"public"` for PUBLIC.
    pub roles: Vec<String>,
    /// Where the routine (or schema) name was written.
    pub location: Location,
}

impl FunctionGrant {
    pub fn applies_to(&self, effective_roles: &[String]) -> bool {
        self.roles.iter().any(|role| effective_roles.contains(role))
    }
}
