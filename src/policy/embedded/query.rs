//! What can be known about a global's query before it ever runs: that it
//! only reads, and the names of the columns it returns.
//!
//! Never guesses: a column whose name PostgreSQL would pick by rules not
//! modelled here is reported as unknown, so that a check built on these
//! names never refuses a query PostgreSQL would accept.

use std::ops::ControlFlow;
use std::path::Path;

use sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr, Spanned, Statement, Visit, Visitor};

use crate::policy::error::{Location, PolicyError, PolicyErrorKind};

/// Refuses a query that writes (`INSERT`/`UPDATE`/`DELETE`/`MERGE`, also in
/// a `WITH`) or creates a table (`SELECT … INTO`). A global runs on the
/// service connection at every login; it must not change data.
pub fn check_read_only(
    file: &Path,
    query: &Query,
    start: &Location,
    what: &str,
) -> Result<(), PolicyError> {
    struct Writes;
    impl Visitor for Writes {
        type Break = Option<sqlparser::tokenizer::Location>;
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Self::Break> {
            match query.body.as_select() {
                Some(select) if select.into.is_some() => ControlFlow::Break(None),
                _ => ControlFlow::Continue(()),
            }
        }
        fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<Self::Break> {
            // Inside a query, every statement is a data-modifying one.
            ControlFlow::Break(Some(statement.span().start))
        }
    }
    let ControlFlow::Break(at) = query.visit(&mut Writes) else {
        return Ok(());
    };
    let location = match at {
        Some(at) if at.line > 0 => Location::from_sql(file, at),
        _ => start.clone(),
    };
    Err(PolicyError::at(
        location,
        PolicyErrorKind::Syntax,
        format!("{what} must only read: use SELECT, without INSERT, UPDATE, DELETE, MERGE or INTO"),
    ))
}

/// The columns a query returns, by name as PostgreSQL would name them; a
/// name is None where it cannot be told here. None in all: the column count
/// itself is unknown (`*`, `TABLE t`).
pub fn output_columns(query: &Query) -> Option<Vec<Option<String>>> {
    set_columns(&query.body)
}

fn set_columns(body: &SetExpr) -> Option<Vec<Option<String>>> {
    match body {
        SetExpr::Select(select) => select.projection.iter().map(item_column).collect(),
        SetExpr::Query(query) => output_columns(query),
        // A set operation's columns are named by its first branch.
        SetExpr::SetOperation { left, .. } => set_columns(left),
        SetExpr::Values(values) => {
            let width = values.rows.first()?.len();
            Some((1..=width).map(|i| Some(format!("column{i}"))).collect())
        }
        _ => None,
    }
}

/// One select-list item: Some(name or None) for a single column, None for a
/// wildcard, whose width is unknown.
fn item_column(item: &SelectItem) -> Option<Option<String>> {
    match item {
        SelectItem::UnnamedExpr(expr) => Some(expr_column(expr)),
        SelectItem::ExprWithAlias { alias, .. } => Some(Some(fold(alias))),
        _ => None,
    }
}

/// PostgreSQL's FigureColname for the cases that matter to `@{g.attr}`: a
/// column reference is named by its last part, a cast by what it casts, a
/// function call by the function.
fn expr_column(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(fold(ident)),
        Expr::CompoundIdentifier(parts) => parts.last().map(fold),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => expr_column(expr),
        Expr::Function(function) => function
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(fold),
        _ => None,
    }
}

fn fold(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}
