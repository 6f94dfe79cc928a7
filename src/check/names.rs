//! Names the policy files use, looked up in the catalog: the tables (and
//! views) of GRANT and CREATE POLICY, the columns of column grants, the
//! schemas of `ALL TABLES IN SCHEMA`, and the routines of GRANT EXECUTE.
//!
//! A name is resolved as sessions resolve it (`session::policy`): a
//! qualified name in its schema, an unqualified one in `public`. Argument
//! lists of routines are resolved by PostgreSQL itself
//! (`to_regprocedure`), so that type names mean what they mean there.

use std::collections::HashMap;

use super::Diagnostic;
use crate::catalog::{Catalog, Function, RelKind, Relation};
use crate::policy::PolicySet;
use crate::policy::model::{GrantedTables, QualifiedName, RoutineKind, RoutineTarget, quote_ident};

/// The relation each table name of the set (as written) denotes; names
/// without one have an error.
pub struct Resolved<'c> {
    relations: HashMap<QualifiedName, &'c Relation>,
}

impl<'c> Resolved<'c> {
    pub fn relation(&self, name: &QualifiedName) -> Option<&'c Relation> {
        self.relations.get(name).copied()
    }
}

/// The schema an unqualified name in a policy file means.
const DEFAULT_SCHEMA: &str = "public";

fn schema_of(name: &QualifiedName) -> &str {
    name.schema.as_deref().unwrap_or(DEFAULT_SCHEMA)
}

fn display_resolved(name: &QualifiedName) -> String {
    format!(
        "{}.{}",
        quote_ident(schema_of(name)),
        quote_ident(&name.name)
    )
}

/// What a grant or policy may name: something rows are read from.
fn is_readable(kind: RelKind) -> bool {
    !matches!(kind, RelKind::Sequence | RelKind::Other)
}

/// Checks every table, column and schema name of grants and policies.
pub fn check<'c>(
    set: &PolicySet,
    catalog: &'c Catalog,
    diagnostics: &mut Vec<Diagnostic>,
) -> Resolved<'c> {
    let mut relations = HashMap::new();
    let mut lookup = |name: &QualifiedName,
                      location: &crate::policy::Location,
                      what: &str,
                      diagnostics: &mut Vec<Diagnostic>|
     -> Option<&'c Relation> {
        match catalog.resolve_relation(Some(schema_of(name)), &name.name, &[]) {
            Some(relation) if is_readable(relation.kind) => {
                relations.insert(name.clone(), relation);
                Some(relation)
            }
            Some(_) => {
                diagnostics.push(Diagnostic::error(
                    location,
                    format!(
                        "{what}: \"{}\" is not a table or view",
                        display_resolved(name)
                    ),
                ));
                None
            }
            None => {
                let hint = if catalog.schemas().any(|s| s == schema_of(name)) {
                    String::new()
                } else {
                    format!(" (schema \"{}\" does not exist)", schema_of(name))
                };
                diagnostics.push(Diagnostic::error(
                    location,
                    format!(
                        "{what}: relation \"{}\" does not exist{hint}",
                        display_resolved(name)
                    ),
                ));
                None
            }
        }
    };
    for grant in &set.table_grants {
        match &grant.target {
            GrantedTables::Table(name) => {
                let Some(relation) = lookup(name, &grant.location, "GRANT", diagnostics) else {
                    continue;
                };
                for (column, location) in grant.columns.iter().flatten() {
                    if relation.column(column).is_none() {
                        diagnostics.push(Diagnostic::error(
                            location,
                            format!(
                                "GRANT: column \"{column}\" of relation \"{}\" does not exist",
                                display_resolved(name)
                            ),
                        ));
                    }
                }
            }
            GrantedTables::AllInSchema(schema) => {
                if !catalog.schemas().any(|s| s == schema) {
                    diagnostics.push(Diagnostic::error(
                        &grant.location,
                        format!("GRANT: schema \"{schema}\" does not exist"),
                    ));
                }
            }
        }
    }
    for rules in set.tables.values() {
        for policy in &rules.policies {
            let what = format!("policy \"{}\"", policy.name);
            lookup(&policy.table, &policy.table_location, &what, diagnostics);
        }
    }
    Resolved { relations }
}

