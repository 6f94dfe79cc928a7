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
//! membership CTEs. ON CONFLICT DO UPDATE also returns updated rows: the
//! memberships are written for rows with `xmax = 0` only, and the
//! statement counts every written row (`ResultShape::Counted` without the
//! client's RETURNING). An INSERT inside a data-modifying WITH returns
//! the same columns to its private WITH query `"pgward_x"`, read by
//! membership inserts appended to the statement's WITH. Must never: add
//! a value the client did not write to a column it listed, or join
//! groups for rows it did not insert.

use std::collections::BTreeSet;

use sqlparser::ast::{
    Cte, Expr, Ident, ObjectName, ObjectNamePart, OnConflictAction, OnInsert, Query, SelectItem,
    SetExpr, Statement, TableFactor,
};

use super::access::{InsertDefaults, Join};
use super::secure::{fold, parse_select, quote_ident};
use super::{ResultShape, WriteTag, scope};
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
            // A set operation (or a parenthesised query): its rows, with
            // the defaults after its columns.
            _ => {
                let values: Vec<String> = extra.iter().map(|(_, v)| v.to_string()).collect();
                let mut wrapper = parse_select(&format!(
                    "SELECT \"pgward_s\".*, {} FROM (SELECT 1) AS \"pgward_s\"",
                    values.join(", ")
                ))?;
                super::literals::protect(&mut wrapper)?;
                let SetExpr::Select(select) = wrapper.body.as_mut() else {
                    return Err(not_supported("INSERT from a set operation"));
                };
                let Some(TableFactor::Derived { subquery, .. }) =
                    select.from.first_mut().map(|f| &mut f.relation)
                else {
                    return Err(not_supported("INSERT from a set operation"));
                };
                std::mem::swap(subquery.as_mut(), q);
                *q = wrapper;
            }
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

/// `INSERT INTO membership (…) SELECT … FROM written` for one group;
/// with `only_new`, for the rows the INSERT inserted (not those ON
/// CONFLICT DO UPDATE updated).
fn membership_insert(join: &Join, group: &str, written: &str, only_new: bool) -> String {
    let mut columns = vec![quote_ident(&join.row_key), quote_ident(&join.group)];
    let mut values = vec!["\"pgward_key\"".to_string(), literal(group)];
    if let Some(p) = &join.permission {
        columns.push(quote_ident(p));
        values.push("\"pgward_perm\"".to_string());
    }
    format!(
        "INSERT INTO {}.{} ({}) SELECT {} FROM {}{}",
        quote_ident(&join.schema),
        quote_ident(&join.table),
        columns.join(", "),
        values.join(", "),
        quote_ident(written),
        if only_new {
            " WHERE \"pgward_new\""
        } else {
            ""
        }
    )
}

/// What the INSERT returns for the memberships: the key and permission,
/// and with `only_new` whether the row was inserted (`xmax = 0` in
/// PostgreSQL 15; a row ON CONFLICT DO UPDATE updated has the xmax of
/// the statement's lock).
fn returned(join: &Join, only_new: bool) -> Result<Vec<SelectItem>, PgError> {
    let item = |column: &str, alias: &str| SelectItem::ExprWithAlias {
        expr: Expr::Identifier(Ident::with_quote('"', column)),
        alias: Ident::with_quote('"', alias),
    };
    let mut items = vec![
        item(&join.key, "pgward_key"),
        item(&join.row_permission, "pgward_perm"),
    ];
    if only_new {
        items.push(SelectItem::ExprWithAlias {
            expr: super::secure::parse_expr("\"xmax\" = 0")?,
            alias: Ident::with_quote('"', "pgward_new"),
        });
    }
    Ok(items)
}

/// Whether the INSERT may update rows (ON CONFLICT DO UPDATE).
fn updates(insert: &sqlparser::ast::Insert) -> bool {
    matches!(
        &insert.on,
        Some(OnInsert::OnConflict(c)) if matches!(c.action, OnConflictAction::DoUpdate(_))
    )
}

/// An INSERT inside a data-modifying WITH (its private name `written`):
/// its RETURNING gains the membership columns, and the returned WITH
/// queries, to append to the statement's WITH, join its new rows to the
/// default groups. `names` are taken by nothing else in the WITH.
pub fn join_groups_in_with(
    statement: &mut Statement,
    join: &Join,
    written: &str,
    expected: &mut Vec<String>,
) -> Result<Vec<Cte>, PgError> {
    let Statement::Insert(insert) = statement else {
        return Err(not_supported("this INSERT"));
    };
    let only_new = updates(insert);
    insert
        .returning
        .get_or_insert_with(Vec::new)
        .extend(returned(join, only_new)?);
    let ctes: Vec<String> = join
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            format!(
                "{} AS ({})",
                quote_ident(&format!("{written}_g{}", i + 1)),
                membership_insert(join, g, written, only_new)
            )
        })
        .collect();
    if ctes.is_empty() {
        return Ok(Vec::new());
    }
    let template = format!("WITH {} SELECT 1", ctes.join(", "));
    expect(&template, expected)?;
    let mut parsed = parse_select(&template)?;
    super::literals::protect(&mut parsed)?;
    Ok(parsed.with.map(|w| w.cte_tables).unwrap_or_default())
}

/// The secured INSERT with the memberships of `join` added; `expected`
/// gains the relations pgward's part reads and writes.
///
/// ON CONFLICT DO NOTHING returns (and counts) only inserted rows, so it
/// takes the same forms. ON CONFLICT DO UPDATE returns and counts the
/// updated rows too: the memberships are written for `"pgward_new"` rows
/// only, and without the client's RETURNING the statement becomes
/// `… SELECT 1 FROM "pgward_w"` (`ResultShape::Counted`), whose row count
/// is the client's `INSERT 0 n`.
pub fn join_groups(
    statement: Statement,
    shape: Option<ResultShape>,
    join: &Join,
    expected: &mut Vec<String>,
) -> Result<(Statement, Option<ResultShape>), PgError> {
    if join.groups.is_empty() {
        return Ok((statement, shape));
    }
    let all = |only_new: bool| -> Vec<String> {
        join.groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                format!(
                    "\"pgward_g{}\" AS ({})",
                    i + 1,
                    membership_insert(join, g, WRITTEN, only_new)
                )
            })
            .collect()
    };
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
        let only_new = updates(insert);
        insert
            .returning
            .get_or_insert_with(Vec::new)
            .extend(returned(join, only_new)?);
        let template = format!("WITH {} SELECT 1", all(only_new).join(", "));
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
    let only_new = updates(&insert);
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
    items.extend(returned(join, only_new)?);
    insert.returning = Some(items);
    let mut with = vec![format!("\"{WRITTEN}\" AS (SELECT 1)")];
    let template = if only_new {
        // Every written row is counted; the client sees no rows.
        with.extend(all(true));
        format!("WITH {} SELECT 1 FROM \"{WRITTEN}\"", with.join(", "))
    } else {
        // The last INSERT writes one membership per new row: its tag is
        // the client's `INSERT 0 n`.
        with.extend(all(false).into_iter().skip(1));
        format!(
            "WITH {} {}",
            with.join(", "),
            membership_insert(join, &join.groups[0], WRITTEN, false)
        )
    };
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
    let shape = only_new.then_some(ResultShape::Counted(WriteTag::Insert));
    Ok((Statement::Query(outer), shape))
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
