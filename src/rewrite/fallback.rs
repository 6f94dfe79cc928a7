//! Statements sqlparser 0.63 cannot read, decided by PostgreSQL's own
//! grammar (libpg_query, PostgreSQL 15). When sqlparser refuses a text with
//! a syntax error, libpg_query parses it, and each statement is decided by
//! the kind of node PostgreSQL reads:
//!
//! - `FetchStmt` (FETCH and MOVE; PostgreSQL lets `FROM`/`IN` be left out,
//!   sqlparser needs it and has no MOVE) passes through (PRODUCT.md §3
//!   "Statements"): pgward prints it again from PostgreSQL's tree, with the
//!   cursor name quoted, and the printed text must parse back into that
//!   very tree.
//! - Kinds pgward reads itself (SELECT, the writes, EXPLAIN, SET, …) keep
//!   sqlparser's syntax error: pgward cannot analyse them.
//! - Every other kind (DO, ALTER SYSTEM, …) is refused as a statement kind,
//!   as the rewriter refuses the kinds sqlparser reads.
//!
//! In a text of several statements, each is taken on its own at the
//! boundaries PostgreSQL's grammar gives it; those sqlparser reads go the
//! normal way, in order, with the search_path changes of the ones before.
//!
//! Must never: forward text pgward did not print, or let a statement that
//! would be rewritten pass without the rewriter.

use std::collections::BTreeSet;

use pg_query::NodeEnum;
use pg_query::protobuf::{FetchDirection, FetchStmt};
use sqlparser::ast::{FetchPosition, Ident, Statement, Value, ValueWithSpan};

use super::{Context, Secured};
use crate::error::{PgError, code};

/// PostgreSQL's `FETCH_ALL` (`LONG_MAX`): the count of `ALL`.
const FETCH_ALL: i64 = i64::MAX;

/// [`super::secure_text_session`] for a text sqlparser refused with
/// `error` (a syntax error).
pub(super) fn secure_unparsed(
    sql: &str,
    single: bool,
    ctx: &Context<'_>,
    client_path: &[String],
    error: PgError,
) -> Result<Secured, PgError> {
    let Ok(parsed) = pg_query::parse(sql) else {
        // PostgreSQL would not read it either.
        return Err(error);
    };
    let stmts = &parsed.protobuf.stmts;
    if single && stmts.len() > 1 {
        return Err(PgError::error(
            code::SYNTAX_ERROR,
            "cannot insert multiple commands into a prepared statement",
        ));
    }
    let mut printed: Vec<String> = Vec::with_capacity(stmts.len());
    let mut shows = Vec::new();
    let mut shapes = Vec::new();
    let mut search_path = None;
    // The path as written and expanded, once a statement changed it.
    let mut changed: Option<(Vec<String>, Vec<String>)> = None;
    for raw in stmts {
        let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
            return Err(error);
        };
        let text = statement_text(sql, raw.stmt_location, raw.stmt_len).ok_or_else(|| {
            tracing::warn!("libpg_query gave a statement boundary outside the text");
            error.clone()
        })?;
        let (client, expanded) = match &changed {
            Some((client, expanded)) => (client.as_slice(), expanded.as_slice()),
            None => (client_path, ctx.search_path),
        };
        let ctx = &Context {
            search_path: expanded,
            ..*ctx
        };
        match node {
            NodeEnum::FetchStmt(fetch) => printed.push(print_fetch(fetch, ctx, client)?),
            node if read_by_pgward(node) => {
                if stmts.len() == 1 {
                    // sqlparser could not read this very statement.
                    return Err(error);
                }
                // One statement: if sqlparser cannot read it alone either,
                // this call ends with its syntax error.
                let secured = super::secure_text_session(text, false, ctx, client)?;
                shows.extend(secured.shows.iter().map(|s| s + printed.len()));
                // A checked write keeps its result shape at its position.
                shapes.extend(secured.shapes.iter().map(|(i, s)| (i + printed.len(), *s)));
                if let Some(change) = secured.search_path {
                    let client = change
                        .clone()
                        .unwrap_or_else(super::set::default_search_path);
                    let expanded = super::set::expand_search_path(&client, ctx.access.login());
                    changed = Some((client, expanded));
                    search_path = Some(change);
                }
                printed.push(secured.sql);
            }
            _ => return Err(super::refused(&kind_name(text))),
        }
    }
    let joined = printed.join(";\n");
    // Each statement was verified above; together they must still split
    // where PostgreSQL split the client's text.
    let count = pg_query::parse(&joined)
        .map(|p| p.protobuf.stmts.len())
        .unwrap_or(0);
    if count != stmts.len() {
        tracing::warn!(
            "verification refused printed SQL: {count} statements instead of {}",
            stmts.len()
        );
        return Err(PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            "pgward could not verify this statement",
        ));
    }
    Ok(Secured {
        sql: joined,
        search_path,
        shows,
        shapes,
    })
}

/// The client's text of one statement: libpg_query's byte offset and length
/// (0: up to the end of the text).
fn statement_text(sql: &str, location: i32, len: i32) -> Option<&str> {
    let start = usize::try_from(location).ok()?;
    if len == 0 {
        return sql.get(start..);
    }
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    sql.get(start..end)
}

