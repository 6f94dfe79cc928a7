//! Whole-set checks of roles and users: duplicate names (roles and users
//! share one namespace, as in PostgreSQL), IN ROLE references (which may
//! point forward to a later file), membership cycles, and hashing plain-text
//! passwords. Never logs a password; the warning for a plain-text one names
//! only the place and the user.

use std::collections::BTreeMap;

use crate::auth::scram::ScramVerifier;

use super::Builder;
use crate::policy::ast::{CreateRole, CreateUser, Name, Password};
use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::model::{Role, User};

/// A declared role or user, with the IN ROLE names still carrying their
/// positions for error messages.
pub enum Declared {
    Role { role: Role, in_roles: Vec<Name> },
    User { user: User, in_roles: Vec<Name> },
}

impl Declared {
    fn in_roles(&self) -> &[Name] {
        match self {
            Declared::Role { in_roles, .. } | Declared::User { in_roles, .. } => in_roles,
        }
    }
}

impl Builder {
    pub(super) fn add_role(&mut self, create: CreateRole) {
        if !self.claim(&create.name, "role") {
            return;
        }
        let role = Role {
            name: create.name.value,
            in_roles: create.in_roles.iter().map(|n| n.value.clone()).collect(),
            bypass_policy: create.bypass_policy,
            location: create.name.location,
        };
        self.declared.push(Declared::Role {
            role,
            in_roles: create.in_roles,
        });
    }

    pub(super) fn add_user(&mut self, create: CreateUser) {
        if !self.claim(&create.name, "user") {
            return;
        }
        let verifier = match create.password {
            None => None,
            Some(Password::Verifier(verifier)) => Some(verifier),
            Some(Password::PlainText { text, location }) => {
                tracing::warn!(
                    location = %location,
                    user = %create.name.value,
                    "{location}: user \"{}\" has a plain-text password; it is hashed at load, \
                     but the policy file should hold a SCRAM-SHA-256 verifier instead",
                    create.name.value
                );
                Some(match &self.salt_key {
                    Some(key) => ScramVerifier::from_password(
                        &text,
                        &crate::auth::scram::keyed_salt(key, &create.name.value),
                        self.scram_iterations,
                    ),
                    None => ScramVerifier::generate(&text, self.scram_iterations),
                })
            }
        };
        let user = User {
            name: create.name.value,
            verifier,
            in_roles: create.in_roles.iter().map(|n| n.value.clone()).collect(),
            location: create.name.location,
        };
        self.declared.push(Declared::User {
            user,
            in_roles: create.in_roles,
        });
    }

    /// Reserves `name` for a new declaration, or records a duplicate error
    /// at the second one that points back at the first.
    fn claim(&mut self, name: &Name, kind: &str) -> bool {
        if let Some(&index) = self.by_name.get(&name.value) {
            let (first_kind, first_location) = match &self.declared[index] {
                Declared::Role { role, .. } => ("role", &role.location),
                Declared::User { user, .. } => ("user", &user.location),
            };
            let message = format!(
                "{kind} \"{}\" is already declared as a {first_kind} at {first_location}",
                name.value
            );
            self.errors.push(PolicyError::at(
                name.location.clone(),
                PolicyErrorKind::Duplicate,
                message,
            ));
            return false;
        }
        self.by_name.insert(name.value.clone(), self.declared.len());
        true
    }

    /// Resolves IN ROLE references and checks membership; returns the
    /// roles and users (also when there were errors, so that later checks
    /// can still run and report theirs).
    pub(super) fn finish_roles(&mut self) -> (BTreeMap<String, Role>, BTreeMap<String, User>) {
        self.check_references();
        self.check_cycles();
        let mut roles = BTreeMap::new();
        let mut users = BTreeMap::new();
        for declared in std::mem::take(&mut self.declared) {
            match declared {
                Declared::Role { role, .. } => {
                    roles.insert(role.name.clone(), role);
                }
                Declared::User { user, .. } => {
                    users.insert(user.name.clone(), user);
                }
            }
        }
        (roles, users)
    }

    fn check_references(&mut self) {
        for declared in &self.declared {
            for name in declared.in_roles() {
                let message = match self.by_name.get(&name.value).map(|&i| &self.declared[i]) {
                    Some(Declared::Role { .. }) => continue,
                    Some(Declared::User { user, .. }) => format!(
                        "\"{}\" is a user, not a role (declared at {}); \
                         IN ROLE can only name roles",
                        name.value, user.location
                    ),
                    None => format!("role \"{}\" does not exist", name.value),
                };
                self.errors.push(PolicyError::at(
                    name.location.clone(),
                    PolicyErrorKind::UnknownRole,
                    message,
                ));
            }
        }
    }

    /// Depth-first search over roles, in declaration order; each edge that
    /// closes a loop is reported at the IN ROLE name that closes it.
    fn check_cycles(&mut self) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let mut marks = vec![Mark::New; self.declared.len()];
        for start in 0..self.declared.len() {
            if marks[start] != Mark::New || !matches!(self.declared[start], Declared::Role { .. }) {
                continue;
            }
            // Each frame: the role, and how many of its edges were followed.
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            marks[start] = Mark::OnPath;
            while let Some(&(node, next_edge)) = path.last() {
                let edges = self.declared[node].in_roles();
                let Some(edge) = edges.get(next_edge) else {
                    marks[node] = Mark::Done;
                    path.pop();
                    continue;
                };
                if let Some(top) = path.last_mut() {
                    top.1 += 1;
                }
                let Some(&target) = self.by_name.get(&edge.value) else {
                    continue; // reported by check_references
                };
                if !matches!(self.declared[target], Declared::Role { .. }) {
                    continue;
                }
                match marks[target] {
                    Mark::New => {
                        marks[target] = Mark::OnPath;
                        path.push((target, 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|&(n, _)| n == target).unwrap_or(0);
                        let mut names: Vec<&str> = path[from..]
                            .iter()
                            .map(|&(n, _)| declared_name(&self.declared[n]))
                            .collect();
                        names.push(&edge.value);
                        self.errors.push(PolicyError::at(
                            edge.location.clone(),
                            PolicyErrorKind::Cycle,
                            format!("circular role membership: {}", names.join(" -> ")),
                        ));
                    }
                    Mark::Done => {}
                }
            }
        }
    }
}

fn declared_name(declared: &Declared) -> &str {
    match declared {
        Declared::Role { role, .. } => &role.name,
        Declared::User { user, .. } => &user.name,
    }
}
