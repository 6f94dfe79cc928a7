//! CREATE GLOBAL statements into the set, and every `@{…}` reference
//! checked against them.
//!
//! Owns: global names unique, FOR ROLE roles that exist, references that
//! name a declared or built-in global in a shape it has (`@{claims.sub}`,
//! not `@{claims}`; `@{g.col}` only for a column g's query returns), no
//! global whose query depends on itself, the order to evaluate globals in,
//! and the warning for a reference that some of its roles never get a value
//! for. Never runs a query.

use std::collections::{BTreeSet, HashMap};

use super::known_roles;
use crate::policy::ast::CreateGlobal;
use crate::policy::embedded::{GlobalRef, output_columns};
use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::model::{
    BUILTIN_GLOBALS, CLAIMS, Global, GlobalBody, PUBLIC, PolicySet, PolicyWarning,
    PolicyWarningKind, is_builtin,
};

/// Adds the declared globals to the set; their references are checked by
/// [`check`] once everything that references globals is in.
pub fn declare(set: &mut PolicySet, creates: Vec<CreateGlobal>, errors: &mut Vec<PolicyError>) {
    for create in creates {
        if let Some(first) = set.globals.get(&create.name.value) {
            errors.push(PolicyError::at(
                create.name.location.clone(),
                PolicyErrorKind::Duplicate,
                format!(
                    "global \"{}\" is already declared at {}",
                    create.name.value, first.location
                ),
            ));
            continue;
        }
        let roles = known_roles(set, &create.roles, errors);
        let global = Global {
            name: create.name.value.clone(),
            roles,
            required: create.required,
            body: create.body,
            location: create.name.location,
        };
        set.globals.insert(create.name.value, global);
    }
}

/// Checks the references inside the globals' own queries, refuses cycles,
/// and records the evaluation order.
pub fn check(set: &mut PolicySet, errors: &mut Vec<PolicyError>) {
    let mut warnings = Vec::new();
    for global in set.globals.values() {
        let roles = if global.roles.is_empty() {
            vec![PUBLIC.to_string()]
        } else {
            global.roles.clone()
        };
        let context = format!("global \"{}\"", global.name);
        for reference in global.references() {
            check_reference(set, reference, errors);
        }
        warnings.extend(out_of_scope(set, &context, &roles, global.references()));
    }
    set.warnings.extend(warnings);
    set.global_order = order(set, errors);
}

/// One reference: a declared global or a built-in, used in a shape it has.
pub fn check_reference(set: &PolicySet, reference: &GlobalRef, errors: &mut Vec<PolicyError>) {
    let name = &reference.name;
    let error = |kind, message: String| PolicyError::at(reference.location.clone(), kind, message);
    if let Some(global) = set.globals.get(name) {
        let GlobalBody::Query(query) = &global.body else {
            return; // a script's shape is only known when it runs
        };
        let Some(columns) = output_columns(&query.sql) else {
            return;
        };
        let listed = || {
            columns
                .iter()
                .map(|c| c.as_deref().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &reference.attr {
            Some(attr) => {
                let all_known = columns.iter().all(Option::is_some);
                if all_known && !columns.iter().flatten().any(|c| c == attr) {
                    errors.push(error(
                        PolicyErrorKind::UnknownGlobal,
                        format!(
                            "global \"{name}\" has no column \"{attr}\" (its query returns {})",
                            listed()
                        ),
                    ));
                }
            }
            None if columns.len() > 1 => {
                let example = columns
                    .iter()
                    .flatten()
                    .next()
                    .map_or("col", String::as_str);
                errors.push(error(
                    PolicyErrorKind::InvalidReference,
                    format!(
                        "global \"{name}\" returns {} columns ({}): name one, as @{{{name}.{example}}}",
                        columns.len(),
                        listed()
                    ),
                ));
            }
            None => {}
        }
        return;
    }
    if !is_builtin(name) {
        errors.push(error(
            PolicyErrorKind::UnknownGlobal,
            format!(
                "global \"{name}\" does not exist: declare it with CREATE GLOBAL, or use a \
                 built-in ({}.…)",
                BUILTIN_GLOBALS.join(", ")
            ),
        ));
        return;
    }
    match (name.as_str(), &reference.attr) {
        (CLAIMS, None) => errors.push(error(
            PolicyErrorKind::InvalidReference,
            "@{claims} needs a claim name, as @{claims.sub}".to_string(),
        )),
        (CLAIMS, Some(_)) | (_, None) => {}
        (_, Some(attr)) => errors.push(error(
            PolicyErrorKind::InvalidReference,
            format!("built-in global \"{name}\" has no attribute \"{attr}\""),
        )),
    }
}

/// Warnings for references that some of `roles` (what the referencing
/// policy or global is for) never get a value for, because the global is
/// FOR ROLE others: there it is NULL. One per global and role.
pub fn out_of_scope(
    set: &PolicySet,
    context: &str,
    roles: &[String],
    references: &[GlobalRef],
) -> Vec<PolicyWarning> {
    let mut warned: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut warnings = Vec::new();
    for reference in references {
        let Some(global) = set.globals.get(&reference.name) else {
            continue;
        };
        if global.roles.is_empty() || global.roles.iter().any(|r| r == PUBLIC) {
            continue;
        }
        for role in roles {
            let held = set.held_roles(role);
            if global.roles.iter().any(|r| held.contains(r))
                || !warned.insert((reference.name.as_str(), role.as_str()))
            {
                continue;
            }
            let for_whom = if role == PUBLIC { "PUBLIC" } else { role };
            warnings.push(PolicyWarning {
                location: reference.location.clone(),
                kind: PolicyWarningKind::GlobalOutOfScope,
                message: format!(
                    "{context} is for {for_whom}, but global \"{}\" is only evaluated for {}: \
                     for sessions without one of those roles it is NULL here",
                    reference.name,
                    global.roles.join(", ")
                ),
            });
        }
    }
    warnings
}

/// The declared globals, each after the globals its query references
/// (depth-first, by name); each loop is an error at the reference that
/// closes it.
fn order(set: &PolicySet, errors: &mut Vec<PolicyError>) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    struct Walk<'a> {
        set: &'a PolicySet,
        marks: HashMap<&'a str, Mark>,
        path: Vec<&'a str>,
        order: Vec<String>,
        errors: Vec<PolicyError>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, name: &'a str) {
            let Some(global) = self.set.globals.get(name) else {
                return;
            };
            self.marks.insert(name, Mark::OnPath);
            self.path.push(name);
            for reference in global.references() {
                let target = reference.name.as_str();
                if !self.set.globals.contains_key(target) {
                    continue; // a built-in, or reported as unknown
                }
                match self.marks.get(target) {
                    None => self.visit(target),
                    Some(Mark::OnPath) => {
                        let from = self.path.iter().position(|n| *n == target).unwrap_or(0);
                        let mut names: Vec<&str> = self.path[from..].to_vec();
                        names.push(target);
                        self.errors.push(PolicyError::at(
                            reference.location.clone(),
                            PolicyErrorKind::Cycle,
                            format!("circular global reference: {}", names.join(" -> ")),
                        ));
                    }
                    Some(Mark::Done) => {}
                }
            }
            self.path.pop();
            self.marks.insert(name, Mark::Done);
            self.order.push(name.to_string());
        }
    }
    let mut walk = Walk {
        set,
        marks: HashMap::new(),
        path: Vec::new(),
        order: Vec::new(),
        errors: Vec::new(),
    };
    for name in set.globals.keys() {
        if !walk.marks.contains_key(name.as_str()) {
            walk.visit(name);
        }
    }
    errors.extend(walk.errors);
    walk.order
}
