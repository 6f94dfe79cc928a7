//! The loaded policy set: roles, users, grants, policies and globals, and
//! the questions the rest of pgward asks about them.
//!
//! Owns membership semantics (closure over IN ROLE, the user itself, PUBLIC,
//! BYPASSPOLICY inheritance); table access lives in `access`, routine grants
//! in `function`, globals in `global`. Holds only validated data: every role
//! named anywhere exists, membership and globals have no cycles, every
//! `@{…}` names a global. Never prints a verifier through `Debug`: it is
//! enough for an offline guessing attack on the password.

mod access;
pub mod bits;
mod function;
mod global;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::auth::scram::ScramVerifier;

pub use super::embedded::{GlobalRef, WithGlobals};
use super::error::Location;
pub use super::warning::{PolicyWarning, PolicyWarningKind};
pub use access::{
    ColumnSet, Command, GrantedTables, Grants, Policy, PolicyCommand, PolicyKind, QualifiedName,
    TableGrant, TableRules, quote_ident,
};
pub use function::{FunctionGrant, RoutineKind, RoutineTarget};
pub use global::{BUILTIN_GLOBALS, CLAIMS, Global, GlobalBody, Script, is_builtin};

/// The role every user is a member of, as in PostgreSQL.
pub const PUBLIC: &str = "public";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    /// The roles this role is directly IN, as written.
    pub in_roles: Vec<String>,
    pub bypass_policy: bool,
    /// Where the name was written in `CREATE ROLE`.
    pub location: Location,
}

#[derive(Clone)]
pub struct User {
    pub name: String,
    /// None: the user cannot log in with a password.
    pub verifier: Option<ScramVerifier>,
    /// The roles this user is directly IN, as written.
    pub in_roles: Vec<String>,
    /// Where the name was written in `CREATE USER`.
    pub location: Location,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field(
                "verifier",
                &self.verifier.as_ref().map(|_| "<scram-sha-256 verifier>"),
            )
            .field("in_roles", &self.in_roles)
            .field("location", &self.location)
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub roles: BTreeMap<String, Role>,
    pub users: BTreeMap<String, User>,
    /// Grants and policies per table, keyed by the name as written.
    pub tables: BTreeMap<QualifiedName, TableRules>,
    /// `GRANT … ON ALL TABLES IN SCHEMA s`, per schema: they apply to every
    /// table and view of the schema once the catalog is known.
    pub schema_grants: BTreeMap<String, Grants>,
    /// Every table grant as written, with positions, for diagnostics.
    pub table_grants: Vec<TableGrant>,
    /// `GRANT EXECUTE`, in declaration order.
    pub functions: Vec<FunctionGrant>,
    /// Declared globals (built-ins are not listed unless redefined).
    pub globals: BTreeMap<String, Global>,
    /// The declared globals in an order in which each comes after every
    /// global its query references: the order to evaluate them in.
    pub global_order: Vec<String>,
    /// What loaded but looks wrong; see [`PolicyWarning`].
    pub warnings: Vec<PolicyWarning>,
    /// `CREATE PERMISSION BITS ON table`, in declaration order.
    pub table_bits: Vec<bits::TableBits>,
    /// `CREATE PERMISSION BITS ON FUNCTION`, in declaration order.
    pub function_bits: Vec<bits::FunctionBits>,
}

impl PolicySet {
    /// The user's effective roles: the user itself (grants and policies may
    /// name a user, as in PostgreSQL), the roles it is IN closed over IN
    /// ROLE, and "public"; sorted and deduplicated. An unknown user has none
    /// (not even PUBLIC), so that nothing is ever granted to a name no file
    /// declares.
    pub fn effective_roles(&self, user: &str) -> Vec<String> {
        if !self.users.contains_key(user) {
            return Vec::new();
        }
        self.held_roles(user).into_iter().collect()
    }

    /// The roles whose grants `name` (a role or a user) holds: itself, every
    /// role it is IN directly or through others, and "public".
    pub fn held_roles(&self, name: &str) -> BTreeSet<String> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut pending: Vec<&str> = vec![name];
        while let Some(name) = pending.pop() {
            if !seen.insert(name.to_string()) {
                continue; // already expanded; also guards against cycles
            }
            let in_roles = match (self.roles.get(name), self.users.get(name)) {
                (Some(role), _) => &role.in_roles,
                (None, Some(user)) => &user.in_roles,
                (None, None) => continue,
            };
            pending.extend(in_roles.iter().map(String::as_str));
        }
        seen.insert(PUBLIC.to_string());
        seen
    }

    /// The grants and policies written for a table name (as written).
    pub fn table(&self, name: &QualifiedName) -> Option<&TableRules> {
        self.tables.get(name)
    }

    /// The globals to evaluate for a session with these effective roles, in
    /// evaluation order.
    pub fn globals_for(&self, effective_roles: &[String]) -> Vec<&Global> {
        self.global_order
            .iter()
            .filter_map(|name| self.globals.get(name))
            .filter(|global| global.applies_to(effective_roles))
            .collect()
    }

    /// Whether `name` is a global a session can have: declared, or built in.
    pub fn has_global(&self, name: &str) -> bool {
        self.globals.contains_key(name) || is_builtin(name)
    }

    /// Whether some effective role of the user has BYPASSPOLICY.
    pub fn bypass_policy(&self, user: &str) -> bool {
        self.effective_roles(user)
            .iter()
            .any(|name| self.roles.get(name).is_some_and(|role| role.bypass_policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn role(name: &str, in_roles: &[&str], bypass_policy: bool) -> (String, Role) {
        (
            name.to_string(),
            Role {
                name: name.to_string(),
                in_roles: in_roles.iter().map(|s| s.to_string()).collect(),
                bypass_policy,
                location: Location::new(Path::new("t.sql"), 1, 1),
            },
        )
    }

    fn user(name: &str, in_roles: &[&str]) -> (String, User) {
        (
            name.to_string(),
            User {
                name: name.to_string(),
                verifier: None,
                in_roles: in_roles.iter().map(|s| s.to_string()).collect(),
                location: Location::new(Path::new("t.sql"), 1, 1),
            },
        )
    }

    fn set() -> PolicySet {
        PolicySet {
            roles: [
                role("employee", &[], false),
                role("sales_rep", &["employee"], false),
                role("manager", &["employee"], false),
                role("admin", &[], true),
                role("ops", &["admin"], false),
            ]
            .into_iter()
            .collect(),
            users: [
                user("alice", &["sales_rep"]),
                user("dave", &["manager", "sales_rep"]),
                user("root", &["ops"]),
                user("guest", &[]),
            ]
            .into_iter()
            .collect(),
            ..PolicySet::default()
        }
    }

    #[test]
    fn effective_roles_close_over_in_role_and_add_the_user_and_public() {
        let set = set();
        assert_eq!(
            set.effective_roles("alice"),
            ["alice", "employee", "public", "sales_rep"]
        );
        assert_eq!(
            set.effective_roles("dave"),
            ["dave", "employee", "manager", "public", "sales_rep"]
        );
        assert_eq!(set.effective_roles("guest"), ["guest", "public"]);
        assert!(set.effective_roles("nobody").is_empty());
    }

    #[test]
    fn bypass_policy_is_inherited() {
        let set = set();
        assert!(set.bypass_policy("root"));
        assert!(!set.bypass_policy("alice"));
        assert!(!set.bypass_policy("nobody"));
    }

    #[test]
    fn debug_hides_the_verifier() {
        let (_, u) = user("alice", &[]);
        assert!(!format!("{u:?}").contains("SCRAM"));
    }
}
