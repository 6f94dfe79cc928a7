//! Tests of the whole loading pipeline: text in, policy set or errors out,
//! one file per area.

mod demo;
mod files;
mod globals;
mod grants;
mod policies;
mod references;
mod roles;

use std::path::Path;

use super::*;

pub const ITERATIONS: u32 = 4096;

pub fn parse(text: &str) -> PolicySet {
    match PolicySet::parse_str(Path::new("t.sql"), text, ITERATIONS) {
        Ok(set) => set,
        Err(errors) => panic!("unexpected errors: {}", render(&errors)),
    }
}

/// The errors of a set that must not load, each as `file:line:column: message`.
pub fn errors(text: &str) -> Vec<String> {
    match PolicySet::parse_str(Path::new("t.sql"), text, ITERATIONS) {
        Ok(set) => panic!("expected errors, got {set:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

pub fn one_error(text: &str) -> String {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.remove(0)
}

pub fn render(errors: &[PolicyError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn role<'a>(set: &'a PolicySet, name: &str) -> &'a Role {
    set.roles
        .get(name)
        .unwrap_or_else(|| panic!("no role {name:?} in {:?}", set.roles.keys()))
}

pub fn user<'a>(set: &'a PolicySet, name: &str) -> &'a User {
    set.users
        .get(name)
        .unwrap_or_else(|| panic!("no user {name:?} in {:?}", set.users.keys()))
}
