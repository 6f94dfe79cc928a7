//! The statement rewriter for policy-bound sessions: classify each
//! statement, secure every relation it reads, print it, and verify the
//! printed SQL with PostgreSQL's own grammar before it may be forwarded.
//!
//! Must never: return SQL that was not printed from a secured tree, or SQL
//! whose relation references PostgreSQL reads differently from the ones
//! pgward secured.

pub mod access;
mod bits_insert;
pub mod catalog_rules;
mod fallback;
mod fence;
pub mod functions;
pub mod literals;
mod scope;
pub mod secure;
pub mod set;
mod tokens;
pub mod verify;
mod writes;

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    CopySource, CopyTarget, Expr, Statement, Value, ValueWithSpan, VisitMut, VisitorMut,
};

use crate::catalog::Catalog;
use crate::error::{PgError, code};

pub use access::{Access, Columns, Command, Entry, InsertDefaults, Join, TableAccess};
use secure::Securer;

/// What the rewriter needs to know about the session.
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    /// The client's search_path, already expanded to schema names.
    pub search_path: &'a [String],
    pub access: &'a dyn Access,
}

/// One rewritten statement and the relation references PostgreSQL must
/// find in it.
pub struct Rewritten {
    pub statement: Statement,
    pub expected: Vec<String>,
    /// The `ONLY` marks of the client's text this statement used.
    pub only_used: BTreeSet<sqlparser::tokenizer::Location>,
    /// How the client sees the result, when pgward changed it (a write
    /// with checks).
    pub shape: Option<ResultShape>,
}

/// The SQL to forward, and what it changes in the session pgward tracks.
#[derive(Debug)]
pub struct Secured {
    pub sql: String,
    /// A new search_path, as written (`$user` unexpanded): `Some(None)`
    /// for a reset to the default.
    pub search_path: Option<Option<Vec<String>>>,
    /// Positions of the statements that answer `SHOW search_path` (their
    /// result gets the tag `SHOW`).
    pub shows: Vec<usize>,
    /// Positions of the statements whose result the client must see in
    /// another shape than the forwarded statement returns it.
    pub shapes: Vec<(usize, ResultShape)>,
}

/// How the client sees the result of a forwarded write that pgward changed
/// to check its new rows inside the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultShape {
    /// The write carries a `RETURNING` of pgward's own (its checks) that the
    /// client did not ask for: a Describe answers NoData instead of the
    /// RowDescription, the DataRows are dropped, an Execute runs with no row
    /// limit, and the command tag passes as sent (`UPDATE 3`).
    Silent,
    /// The write was wrapped in a `SELECT` over a data-modifying WITH query
    /// whose rows are the client's `RETURNING` rows: the tag `SELECT n`
    /// becomes this write's tag with the same count.
    Tagged(WriteTag),
    /// A write wrapped in a `SELECT` whose rows the client did not ask for
    /// (`… SELECT 1 FROM "pgward_w"`, which counts the written rows): no
    /// row description, no rows, and `SELECT n` becomes this write's tag.
    Counted(WriteTag),
}

/// The command tag of a write, as PostgreSQL prints it before the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteTag {
    /// `INSERT 0 n`
    Insert,
    /// `UPDATE n`
    Update,
    /// `DELETE n`
    Delete,
}

impl WriteTag {
    /// The tag's text before the row count.
    pub fn prefix(self) -> &'static str {
        match self {
            WriteTag::Insert => "INSERT 0",
            WriteTag::Update => "UPDATE",
            WriteTag::Delete => "DELETE",
        }
    }
}

/// Rewrites, prints and verifies every statement of a text; the result is
/// the SQL to forward. `single`: at most one statement (a Parse message).
pub fn secure_text(sql: &str, single: bool, ctx: &Context<'_>) -> Result<String, PgError> {
    secure_text_tracked(sql, single, ctx).map(|s| s.sql)
}

/// [`secure_text`], also reporting search_path changes.
pub fn secure_text_tracked(sql: &str, single: bool, ctx: &Context<'_>) -> Result<Secured, PgError> {
    secure_text_session(sql, single, ctx, ctx.search_path)
}

