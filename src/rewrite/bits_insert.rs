//! What permission bits add to an INSERT (PRODUCT.md §6): the owner and
//! permission columns when the client does not list them, and the new
//! rows' memberships of the default groups, in the same statement and
//! with the client's own command tag.
//!
//! The memberships are inserted from the INSERT's `RETURNING` in a
//! data-modifying WITH: `WITH "pgward_w" AS (INSERT … RETURNING key,
//! permission, check), "pgward_g2" AS (INSERT INTO membership SELECT …
//! FROM "pgward_w") INSERT INTO membership SELECT … FROM "pgward_w"` — the
//! last INSERT writes one row per new row, so its tag (`INSERT 0 n`) is
//! the client's. With the client's own RETURNING the write is already a
//! SELECT over "pgward_w" (`ResultShape::Tagged`), which only gains the
//! membership CTEs. Must never: add a value the client did not write to
//! a column it listed, or join groups for rows it did not insert.

use std::collections::BTreeSet;

use sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Query, SelectItem, SetExpr, Statement,
};

use super::access::{InsertDefaults, Join};
use super::secure::{fold, parse_select, quote_ident};
use super::{ResultShape, scope};
use crate::catalog::Relation;
use crate::error::{PgError, code};

const WRITTEN: &str = "pgward_w";

fn not_supported(what: &str) -> PgError {
    PgError::error(
        code::FEATURE_NOT_SUPPORTED,
        format!("{what} is not supported on a table with permission bits"),
    )
    .with_hint("List the owner and permission columns, and write one INSERT … VALUES or SELECT.")
}

/// Adds the columns of `defaults` the INSERT does not list, with their
/// values, to its column list and to every row of its source.
pub fn add_columns(
    defaults: &InsertDefaults,
    relation: &Relation,
    columns: &mut Vec<ObjectName>,
    source: &mut Option<Box<Query>>,
) -> Result<(), PgError> {
    let mut listed: BTreeSet<String> = BTreeSet::new();
    for c in columns.iter() {
        if let [ObjectNamePart::Identifier(id)] = c.0.as_slice() {
            listed.insert(fold(id));
        }
    }
    if columns.is_empty() {
        let width = match source.as_deref() {
            None => Some(0),
            Some(q) => match q.body.as_ref() {
                SetExpr::Values(v) => Some(v.rows.first().map_or(0, |r| r.len())),
                _ => scope::query_outputs(q).map(|o| o.len()),
            },
        };
        let Some(width) = width else {
            return Err(not_supported(
                "INSERT without a column list from this query",
            ));
        };
        for c in relation.columns.iter().take(width) {
            listed.insert(c.name.clone());
            columns.push(ObjectName(vec![ObjectNamePart::Identifier(
                Ident::with_quote('"', c.name.clone()),
            )]));
        }
    }
    let extra: Vec<&(String, Expr)> = defaults
        .columns
        .iter()
        .filter(|(c, _)| !listed.contains(c))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    match source.as_deref_mut() {
        None => {
            let values: Vec<String> = extra.iter().map(|(_, v)| v.to_string()).collect();
            let mut values = parse_select(&format!("VALUES ({})", values.join(", ")))?;
            super::literals::protect(&mut values)?;
            *source = Some(Box::new(values));
        }
        Some(q) => match q.body.as_mut() {
            SetExpr::Values(v) => {
                for row in &mut v.rows {
                    row.extend(extra.iter().map(|(_, e)| e.clone()));
                }
            }
            SetExpr::Select(s) => {
                s.projection.extend(
                    extra
                        .iter()
                        .map(|(_, e)| SelectItem::UnnamedExpr(e.clone())),
                );
            }
            _ => return Err(not_supported("INSERT from a set operation")),
        },
    }
    columns.extend(extra.iter().map(|(c, _)| {
        ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote(
            '"',
            c.clone(),
        ))])
    }));
    Ok(())
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `INSERT INTO membership (…) SELECT … FROM "pgward_w"` for one group.
fn membership_insert(join: &Join, group: &str) -> String {
    let mut columns = vec![quote_ident(&join.row_key), quote_ident(&join.group)];
    let mut values = vec!["\"pgward_key\"".to_string(), literal(group)];
    if let Some(p) = &join.permission {
        columns.push(quote_ident(p));
        values.push("\"pgward_perm\"".to_string());
    }
    format!(
        "INSERT INTO {}.{} ({}) SELECT {} FROM \"{WRITTEN}\"",
        quote_ident(&join.schema),
        quote_ident(&join.table),
        columns.join(", "),
        values.join(", ")
    )
}

fn returned(join: &Join) -> Vec<SelectItem> {
    let item = |column: &str, alias: &str| SelectItem::ExprWithAlias {
        expr: Expr::Identifier(Ident::with_quote('"', column)),
        alias: Ident::with_quote('"', alias),
    };
    vec![
        item(&join.key, "pgward_key"),
        item(&join.row_permission, "pgward_perm"),
    ]
}