/// Checks the routines of GRANT EXECUTE: the schema exists, the name does,
/// an argument list matches one overload, and the kind fits the keyword
/// (`ON FUNCTION` of a procedure is an error in PostgreSQL).
pub async fn check_routines(
    set: &PolicySet,
    catalog: &Catalog,
    client: &tokio_postgres::Client,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for grant in &set.functions {
        let (name, args) = match &grant.target {
            RoutineTarget::AllInSchema(schema) => {
                if !catalog.schemas().any(|s| s == schema) {
                    diagnostics.push(Diagnostic::error(
                        &grant.location,
                        format!("GRANT EXECUTE: schema \"{schema}\" does not exist"),
                    ));
                }
                continue;
            }
            RoutineTarget::One { name, args } => (name, args),
        };
        let shown = display_resolved(name);
        let overloads = catalog.resolve_function(Some(schema_of(name)), &name.name, &[]);
        if overloads.is_empty() {
            diagnostics.push(Diagnostic::error(
                &grant.location,
                format!("GRANT EXECUTE: function {shown} does not exist"),
            ));
            continue;
        }
        let matched: Vec<&Function> = match args {
            None => {
                if overloads.len() > 1 {
                    diagnostics.push(Diagnostic::warning(
                        &grant.location,
                        format!(
                            "GRANT EXECUTE: {shown} without an argument list names {} \
                             overloads ({}); pgward grants all of them, PostgreSQL would refuse \
                             the name as not unique",
                            overloads.len(),
                            signatures(catalog, &overloads)
                        ),
                    ));
                }
                overloads.clone()
            }
            Some(args) => {
                let list: Vec<String> = args.iter().map(ToString::to_string).collect();
                let signature = format!("{shown}({})", list.join(", "));
                let found = client
                    .query_one(
                        "SELECT pg_catalog.to_regprocedure($1::pg_catalog.text)::pg_catalog.oid",
                        &[&signature],
                    )
                    .await;
                let found: Option<u32> = match found {
                    Ok(row) => row.get(0),
                    Err(e) => {
                        let message = e
                            .as_db_error()
                            .map_or_else(|| e.to_string(), |db| db.message().to_string());
                        diagnostics.push(Diagnostic::error(
                            &grant.location,
                            format!("GRANT EXECUTE: {signature}: {message}"),
                        ));
                        continue;
                    }
                };
                let matched: Vec<&Function> = overloads
                    .iter()
                    .copied()
                    .filter(|f| Some(f.oid) == found)
                    .collect();
                if matched.is_empty() {
                    diagnostics.push(Diagnostic::error(
                        &grant.location,
                        format!(
                            "GRANT EXECUTE: function {signature} does not exist (overloads: {})",
                            signatures(catalog, &overloads)
                        ),
                    ));
                    continue;
                }
                matched
            }
        };
        let procedures = matched.iter().filter(|f| f.kind == 'p').count();
        let wrong = match grant.kind {
            RoutineKind::Function => !matched.is_empty() && procedures == matched.len(),
            RoutineKind::Procedure => !matched.is_empty() && procedures == 0,
            RoutineKind::Routine => false,
        };
        if wrong {
            let (is, keyword) = match grant.kind {
                RoutineKind::Function => ("a procedure", "PROCEDURE"),
                _ => ("not a procedure", "FUNCTION"),
            };
            diagnostics.push(Diagnostic::error(
                &grant.location,
                format!("GRANT EXECUTE: {shown} is {is}: use ON {keyword} or ON ROUTINE"),
            ));
        }
    }
}

/// `f(integer, text), f(integer)` from the catalog's argument types.
fn signatures(catalog: &Catalog, functions: &[&Function]) -> String {
    functions
        .iter()
        .map(|f| {
            let args: Vec<&str> = f
                .arg_types
                .iter()
                .map(|oid| catalog.type_by_oid(*oid).map_or("?", |t| t.name.as_str()))
                .collect();
            format!("{}({})", f.name, args.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
