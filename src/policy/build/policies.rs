//! CREATE POLICY statements into the set, and the checks that tie policies
//! to grants.
//!
//! Owns: policy names unique per table (as written), roles in TO that
//! exist, a grant behind every policy (a policy whose roles hold no grant
//! for its command on its table can never admit anything — what `pgward
//! check` lists, done here as far as names as written allow), and the
//! warning for grants that a policed table makes useless. The grant check
//! errs on the side of loading: `orders` and `public.orders` may be one
//! table, so a grant on either counts for a policy on the other; the catalog
//! settles it later.

use std::collections::{BTreeSet, HashMap};

use super::{globals, known_roles};
use crate::policy::ast::CreatePolicy;
use crate::policy::error::{Location, PolicyError, PolicyErrorKind};
use crate::policy::model::{
    Command, GrantedTables, Grants, PUBLIC, Policy, PolicySet, PolicyWarning, PolicyWarningKind,
    QualifiedName,
};

pub fn add(set: &mut PolicySet, policies: Vec<CreatePolicy>, errors: &mut Vec<PolicyError>) {
    let mut seen: HashMap<(QualifiedName, String), Location> = HashMap::new();
    for create in policies {
        let table = create.table.qualified();
        let key = (table.clone(), create.name.value.clone());
        if let Some(first) = seen.get(&key) {
            errors.push(PolicyError::at(
                create.name.location.clone(),
                PolicyErrorKind::Duplicate,
                format!(
                    "policy \"{}\" for table \"{}\" already exists (declared at {first})",
                    create.name.value, table
                ),
            ));
            continue;
        }
        seen.insert(key, create.name.location.clone());
        let unknown_before = errors.len();
        let roles = known_roles(set, &create.roles, errors);
        let policy = Policy {
            name: create.name.value,
            table: table.clone(),
            kind: create.kind,
            command: create.command,
            roles,
            using: create.using,
            check: create.check,
            location: create.name.location,
            table_location: create.table.location().clone(),
        };
        for reference in policy
            .using
            .iter()
            .chain(policy.check.iter())
            .flat_map(|e| &e.globals)
        {
            globals::check_reference(set, reference, errors);
        }
        let context = format!("policy \"{}\" on {}", policy.name, policy.table);
        let references: Vec<_> = policy
            .using
            .iter()
            .chain(policy.check.iter())
            .flat_map(|e| e.globals.iter().cloned())
            .collect();
        let warnings = globals::out_of_scope(set, &context, &policy.roles, &references);
        set.warnings.extend(warnings);
        // A policy with an unknown role already has its error; whether the
        // others hold a grant is then beside the point.
        if errors.len() == unknown_before
            && let Some(error) = missing_grant(set, &policy)
        {
            errors.push(error);
        }
        set.tables.entry(table).or_default().policies.push(policy);
    }
}

/// The error for a policy that no grant backs, if it is one.
fn missing_grant(set: &PolicySet, policy: &Policy) -> Option<PolicyError> {
    let commands: Vec<Command> = Command::ALL
        .into_iter()
        .filter(|&c| policy.command.covers(c))
        .collect();
    let holders: Option<BTreeSet<String>> = if policy.names_public() {
        None // anyone's grant will do
    } else {
        Some(
            policy
                .roles
                .iter()
                .flat_map(|role| set.held_roles(role))
                .collect(),
        )
    };
    let backed = grants_that_may_apply(set, &policy.table).any(|grants| {
        commands.iter().any(|&command| {
            grants
                .for_command(command)
                .any(|(role, _)| holders.as_ref().is_none_or(|h| h.contains(role)))
        })
    });
    if backed {
        return None;
    }
    let what = match policy.command {
        crate::policy::model::PolicyCommand::All => "any privilege".to_string(),
        crate::policy::model::PolicyCommand::Only(command) => command.to_string(),
    };
    let message = if holders.is_none() {
        format!(
            "policy \"{}\" on {} is for PUBLIC, but no role holds {what} on {}: the policy \
             can never admit a row",
            policy.name, policy.table, policy.table
        )
    } else {
        format!(
            "policy \"{}\" on {} is for {}, but none of them holds {what} on {} (directly \
             or through IN ROLE): grant it, or the policy can never admit a row",
            policy.name,
            policy.table,
            policy.roles.join(", "),
            policy.table
        )
    };
    Some(PolicyError::at(
        policy.location.clone(),
        PolicyErrorKind::NoGrant,
        message,
    ))
}

/// Grants on every table name that may denote `table`, and schema-wide
/// grants on every schema it may be in.
fn grants_that_may_apply<'a>(
    set: &'a PolicySet,
    table: &'a QualifiedName,
) -> impl Iterator<Item = &'a Grants> {
    let on_tables = set
        .tables
        .iter()
        .filter(|(name, _)| name.may_be(table))
        .map(|(_, rules)| &rules.grants);
    let on_schemas = set
        .schema_grants
        .iter()
        .filter(|(schema, _)| table.schema.as_ref().is_none_or(|s| s == *schema))
        .map(|(_, grants)| grants);
    on_tables.chain(on_schemas)
}

/// A role that holds a grant for a command on a table policed for that
/// command, when no policy there applies to the role's own members, while
/// a role IN it has policies there: the grant gives its members no rows,
/// and only adds columns to the member role's entries. Legal, and the same
/// as PostgreSQL, but rarely meant.
pub fn warn_grants_without_policy(set: &mut PolicySet) {
    let mut warnings = Vec::new();
    for (table, rules) in &set.tables {
        for command in Command::ALL {
            if !rules.is_policed(command) {
                continue;
            }
            for (granted, _) in rules.grants.for_command(command) {
                if granted == PUBLIC {
                    continue;
                }
                let held = set.held_roles(granted);
                let covered = rules
                    .policies_for(command)
                    .any(|p| p.roles.iter().any(|r| held.contains(r)));
                if covered {
                    continue;
                }
                let members: BTreeSet<&str> = rules
                    .policies_for(command)
                    .flat_map(|p| p.roles.iter())
                    .filter(|r| r.as_str() != granted && set.held_roles(r).contains(granted))
                    .map(String::as_str)
                    .collect();
                if members.is_empty() {
                    continue;
                }
                let members = members.into_iter().collect::<Vec<_>>().join(", ");
                let location = set
                    .table_grants
                    .iter()
                    .find(|g| {
                        g.target == GrantedTables::Table(table.clone())
                            && g.command == command
                            && g.roles.iter().any(|r| r == granted)
                    })
                    .map(|g| g.location.clone());
                let Some(location) = location else { continue };
                warnings.push(PolicyWarning {
                    location,
                    kind: PolicyWarningKind::GrantWithoutPolicy,
                    message: format!(
                        "{granted} holds {command} on {table}, but no {command} policy there \
                         applies to it: its members get no rows, and the grant only adds \
                         columns for {members} (IN ROLE {granted}), which has policies there"
                    ),
                });
            }
        }
    }
    set.warnings.extend(warnings);
}