/// [`secure_text_tracked`] for a session whose search_path as written
/// (`$user` unexpanded) is `client_path`: what `SHOW search_path` and
/// `current_setting('search_path')` answer. A search_path change applies
/// to the statements after it in the same text.
pub fn secure_text_session(
    sql: &str,
    single: bool,
    ctx: &Context<'_>,
    client_path: &[String],
) -> Result<Secured, PgError> {
    secure_text_typed(sql, single, ctx, client_path, &[])
}

/// [`secure_text_session`] for a Parse message that declares the types of
/// `$1`, `$2` … as type oids (0: unspecified): they decide which operators
/// the leak fencing checks, as `PREPARE p (…)`'s types do.
pub fn secure_text_typed(
    sql: &str,
    single: bool,
    ctx: &Context<'_>,
    client_path: &[String],
    parameter_types: &[u32],
) -> Result<Secured, PgError> {
    let tokens::Parsed { statements, only } = match tokens::parse(sql) {
        Ok(parsed) => parsed,
        // PostgreSQL's grammar decides what sqlparser cannot read (FETCH
        // without FROM, MOVE, DO, ALTER SYSTEM …).
        Err(e) if e.code == code::SYNTAX_ERROR => {
            return fallback::secure_unparsed(sql, single, ctx, client_path, e);
        }
        Err(e) => return Err(e),
    };
    if single && statements.len() > 1 {
        return Err(PgError::error(
            code::SYNTAX_ERROR,
            "cannot insert multiple commands into a prepared statement",
        ));
    }
    let mut printed = Vec::with_capacity(statements.len());
    let mut search_path = None;
    let mut shows = Vec::new();
    let mut shapes = Vec::new();
    let mut only_used = BTreeSet::new();
    // The path as written and expanded, once a statement changed it.
    let mut changed: Option<(Vec<String>, Vec<String>)> = None;
    for (i, mut statement) in statements.into_iter().enumerate() {
        let change = set::search_path_change(&statement);
        let (client, expanded) = match &changed {
            Some((client, expanded)) => (client.as_slice(), expanded.as_slice()),
            None => (client_path, ctx.search_path),
        };
        let ctx = &Context {
            search_path: expanded,
            ..*ctx
        };
        if let Some(show) = set::answer_show(&statement, client, ctx.access.login())? {
            statement = show;
            shows.push(i);
        }
        let rewritten = rewrite_typed(statement, ctx, client, &only, parameter_types)?;
        only_used.extend(rewritten.only_used.iter().copied());
        if let Some(shape) = rewritten.shape {
            shapes.push((i, shape));
        }
        // Verified with the path the statement was secured with.
        let text = rewritten.statement.to_string();
        verify::verify_statement(&text, &rewritten.statement, &rewritten.expected, ctx)?;
        if let Some(change) = change {
            let client = change.clone().unwrap_or_else(set::default_search_path);
            let expanded = set::expand_search_path(&client, ctx.access.login());
            changed = Some((client, expanded));
            search_path = Some(change);
        }
        printed.push(text);
    }
    // An ONLY that did not land on a table reference was read as something
    // else: refuse rather than guess.
    if only_used != only {
        return Err(PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            "pgward does not support ONLY here",
        )
        .with_hint("ONLY is supported before a table name in FROM and JOIN"));
    }
    let joined = printed.join(";\n");
    // One statement was verified whole above; several must also split
    // where pgward split them.
    if printed.len() > 1 {
        let count = pg_query::parse(&joined)
            .map_err(|e| {
                tracing::warn!("verification refused printed SQL: {e}");
                PgError::error(
                    code::FEATURE_NOT_SUPPORTED,
                    "pgward could not verify this statement",
                )
            })?
            .protobuf
            .stmts
            .len();
        if count != printed.len() {
            return Err(PgError::error(
                code::FEATURE_NOT_SUPPORTED,
                "pgward could not verify this statement",
            ));
        }
    }
    Ok(Secured {
        sql: joined,
        search_path,
        shows,
        shapes,
    })
}