/// The secured INSERT with the memberships of `join` added; `expected`
/// gains the relations pgward's part reads and writes.
pub fn join_groups(
    statement: Statement,
    shape: Option<ResultShape>,
    join: &Join,
    expected: &mut Vec<String>,
) -> Result<(Statement, Option<ResultShape>), PgError> {
    let Some((first, others)) = join.groups.split_first() else {
        return Ok((statement, shape));
    };
    let ctes: Vec<String> = others
        .iter()
        .enumerate()
        .map(|(i, g)| format!("\"pgward_g{}\" AS ({})", i + 2, membership_insert(join, g)))
        .collect();
    if let Some(ResultShape::Tagged(_)) = shape {
        let Statement::Query(mut q) = statement else {
            return Err(not_supported("this INSERT"));
        };
        let Some(with) = q.with.as_mut() else {
            return Err(not_supported("this INSERT"));
        };
        let Some(cte) = with
            .cte_tables
            .iter_mut()
            .find(|c| c.alias.name.value == WRITTEN)
        else {
            return Err(not_supported("this INSERT"));
        };
        let SetExpr::Insert(Statement::Insert(insert)) = cte.query.body.as_mut() else {
            return Err(not_supported("this INSERT"));
        };
        insert
            .returning
            .get_or_insert_with(Vec::new)
            .extend(returned(join));
        let all: Vec<String> = std::iter::once(format!(
            "\"pgward_g1\" AS ({})",
            membership_insert(join, first)
        ))
        .chain(
            others
                .iter()
                .enumerate()
                .map(|(i, g)| format!("\"pgward_g{}\" AS ({})", i + 2, membership_insert(join, g))),
        )
        .collect();
        let template = format!("WITH {} SELECT 1", all.join(", "));
        expect(&template, expected)?;
        let mut extra = parse_select(&template)?;
        super::literals::protect(&mut extra)?;
        if let Some(extra) = extra.with {
            with.cte_tables.extend(extra.cte_tables);
        }
        return Ok((Statement::Query(q), shape));
    }
    let (insert, client_with) = match statement {
        Statement::Insert(insert) => (insert, None),
        Statement::Query(q) => {
            let q = *q;
            match *q.body {
                SetExpr::Insert(Statement::Insert(insert)) => (insert, q.with),
                _ => return Err(not_supported("this INSERT")),
            }
        }
        _ => return Err(not_supported("this INSERT")),
    };
    let mut insert = insert;
    let mut items: Vec<SelectItem> = match insert.returning.take() {
        None => Vec::new(),
        Some(items) if shape == Some(ResultShape::Silent) => items
            .into_iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(expr) => SelectItem::ExprWithAlias {
                    expr,
                    alias: Ident::with_quote('"', "pgward_ok"),
                },
                other => other,
            })
            .collect(),
        Some(_) => return Err(not_supported("INSERT … RETURNING for this session")),
    };
    items.extend(returned(join));
    insert.returning = Some(items);
    let mut with = vec![format!("\"{WRITTEN}\" AS (SELECT 1)")];
    with.extend(ctes);
    let template = format!(
        "WITH {} {}",
        with.join(", "),
        membership_insert(join, first)
    );
    expect(&template, expected)?;
    let mut parsed = parse_statement(&template)?;
    super::literals::protect(&mut parsed)?;
    let Statement::Query(mut outer) = parsed else {
        return Err(not_supported("this INSERT"));
    };
    let Some(mut ours) = outer.with.take() else {
        return Err(not_supported("this INSERT"));
    };
    if let Some(cte) = ours.cte_tables.first_mut() {
        *cte.query.body = SetExpr::Insert(Statement::Insert(insert));
    }
    let with = match client_with {
        Some(mut client) => {
            client.cte_tables.extend(ours.cte_tables);
            client
        }
        None => ours,
    };
    outer.with = Some(with);
    // The last INSERT's tag counts one membership per new row: the
    // client's `INSERT 0 n`, so no reshaping.
    Ok((Statement::Query(outer), None))
}

fn parse_statement(sql: &str) -> Result<Statement, PgError> {
    let mut statements =
        sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql)
            .map_err(|e| {
                tracing::error!("pgward built SQL it cannot parse: {e}");
                PgError::error(
                    code::FEATURE_NOT_SUPPORTED,
                    "pgward could not secure this statement",
                )
            })?;
    match (statements.pop(), statements.is_empty()) {
        (Some(s), true) => Ok(s),
        _ => Err(PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            "pgward could not secure this statement",
        )),
    }
}

/// The relations pgward's own SQL names, for verification.
fn expect(sql: &str, expected: &mut Vec<String>) -> Result<(), PgError> {
    let parsed = pg_query::parse(sql).map_err(|e| {
        tracing::error!("pgward built SQL PostgreSQL cannot parse: {e}");
        PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            "pgward could not secure this statement",
        )
    })?;
    expected.extend(super::verify::relations(&parsed)?);
    Ok(())
}