/// The statement kinds pgward parses, secures or passes through itself
/// (`super::rewrite_as`): one of them that sqlparser cannot read is a
/// statement pgward cannot analyse.
fn read_by_pgward(node: &NodeEnum) -> bool {
    matches!(
        node,
        NodeEnum::SelectStmt(_)
            | NodeEnum::InsertStmt(_)
            | NodeEnum::UpdateStmt(_)
            | NodeEnum::DeleteStmt(_)
            | NodeEnum::MergeStmt(_)
            | NodeEnum::ExplainStmt(_)
            | NodeEnum::PrepareStmt(_)
            | NodeEnum::DeclareCursorStmt(_)
            | NodeEnum::CopyStmt(_)
            | NodeEnum::VariableSetStmt(_)
            | NodeEnum::VariableShowStmt(_)
            | NodeEnum::TransactionStmt(_)
            | NodeEnum::ClosePortalStmt(_)
            | NodeEnum::DeallocateStmt(_)
            | NodeEnum::ExecuteStmt(_)
            | NodeEnum::DiscardStmt(_)
            | NodeEnum::UnlistenStmt(_)
    )
}

/// A statement kind for the refusal: its leading keyword (two for CREATE,
/// DROP and ALTER), as `super::statement_kind` names the kinds sqlparser
/// reads.
fn kind_name(text: &str) -> String {
    use pg_query::protobuf::{KeywordKind, Token};
    let Ok(scanned) = pg_query::scan(text) else {
        return "this statement".to_string();
    };
    let words: Vec<String> = scanned
        .tokens
        .iter()
        .filter(|t| {
            !matches!(
                Token::from_i32(t.token),
                Some(Token::SqlComment | Token::CComment)
            )
        })
        .take(2)
        .map_while(|t| {
            let keyword = !matches!(
                KeywordKind::from_i32(t.keyword_kind),
                None | Some(KeywordKind::NoKeyword)
            );
            let start = usize::try_from(t.start).ok()?;
            let end = usize::try_from(t.end).ok()?;
            keyword
                .then(|| text.get(start..end))
                .flatten()
                .map(str::to_ascii_uppercase)
        })
        .collect();
    match words.as_slice() {
        [first, second] if matches!(first.as_str(), "CREATE" | "DROP" | "ALTER") => {
            format!("{first} {second}")
        }
        [first, ..] => first.clone(),
        [] => "this statement".to_string(),
    }
}

/// FETCH or MOVE printed from PostgreSQL's tree: `FETCH|MOVE <direction>
/// FROM "<cursor>"`, through the rewriter as sqlparser's `Statement::Fetch`
/// (passed through), verified, and parsed back into the same tree.
fn print_fetch(fetch: &FetchStmt, ctx: &Context<'_>, client: &[String]) -> Result<String, PgError> {
    let unsupported = || {
        PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            "pgward could not verify this statement",
        )
    };
    let count = |n: i64| ValueWithSpan::from(Value::Number(n.to_string(), false));
    let all = fetch.how_many == FETCH_ALL;
    use sqlparser::ast::FetchDirection as D;
    let direction = match FetchDirection::from_i32(fetch.direction) {
        Some(FetchDirection::FetchForward) if all => D::ForwardAll,
        Some(FetchDirection::FetchForward) => D::Forward {
            limit: Some(count(fetch.how_many)),
        },
        Some(FetchDirection::FetchBackward) if all => D::BackwardAll,
        Some(FetchDirection::FetchBackward) => D::Backward {
            limit: Some(count(fetch.how_many)),
        },
        Some(FetchDirection::FetchAbsolute) => D::Absolute {
            limit: count(fetch.how_many),
        },
        Some(FetchDirection::FetchRelative) => D::Relative {
            limit: count(fetch.how_many),
        },
        _ => return Err(unsupported()),
    };
    let statement = Statement::Fetch {
        name: Ident::with_quote('"', fetch.portalname.clone()),
        direction,
        position: FetchPosition::From,
        into: None,
    };
    let rewritten = super::rewrite_as(statement, ctx, client, &BTreeSet::new())?;
    let Statement::Fetch { direction, .. } = &rewritten.statement else {
        return Err(unsupported());
    };
    // The name quoted here, not by sqlparser, whose printer leaves `""` and
    // `\"` inside a quoted name as they are.
    let text = format!(
        "{} {direction} FROM \"{}\"",
        if fetch.ismove { "MOVE" } else { "FETCH" },
        fetch.portalname.replace('"', "\"\"")
    );
    super::verify::verify_statement(&text, &rewritten.statement, &rewritten.expected, ctx)?;
    let same = pg_query::parse(&text).ok().is_some_and(|p| {
        matches!(
            p.protobuf.stmts.as_slice(),
            [raw] if matches!(
                raw.stmt.as_ref().and_then(|n| n.node.as_ref()),
                Some(NodeEnum::FetchStmt(printed)) if printed == fetch
            )
        )
    });
    if !same {
        tracing::warn!("verification refused a printed FETCH/MOVE: {text}");
        return Err(unsupported());
    }
    Ok(text)
}