/// Rewrites one statement, or refuses it.
pub fn rewrite(statement: Statement, ctx: &Context<'_>) -> Result<Rewritten, PgError> {
    rewrite_as(statement, ctx, ctx.search_path, &BTreeSet::new())
}

/// [`rewrite`] for a session whose search_path as written is `client_path`;
/// `only`: where the names that followed `ONLY` start in the client's text
/// (see `tokens`).
fn rewrite_as(
    statement: Statement,
    ctx: &Context<'_>,
    client_path: &[String],
    only: &BTreeSet<sqlparser::tokenizer::Location>,
) -> Result<Rewritten, PgError> {
    rewrite_typed(statement, ctx, client_path, only, &[])
}

/// [`rewrite_as`] with the type oids a Parse message declares for `$1`,
/// `$2` … (0: unspecified).
fn rewrite_typed(
    mut statement: Statement,
    ctx: &Context<'_>,
    client_path: &[String],
    only: &BTreeSet<sqlparser::tokenizer::Location>,
    parameter_types: &[u32],
) -> Result<Rewritten, PgError> {
    // Privilege functions and search_path readers answer for the login.
    functions::answer_calls(&mut statement, ctx, client_path)?;
    let mut securer = Securer::new(ctx.catalog, ctx.search_path, ctx.access);
    securer.set_only(only.clone());
    securer.set_parameter_oids(parameter_types);
    let configure = |s: &mut Securer<'_>| {
        s.set_only(only.clone());
        s.set_parameter_oids(parameter_types);
    };
    let mut written: Option<writes::Written> = None;
    match &mut statement {
        s if writes::is_write(s) => {
            let env = writes::Env {
                ctx,
                configure: &configure,
            };
            written = Some(writes::secure_write(s, &env)?);
        }
        Statement::Query(q) if writes::has_cte_writes(q) => {
            let env = writes::Env {
                ctx,
                configure: &configure,
            };
            written = Some(writes::secure_cte_writes(q, &env, &mut securer)?);
        }
        Statement::Query(q) => {
            if q.locks.is_empty() {
                check_query_shape(q)?;
            } else {
                let (select, of) = lock_spec(q)?;
                check_query_shape_locked(q)?;
                // PostgreSQL reads the names after OF as relation names.
                securer.expected.extend(of.iter().flatten().cloned());
                securer.set_lock(select, of);
            }
            secure_node(q.as_mut(), &mut securer)?;
        }
        Statement::Explain {
            describe_alias,
            analyze,
            query_plan,
            estimate,
            options,
            statement,
            ..
        } => {
            // ANALYZE runs the statement and reports rows the filter
            // removed; only options that describe the plan are allowed.
            let option_ok = |o: &sqlparser::ast::UtilityOption| {
                EXPLAIN_OPTIONS.contains(&o.name.value.to_ascii_lowercase().as_str())
            };
            if *analyze || options.iter().flatten().any(|o| !option_ok(o)) {
                return Err(refused("EXPLAIN ANALYZE"));
            }
            if *query_plan || *estimate || *describe_alias != sqlparser::ast::DescribeAlias::Explain
            {
                return Err(refused("this form of EXPLAIN"));
            }
            match statement.as_mut() {
                s if writes::is_write(s) => {
                    let env = writes::Env {
                        ctx,
                        configure: &configure,
                    };
                    // Secured as forwarded; EXPLAIN shows a plan, no rows.
                    let mut w = writes::secure_write(s, &env)?;
                    w.shape = None;
                    written = Some(w);
                }
                Statement::Query(q) => {
                    if q.locks.is_empty() {
                        check_query_shape(q)?;
                    } else {
                        let (select, of) = lock_spec(q)?;
                        check_query_shape_locked(q)?;
                        securer.expected.extend(of.iter().flatten().cloned());
                        securer.set_lock(select, of);
                    }
                    secure_node(q.as_mut(), &mut securer)?;
                }
                _ => return Err(refused("EXPLAIN of this statement")),
            }
        }
        Statement::Prepare {
            statement,
            data_types,
            ..
        } => match statement.as_mut() {
            s if writes::is_write(s) => {
                let types = data_types.clone();
                let configure = |s: &mut Securer<'_>| {
                    s.set_only(only.clone());
                    s.set_parameter_types(types.clone());
                };
                let env = writes::Env {
                    ctx,
                    configure: &configure,
                };
                let w = writes::secure_write(s, &env)?;
                if w.shape.is_some() {
                    return Err(PgError::error(
                        code::FEATURE_NOT_SUPPORTED,
                        "pgward does not support PREPARE of a write it checks",
                    )
                    .with_hint(
                        "prepare the statement with the extended protocol (a Parse message) instead",
                    ));
                }
                written = Some(w);
            }
            Statement::Query(q) => {
                check_query_shape(q)?;
                securer.set_parameter_types(data_types.clone());
                secure_node(q.as_mut(), &mut securer)?;
            }
            _ => return Err(refused("PREPARE of this statement")),
        },
        Statement::Declare { stmts } => {
            for d in stmts.iter_mut() {
                match d.for_query.as_mut() {
                    Some(q) => {
                        check_query_shape(q)?;
                        secure_node(q.as_mut(), &mut securer)?;
                    }
                    None => return Err(refused("DECLARE without a query")),
                }
            }
        }
        Statement::Copy {
            source, to, target, ..
        } if !*to && matches!(target, CopyTarget::Stdin) => {
            let CopySource::Table {
                table_name,
                columns,
            } = source
            else {
                return Err(refused("COPY (query) FROM"));
            };
            let reference = writes::copy_from(table_name, columns, ctx)?;
            securer.expected.push(reference);
        }
        Statement::Copy {
            source, to, target, ..
        } => {
            if !*to || !matches!(target, CopyTarget::Stdout) {
                return Err(refused("COPY other than COPY … TO STDOUT"));
            }
            if let CopySource::Table {
                table_name,
                columns,
            } = source
            {
                // COPY t (cols) TO STDOUT reads like SELECT cols FROM t.
                let cols = if columns.is_empty() {
                    "*".to_string()
                } else {
                    columns
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let q = secure::parse_select(&format!("SELECT {cols} FROM {table_name}"))?;
                *source = CopySource::Query(Box::new(q));
                // Spans of this tree are not positions in the client's text.
                securer.set_only(BTreeSet::new());
            }
            if let CopySource::Query(q) = source {
                check_query_shape(q)?;
                secure_node(q.as_mut(), &mut securer)?;
            }
        }
        other => classify_other(other)?,
    }
    replace_identity(&mut statement, ctx.access.login());
    literals::protect(&mut statement)?;
    let mut expected = securer.expected;
    let mut only_used = securer.only_used;
    let mut shape = None;
    if let Some(w) = written {
        expected.extend(w.expected);
        only_used.extend(w.only_used);
        shape = w.shape;
    }
    Ok(Rewritten {
        statement,
        expected,
        only_used,
        shape,
    })
}

