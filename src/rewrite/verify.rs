//! Verification of printed SQL with PostgreSQL's own grammar (libpg_query,
//! PostgreSQL 15): the statement count, each statement's kind, and the
//! multiset of relation references PostgreSQL reads must equal what pgward
//! secured. A printer quirk, a misparse (`FROM ONLY secret`) or a smuggled
//! relation shows up here as a mismatch and the statement is refused.
//!
//! The function and column rules run again on PostgreSQL's tree, for the
//! payloads that add no relation (`query_to_xml('…')`, `ts_rewrite(q,
//! 'SELECT …')`, THREATS.md "verification blind spots"):
//!
//! - every function PostgreSQL will call (`FuncCall`, in expressions and in
//!   FROM) must be allowed for the session by the rewriter's own rule
//!   (`functions::decide`). Calls of names pgward decides by their arguments
//!   or answers itself (`set_config`, `current_setting`, `current_schema(s)`,
//!   the privilege functions, `current_user()`/`session_user()`), and calls
//!   the rule does not allow, must each be matched by a call of the same
//!   name in pgward's own tree of the printed statement: there the rewriter
//!   checked its arguments or answered it, or pgward put it there itself (a
//!   policy expression, which is trusted DBA SQL; `margin(o)`, the
//!   functional notation of a visible column). A call PostgreSQL reads that
//!   pgward's tree does not hold is refused. The `pg_catalog` calls
//!   PostgreSQL's grammar writes for SQL syntax (`SIMILAR TO`, `EXTRACT` …)
//!   pass even when the catalog at hand lacks them (see `grammar_call`).
//! - every `ColumnRef` whose last name is a column hidden from the session
//!   on a relation pgward secured must be matched by a column reference of
//!   that name in pgward's tree (where the rewriter resolved it: an output
//!   alias, a derived column, or a name inside a policy expression). The
//!   secured subqueries list only visible columns, so PostgreSQL itself
//!   cannot resolve a hidden name outside them; this check catches a name a
//!   printer differential would add. It matches by name and count, not by
//!   position, and does not see field selection (`(o).margin`), which
//!   PostgreSQL reads as indirection, not as a `ColumnRef`.
//!
//! Nodes are read from the whole parse tree: the derived `Debug` form of
//! libpg_query's protobuf tree prints every node, whatever node holds it
//! (pg_query's own node iterator skips some node types). The form is
//! built once per statement. Markers are searched outside its string
//! literals (which are escaped), so SQL text cannot forge a node, and a
//! marker outside them whose layout is not the expected one is refused.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Ident, ObjectName, ObjectNamePart, Statement, TableFactor, Visit};

use super::Context;
use super::access::Command;
use super::functions::{self, Decision};
use super::secure::fold;
use crate::error::{PgError, code};

/// Checks one printed statement against the kind and relation references
/// pgward secured, and runs the function and column rules of the session
/// (`ctx`, as the statement was rewritten with) again on PostgreSQL's tree.
pub fn verify_statement(
    printed: &str,
    statement: &Statement,
    expected: &[String],
    ctx: &Context<'_>,
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
    let dump = format!("{:?}", parsed.protobuf);
    let mut found = range_vars(&dump)?;
    let mut wanted: Vec<String> = expected.to_vec();
    found.sort();
    wanted.sort();
    if found != wanted {
        return Err(mismatch(&format!(
            "relations read by PostgreSQL {found:?}, secured by pgward {wanted:?}"
        )));
    }
    // pgward's own reading of the printed statement, built when needed.
    let mut view = None;
    check_functions(&dump, statement, ctx, &mut view)?;
    check_columns(&dump, statement, &wanted, ctx, &mut view)
}

