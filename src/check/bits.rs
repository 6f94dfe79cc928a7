//! Permission bits against the catalog (PRODUCT.md §6): the table, its
//! one-column primary key, the owner and permission columns, the
//! membership table and its keys, the type of `@{user_id}` and `@{groups}`
//! where a policy file's global gives one, and the functions that carry
//! bits. Bit expressions were parsed at load. Never runs a query that
//! reads rows: global queries are only prepared.

use super::Diagnostic;
use crate::catalog::{Catalog, Column, RelKind, Relation};
use crate::globals::GlobalValues;
use crate::policy::model::bits::TableBits;
use crate::policy::model::{GlobalBody, QualifiedName, quote_ident};
use crate::policy::{Location, PolicySet};

/// int2 cannot hold Group bits (2^14 … 2^20).
const INTEGER_TYPES: [u32; 2] = [20, 23];

fn relation<'c>(catalog: &'c Catalog, name: &QualifiedName) -> Option<&'c Relation> {
    catalog
        .relation_named(name.schema.as_deref().unwrap_or("public"), &name.name)
        .filter(|r| matches!(r.kind, RelKind::Table | RelKind::PartitionedTable))
}

fn display(name: &QualifiedName) -> String {
    format!(
        "{}.{}",
        quote_ident(name.schema.as_deref().unwrap_or("public")),
        quote_ident(&name.name)
    )
}

fn column<'r>(
    relation: &'r Relation,
    name: &str,
    at: &Location,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<&'r Column> {
    let found = relation.column(name);
    if found.is_none() {
        diagnostics.push(Diagnostic::error(
            at,
            format!(
                "column \"{name}\" of relation \"{}\" does not exist",
                relation.name
            ),
        ));
    }
    found
}

fn integer(column: &Column, at: &Location, diagnostics: &mut Vec<Diagnostic>) {
    if !INTEGER_TYPES.contains(&column.type_oid) {
        diagnostics.push(Diagnostic::error(
            at,
            format!(
                "permission column \"{}\" is {}: it must be integer or bigint",
                column.name, column.type_name
            ),
        ));
    }
}

/// The type oid of the first column of a policy file's global `name`,
/// when its query uses built-ins only (prepared, never run).
async fn global_type(set: &PolicySet, name: &str, client: &tokio_postgres::Client) -> Option<u32> {
    let GlobalBody::Query(query) = &set.globals.get(name)?.body else {
        return None;
    };
    let values = GlobalValues::builtins("", &[], None);
    let sql = values.fill(query).ok()?.to_string();
    let statement = client.prepare(&sql).await.ok()?;
    statement.columns().first().map(|c| c.type_().oid())
}

pub async fn check(
    set: &PolicySet,
    catalog: &Catalog,
    client: &tokio_postgres::Client,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let user_id = if set.table_bits.is_empty() {
        None
    } else {
        global_type(set, "user_id", client).await
    };
    let groups = if set.table_bits.iter().any(|b| b.groups.is_some()) {
        global_type(set, "groups", client).await
    } else {
        None
    };
    for bits in &set.table_bits {
        check_table(bits, catalog, user_id, groups, diagnostics);
    }
    for bits in &set.function_bits {
        let args = bits.args.as_ref().map(|a| {
            a.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        });
        let (sql, signature) = match &args {
            Some(args) => (
                "SELECT pg_catalog.to_regprocedure($1)::pg_catalog.oid",
                format!("{}({args})", display(&bits.name)),
            ),
            None => (
                "SELECT pg_catalog.to_regproc($1)::pg_catalog.oid",
                display(&bits.name),
            ),
        };
        let found = match client.query_one(sql, &[&signature]).await {
            Ok(row) => row.try_get::<_, Option<u32>>(0).ok().flatten(),
            Err(e) => {
                diagnostics.push(Diagnostic::error(
                    &bits.location,
                    format!("function {signature}: {}", super_message(&e)),
                ));
                continue;
            }
        };
        if found.is_none() {
            let hint = if args.is_none() {
                " (or it is overloaded: give its argument types)"
            } else {
                ""
            };
            diagnostics.push(Diagnostic::error(
                &bits.location,
                format!("function {signature} does not exist{hint}"),
            ));
        }
    }
}

fn super_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string())
}

fn check_table(
    bits: &TableBits,
    catalog: &Catalog,
    user_id: Option<u32>,
    groups: Option<u32>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Some(table) = relation(catalog, &bits.table) else {
        diagnostics.push(Diagnostic::error(
            &bits.location,
            format!("table {} does not exist", display(&bits.table)),
        ));
        return;
    };
    let key = match table.primary_key.as_slice() {
        [key] => table.column(key),
        _ => {
            diagnostics.push(Diagnostic::error(
                &bits.location,
                format!(
                    "table {} needs a primary key of one column for permission bits",
                    display(&bits.table)
                ),
            ));
            None
        }
    };
    let at = bits.option_location("owner");
    if let Some(owner) = column(table, &bits.owner, at, diagnostics)
        && let Some(oid) = user_id
        && oid != owner.type_oid
    {
        diagnostics.push(Diagnostic::error(
            at,
            format!(
                "owner column \"{}\" is {} but the global user_id is of another type (oid {oid})",
                owner.name, owner.type_name
            ),
        ));
    }
    let at = bits.option_location("permission");
    if let Some(permission) = column(table, &bits.permission, at, diagnostics) {
        integer(permission, at, diagnostics);
    }
    let Some(m) = &bits.groups else {
        return;
    };
    let Some(membership) = relation(catalog, &m.table) else {
        diagnostics.push(Diagnostic::error(
            &m.location,
            format!("table {} does not exist", display(&m.table)),
        ));
        return;
    };
    if let Some(row_key) = column(membership, &m.row_key, &m.location, diagnostics)
        && let Some(key) = key
        && row_key.type_oid != key.type_oid
    {
        diagnostics.push(Diagnostic::error(
            &m.location,
            format!(
                "membership key \"{}\" is {} but the primary key \"{}\" of {} is {}",
                row_key.name,
                row_key.type_name,
                key.name,
                display(&bits.table),
                key.type_name
            ),
        ));
    }
    if let Some(group) = column(membership, &m.group, &m.location, diagnostics)
        && let Some(oid) = groups
        && oid != group.type_oid
        && oid != group_array(group.type_oid)
    {
        diagnostics.push(Diagnostic::warning(
            &m.location,
            format!(
                "group column \"{}\" is {} but the global groups is of another type (oid {oid}): \
                 its values are read as {}",
                group.name, group.type_name, group.type_name
            ),
        ));
    }
    if let Some(permission) = &m.permission
        && let Some(column) = column(membership, permission, &m.location, diagnostics)
    {
        integer(column, &m.location, diagnostics);
    }
}

/// The array type of a few common group types (a list global may be
/// described as an array).
fn group_array(oid: u32) -> u32 {
    match oid {
        20 => 1016,
        23 => 1007,
        25 => 1009,
        1043 => 1015,
        2950 => 2951,
        _ => 0,
    }
}