fn secure_node<T: VisitMut>(node: &mut T, securer: &mut Securer<'_>) -> Result<(), PgError> {
    match node.visit(securer) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(e) => Err(e),
    }
}

/// A query that is only a read: no write inside, no lock (see
/// `lock_spec`), no SELECT INTO.
fn check_query_shape(q: &sqlparser::ast::Query) -> Result<(), PgError> {
    if !q.locks.is_empty() {
        return Err(refused("SELECT … FOR UPDATE/SHARE here"));
    }
    check_query_shape_locked(q)
}

/// [`check_query_shape`] for a query whose own locks were accepted:
/// locks below it are still refused.
fn check_query_shape_locked(q: &sqlparser::ast::Query) -> Result<(), PgError> {
    let top = q as *const sqlparser::ast::Query as usize;
    struct Locks {
        top: usize,
        found: bool,
    }
    impl sqlparser::ast::Visitor for Locks {
        type Break = ();
        fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
            if q as *const sqlparser::ast::Query as usize != self.top && !q.locks.is_empty() {
                self.found = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut locks = Locks { top, found: false };
    let _ = sqlparser::ast::Visit::visit(q, &mut locks);
    if locks.found {
        return Err(refused("FOR UPDATE/SHARE inside a subquery"));
    }
    let mut found = None;
    let _ = sqlparser::ast::visit_statements(q, |s| {
        found = Some(statement_kind(s));
        ControlFlow::<()>::Break(())
    });
    if let Some(kind) = found {
        return Err(refused(&format!("{kind} inside a query")));
    }
    if let sqlparser::ast::SetExpr::Select(s) = q.body.as_ref()
        && s.into.is_some()
    {
        return Err(refused("SELECT INTO"));
    }
    Ok(())
}

/// `SELECT … FOR UPDATE/SHARE [OF …]`: the SELECT whose FROM relations
/// are locked (they also need an UPDATE entry, see `Securer::set_lock`) and
/// the names after OF (`None`: all). Only plain tables may be locked: a
/// lock on a derived table or WITH query reaches tables pgward would not
/// bound.
fn lock_spec(q: &sqlparser::ast::Query) -> Result<(usize, Option<Vec<String>>), PgError> {
    use sqlparser::ast::{SetExpr, TableFactor};
    let not_here = || {
        PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            "pgward does not support FOR UPDATE/SHARE on this query",
        )
        .with_hint("lock rows of plain tables named in the FROM of one SELECT")
    };
    let SetExpr::Select(select) = q.body.as_ref() else {
        return Err(not_here());
    };
    if q.with.is_some() {
        return Err(not_here());
    }
    let plain = |f: &TableFactor| matches!(f, TableFactor::Table { args: None, .. });
    for twj in &select.from {
        if !plain(&twj.relation) || twj.joins.iter().any(|j| !plain(&j.relation)) {
            return Err(not_here());
        }
    }
    let mut of = Some(Vec::new());
    for lock in &q.locks {
        match (&lock.of, &mut of) {
            (None, _) => of = None,
            (Some(name), Some(list)) => match name.0.as_slice() {
                [sqlparser::ast::ObjectNamePart::Identifier(id)] => list.push(secure::fold(id)),
                _ => return Err(not_here()),
            },
            (Some(_), None) => {}
        }
    }
    Ok((
        select.as_ref() as *const sqlparser::ast::Select as usize,
        of,
    ))
}

/// Statements passed through unchanged, or refused.
fn classify_other(statement: &mut Statement) -> Result<(), PgError> {
    use Statement as S;
    match statement {
        S::StartTransaction { .. }
        | S::Commit { .. }
        | S::Rollback { .. }
        | S::Savepoint { .. }
        | S::ReleaseSavepoint { .. }
        | S::Fetch { .. }
        | S::Close { .. }
        | S::Deallocate { .. }
        | S::Execute { .. }
        | S::Discard { .. }
        | S::ShowVariable { .. }
        | S::ShowVariables { .. } => Ok(()),
        // Pools send it on reset; it only stops this session's listening.
        S::UNLISTEN { channel } if channel.quote_style.is_none() && channel.value == "*" => Ok(()),
        S::Set(set) => set::check_set(set),
        S::Reset(r) => set::check_reset(&r.reset),
        other => Err(refused(&statement_kind(other))),
    }
}

/// A short name for a statement kind, for messages.
pub fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second] if matches!(*first, "CREATE" | "DROP" | "ALTER") => {
            format!("{first} {second}")
        }
        [first, ..] => (*first).to_string(),
        [] => "this statement".to_string(),
    }
}

