//! Type errors in policy expressions and global queries, found by
//! PostgreSQL itself.
//!
//! Each global's query is described (prepared, never run) with the
//! references inside it filled in as typed NULLs, which gives the types of
//! its columns; then every USING and WITH CHECK, with its references filled
//! in the same way, is planned as `EXPLAIN SELECT 1 FROM table WHERE expr`
//! inside a transaction that is rolled back. Whatever PostgreSQL refuses is
//! reported at the expression, with PostgreSQL's message. Never executes a
//! policy expression or a global query.

use std::collections::{BTreeMap, BTreeSet};

use sqlparser::ast::{Expr, Spanned};

use super::Diagnostic;
use super::names::Resolved;
use crate::globals::{GlobalValue, GlobalValues};
use crate::policy::model::{GlobalBody, GlobalRef, Policy, WithGlobals, quote_ident};
use crate::policy::{Location, PolicySet};

/// How long PostgreSQL may take to plan one expression.
const PLAN_TIMEOUT: &str = "10s";

/// The columns (name, type) each query global returns.
type Described = BTreeMap<String, Vec<(String, String)>>;

pub async fn check(
    set: &PolicySet,
    resolved: &Resolved<'_>,
    client: &tokio_postgres::Client,
    diagnostics: &mut Vec<Diagnostic>,
) -> anyhow::Result<()> {
    let mut values = typed_nulls_of_builtins();
    let mut described = Described::new();
    // Globals that could not be described: expressions that use them are
    // not planned, since their NULLs would have no type.
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    for name in &set.global_order {
        let Some(global) = set.globals.get(name) else {
            continue;
        };
        let GlobalBody::Query(query) = &global.body else {
            continue; // a script's columns are only known when it runs
        };
        let context = format!("global \"{name}\"");
        if !references_fit(&context, &query.globals, &described, &failed, diagnostics) {
            failed.insert(name);
            continue;
        }
        let sql = match values.fill(query) {
            Ok(tree) => tree.to_string(),
            Err(e) => {
                diagnostics.push(Diagnostic::error(
                    &global.location,
                    format!("{context}: {}", e.message),
                ));
                failed.insert(name);
                continue;
            }
        };
        match client.prepare(&sql).await {
            Ok(statement) => {
                let columns: Vec<(String, String)> = statement
                    .columns()
                    .iter()
                    .map(|c| (c.name().to_string(), type_name(c.type_())))
                    .collect();
                values.insert(
                    name,
                    GlobalValue {
                        columns: columns.clone(),
                        rows: Vec::new(),
                    },
                );
                described.insert(name.clone(), columns);
            }
            Err(e) => {
                diagnostics.push(Diagnostic::error(
                    &global.location,
                    format!(
                        "{context}: the query fails in PostgreSQL: {}",
                        pg_message(&e)
                    ),
                ));
                failed.insert(name);
            }
        }
    }
    for rules in set.tables.values() {
        for policy in &rules.policies {
            let Some(relation) = resolved.relation(&policy.table) else {
                continue; // unknown table: reported by `names`
            };
            let from = format!(
                "{}.{}",
                quote_ident(&relation.schema),
                quote_ident(&relation.name)
            );
            let clauses = [("USING", &policy.using), ("WITH CHECK", &policy.check)];
            for (clause, expr) in clauses {
                let Some(expr) = expr else { continue };
                let context = format!("policy \"{}\" on {}: {clause}", policy.name, policy.table);
                if !references_fit(&context, &expr.globals, &described, &failed, diagnostics) {
                    continue;
                }
                let at = expression_location(policy, expr);
                let filled = match values.fill(expr) {
                    Ok(tree) => tree,
                    Err(e) => {
                        diagnostics
                            .push(Diagnostic::error(&at, format!("{context}: {}", e.message)));
                        continue;
                    }
                };
                if let Some(message) = plan(client, &from, &filled).await? {
                    diagnostics.push(Diagnostic::error(&at, format!("{context}: {message}")));
                }
            }
        }
    }
    Ok(())
}