/// Every call PostgreSQL reads passes the function rule, or is one pgward's
/// tree holds (see the module comment).
fn check_functions(
    dump: &str,
    statement: &Statement,
    ctx: &Context<'_>,
    view: &mut Option<View>,
) -> Result<(), PgError> {
    let mut unmatched: HashMap<Vec<String>, usize> = HashMap::new();
    for after in after_markers(dump, FUNC_CALL)? {
        let (parts, _) = name_list(after)?;
        let parts = parts
            .into_iter()
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| mismatch("a function name with *"))?;
        if !rule_allows(ctx, &parts) {
            *unmatched.entry(parts).or_default() += 1;
        }
    }
    if unmatched.is_empty() {
        return Ok(());
    }
    let view = view.get_or_insert_with(|| View::of(statement));
    for (parts, count) in unmatched {
        let held = view.calls.get(&parts).copied().unwrap_or(0);
        if held < count {
            return Err(mismatch(&format!(
                "PostgreSQL reads {count} call(s) of {parts:?} that the function rules do not \
                 allow, pgward's tree holds {held}"
            )));
        }
    }
    Ok(())
}

/// Names pgward decides by their arguments or answers for the login
/// (`functions::answer_calls`, `set_config_allowed`, the identity rewrite):
/// the name alone does not allow a call of them.
fn decided_by_arguments(name: &str) -> bool {
    matches!(
        name,
        "set_config"
            | "current_setting"
            | "current_schema"
            | "current_schemas"
            | "current_user"
            | "session_user"
            | "pg_has_role"
    ) || (name.starts_with("has_") && name.ends_with("_privilege"))
}

/// Whether the rewriter's rule allows a call of that name (as PostgreSQL
/// reads it: parts already case-folded) whatever its arguments.
fn rule_allows(ctx: &Context<'_>, parts: &[String]) -> bool {
    if parts.last().is_none_or(|n| decided_by_arguments(n)) {
        return false;
    }
    let name = ObjectName(
        parts
            .iter()
            .map(|p| ObjectNamePart::Identifier(Ident::with_quote('"', p.clone())))
            .collect(),
    );
    match functions::decide(ctx.catalog, ctx.search_path, ctx.access, &name) {
        Decision::Allow => true,
        // A call PostgreSQL's grammar writes for SQL syntax, which sqlparser
        // reads as syntax (no call), unknown to the catalog at hand.
        Decision::Refuse(e) => e.code == "42883" && grammar_call(parts),
        Decision::Null(_) => false,
    }
}

/// The `pg_catalog` calls PostgreSQL's grammar writes for SQL syntax
/// (`SystemFuncName` in gram.y: `AT TIME ZONE`, `LIKE … ESCAPE`, `SIMILAR
/// TO`, `OVERLAPS`, `IS NORMALIZED`, `COLLATION FOR`, `EXTRACT`, `NORMALIZE`,
/// `OVERLAY`, `POSITION`, `SUBSTRING`, `TRIM`, `XMLEXISTS`, `SYSTEM_USER`),
/// none of them in a category the function rules refuse. `TREAT(x AS t)`,
/// which calls a function named after the type, is not among them.
fn grammar_call(parts: &[String]) -> bool {
    matches!(
        parts,
        [schema, name] if schema == "pg_catalog" && matches!(
            name.as_str(),
            "timezone"
                | "like_escape"
                | "similar_to_escape"
                | "overlaps"
                | "is_normalized"
                | "pg_collation_for"
                | "extract"
                | "normalize"
                | "overlay"
                | "position"
                | "substring"
                | "btrim"
                | "ltrim"
                | "rtrim"
                | "xmlexists"
                | "system_user"
        )
    )
}

/// Every column reference PostgreSQL reads by the name of a column hidden
/// from the session on a relation pgward secured is one pgward's tree
/// holds too (see the module comment).
fn check_columns(
    dump: &str,
    statement: &Statement,
    expected: &[String],
    ctx: &Context<'_>,
    view: &mut Option<View>,
) -> Result<(), PgError> {
    let hidden = hidden_columns(expected, ctx);
    if hidden.is_empty() {
        return Ok(());
    }
    let mut named: HashMap<String, usize> = HashMap::new();
    for after in after_markers(dump, COLUMN_REF)? {
        let (fields, _) = name_list(after)?;
        if let Some(Some(last)) = fields.last()
            && hidden.contains(last)
        {
            *named.entry(last.clone()).or_default() += 1;
        }
    }
    if named.is_empty() {
        return Ok(());
    }
    let view = view.get_or_insert_with(|| View::of(statement));
    for (column, count) in named {
        let held = view.columns.get(&column).copied().unwrap_or(0);
        if held < count {
            return Err(mismatch(&format!(
                "PostgreSQL reads {count} reference(s) to the hidden column {column:?}, \
                 pgward's tree holds {held}"
            )));
        }
    }
    Ok(())
}