/// `current_user`, `session_user`, `current_role` and `user` read as the
/// login (semantics 11). As the role argument of the privilege functions
/// (`has_table_privilege(current_user, …)`) they stay the upstream role:
/// the login is no role there.
fn replace_identity(statement: &mut Statement, login: &str) {
    struct Identity<'a>(&'a str);
    impl VisitorMut for Identity<'_> {
        type Break = ();
        // An identity keyword as a select item keeps PostgreSQL's column
        // name (`current_user`), not the one of the literal put there.
        fn pre_visit_select(&mut self, select: &mut sqlparser::ast::Select) -> ControlFlow<()> {
            for item in select.projection.iter_mut() {
                if let sqlparser::ast::SelectItem::UnnamedExpr(e) = item
                    && let Some(name) = identity_name(e)
                {
                    *item = sqlparser::ast::SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: sqlparser::ast::Ident::with_quote('"', name),
                    };
                }
            }
            ControlFlow::Continue(())
        }

        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = expr
                && is_privilege_function(&f.name)
                && let sqlparser::ast::FunctionArguments::List(list) = &mut f.args
                && let Some(sqlparser::ast::FunctionArg::Unnamed(
                    sqlparser::ast::FunctionArgExpr::Expr(first),
                )) = list.args.first_mut()
                && is_identity(first)
            {
                *first = upstream_current_user();
            }
            ControlFlow::Continue(())
        }

        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if is_identity(expr) {
                *expr = Expr::Cast {
                    kind: sqlparser::ast::CastKind::DoubleColon,
                    expr: Box::new(Expr::Value(ValueWithSpan::from(Value::SingleQuotedString(
                        self.0.to_string(),
                    )))),
                    data_type: sqlparser::ast::DataType::Custom(
                        sqlparser::ast::ObjectName::from(vec![
                            sqlparser::ast::Ident::new("pg_catalog"),
                            sqlparser::ast::Ident::new("name"),
                        ]),
                        Vec::new(),
                    ),
                    format: None,
                };
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Identity(login));
}