/// The built-ins with their types and no value; identity-source built-ins
/// (`user_id`, `groups`, `claims`) have no known type and stay plain NULL.
fn typed_nulls_of_builtins() -> GlobalValues {
    let mut values = GlobalValues::default();
    for (name, column, type_name) in [
        ("login_id", "value", "pg_catalog.text"),
        ("roles", "role", "pg_catalog.text"),
        ("client_addr", "value", "pg_catalog.inet"),
    ] {
        values.insert(
            name,
            GlobalValue {
                columns: vec![(column.to_string(), type_name.to_string())],
                rows: Vec::new(),
            },
        );
    }
    values
}

/// As `globals::evaluate` names a column's type in a cast.
fn type_name(t: &tokio_postgres::types::Type) -> String {
    if t.schema() == "pg_catalog" {
        format!("pg_catalog.{}", t.name())
    } else {
        format!("{}.{}", quote_ident(t.schema()), quote_ident(t.name()))
    }
}

/// Whether every reference to a described global names a column its query
/// returns (and names one when it returns several); errors at the
/// reference otherwise. False also when a referenced global failed.
fn references_fit(
    context: &str,
    references: &[GlobalRef],
    described: &Described,
    failed: &BTreeSet<&str>,
    diagnostics: &mut Vec<Diagnostic>,
) -> bool {
    let mut fit = true;
    for r in references {
        if failed.contains(r.name.as_str()) {
            fit = false;
            continue;
        }
        let Some(columns) = described.get(&r.name) else {
            continue; // a built-in or a script
        };
        let listed = || {
            columns
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &r.attr {
            Some(attr) if !columns.iter().any(|(n, _)| n == attr) => {
                diagnostics.push(Diagnostic::error(
                    &r.location,
                    format!(
                        "{context}: global \"{}\" has no column \"{attr}\" (its query returns {})",
                        r.name,
                        listed()
                    ),
                ));
                fit = false;
            }
            None if columns.len() != 1 => {
                diagnostics.push(Diagnostic::error(
                    &r.location,
                    format!(
                        "{context}: global \"{}\" returns {} columns ({}): name one, as \
                         @{{{}.column}}",
                        r.name,
                        columns.len(),
                        listed(),
                        r.name
                    ),
                ));
                fit = false;
            }
            _ => {}
        }
    }
    fit
}

/// Where the expression starts in its file, or the policy's name when the
/// parser kept no position for it.
fn expression_location(policy: &Policy, expr: &WithGlobals<Expr>) -> Location {
    let start = expr.sql.span().start;
    if start.line > 0 {
        Location::new(&policy.location.file, start.line, start.column)
    } else {
        policy.location.clone()
    }
}

/// Plans `SELECT 1 FROM <from> WHERE <expr>`; PostgreSQL's error message
/// (and hint) if it refuses, None if it plans. Other failures (the
/// connection broke) end the check.
async fn plan(
    client: &tokio_postgres::Client,
    from: &str,
    expr: &Expr,
) -> anyhow::Result<Option<String>> {
    client
        .batch_execute(&format!(
            "BEGIN READ ONLY; SET LOCAL statement_timeout = '{PLAN_TIMEOUT}'"
        ))
        .await?;
    // The extended protocol takes one statement only: the expression cannot
    // end the EXPLAIN and start another.
    let explained = client
        .query(&format!("EXPLAIN SELECT 1 FROM {from} WHERE {expr}"), &[])
        .await;
    client.batch_execute("ROLLBACK").await?;
    match explained {
        Ok(_) => Ok(None),
        Err(e) if e.as_db_error().is_some() => Ok(Some(pg_message(&e))),
        Err(e) => Err(e.into()),
    }
}

/// PostgreSQL's message, with its hint when it gives one.
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.hint() {
            Some(hint) => format!("{} (hint: {hint})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}