/// The columns hidden from the session on the relations pgward secured
/// (references as `[ONLY ]schema.name`; CTE names have no schema).
fn hidden_columns(expected: &[String], ctx: &Context<'_>) -> BTreeSet<String> {
    let mut hidden = BTreeSet::new();
    let references: BTreeSet<&str> = expected
        .iter()
        .map(|r| r.strip_prefix("ONLY ").unwrap_or(r))
        .collect();
    for reference in references {
        // A name may hold dots: try each split, keep the one that names
        // this very relation.
        let relation = reference.match_indices('.').find_map(|(i, _)| {
            let (schema, name) = (&reference[..i], &reference[i + 1..]);
            ctx.catalog
                .resolve_relation(Some(schema), name, &[])
                .filter(|r| r.schema == schema && r.name == name)
        });
        let Some(relation) = relation else {
            continue;
        };
        if super::catalog_rules::rule(relation).is_some() {
            continue;
        }
        if let Some(access) = ctx.access.table(relation, Command::Select) {
            hidden.extend(
                relation
                    .columns
                    .iter()
                    .filter(|c| !access.sees_column(&c.name))
                    .map(|c| c.name.clone()),
            );
        }
    }
    hidden
}

/// What pgward's own tree of the printed statement holds: calls by name
/// (parts folded as the rewriter folds them), and column references by
/// their last name.
#[derive(Debug, Default)]
struct View {
    calls: HashMap<Vec<String>, usize>,
    columns: HashMap<String, usize>,
}

impl View {
    fn of(statement: &Statement) -> View {
        let mut view = View::default();
        let _ = statement.visit(&mut view);
        view
    }

    fn call(&mut self, name: &ObjectName) {
        let parts: Option<Vec<String>> = name
            .0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(id) => Some(fold(id)),
                ObjectNamePart::Function(_) => None,
            })
            .collect();
        if let Some(parts) = parts {
            *self.calls.entry(parts).or_default() += 1;
        }
    }
}

impl sqlparser::ast::Visitor for View {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(f) => self.call(&f.name),
            Expr::Identifier(id) => *self.columns.entry(fold(id)).or_default() += 1,
            Expr::CompoundIdentifier(ids) => {
                if let Some(last) = ids.last() {
                    *self.columns.entry(fold(last)).or_default() += 1;
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => self.call(name),
            _ => {}
        }
        ControlFlow::Continue(())
    }
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
        N::InsertStmt(_) => "InsertStmt",
        N::UpdateStmt(_) => "UpdateStmt",
        N::DeleteStmt(_) => "DeleteStmt",
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
    use sqlparser::ast::SetExpr;
    match statement {
        // `WITH … INSERT/UPDATE/DELETE` is the write with its WITH.
        S::Query(q) => match q.body.as_ref() {
            SetExpr::Insert(_) => "InsertStmt",
            SetExpr::Update(_) => "UpdateStmt",
            SetExpr::Delete(_) => "DeleteStmt",
            _ => "SelectStmt",
        },
        S::Insert(_) => "InsertStmt",
        S::Update(_) => "UpdateStmt",
        S::Delete(_) => "DeleteStmt",
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

const RANGE_VAR: &str = "RangeVar { catalogname: ";
const FUNC_CALL: &str = "FuncCall(FuncCall { funcname: [";
const COLUMN_REF: &str = "ColumnRef(ColumnRef { fields: [";

/// The text after each occurrence of `marker` in a tree's Debug form,
/// outside its string literals (SQL text, escaped: never a node). Markers
/// hold no `"`.
fn after_markers<'d>(dump: &'d str, marker: &str) -> Result<Vec<&'d str>, PgError> {
    let bytes = dump.as_bytes();
    let mut out = Vec::new();
    // Everything before `from` is read; `next` is the next marker at or
    // after it, which may still lie inside a literal.
    let mut from = 0;
    let mut next = dump.find(marker);
    while let Some(at) = next {
        match dump[from..at].find('"') {
            None => {
                from = at + marker.len();
                out.push(&dump[from..]);
            }
            Some(quote) => {
                let mut i = from + quote + 1;
                loop {
                    match bytes.get(i) {
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                        None => return Err(mismatch("unterminated string in the parse tree")),
                    }
                }
                from = i + 1;
            }
        }
        if at < from {
            next = dump[from..].find(marker).map(|p| p + from);
        }
    }
    Ok(out)
}