const IDENTITY: [&str; 4] = ["current_user", "session_user", "current_role", "user"];

/// The column name PostgreSQL gives an identity keyword.
fn identity_name(expr: &Expr) -> Option<String> {
    if !is_identity(expr) {
        return None;
    }
    let id = match expr {
        Expr::Identifier(id) => id,
        Expr::Function(f) => match f.name.0.last() {
            Some(sqlparser::ast::ObjectNamePart::Identifier(id)) => id,
            _ => return None,
        },
        _ => return None,
    };
    Some(id.value.to_ascii_lowercase())
}

/// An identity keyword: `current_user`, `session_user`, `current_role`,
/// `user` (reserved in PostgreSQL: never a column name unquoted).
fn is_identity(expr: &Expr) -> bool {
    let keyword = |id: &sqlparser::ast::Ident| {
        id.quote_style.is_none() && IDENTITY.contains(&id.value.to_ascii_lowercase().as_str())
    };
    match expr {
        Expr::Identifier(id) => keyword(id),
        Expr::Function(f) => {
            matches!(f.args, sqlparser::ast::FunctionArguments::None)
                && f.name.0.len() <= 2
                && f.name.0.last().is_some_and(
                    |p| matches!(p, sqlparser::ast::ObjectNamePart::Identifier(id) if keyword(id)),
                )
        }
        _ => false,
    }
}

fn is_privilege_function(name: &sqlparser::ast::ObjectName) -> bool {
    name.0.last().is_some_and(|p| match p {
        sqlparser::ast::ObjectNamePart::Identifier(id) => {
            let n = id.value.to_ascii_lowercase();
            (n.starts_with("has_") && n.ends_with("_privilege")) || n == "pg_has_role"
        }
        _ => false,
    })
}

/// `pg_catalog."current_user"()`: the upstream role, spelled so that the
/// identity rewrite leaves it alone.
fn upstream_current_user() -> Expr {
    Expr::Function(sqlparser::ast::Function {
        name: sqlparser::ast::ObjectName::from(vec![
            sqlparser::ast::Ident::new("pg_catalog"),
            sqlparser::ast::Ident::with_quote('"', "current_user"),
        ]),
        uses_odbc_syntax: false,
        parameters: sqlparser::ast::FunctionArguments::None,
        args: sqlparser::ast::FunctionArguments::List(sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: Vec::new(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

#[cfg(test)]
mod fence_tests;
#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod write_tests;

/// EXPLAIN options that only describe the plan (never ANALYZE, TIMING or
/// WAL, which run the statement).
const EXPLAIN_OPTIONS: &[&str] = &[
    "verbose", "costs", "settings", "buffers", "summary", "format",
];

fn refused(what: &str) -> PgError {
    PgError::error(
        code::INSUFFICIENT_PRIVILEGE,
        format!("pgward does not allow {what} for this session"),
    )
}
