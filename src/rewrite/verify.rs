//! Verification of printed SQL with PostgreSQL's own grammar (libpg_query,
//! PostgreSQL 15): the statement count, each statement's kind, and the
//! multiset of relation references PostgreSQL reads must equal what pgward
//! secured. A printer quirk, a misparse (`FROM ONLY secret`) or a smuggled
//! relation shows up here as a mismatch and the statement is refused.
//!
//! Relation references are collected from the whole parse tree: the derived
//! `Debug` form of libpg_query's protobuf tree prints every node, so every
//! `RangeVar` appears in it whatever node holds it (pg_query's own node
//! iterator skips some node types). String contents in that form are
//! escaped, so SQL text cannot forge a `RangeVar`.

use sqlparser::ast::Statement;

use crate::error::{PgError, code};

/// Checks one printed statement against the kind and relation references
/// pgward secured.
pub fn verify_statement(
    printed: &str,
    statement: &Statement,
    expected: &[String],
) -> Result<(), PgError> {
    no_comments(printed)?;
    let parsed = pg_query::parse(printed).map_err(|e| mismatch(&e.to_string()))?;
    let stmts = &parsed.protobuf.stmts;
    if stmts.len() != 1 {
        return Err(mismatch(&format!(
            "{} statements instead of 1",
            stmts.len()
        )));
    }
    let node = stmts[0]
        .stmt
        .as_ref()
        .and_then(|n| n.node.as_ref())
        .ok_or_else(|| mismatch("empty statement"))?;
    let found_kind = node_kind(node);
    if found_kind != expected_kind(statement) {
        return Err(mismatch(&format!(
            "PostgreSQL reads a {found_kind}, pgward secured a {}",
            expected_kind(statement)
        )));
    }
    let mut found = relations(&parsed)?;
    let mut wanted: Vec<String> = expected.to_vec();
    found.sort();
    wanted.sort();
    if found != wanted {
        return Err(mismatch(&format!(
            "relations read by PostgreSQL {found:?}, secured by pgward {wanted:?}"
        )));
    }
    Ok(())
}

/// pgward never prints a comment. If PostgreSQL's own scanner finds one in
/// the printed SQL, a printer quirk turned SQL or string text into a
/// comment (THREATS.md: `- -1` printed as `--1`): whatever PostgreSQL reads
/// then is not what pgward secured.
fn no_comments(printed: &str) -> Result<(), PgError> {
    use pg_query::protobuf::Token;
    // Every PostgreSQL comment starts with `--` or `/*`; a text holding
    // neither cannot hold one, and the scanner is not needed.
    if !printed.contains("--") && !printed.contains("/*") {
        return Ok(());
    }
    let scanned = pg_query::scan(printed).map_err(|e| mismatch(&e.to_string()))?;
    let comment = scanned.tokens.iter().any(|t| {
        matches!(
            Token::from_i32(t.token),
            Some(Token::SqlComment) | Some(Token::CComment)
        )
    });
    if comment {
        return Err(mismatch("the printed statement holds a comment"));
    }
    Ok(())
}

fn mismatch(why: &str) -> PgError {
    tracing::warn!("verification refused a statement: {why}");
    PgError::error(
        code::FEATURE_NOT_SUPPORTED,
        "pgward could not verify this statement",
    )
    .with_hint("pgward forwards only SQL that PostgreSQL's grammar reads as pgward secured it")
}

fn node_kind(node: &pg_query::NodeEnum) -> &'static str {
    use pg_query::NodeEnum as N;
    match node {
        N::SelectStmt(_) => "SelectStmt",
        N::ExplainStmt(_) => "ExplainStmt",
        N::PrepareStmt(_) => "PrepareStmt",
        N::DeclareCursorStmt(_) => "DeclareCursorStmt",
        N::CopyStmt(_) => "CopyStmt",
        N::VariableSetStmt(_) => "VariableSetStmt",
        N::VariableShowStmt(_) => "VariableShowStmt",
        N::TransactionStmt(_) => "TransactionStmt",
        N::FetchStmt(_) => "FetchStmt",
        N::ClosePortalStmt(_) => "ClosePortalStmt",
        N::DeallocateStmt(_) => "DeallocateStmt",
        N::ExecuteStmt(_) => "ExecuteStmt",
        N::DiscardStmt(_) => "DiscardStmt",
        N::UnlistenStmt(_) => "UnlistenStmt",
        _ => "other statement",
    }
}

fn expected_kind(statement: &Statement) -> &'static str {
    use Statement as S;
    match statement {
        S::Query(_) => "SelectStmt",
        S::Explain { .. } => "ExplainStmt",
        S::Prepare { .. } => "PrepareStmt",
        S::Declare { .. } => "DeclareCursorStmt",
        S::Copy { .. } => "CopyStmt",
        S::Set(_) | S::Reset(_) => "VariableSetStmt",
        S::ShowVariable { .. } | S::ShowVariables { .. } => "VariableShowStmt",
        S::StartTransaction { .. }
        | S::Commit { .. }
        | S::Rollback { .. }
        | S::Savepoint { .. }
        | S::ReleaseSavepoint { .. } => "TransactionStmt",
        S::Fetch { .. } => "FetchStmt",
        S::Close { .. } => "ClosePortalStmt",
        S::Deallocate { .. } => "DeallocateStmt",
        S::Execute { .. } => "ExecuteStmt",
        S::Discard { .. } => "DiscardStmt",
        S::UNLISTEN { .. } => "UnlistenStmt",
        _ => "statement pgward does not forward",
    }
}

/// Every relation reference in a parse result, as `schema.name` or `name`,
/// prefixed with `ONLY ` when PostgreSQL reads it without its children.
pub fn relations(parsed: &pg_query::ParseResult) -> Result<Vec<String>, PgError> {
    range_vars(&format!("{:?}", parsed.protobuf))
}