/// Reads a Debug-formatted list of name nodes (`String` nodes, and `A_Star`
/// as `None`) up to its closing `]`.
fn name_list(mut s: &str) -> Result<(Vec<Option<String>>, &str), PgError> {
    const STRING: &str = "Node { node: Some(String(String { sval: ";
    const STAR: &str = "Node { node: Some(AStar(AStar)) }";
    let layout = || mismatch("unexpected name layout in the parse tree");
    let mut out = Vec::new();
    loop {
        if let Some(rest) = s.strip_prefix(STRING) {
            let (name, rest) = debug_string(rest)?;
            s = rest.strip_prefix(" })) }").ok_or_else(layout)?;
            out.push(Some(name));
        } else if let Some(rest) = s.strip_prefix(STAR) {
            s = rest;
            out.push(None);
        } else {
            return Err(layout());
        }
        if let Some(rest) = s.strip_prefix(", ") {
            s = rest;
        } else if let Some(rest) = s.strip_prefix(']') {
            return Ok((out, rest));
        } else {
            return Err(layout());
        }
    }
}

/// Every RangeVar in a tree's Debug form, as `[ONLY ]schema.name` or
/// `[ONLY ]name`.
fn range_vars(dump: &str) -> Result<Vec<String>, PgError> {
    let mut out = Vec::new();
    for rest in after_markers(dump, RANGE_VAR)? {
        let (catalog, after) = debug_string(rest)?;
        let after = after
            .strip_prefix(", schemaname: ")
            .ok_or_else(|| mismatch("unexpected RangeVar layout"))?;
        let (schema, after) = debug_string(after)?;
        let after = after
            .strip_prefix(", relname: ")
            .ok_or_else(|| mismatch("unexpected RangeVar layout"))?;
        let (name, after) = debug_string(after)?;
        let inh = if after.starts_with(", inh: true") {
            true
        } else if after.starts_with(", inh: false") {
            false
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
    use crate::rewrite::tests::{Alice, catalog};
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn stmt(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    /// `verify_statement` for alice of the rewriter's tests (no GRANT
    /// EXECUTE; `margin` of public.orders hidden).
    fn verify(printed: &str, statement: &Statement, expected: &[String]) -> Result<(), PgError> {
        let catalog = catalog();
        let path = vec!["public".to_string()];
        let ctx = Context {
            catalog: &catalog,
            search_path: &path,
            access: &Alice,
        };
        verify_statement(printed, statement, expected, &ctx)
    }

    fn orders() -> Vec<String> {
        vec!["public.orders".into()]
    }

    #[test]
    fn denied_calls_pgward_did_not_see_are_refused() {
        // sqlparser's view: no call at all.
        let s = stmt("SELECT 1 FROM public.orders");
        for printed in [
            "SELECT query_to_xml('select ssn from employees', true, false, '') FROM public.orders",
            "SELECT pg_catalog.query_to_xml('select 1', true, false, '') FROM public.orders",
            "SELECT Query_To_XML('select 1', true, false, '') FROM public.orders",
            "SELECT 1 FROM public.orders WHERE length(pg_read_file('/etc/passwd')) > 0",
            "SELECT 1 FROM public.orders, pg_read_file('/etc/passwd') AS f",
            "SELECT (SELECT ts_rewrite('a'::tsquery, 'SELECT 1')) FROM public.orders",
            "SELECT public.order_total(1) FROM public.orders",
            "SELECT pg_stat_get_numscans(1) FROM public.orders",
            // Decided by their arguments, or answered by pgward.
            "SELECT set_config('role', 'x', false) FROM public.orders",
            "SELECT pg_catalog.\"current_user\"() FROM public.orders",
            "SELECT has_table_privilege('public.orders', 'SELECT') FROM public.orders",
        ] {
            assert!(verify(printed, &s, &orders()).is_err(), "{printed}");
        }
        let e = verify(
            "SELECT query_to_xml('select 1', true, false, '') FROM public.orders",
            &s,
            &orders(),
        )
        .unwrap_err();
        assert_eq!(e.code, code::FEATURE_NOT_SUPPORTED);
        assert_eq!(e.message, "pgward could not verify this statement");
        assert!(e.hint.is_some());
    }

    #[test]
    fn allowed_calls_pass() {
        let s = stmt("SELECT 1 FROM public.orders");
        for printed in [
            "SELECT count(*), max(id), pg_catalog.min(id), \"sum\"(id), row_number() OVER () \
             FROM public.orders",
            "SELECT g FROM public.orders, generate_series(1, 2) AS g",
            "SELECT COUNT(*), Pg_Catalog.Max(id) FROM public.orders",
            // Syntax forms, no pg_proc call.
            "SELECT coalesce(1, 2), greatest(1, 2), nullif(1, 2) FROM public.orders",
            // Calls PostgreSQL's grammar writes for syntax (the test catalog
            // has none of them).
            "SELECT EXTRACT(year FROM DATE '2020-01-01'), substring('a' FROM 1), trim(both 'x' FROM 'y'), \
             TIMESTAMP '2020-01-01' AT TIME ZONE 'UTC' FROM public.orders WHERE 'a' SIMILAR TO 'b' \
             AND 'a' LIKE 'b' ESCAPE 'c'",
            // Text that looks like a node is SQL text.
            "SELECT 'FuncCall(FuncCall { funcname: [Node { node: Some(String(String { sval: \
             \"query_to_xml\" })) }]' FROM public.orders",
        ] {
            assert!(verify(printed, &s, &orders()).is_ok(), "{printed}");
        }
    }

    #[test]
    fn calls_in_pgwards_tree_pass_once_each() {
        // A call the rule does not allow passes when pgward's tree holds it
        // (a policy expression put it there, or the rewriter checked it).
        let s = stmt("SELECT Public.Order_Total(1), set_config('work_mem', '1MB', false)");
        let printed = "SELECT public.order_total(1), set_config('work_mem', '1MB', false)";
        assert!(verify(printed, &s, &[]).is_ok());
        // Unquoted and quoted spellings of the same name.
        let printed = "SELECT \"public\".\"order_total\"(1), SET_CONFIG('work_mem', '1MB', false)";
        assert!(verify(printed, &s, &[]).is_ok());
        // One more than pgward's tree holds.
        let printed = "SELECT public.order_total(1), public.order_total(2), \
                       set_config('work_mem', '1MB', false)";
        assert!(verify(printed, &s, &[]).is_err());
        let printed = "SELECT public.order_total(1), set_config('work_mem', '1MB', false), \
                       set_config('role', 'x', false)";
        assert!(verify(printed, &s, &[]).is_err());
        // A quoted name is another name: "Order_Total" is not order_total.
        let printed = "SELECT public.\"Order_Total\"(1), set_config('work_mem', '1MB', false)";
        assert!(verify(printed, &s, &[]).is_err());
    }

    #[test]
    fn names_fold_as_postgresql_folds_them() {
        // PostgreSQL lower-cases only ASCII letters of an unquoted name, and
        // so does the rewriter's fold: `Ö_F` is `Ö_f` on both sides. A call
        // whose name the two read differently is not matched.
        let s = stmt("SELECT O_F()");
        assert!(verify("SELECT O_F()", &s, &[]).is_ok());
        let s = stmt("SELECT Ö_F()");
        assert!(verify("SELECT Ö_F()", &s, &[]).is_ok());
        assert!(verify("SELECT \"Ö_f\"()", &s, &[]).is_ok());
        assert!(verify("SELECT \"ö_f\"()", &s, &[]).is_err());
    }

    #[test]
    fn hidden_columns_pgward_did_not_see_are_refused() {
        let s = stmt("SELECT id FROM public.orders");
        assert!(verify("SELECT id FROM public.orders", &s, &orders()).is_ok());
        for printed in [
            "SELECT margin FROM public.orders",
            "SELECT o.margin FROM public.orders AS o",
            "SELECT id FROM public.orders WHERE public.orders.margin > 0",
            "SELECT id FROM public.orders ORDER BY \"margin\"",
        ] {
            assert!(verify(printed, &s, &orders()).is_err(), "{printed}");
        }
        // An output alias of that name, read by pgward as well: passes as
        // often as pgward's tree names it.
        let s = stmt("SELECT margin FROM (SELECT 1 AS margin) AS d, public.orders");
        let printed = "SELECT margin FROM (SELECT 1 AS margin) AS d, public.orders";
        assert!(verify(printed, &s, &orders()).is_ok());
        let printed = "SELECT margin, d.margin FROM (SELECT 1 AS margin) AS d, public.orders";
        assert!(verify(printed, &s, &orders()).is_err());
        // Visible columns, and relations pgward did not secure, are not
        // counted.
        let s = stmt("SELECT 1");
        assert!(
            verify(
                "SELECT id, amount, margin FROM (SELECT 1) AS x(id, amount, margin)",
                &s,
                &[]
            )
            .is_ok()
        );
    }

    #[test]
    fn markers_inside_literals_are_text() {
        let dump =
            r#"a "FuncCall(FuncCall { funcname: [\" x" FuncCall(FuncCall { funcname: [y "\\" z"#;
        let found = after_markers(dump, FUNC_CALL).unwrap();
        assert_eq!(found, [r#"y "\\" z"#]);
        assert!(after_markers(r#""open FuncCall(FuncCall { funcname: ["#, FUNC_CALL).is_err());
        assert_eq!(
            name_list(r#"Node { node: Some(String(String { sval: "a\"b" })) }, Node { node: Some(AStar(AStar)) }], rest"#)
                .unwrap(),
            (vec![Some("a\"b".to_string()), None], ", rest")
        );
        assert!(name_list("Node { node: Some(Other) }]").is_err());
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
        assert!(verify(printed, &s, &["allowed".into()]).is_err());
        assert!(verify("SELECT 1 FROM allowed", &s, &["allowed".into()]).is_ok());
    }

    #[test]
    fn comments_in_printed_sql_are_refused() {
        // The differential that keeps the relation multiset: the smuggled
        // text names the same relation the secured subquery does.
        let s = stmt("SELECT 1 FROM public.orders");
        let printed = "SELECT --1, '\n query_to_xml('select ssn from employees', true, false, ''), 1 \
                       FROM \"public\".\"orders\" --' FROM (SELECT 1 FROM x) AS o";
        assert!(verify(printed, &s, &["public.orders".into()]).is_err());
        assert!(
            verify(
                "SELECT 1 /* c */ FROM public.orders",
                &s,
                &["public.orders".into()]
            )
            .is_err()
        );
        assert!(
            verify(
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
        assert!(verify("SELECT 1 FROM ONLY t", &s, &["t".into()]).is_err());
        assert!(verify("SELECT 1 FROM t", &s, &["ONLY t".into()]).is_err());
        assert!(verify("SELECT 1 FROM ONLY t", &s, &["ONLY t".into()]).is_ok());
    }

    #[test]
    fn kind_must_match() {
        let s = stmt("SELECT 1");
        assert!(verify("DELETE FROM t", &s, &["t".into()]).is_err());
    }

    #[test]
    fn quoted_names_decode() {
        let (s, rest) = debug_string(r#""a\"b\\c", x"#).unwrap();
        assert_eq!(s, "a\"b\\c");
        assert_eq!(rest, ", x");
        assert!(debug_string(r#""\u{1}""#).is_err());
    }
}
