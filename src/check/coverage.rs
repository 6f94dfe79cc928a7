//! Grants and policies of one relation taken together, once the catalog
//! tells which names denote it (`orders`, `public.orders` and `ALL TABLES
//! IN SCHEMA public` may all meet on one table).
//!
//! Errors: a policy whose TO roles, closed over IN ROLE, hold no grant for
//! its command there (it can never admit a row). Warnings (PRODUCT.md §3,
//! semantics 1–4): a grant that gives its role's members no rows because
//! the relation is policed for that command and no permissive policy
//! applies to the role, while the role is tied by IN ROLE to a role with
//! policies there; and a grant whose columns no applicable policy uses,
//! because entries take the columns granted to the roles a policy names.

use std::collections::{BTreeMap, BTreeSet};

use super::Diagnostic;
use super::names::Resolved;
use crate::catalog::Relation;
use crate::policy::model::{
    ColumnSet, Command, GrantedTables, Grants, PUBLIC, Policy, PolicyCommand, PolicyKind,
    TableGrant,
};
use crate::policy::{Location, PolicySet};

/// Everything the set says about one relation.
struct Group<'a> {
    relation: &'a Relation,
    grants: Grants,
    sites: Vec<&'a TableGrant>,
    policies: Vec<&'a Policy>,
}

pub fn check<'a>(set: &'a PolicySet, resolved: &Resolved<'a>, diagnostics: &mut Vec<Diagnostic>) {
    for group in groups(set, resolved).values() {
        for policy in &group.policies {
            if let Some(d) = missing_grant(set, group, policy) {
                diagnostics.push(d);
            }
        }
        for command in Command::ALL {
            if group.policies.iter().any(|p| p.command.covers(command)) {
                warn_grants(set, group, command, diagnostics);
            }
        }
    }
}

/// The relations that have policies, with every grant that reaches them.
fn groups<'a>(set: &'a PolicySet, resolved: &Resolved<'a>) -> BTreeMap<u32, Group<'a>> {
    let mut groups: BTreeMap<u32, Group<'a>> = BTreeMap::new();
    for rules in set.tables.values() {
        for policy in &rules.policies {
            let Some(relation) = resolved.relation(&policy.table) else {
                continue;
            };
            groups
                .entry(relation.oid)
                .or_insert_with(|| Group {
                    relation,
                    grants: Grants::default(),
                    sites: Vec::new(),
                    policies: Vec::new(),
                })
                .policies
                .push(policy);
        }
    }
    for group in groups.values_mut() {
        let relation = group.relation;
        for (name, rules) in &set.tables {
            if resolved
                .relation(name)
                .is_some_and(|r| r.oid == relation.oid)
            {
                merge(&mut group.grants, &rules.grants);
            }
        }
        if let Some(grants) = set.schema_grants.get(&relation.schema) {
            merge(&mut group.grants, grants);
        }
        group.sites = set
            .table_grants
            .iter()
            .filter(|g| match &g.target {
                GrantedTables::Table(name) => resolved
                    .relation(name)
                    .is_some_and(|r| r.oid == relation.oid),
                GrantedTables::AllInSchema(schema) => *schema == relation.schema,
            })
            .collect();
    }
    groups
}

fn merge(into: &mut Grants, from: &Grants) {
    for command in Command::ALL {
        for (role, columns) in from.for_command(command) {
            into.add(command, role, columns);
        }
    }
}

fn shown(relation: &Relation) -> String {
    format!("{}.{}", relation.schema, relation.name)
}

/// The error for a policy that no grant to its roles backs.
fn missing_grant(set: &PolicySet, group: &Group<'_>, policy: &Policy) -> Option<Diagnostic> {
    let holders: Option<BTreeSet<String>> = if policy.names_public() {
        None
    } else {
        Some(
            policy
                .roles
                .iter()
                .flat_map(|r| set.held_roles(r))
                .collect(),
        )
    };
    let backed = Command::ALL
        .into_iter()
        .filter(|&c| policy.command.covers(c))
        .any(|c| {
            group
                .grants
                .for_command(c)
                .any(|(role, _)| holders.as_ref().is_none_or(|h| h.contains(role)))
        });
    if backed {
        return None;
    }
    let what = match policy.command {
        PolicyCommand::All => "any privilege".to_string(),
        PolicyCommand::Only(command) => command.to_string(),
    };
    let table = shown(group.relation);
    let who = if holders.is_none() {
        "PUBLIC, but no role".to_string()
    } else {
        format!(
            "{}, but none of them (directly or through IN ROLE)",
            policy.roles.join(", ")
        )
    };
    Some(Diagnostic::error(
        &policy.location,
        format!(
            "policy \"{}\" on {table} is for {who} holds {what} on {table}: grant it, or the \
             policy can never admit a row",
            policy.name
        ),
    ))
}

