//! Turns parsed statements from every file of a set into a validated
//! [`PolicySet`].
//!
//! Owns the checks that need the whole set, one file each: `roles` (names,
//! membership, passwords), `grants` (grant targets and grantees),
//! `policies` (names per table, roles, grants behind each policy, warnings)
//! and `globals` (references, cycles, evaluation order). Statements are
//! collected in declaration order and checked only in [`Builder::finish`],
//! since any of them may name something a later file declares. Never returns
//! a set that has an error, not even in part.

mod bits;
mod globals;
mod grants;
mod policies;
mod roles;

use std::collections::HashMap;

use super::ast::{CreateGlobal, CreatePolicy, Grant, Name, Statement};
use super::error::{PolicyError, PolicyErrorKind};
use super::model::{PUBLIC, PolicySet};
use roles::Declared;

pub struct Builder {
    scram_iterations: u32,
    /// Key for the salts of plain-text passwords (see
    /// `auth::scram::keyed_salt`); random salts without one.
    salt_key: Option<Vec<u8>>,
    /// Roles and users in declaration order, so that errors come out in
    /// file order.
    declared: Vec<Declared>,
    by_name: HashMap<String, usize>,
    grants: Vec<Grant>,
    policies: Vec<CreatePolicy>,
    globals: Vec<CreateGlobal>,
    table_bits: Vec<super::model::bits::TableBits>,
    function_bits: Vec<super::model::bits::FunctionBits>,
    errors: Vec<PolicyError>,
}

impl Builder {
    pub fn new(scram_iterations: u32) -> Self {
        Builder {
            scram_iterations,
            salt_key: None,
            declared: Vec::new(),
            by_name: HashMap::new(),
            grants: Vec::new(),
            policies: Vec::new(),
            globals: Vec::new(),
            table_bits: Vec::new(),
            function_bits: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Hashes plain-text passwords with salts derived from `key`.
    pub fn with_salt_key(mut self, key: &[u8]) -> Self {
        self.salt_key = Some(key.to_vec());
        self
    }

    /// Records an error found while reading or parsing, so that one load
    /// reports every problem it can.
    pub fn error(&mut self, error: PolicyError) {
        self.errors.push(error);
    }

    pub fn add(&mut self, statement: Statement) {
        match statement {
            Statement::CreateRole(create) => self.add_role(create),
            Statement::CreateUser(create) => self.add_user(create),
            Statement::Grant(grant) => self.grants.push(grant),
            Statement::CreatePolicy(create) => self.policies.push(*create),
            Statement::CreateGlobal(create) => self.globals.push(create),
            Statement::TableBits(bits) => self.table_bits.push(*bits),
            Statement::FunctionBits(bits) => self.function_bits.push(bits),
        }
    }

    /// Checks the whole set, then returns it, or every error found since the
    /// builder was created.
    pub fn finish(mut self) -> Result<PolicySet, Vec<PolicyError>> {
        let (roles, users) = self.finish_roles();
        let mut set = PolicySet {
            roles,
            users,
            ..PolicySet::default()
        };
        let mut errors = std::mem::take(&mut self.errors);
        globals::declare(&mut set, self.globals, &mut errors);
        grants::add(&mut set, self.grants, &mut errors);
        policies::add(&mut set, self.policies, &mut errors);
        bits::add(&mut set, self.table_bits, self.function_bits, &mut errors);
        globals::check(&mut set, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        policies::warn_grants_without_policy(&mut set);
        Ok(set)
    }
}

/// The names in a TO or FOR ROLE list that exist (PUBLIC, a role or a
/// user), each once, in order; every other one is an error at its place.
fn known_roles(set: &PolicySet, names: &[Name], errors: &mut Vec<PolicyError>) -> Vec<String> {
    let mut known: Vec<String> = Vec::new();
    for name in names {
        let exists = name.value == PUBLIC
            || set.roles.contains_key(&name.value)
            || set.users.contains_key(&name.value);
        if !exists {
            errors.push(PolicyError::at(
                name.location.clone(),
                PolicyErrorKind::UnknownRole,
                format!("role \"{}\" does not exist", name.value),
            ));
        } else if !known.contains(&name.value) {
            known.push(name.value.clone());
        }
    }
    known
}