const MARKER: &str = "RangeVar { catalogname: ";

/// Every RangeVar in a tree's Debug form, as `[ONLY ]schema.name` or
/// `[ONLY ]name`.
fn range_vars(dump: &str) -> Result<Vec<String>, PgError> {
    let mut out = Vec::new();
    let mut rest = dump;
    while let Some(at) = rest.find(MARKER) {
        rest = &rest[at + MARKER.len()..];
        if !rest.starts_with('"') {
            // Inside an escaped string literal: SQL text, not a node.
            continue;
        }
        let (catalog, after) = debug_string(rest)?;
        let after = after
            .strip_prefix(", schemaname: ")
            .ok_or_else(|| mismatch("unexpected RangeVar layout"))?;
        let (schema, after) = debug_string(after)?;
        let after = after
            .strip_prefix(", relname: ")
            .ok_or_else(|| mismatch("unexpected RangeVar layout"))?;
        let (name, after) = debug_string(after)?;
        let (inh, after) = if let Some(a) = after.strip_prefix(", inh: true") {
            (true, a)
        } else if let Some(a) = after.strip_prefix(", inh: false") {
            (false, a)
        } else {
            return Err(mismatch("unexpected RangeVar layout"));
        };
        if !catalog.is_empty() {
            return Err(mismatch("cross-database reference"));
        }
        let qualified = if schema.is_empty() {
            name
        } else {
            format!("{schema}.{name}")
        };
        // `ONLY t` (no child tables) is another reading of a relation than
        // `t`: pgward must have secured it as such.
        out.push(if inh {
            qualified
        } else {
            format!("ONLY {qualified}")
        });
        rest = after;
    }
    Ok(out)
}

/// Reads one Debug-formatted string literal at the start of `s`.
fn debug_string(s: &str) -> Result<(String, &str), PgError> {
    let bad = || mismatch("unreadable name in the parse tree");
    let mut chars = s.char_indices();
    if chars.next().map(|(_, c)| c) != Some('"') {
        return Err(bad());
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('\'') => out.push('\''),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                _ => return Err(bad()),
            },
            c => out.push(c),
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn stmt(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn relations_anywhere_are_found() {
        let sql = "SELECT (SELECT max(x) FROM public.a), f((SELECT 1 FROM b)) FROM c \
                   WHERE EXISTS (SELECT 1 FROM s.d) ORDER BY (SELECT 1 FROM e LIMIT 1)";
        let dump = format!("{:?}", pg_query::parse(sql).unwrap().protobuf);
        let mut found = range_vars(&dump).unwrap();
        found.sort();
        assert_eq!(found, ["b", "c", "e", "public.a", "s.d"]);
    }

    #[test]
    fn string_literals_cannot_forge_relations() {
        let sql = r#"SELECT 'RangeVar { catalogname: "", schemaname: "", relname: "x"' FROM t"#;
        let dump = format!("{:?}", pg_query::parse(sql).unwrap().protobuf);
        assert_eq!(range_vars(&dump).unwrap(), ["t"]);
    }

    #[test]
    fn smuggled_relation_is_refused() {
        let s = stmt("SELECT 1 FROM allowed");
        let printed = "SELECT --1, '\n * FROM secret --' FROM allowed";
        assert!(verify_statement(printed, &s, &["allowed".into()]).is_err());
        assert!(verify_statement("SELECT 1 FROM allowed", &s, &["allowed".into()]).is_ok());
    }

    #[test]
    fn comments_in_printed_sql_are_refused() {
        // The differential that keeps the relation multiset: the smuggled
        // text names the same relation the secured subquery does.
        let s = stmt("SELECT 1 FROM public.orders");
        let printed = "SELECT --1, '\n query_to_xml('select ssn from employees', true, false, ''), 1 \
                       FROM \"public\".\"orders\" --' FROM (SELECT 1 FROM x) AS o";
        assert!(verify_statement(printed, &s, &["public.orders".into()]).is_err());
        assert!(
            verify_statement(
                "SELECT 1 /* c */ FROM public.orders",
                &s,
                &["public.orders".into()]
            )
            .is_err()
        );
        assert!(
            verify_statement(
                "SELECT '--', '/*' FROM public.orders",
                &s,
                &["public.orders".into()]
            )
            .is_ok()
        );
    }

    #[test]
    fn only_is_part_of_the_reference() {
        let dump = format!(
            "{:?}",
            pg_query::parse("SELECT 1 FROM ONLY s.t, ONLY (u), v")
                .unwrap()
                .protobuf
        );
        let mut found = range_vars(&dump).unwrap();
        found.sort();
        assert_eq!(found, ["ONLY s.t", "ONLY u", "v"]);
        let s = stmt("SELECT 1 FROM t");
        assert!(verify_statement("SELECT 1 FROM ONLY t", &s, &["t".into()]).is_err());
        assert!(verify_statement("SELECT 1 FROM t", &s, &["ONLY t".into()]).is_err());
        assert!(verify_statement("SELECT 1 FROM ONLY t", &s, &["ONLY t".into()]).is_ok());
    }

    #[test]
    fn kind_must_match() {
        let s = stmt("SELECT 1");
        assert!(verify_statement("DELETE FROM t", &s, &["t".into()]).is_err());
    }

    #[test]
    fn quoted_names_decode() {
        let (s, rest) = debug_string(r#""a\"b\\c", x"#).unwrap();
        assert_eq!(s, "a\"b\\c");
        assert_eq!(rest, ", x");
        assert!(debug_string(r#""\u{1}""#).is_err());
    }
}