/// The warnings for the grants of one command on a relation policed for it.
fn warn_grants(
    set: &PolicySet,
    group: &Group<'_>,
    command: Command,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let table = shown(group.relation);
    let permissive: Vec<&Policy> = group
        .policies
        .iter()
        .copied()
        .filter(|p| p.command.covers(command) && p.kind == PolicyKind::Permissive)
        .collect();
    let public_policy = permissive.iter().any(|p| p.names_public());
    // Roles named by any policy on the relation, whatever its command.
    let policy_roles: BTreeSet<&str> = group
        .policies
        .iter()
        .flat_map(|p| p.roles.iter().map(String::as_str))
        .filter(|r| *r != PUBLIC)
        .collect();
    for (granted, columns) in group.grants.for_command(command) {
        if granted == PUBLIC || policy_roles.contains(granted) {
            continue;
        }
        let Some(location) = site(group, command, granted) else {
            continue;
        };
        let held = set.held_roles(granted);
        // Roles with policies here that this one is IN, and that are IN it.
        let above: Vec<&str> = policy_roles
            .iter()
            .copied()
            .filter(|r| held.contains(*r))
            .collect();
        let below: Vec<&str> = policy_roles
            .iter()
            .copied()
            .filter(|r| set.held_roles(r).contains(granted))
            .collect();
        if above.is_empty() && below.is_empty() {
            continue;
        }
        let applying: Vec<&Policy> = permissive
            .iter()
            .copied()
            .filter(|p| p.names_public() || p.roles.iter().any(|r| held.contains(r)))
            .collect();
        if applying.is_empty() {
            let tie = if below.is_empty() {
                format!("{granted} is IN ROLE {}", above.join(", "))
            } else {
                format!("{} IN ROLE {granted}", below.join(", "))
            };
            diagnostics.push(Diagnostic::warning(
                &location,
                format!(
                    "{granted} holds {command} on {table}, but {table} is policed for {command} \
                     and no permissive {command} policy there applies to {granted}: its members \
                     get no rows from {table} through this grant ({tie}, which has policies \
                     there; name {granted} in a policy's TO, or move the grant)"
                ),
            ));
            continue;
        }
        if public_policy {
            continue; // PUBLIC policies take every granted column
        }
        // Entries take the columns granted to the roles a policy names.
        let mut used = ColumnSet::of(Vec::<String>::new());
        for policy in &applying {
            let named = policy
                .roles
                .iter()
                .filter(|r| held.contains(*r))
                .map(String::as_str);
            if let Some(c) = group.grants.held_by(command, named) {
                used.union_with(&c);
            }
        }
        let unused: Vec<String> = match columns.columns() {
            None if used.is_all() => Vec::new(),
            None => vec!["every column".to_string()],
            Some(listed) => listed
                .iter()
                .filter(|c| !used.contains(c))
                .cloned()
                .collect(),
        };
        if unused.is_empty() {
            continue;
        }
        let names: Vec<&str> = applying.iter().map(|p| p.name.as_str()).collect();
        diagnostics.push(Diagnostic::warning(
            &location,
            format!(
                "{granted} holds {command} ({}) on {table}, but the {command} policies that apply \
                 to its members ({}) name only {} ({granted} is IN ROLE {}): their rows carry \
                 the columns granted to the roles they name, so this grant shows no more \
                 columns; name {granted} in a policy's TO, or grant the columns to the role named",
                unused.join(", "),
                names.join(", "),
                above.join(", "),
                above.join(", ")
            ),
        ));
    }
}

/// Where a grant of `command` to `role` on the group's relation was written.
fn site(group: &Group<'_>, command: Command, role: &str) -> Option<Location> {
    group
        .sites
        .iter()
        .find(|g| g.command == command && g.roles.iter().any(|r| r == role))
        .map(|g| g.location.clone())
}
