//! Writes of policy-bound sessions (PRODUCT.md §3 semantics 6–8): INSERT
//! (VALUES, SELECT, DEFAULT VALUES, ON CONFLICT, RETURNING), UPDATE (FROM,
//! RETURNING), DELETE (USING, RETURNING) and `COPY t FROM STDIN`.
//!
//! The write target stays the table itself; the rows it may touch are
//! bounded by pgward's WHERE (the command's entries AND the SELECT
//! visibility), and new rows are checked inside the database by
//! `pgward."check"(ok, message)`, which raises 42501 unless `ok` is true.
//! Every read part of a write (SET right-hand sides, WHERE, FROM, USING,
//! RETURNING, the source query, DO UPDATE) is secured by the SELECT
//! securer over a *mirror*: a SELECT with the same scopes, whose FROM
//! holds the target as an item (its hidden columns refused, its partial
//! columns read as `CASE WHEN <cell condition> THEN col END`) and the
//! client's FROM items, secured as in any read. The secured parts are then
//! moved back into the write.
//!
//! Must never: forward a write whose rows or new rows pgward did not bound,
//! let a read part name a hidden column of the target, or let a whole-row
//! reference of the target carry a hidden column.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use sqlparser::ast::{
    Assignment, AssignmentTarget, Delete, Expr, FromTable, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, Insert, ObjectName, ObjectNamePart, OnConflictAction, OnInsert,
    Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias,
    TableFactor, TableObject, TableWithJoins, Update, UpdateTableFromKind, Visit, VisitMut,
    Visitor, VisitorMut, With,
};
use sqlparser::tokenizer::Location;

use super::access::{Command, Entry, TableAccess};
use super::scope::{self, Item};
use super::secure::{
    self, CellCondition, Securer, cell_condition, fold, parse_expr, parse_select,
    permission_denied, quote_ident,
};
use super::{Context, ResultShape, WriteTag, fence};
use crate::catalog::{RelKind, Relation};
use crate::error::{PgError, code};

/// The names the mirror gives the write target and `excluded`: no client
/// text can hold them (PostgreSQL identifiers cannot hold a control
/// character the wire protocol would pass).
const TARGET: &str = "\u{1}pgward target";
const EXCLUDED: &str = "\u{1}pgward excluded";
/// Holes of the templates pgward builds conditions from.
const HOLE: &str = "\u{1}pgward hole";

/// A secured write.
pub struct Written {
    pub expected: Vec<String>,
    pub only_used: BTreeSet<Location>,
    pub shape: Option<ResultShape>,
}

/// How each securer of a write is set up (search_path, parameter types,
/// the `ONLY` marks of the client's text).
pub struct Env<'a, 'c> {
    pub ctx: &'a Context<'c>,
    pub configure: &'a dyn Fn(&mut Securer<'c>),
}

/// Whether a statement is a write this module secures.
pub fn is_write(statement: &Statement) -> bool {
    match statement {
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => true,
        Statement::Query(q) => matches!(
            q.body.as_ref(),
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_)
        ),
        _ => false,
    }
}

/// Secures a write in place (it may become a SELECT over a data-modifying
/// WITH query, see `ResultShape::Tagged`).
pub fn secure_write(statement: &mut Statement, env: &Env<'_, '_>) -> Result<Written, PgError> {
    let (with, inner) = match std::mem::replace(statement, placeholder_statement()) {
        Statement::Query(q) => {
            let q = *q;
            if q.order_by.is_some()
                || q.limit_clause.is_some()
                || q.fetch.is_some()
                || !q.locks.is_empty()
            {
                return Err(not_supported("this form of write"));
            }
            let inner = match *q.body {
                SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) => s,
                _ => return Err(not_supported("this form of write")),
            };
            (q.with, inner)
        }
        other => (None, other),
    };
    let mut w = Writer {
        env,
        expected: Vec::new(),
        only_used: BTreeSet::new(),
        cte: None,
        cte_join: None,
    };
    // Writes in its WITH are secured first and set aside (as below a
    // SELECT); the write reads them through their RETURNING columns.
    let (with, aside) = match with {
        Some(with) if with.cte_tables.iter().any(|c| is_write_body(&c.query)) => {
            let private = private_names(&with);
            refuse_references(&inner, &private)?;
            refuse_references(&with, &private)?;
            let (with, aside) = w.cte_writes(with)?;
            (Some(with), Some(aside))
        }
        other => (other, None),
    };
    if let Some(aside) = &aside {
        refuse_references(&inner, &aside.unreadable)?;
    }
    let built = match inner {
        Statement::Insert(insert) => w.insert(insert, with)?,
        Statement::Update(update) => w.update(update, with)?,
        Statement::Delete(delete) => w.delete(delete, with)?,
        _ => return Err(not_supported("this form of write")),
    };
    *statement = built.0;
    if let Some(aside) = aside {
        let with = match statement {
            Statement::Query(q) => q.with.as_mut(),
            _ => None,
        };
        aside.restore(with.ok_or_else(|| not_supported("this write"))?)?;
    }
    Ok(Written {
        expected: w.expected,
        only_used: w.only_used,
        shape: built.1,
    })
}

fn is_write_body(q: &Query) -> bool {
    matches!(
        q.body.as_ref(),
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_)
    )
}

/// The private names pgward gives the writes of a WITH (`pgward_x`): the
/// client reads a write through `x` only, never through them.
fn private_names(with: &With) -> Vec<String> {
    with.cte_tables
        .iter()
        .filter(|c| is_write_body(&c.query))
        .map(|c| format!("pgward_{}", fold(&c.alias.name)))
        .collect()
}

/// Whether a query's own WITH holds a data-modifying query.
pub fn has_cte_writes(q: &Query) -> bool {
    q.with
        .as_ref()
        .is_some_and(|w| w.cte_tables.iter().any(|c| is_write_body(&c.query)))
}

/// A SELECT whose WITH holds data-modifying queries. Each write CTE `x`
/// becomes `"pgward_x" AS (<secured write> RETURNING <r1> AS "pgward_1", …,
/// <check> AS "pgward_ok")`, followed by `x AS (SELECT "pgward_1" AS
/// "<r1's name>", … FROM "pgward_x")` when the client's write has a
/// RETURNING; a write without one stays unreadable. The rest of the
/// statement is then secured as a read by `securer`, with the writes set
/// aside.
pub fn secure_cte_writes(
    q: &mut Query,
    env: &Env<'_, '_>,
    securer: &mut Securer<'_>,
) -> Result<Written, PgError> {
    if !matches!(
        q.body.as_ref(),
        SetExpr::Select(_) | SetExpr::SetOperation { .. } | SetExpr::Query(_)
    ) || !q.locks.is_empty()
    {
        return Err(not_supported("this query with data-modifying WITH queries"));
    }
    let Some(with) = q.with.take() else {
        return Err(not_supported("this query"));
    };
    let mut w = Writer {
        env,
        expected: Vec::new(),
        only_used: BTreeSet::new(),
        cte: None,
        cte_join: None,
    };
    let private = private_names(&with);
    refuse_references(&*q, &private)?;
    refuse_references(&with, &private)?;
    let (with, aside) = w.cte_writes(with)?;
    q.with = Some(with);
    refuse_references(&*q, &aside.unreadable)?;
    super::check_query_shape(q)?;
    super::secure_node(q, securer)?;
    if let Some(with) = q.with.as_mut() {
        aside.restore(with)?;
    }
    Ok(Written {
        expected: w.expected,
        only_used: w.only_used,
        shape: None,
    })
}

/// The secured writes of a WITH, set aside (by their private CTE name)
/// while the rest of the statement is secured.
struct Aside {
    writes: Vec<(String, Statement)>,
    /// Write CTEs without RETURNING: no reference may read them.
    unreadable: Vec<String>,
    /// pgward's membership inserts for the writes' new rows (bits_insert),
    /// appended to the WITH.
    joins: Vec<sqlparser::ast::Cte>,
}

impl Aside {
    fn restore(self, with: &mut With) -> Result<(), PgError> {
        for (name, secured) in self.writes {
            let body = match secured {
                Statement::Insert(_) => SetExpr::Insert(secured),
                Statement::Update(_) => SetExpr::Update(secured),
                _ => SetExpr::Delete(secured),
            };
            let cte = with
                .cte_tables
                .iter_mut()
                .find(|c| c.alias.name.quote_style.is_some() && c.alias.name.value == name)
                .ok_or_else(|| not_supported("this query"))?;
            *cte.query.body = body;
        }
        with.cte_tables.extend(self.joins);
        Ok(())
    }
}

/// A stand-in body for a WITH query while a write that may read it is
/// secured: its output names, no rows, no relations.
fn stand_in(names: &[String]) -> Result<Query, PgError> {
    let columns: Vec<String> = names
        .iter()
        .map(|n| format!("NULL AS {}", quote_ident(n)))
        .collect();
    parse_select(&format!("SELECT {} WHERE false", columns.join(", ")))
}

impl Writer<'_, '_, '_> {
    /// Secures the writes of a WITH (see `secure_cte_writes`): returns the
    /// WITH to secure as a read, with each write replaced by a stand-in.
    /// A write reads the WITH queries before it through stand-ins of their
    /// output names.
    fn cte_writes(&mut self, mut with: With) -> Result<(With, Aside), PgError> {
        if with.recursive {
            return Err(not_supported("data-modifying queries in WITH RECURSIVE"));
        }
        let mut ctes = Vec::new();
        let mut earlier: Vec<sqlparser::ast::Cte> = Vec::new();
        let mut aside = Aside {
            writes: Vec::new(),
            unreadable: Vec::new(),
            joins: Vec::new(),
        };
        for mut cte in std::mem::take(&mut with.cte_tables) {
            if !is_write_body(&cte.query) {
                let mut standing = cte.clone();
                match scope::query_outputs(&cte.query) {
                    Some(names) => *standing.query = stand_in(&names)?,
                    // Its columns cannot be listed: a later write may not
                    // read it (it then reads a table of that name, which
                    // verification refuses).
                    None => {
                        ctes.push(cte);
                        continue;
                    }
                }
                earlier.push(standing);
                ctes.push(cte);
                continue;
            }
            if cte.from.is_some()
                || cte.query.with.is_some()
                || cte.query.order_by.is_some()
                || cte.query.limit_clause.is_some()
            {
                return Err(not_supported("this form of WITH query"));
            }
            let name = fold(&cte.alias.name);
            let body = std::mem::replace(
                cte.query.body.as_mut(),
                SetExpr::Values(sqlparser::ast::Values {
                    explicit_row: false,
                    value_keyword: false,
                    rows: Vec::new(),
                }),
            );
            let statement = match body {
                SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) => s,
                _ => return Err(not_supported("MERGE")),
            };
            let before = (!earlier.is_empty()).then(|| With {
                with_token: with.with_token.clone(),
                recursive: false,
                cte_tables: earlier.clone(),
            });
            self.cte = Some(Vec::new());
            let secured = match statement {
                Statement::Insert(i) => self.insert(i, before),
                Statement::Update(u) => self.update(u, before),
                Statement::Delete(d) => self.delete(d, before),
                _ => Err(not_supported("this form of WITH query")),
            };
            let names = self.cte.take().unwrap_or_default();
            let (mut secured, _) = secured?;
            let has_check = returning_has(&secured, "pgward_ok");
            let private = format!("pgward_{name}");
            if let Some(join) = self.cte_join.take() {
                aside.joins.extend(super::bits_insert::join_groups_in_with(
                    &mut secured,
                    &join,
                    &private,
                    &mut self.expected,
                )?);
            }
            // What the read sees of the write while it is secured.
            let mut columns: Vec<String> =
                (1..=names.len()).map(|i| format!("pgward_{i}")).collect();
            if has_check {
                columns.push("pgward_ok".to_string());
            }
            if columns.is_empty() {
                columns.push("pgward_none".to_string());
            }
            let mut private_cte = cte.clone();
            private_cte.alias = TableAlias {
                explicit: false,
                name: Ident::with_quote('"', private.clone()),
                columns: Vec::new(),
                at: None,
            };
            *private_cte.query = stand_in(&columns)?;
            aside.writes.push((private.clone(), secured));
            ctes.push(private_cte);
            if names.is_empty() {
                aside.unreadable.push(name);
                continue;
            }
            let select: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("\"pgward_{}\" AS {}", i + 1, quote_ident(n)))
                .collect();
            *cte.query = parse_select(&format!(
                "SELECT {} FROM {}",
                select.join(", "),
                quote_ident(&private)
            ))?;
            cte.materialized = None;
            let mut standing = cte.clone();
            let renamed: Vec<String> = cte.alias.columns.iter().map(|c| fold(&c.name)).collect();
            let mut visible = names.clone();
            for (n, r) in visible.iter_mut().zip(renamed) {
                *n = r;
            }
            standing.alias.columns = Vec::new();
            *standing.query = stand_in(&visible)?;
            earlier.push(standing);
            ctes.push(cte);
        }
        with.cte_tables = ctes;
        Ok((with, aside))
    }
}

/// Whether a secured write's RETURNING has an item of that name.
fn returning_has(statement: &Statement, name: &str) -> bool {
    let returning = match statement {
        Statement::Insert(i) => &i.returning,
        Statement::Update(u) => &u.returning,
        Statement::Delete(d) => &d.returning,
        _ => return false,
    };
    returning
        .iter()
        .flatten()
        .any(|item| matches!(item, SelectItem::ExprWithAlias { alias, .. } if alias.value == name))
}

/// A data-modifying WITH query without RETURNING cannot be read
/// (PostgreSQL: "WITH query "x" does not have a RETURNING clause").
fn refuse_references<T: Visit>(q: &T, names: &[String]) -> Result<(), PgError> {
    if names.is_empty() {
        return Ok(());
    }
    let mut found = None;
    let _ = sqlparser::ast::visit_relations(q, |r| {
        if let [ObjectNamePart::Identifier(id)] = r.0.as_slice()
            && names.contains(&fold(id))
        {
            found = Some(fold(id));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match found {
        Some(n) => Err(not_supported(&format!("reading WITH query \"{n}\""))
            .with_hint("WITH query has no RETURNING clause; add one to read its rows")),
        None => Ok(()),
    }
}

fn placeholder_statement() -> Statement {
    Statement::Commit {
        chain: false,
        end: false,
        modifier: None,
    }
}

/// The relation a write changes, and how the session reads it.
struct Target<'c> {
    relation: &'c Relation,
    /// The name references use: the alias, or the table's name.
    qualifier: String,
    aliased: bool,
    select: TableAccess,
}

impl Target<'_> {
    fn has_column(&self, name: &str) -> bool {
        self.relation.columns.iter().any(|c| c.name == name)
    }

    /// Every column reads whole on every row the write may touch.
    fn fully_visible(&self) -> bool {
        self.relation
            .columns
            .iter()
            .all(|c| matches!(cell_condition(&self.select, &c.name), CellCondition::Always))
    }

    fn name(&self) -> ObjectName {
        ObjectName(vec![
            ObjectNamePart::Identifier(Ident::with_quote('"', self.relation.schema.clone())),
            ObjectNamePart::Identifier(Ident::with_quote('"', self.relation.name.clone())),
        ])
    }

    fn reference(&self) -> String {
        secure::qualified(self.relation)
    }

    /// The mirror's FROM item for the target read as `qualifier`.
    fn item(&self, qualifier: &str, unaliased: bool) -> Result<Item, PgError> {
        let mut item = Item {
            qualifier: Some(qualifier.to_string()),
            schema: unaliased.then(|| self.relation.schema.clone()),
            unqualified: true,
            ..Item::default()
        };
        for column in &self.relation.columns {
            match cell_condition(&self.select, &column.name) {
                CellCondition::Hidden => {
                    item.hidden
                        .insert(column.name.clone(), self.relation.name.clone());
                }
                CellCondition::Always => {
                    item.visible.insert(column.name.clone());
                }
                CellCondition::When(cond) => {
                    item.visible.insert(column.name.clone());
                    let cond = qualify(&parse_expr(&cond)?, qualifier, self.relation);
                    item.partial.insert(column.name.clone(), cond);
                }
            }
        }
        Ok(item)
    }

    /// The SELECT visibility of the row, as conjuncts on `qualifier`.
    fn visible(&self, qualifier: &str) -> Vec<String> {
        let mut parts = Vec::new();
        let rows: Vec<Option<&Expr>> = self
            .select
            .entries
            .iter()
            .map(|e| e.rows.as_ref())
            .collect();
        parts.extend(either(&rows, qualifier, self.relation));
        for r in &self.select.restrictive {
            parts.push(qualify(r, qualifier, self.relation));
        }
        parts
    }

    fn conjuncts(&self, qualifier: &str, preds: &[Option<&Expr>], all: &[Expr]) -> Vec<String> {
        let mut parts = Vec::new();
        parts.extend(either(preds, qualifier, self.relation));
        for r in all {
            parts.push(qualify(r, qualifier, self.relation));
        }
        parts
    }
}

/// OR of entry predicates, qualified: `None` when one admits every row,
/// `false` when there is none.
fn either(preds: &[Option<&Expr>], qualifier: &str, relation: &Relation) -> Option<String> {
    if preds.is_empty() {
        return Some("false".to_string());
    }
    if preds.iter().any(Option::is_none) {
        return None;
    }
    let parts: Vec<String> = preds
        .iter()
        .flatten()
        .map(|e| qualify(e, qualifier, relation))
        .collect();
    Some(if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("({})", parts.join(" OR "))
    })
}

/// AND of conjuncts (each once); `None` when there is none.
fn and(parts: &[String]) -> Option<String> {
    let mut seen = BTreeSet::new();
    let unique: Vec<&String> = parts.iter().filter(|p| seen.insert(p.as_str())).collect();
    if unique.is_empty() {
        return None;
    }
    Some(
        unique
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

/// A policy expression whose top-level column names are the target's,
/// qualified with `qualifier` so that no FROM item or `excluded` can take
/// them. Names inside its subqueries are left as written: an ambiguity
/// there fails in PostgreSQL, it never resolves to another table.
fn qualify(expr: &Expr, qualifier: &str, relation: &Relation) -> String {
    struct Q<'a> {
        qualifier: &'a str,
        relation: &'a Relation,
        depth: usize,
    }
    impl VisitorMut for Q<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _q: &mut Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _q: &mut Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Identifier(id) = expr
                && self.relation.columns.iter().any(|c| c.name == fold(id))
            {
                *expr = Expr::CompoundIdentifier(vec![
                    Ident::with_quote('"', self.qualifier),
                    id.clone(),
                ]);
            }
            ControlFlow::Continue(())
        }
    }
    let mut e = expr.clone();
    let _ = VisitMut::visit(
        &mut e,
        &mut Q {
            qualifier,
            relation,
            depth: 0,
        },
    );
    format!("({e})")
}

/// An expression built from pgward's text with holes `"\u1pgward hole<i>"`
/// filled by the client's (secured) expressions.
fn template(sql: &str, mut holes: Vec<Option<Expr>>) -> Result<Expr, PgError> {
    struct Fill<'a>(&'a mut Vec<Option<Expr>>);
    impl VisitorMut for Fill<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Identifier(id) = expr
                && id.quote_style == Some('"')
                && let Some(i) = id.value.strip_prefix(HOLE)
                && let Ok(i) = i.parse::<usize>()
                && let Some(e) = self.0.get_mut(i).and_then(Option::take)
            {
                *expr = Expr::Nested(Box::new(e));
            }
            ControlFlow::Continue(())
        }
    }
    let mut e = parse_expr(sql)?;
    let _ = VisitMut::visit(&mut e, &mut Fill(&mut holes));
    if holes.iter().any(Option::is_some) {
        return Err(not_supported("this write"));
    }
    Ok(e)
}

fn hole(i: usize) -> String {
    quote_ident(&format!("{HOLE}{i}"))
}

/// `pgward."check"(<ok>, '<message>')`.
fn check_call(ok: &str, message: &str) -> String {
    format!("pgward.\"check\"({ok}, '{}')", message.replace('\'', "''"))
}

fn new_row_message(relation: &Relation) -> String {
    format!(
        "new row violates row-level security policy for table \"{}\"",
        relation.name
    )
}

fn using_message(relation: &Relation) -> String {
    format!(
        "new row violates row-level security policy (USING expression) for table \"{}\"",
        relation.name
    )
}

/// The mirror of a write's read parts (see the module comment).
struct Mirror {
    with: Option<With>,
    /// (placeholder, qualifier, aliased) of the target items.
    targets: Vec<(&'static str, String)>,
    from: Vec<TableWithJoins>,
    source: Option<Box<Query>>,
    projection: Vec<SelectItem>,
    selection: Option<Expr>,
}

struct MirrorOut {
    with: Option<With>,
    from: Vec<TableWithJoins>,
    source: Option<Box<Query>>,
    projection: Vec<SelectItem>,
    selection: Option<Expr>,
}

struct Writer<'e, 'a, 'c> {
    env: &'e Env<'a, 'c>,
    expected: Vec<String>,
    only_used: BTreeSet<Location>,
    /// Set for the body of a data-modifying WITH query: its RETURNING
    /// items are named `pgward_<n>` (their client names are recorded
    /// here), and its check is `pgward_ok`.
    cte: Option<Vec<String>>,
    /// The default groups the new rows of a WITH query's INSERT join.
    cte_join: Option<super::access::Join>,
}

impl<'c> Writer<'_, '_, 'c> {
    fn ctx(&self) -> &Context<'c> {
        self.env.ctx
    }

    fn target(&self, name: &ObjectName, alias: Option<&Ident>) -> Result<Target<'c>, PgError> {
        let (schema, relname) = secure::split_name(name)?;
        let ctx = self.env.ctx;
        let relation = ctx
            .catalog
            .resolve_relation(schema.as_deref(), &relname, ctx.search_path)
            .ok_or_else(|| secure::unknown_relation(schema.as_deref(), &relname))?;
        if super::catalog_rules::rule(relation).is_some() {
            return Err(permission_denied(relation));
        }
        match relation.kind {
            RelKind::Table | RelKind::PartitionedTable => {}
            RelKind::View | RelKind::MaterializedView => {
                return Err(not_supported("writes to views").with_hint(
                    "write to the table the view reads; pgward secures writes to tables only",
                ));
            }
            _ => return Err(permission_denied(relation)),
        }
        let mut select = ctx
            .access
            .table(relation, Command::Select)
            .unwrap_or_else(|| TableAccess {
                entries: Vec::new(),
                restrictive: Vec::new(),
                restrictive_checks: Vec::new(),
                predicate_relations: Vec::new(),
            });
        // New rows (and RETURNING cells) are read from their own values
        // where the entries' predicates read the table (permission bits).
        select.entries.extend(ctx.access.own_row_entries(relation));
        Ok(Target {
            relation,
            qualifier: alias.map_or_else(|| relation.name.clone(), fold),
            aliased: alias.is_some(),
            select,
        })
    }

    fn access(&self, t: &Target<'_>, command: Command) -> Result<TableAccess, PgError> {
        self.ctx()
            .access
            .table(t.relation, command)
            .ok_or_else(|| permission_denied(t.relation))
    }

    /// `SET (a, b) = (SELECT …)`: PostgreSQL's parse tree holds the source
    /// once per column, so its relations are read that many times.
    fn note_multi_assignments(&mut self, assignments: &[Assignment]) -> Result<(), PgError> {
        for a in assignments {
            let AssignmentTarget::Tuple(columns) = &a.target else {
                continue;
            };
            if columns.len() < 2 {
                continue;
            }
            let parsed = pg_query::parse(&format!("SELECT {}", a.value)).map_err(|e| {
                tracing::warn!("a secured SET source does not parse: {e}");
                not_supported("this SET")
            })?;
            let relations = super::verify::relations(&parsed)?;
            for _ in 1..columns.len() {
                self.expected.extend(relations.iter().cloned());
            }
        }
        Ok(())
    }

    /// Relations a condition pgward prints reads (trusted policy SQL).
    fn note(&mut self, condition: &str) -> Result<(), PgError> {
        if !condition.to_ascii_lowercase().contains("select") {
            return Ok(());
        }
        let parsed = pg_query::parse(&format!("SELECT 1 WHERE {condition}")).map_err(|e| {
            tracing::error!("a policy condition does not parse: {e}");
            not_supported("this write")
        })?;
        self.expected.extend(super::verify::relations(&parsed)?);
        Ok(())
    }

    fn secure_mirror(&mut self, m: Mirror, items: Vec<(&str, Item)>) -> Result<MirrorOut, PgError> {
        let mut query = parse_select("SELECT 1")?;
        let n_targets = m.targets.len();
        let n_from = m.from.len();
        let has_source = m.source.is_some();
        {
            let SetExpr::Select(select) = query.body.as_mut() else {
                return Err(not_supported("this write"));
            };
            select.projection = m.projection;
            select.selection = m.selection;
            let mut from: Vec<TableWithJoins> = m
                .targets
                .iter()
                .map(|(p, q)| TableWithJoins {
                    relation: placeholder_factor(p, q),
                    joins: Vec::new(),
                })
                .collect();
            from.extend(m.from);
            if let Some(source) = m.source {
                from.push(TableWithJoins {
                    relation: TableFactor::Derived {
                        lateral: false,
                        subquery: source,
                        alias: Some(TableAlias {
                            explicit: true,
                            name: Ident::with_quote('"', "pgward_source"),
                            columns: Vec::new(),
                            at: None,
                        }),
                        sample: None,
                    },
                    joins: Vec::new(),
                });
            }
            select.from = from;
        }
        query.with = m.with;
        super::check_query_shape(&query)?;
        let ctx = self.env.ctx;
        let mut securer = Securer::new(ctx.catalog, ctx.search_path, ctx.access);
        (self.env.configure)(&mut securer);
        for (p, item) in items {
            securer.add_target(p, item);
        }
        super::secure_node(&mut query, &mut securer)?;
        let hits = std::mem::take(&mut securer.partial_hits);
        if !hits.is_empty() {
            for cond in hits.values() {
                let cond = cond.clone();
                self.note(&cond)?;
            }
            cells(&mut query, &hits)?;
        }
        self.expected.extend(securer.expected);
        self.only_used.extend(securer.only_used);
        let with = query.with.take();
        let SetExpr::Select(select) = *query.body else {
            return Err(not_supported("this write"));
        };
        let select = *select;
        let mut from = select.from;
        let source = if has_source {
            match from.pop().map(|t| t.relation) {
                Some(TableFactor::Derived { subquery, .. }) => Some(subquery),
                _ => return Err(not_supported("this write")),
            }
        } else {
            None
        };
        if from.len() != n_targets + n_from {
            return Err(not_supported("this write"));
        }
        let from = from.split_off(n_targets);
        Ok(MirrorOut {
            with,
            from,
            source,
            projection: select.projection,
            selection: select.selection,
        })
    }

    // ---- UPDATE ------------------------------------------------------------

    fn update(
        &mut self,
        update: Update,
        with: Option<With>,
    ) -> Result<(Statement, Option<ResultShape>), PgError> {
        let Update {
            update_token,
            optimizer_hints,
            table,
            assignments,
            from,
            selection,
            returning,
            output,
            or,
            order_by,
            limit,
        } = update;
        if !optimizer_hints.is_empty()
            || output.is_some()
            || or.is_some()
            || !order_by.is_empty()
            || limit.is_some()
            || !table.joins.is_empty()
        {
            return Err(not_supported("this form of UPDATE"));
        }
        let from = match from {
            None => Vec::new(),
            Some(UpdateTableFromKind::AfterSet(f)) => f,
            Some(UpdateTableFromKind::BeforeSet(_)) => {
                return Err(not_supported("this form of UPDATE"));
            }
        };
        let (name, alias) = plain_target(&table.relation)?;
        let t = self.target(&name, alias.as_ref())?;
        let upd = self.access(&t, Command::Update)?;
        let set_cols = set_columns(&assignments, &t)?;
        let chosen = entries_with(&upd, &set_cols);
        if chosen.is_empty() {
            return Err(column_denied(&t, &upd, &set_cols));
        }
        whole_row(&t, &[t.qualifier.as_str()], &assignments)?;
        let (returning, leakproof) =
            self.read_parts(&t, alias.as_ref(), &from, &selection, returning)?;
        let n_set = assignments.len();
        let (targets_lhs, values): (Vec<AssignmentTarget>, Vec<Expr>) =
            assignments.into_iter().map(|a| (a.target, a.value)).unzip();
        let mut projection: Vec<SelectItem> =
            values.into_iter().map(SelectItem::UnnamedExpr).collect();
        let n_ret = returning.as_ref().map_or(0, Vec::len);
        projection.extend(returning.clone().unwrap_or_default());
        let item = t.item(&t.qualifier, !t.aliased)?;
        let out = self.secure_mirror(
            Mirror {
                with,
                targets: vec![(TARGET, t.qualifier.clone())],
                from,
                source: None,
                projection,
                selection,
            },
            vec![(TARGET, item)],
        )?;
        let mut projection = out.projection;
        let secured_returning: Vec<SelectItem> = projection.split_off(n_set);
        debug_assert_eq!(secured_returning.len(), n_ret);
        let assignments = targets_lhs
            .into_iter()
            .zip(projection)
            .map(|(target, item)| {
                Ok(Assignment {
                    target,
                    value: item_expr(item)?,
                })
            })
            .collect::<Result<Vec<_>, PgError>>()?;
        self.note_multi_assignments(&assignments)?;
        // Rows: an UPDATE entry with the SET columns admits it, and the
        // session sees it.
        let q = t.qualifier.clone();
        let rows_pred: Vec<Option<&Expr>> = chosen.iter().map(|e| e.rows.as_ref()).collect();
        let mut rows = t.conjuncts(&q, &rows_pred, &upd.restrictive);
        rows.extend(t.visible(&q));
        let selection = self.guarded_where(and(&rows), out.selection, leakproof)?;
        let check_pred: Vec<Option<&Expr>> = chosen.iter().map(|e| e.check.as_ref()).collect();
        let mut check = t.conjuncts(&q, &check_pred, &upd.restrictive_checks);
        // The new row must stay SELECT-visible, with or without RETURNING:
        // a user cannot move a row out of their own reach (PostgreSQL
        // refuses it whenever the UPDATE reads a column).
        check.extend(t.visible(&q));
        let check = and(&check);
        let from = (!out.from.is_empty()).then_some(UpdateTableFromKind::AfterSet(out.from));
        let write = |returning| {
            Statement::Update(Update {
                update_token,
                optimizer_hints: Vec::new(),
                table: TableWithJoins {
                    relation: target_factor(&t, alias.clone()),
                    joins: Vec::new(),
                },
                assignments,
                from,
                selection,
                returning,
                output: None,
                or: None,
                order_by: Vec::new(),
                limit: None,
            })
        };
        self.expected.push(t.reference());
        self.finish(
            write,
            returning.map(|r| (r, secured_returning)),
            check.map(|c| check_call(&c, &new_row_message(t.relation))),
            out.with,
            WriteTag::Update,
        )
    }

    /// WHERE of an UPDATE or DELETE: pgward's row condition, and the
    /// client's WHERE run only on rows it admits unless it is leakproof.
    fn guarded_where(
        &mut self,
        rows: Option<String>,
        client: Option<Expr>,
        leakproof: bool,
    ) -> Result<Option<Expr>, PgError> {
        let Some(rows) = rows else {
            return Ok(client);
        };
        let Some(client) = client else {
            self.note(&rows)?;
            return Ok(Some(parse_expr(&rows)?));
        };
        if leakproof {
            self.note(&rows)?;
            return Ok(Some(template(
                &format!("{rows} AND {}", hole(0)),
                vec![Some(client)],
            )?));
        }
        self.note(&rows)?;
        self.note(&rows)?;
        Ok(Some(template(
            &format!("{rows} AND CASE WHEN {rows} THEN {} END", hole(0)),
            vec![Some(client)],
        )?))
    }

    /// Whether the client's WHERE on the target alone holds only leakproof
    /// comparisons (`fence`): then it needs no guard.
    /// The read parts UPDATE and DELETE share: whole-row use of the target
    /// in FROM/USING, WHERE and RETURNING is refused; RETURNING is expanded
    /// over the target and the FROM items; and whether the WHERE may run
    /// unguarded (no FROM item, and leakproof).
    fn read_parts(
        &self,
        t: &Target<'_>,
        alias: Option<&Ident>,
        from: &Vec<TableWithJoins>,
        selection: &Option<Expr>,
        returning: Option<Vec<SelectItem>>,
    ) -> Result<(Option<Vec<SelectItem>>, bool), PgError> {
        let names = [t.qualifier.as_str()];
        whole_row(t, &names, from)?;
        whole_row(t, &names, selection)?;
        whole_row(t, &names, &returning)?;
        let from_names = from_qualifiers(from);
        let returning = returning
            .map(|r| expand_returning(r, t, &from_names))
            .transpose()?;
        let leakproof = from.is_empty()
            && selection
                .as_ref()
                .is_some_and(|w| self.leakproof(t, alias, w));
        Ok((returning, leakproof))
    }

    fn leakproof(&self, t: &Target<'_>, alias: Option<&Ident>, w: &Expr) -> bool {
        let alias = alias.map_or_else(String::new, |a| format!(" AS {a}"));
        let Ok(mut q) = parse_select(&format!("SELECT 1 FROM {}{alias}", t.name())) else {
            return false;
        };
        let SetExpr::Select(select) = q.body.as_mut() else {
            return false;
        };
        select.selection = Some(w.clone());
        let ctx = self.env.ctx;
        let mut securer = Securer::new(ctx.catalog, ctx.search_path, ctx.access);
        (self.env.configure)(&mut securer);
        let params = securer.parameter_types().to_vec();
        let relation = t.relation;
        fence::block_is_leakproof(ctx.catalog, select, &params, &|n| {
            let (schema, name) = secure::split_name(n).ok()?;
            (schema.as_deref() == Some(relation.schema.as_str()) && name == relation.name)
                .then_some(relation)
        })
    }

    /// The statement to forward: the write as is, with pgward's check in
    /// its RETURNING (`Silent`), or wrapped so that the client's RETURNING
    /// rows come out of a SELECT (`Tagged`).
    fn finish(
        &mut self,
        write: impl FnOnce(Option<Vec<SelectItem>>) -> Statement,
        returning: Option<(Vec<SelectItem>, Vec<SelectItem>)>,
        check: Option<String>,
        with: Option<With>,
        tag: WriteTag,
    ) -> Result<(Statement, Option<ResultShape>), PgError> {
        if let Some(names) = &mut self.cte {
            let mut items = Vec::new();
            if let Some((client, secured)) = returning {
                for item in &client {
                    names.push(item_name(item)?);
                }
                for (i, item) in secured.into_iter().enumerate() {
                    items.push(SelectItem::ExprWithAlias {
                        expr: item_expr(item)?,
                        alias: Ident::with_quote('"', format!("pgward_{}", i + 1)),
                    });
                }
            }
            if let Some(check) = check {
                self.note(&check)?;
                items.push(SelectItem::ExprWithAlias {
                    expr: parse_expr(&check)?,
                    alias: Ident::with_quote('"', "pgward_ok"),
                });
            }
            let statement = write((!items.is_empty()).then_some(items));
            return Ok((statement, None));
        }
        let with_write = |statement: Statement, with: Option<With>| match with {
            None => statement,
            Some(with) => {
                let body = match statement {
                    Statement::Insert(_) => SetExpr::Insert(statement),
                    Statement::Update(_) => SetExpr::Update(statement),
                    _ => SetExpr::Delete(statement),
                };
                let mut q = match parse_select("SELECT 1") {
                    Ok(q) => q,
                    Err(_) => return placeholder_statement(),
                };
                q.with = Some(with);
                q.body = Box::new(body);
                Statement::Query(Box::new(q))
            }
        };
        match (returning, check) {
            (returning, None) => {
                let returning = returning.map(|(_, secured)| secured);
                Ok((with_write(write(returning), with), None))
            }
            (None, Some(check)) => {
                self.note(&check)?;
                let check = parse_expr(&check)?;
                let statement = write(Some(vec![SelectItem::UnnamedExpr(check)]));
                Ok((with_write(statement, with), Some(ResultShape::Silent)))
            }
            (Some((client, secured)), Some(check)) => {
                self.note(&check)?;
                let names: Vec<String> = client.iter().map(item_name).collect::<Result<_, _>>()?;
                let mut items = Vec::new();
                for (i, item) in secured.into_iter().enumerate() {
                    items.push(SelectItem::ExprWithAlias {
                        expr: item_expr(item)?,
                        alias: Ident::with_quote('"', format!("pgward_{}", i + 1)),
                    });
                }
                items.push(SelectItem::ExprWithAlias {
                    expr: parse_expr(&check)?,
                    alias: Ident::with_quote('"', "pgward_ok"),
                });
                let statement = write(Some(items));
                let columns: Vec<String> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("\"pgward_{}\" AS {}", i + 1, quote_ident(n)))
                    .collect();
                if columns.is_empty() {
                    return Err(not_supported("RETURNING without columns"));
                }
                let mut outer = parse_select(&format!(
                    "WITH \"pgward_w\" AS (SELECT 1) SELECT {} FROM \"pgward_w\"",
                    columns.join(", ")
                ))?;
                let body = match statement {
                    Statement::Insert(_) => SetExpr::Insert(statement),
                    Statement::Update(_) => SetExpr::Update(statement),
                    _ => SetExpr::Delete(statement),
                };
                let Some(mut outer_with) = outer.with.take() else {
                    return Err(not_supported("this write"));
                };
                if let Some(cte) = outer_with.cte_tables.first_mut() {
                    *cte.query.body = body;
                }
                if let Some(mut client_with) = with {
                    client_with.cte_tables.extend(outer_with.cte_tables);
                    outer_with = client_with;
                }
                outer.with = Some(outer_with);
                self.expected.push("pgward_w".to_string());
                Ok((
                    Statement::Query(Box::new(outer)),
                    Some(ResultShape::Tagged(tag)),
                ))
            }
        }
    }

    // ---- DELETE ------------------------------------------------------------

    fn delete(
        &mut self,
        delete: Delete,
        with: Option<With>,
    ) -> Result<(Statement, Option<ResultShape>), PgError> {
        let Delete {
            delete_token,
            optimizer_hints,
            tables,
            from,
            using,
            selection,
            returning,
            output,
            order_by,
            limit,
        } = delete;
        let from = match from {
            FromTable::WithFromKeyword(f) => f,
            FromTable::WithoutKeyword(_) => return Err(not_supported("this form of DELETE")),
        };
        if !optimizer_hints.is_empty()
            || !tables.is_empty()
            || output.is_some()
            || !order_by.is_empty()
            || limit.is_some()
            || from.len() != 1
            || !from[0].joins.is_empty()
        {
            return Err(not_supported("this form of DELETE"));
        }
        let (name, alias) = plain_target(&from[0].relation)?;
        let t = self.target(&name, alias.as_ref())?;
        let del = self.access(&t, Command::Delete)?;
        let using = using.unwrap_or_default();
        let (returning, leakproof) =
            self.read_parts(&t, alias.as_ref(), &using, &selection, returning)?;
        let item = t.item(&t.qualifier, !t.aliased)?;
        let out = self.secure_mirror(
            Mirror {
                with,
                targets: vec![(TARGET, t.qualifier.clone())],
                from: using,
                source: None,
                projection: returning.clone().unwrap_or_default(),
                selection,
            },
            vec![(TARGET, item)],
        )?;
        let q = t.qualifier.clone();
        let rows_pred: Vec<Option<&Expr>> = del.entries.iter().map(|e| e.rows.as_ref()).collect();
        let mut rows = t.conjuncts(&q, &rows_pred, &del.restrictive);
        rows.extend(t.visible(&q));
        let selection = self.guarded_where(and(&rows), out.selection, leakproof)?;
        let using = (!out.from.is_empty()).then_some(out.from);
        let secured_returning = returning.map(|r| (r, out.projection));
        let statement = |returning| {
            Statement::Delete(Delete {
                delete_token,
                optimizer_hints: Vec::new(),
                tables: Vec::new(),
                from: FromTable::WithFromKeyword(vec![TableWithJoins {
                    relation: target_factor(&t, alias.clone()),
                    joins: Vec::new(),
                }]),
                using,
                selection,
                returning,
                output: None,
                order_by: Vec::new(),
                limit: None,
            })
        };
        self.expected.push(t.reference());
        self.finish(
            statement,
            secured_returning,
            None,
            out.with,
            WriteTag::Delete,
        )
    }

    // ---- INSERT ------------------------------------------------------------

    fn insert(
        &mut self,
        insert: Insert,
        with: Option<With>,
    ) -> Result<(Statement, Option<ResultShape>), PgError> {
        let Insert {
            insert_token,
            optimizer_hints,
            or,
            ignore,
            into,
            table,
            table_alias,
            columns,
            overwrite,
            source,
            assignments,
            partitioned,
            after_columns,
            has_table_keyword,
            on,
            returning,
            output,
            replace_into,
            priority,
            insert_alias,
            settings,
            format_clause,
            multi_table_insert_type,
            multi_table_into_clauses,
            multi_table_when_clauses,
            multi_table_else_clause,
        } = insert;
        if !optimizer_hints.is_empty()
            || or.is_some()
            || ignore
            || !into
            || overwrite
            || !assignments.is_empty()
            || partitioned.is_some()
            || !after_columns.is_empty()
            || has_table_keyword
            || output.is_some()
            || replace_into
            || priority.is_some()
            || insert_alias.is_some()
            || settings.is_some()
            || format_clause.is_some()
            || multi_table_insert_type.is_some()
            || !multi_table_into_clauses.is_empty()
            || !multi_table_when_clauses.is_empty()
            || multi_table_else_clause.is_some()
        {
            return Err(not_supported("this form of INSERT"));
        }
        let TableObject::TableName(name) = &table else {
            return Err(not_supported("this form of INSERT"));
        };
        let alias = table_alias.as_ref().map(|a| a.alias.clone());
        let t = self.target(name, alias.as_ref())?;
        let ins = self.access(&t, Command::Insert)?;
        // Permission bits: owner, permission and memberships (bits_insert).
        let defaults = self.ctx().access.insert_defaults(t.relation);
        let join = defaults.as_ref().and_then(|d| d.join.clone());
        let inserted = inserted_columns(&t, &ins, &columns, source.as_deref())?;
        let chosen = entries_with(&ins, &inserted);
        if chosen.is_empty() {
            return Err(column_denied(&t, &ins, &inserted));
        }
        let (conflict_target, do_update) = match on {
            None => (None, None),
            Some(OnInsert::OnConflict(c)) => match c.action {
                OnConflictAction::DoNothing => (Some(c.conflict_target), None),
                OnConflictAction::DoUpdate(d) => (Some(c.conflict_target), Some(d)),
            },
            Some(_) => return Err(not_supported("this form of INSERT")),
        };
        let names = [t.qualifier.as_str(), "excluded"];
        whole_row(&t, &names, &returning)?;
        whole_row(&t, &names, &do_update)?;
        let returning = returning
            .map(|r| expand_returning(r, &t, &[]))
            .transpose()?;
        let q = t.qualifier.clone();
        // ON CONFLICT DO UPDATE: UPDATE rules for the conflicting row.
        let mut update_parts = None;
        if let Some(d) = do_update {
            let upd = self.access(&t, Command::Update)?;
            let set_cols = set_columns(&d.assignments, &t)?;
            let upd_chosen: Vec<Entry> =
                entries_with(&upd, &set_cols).into_iter().cloned().collect();
            if upd_chosen.is_empty() {
                return Err(column_denied(&t, &upd, &set_cols));
            }
            update_parts = Some((d, upd, upd_chosen));
        }
        let n_ret = returning.as_ref().map_or(0, Vec::len);
        let mut projection = returning.clone().unwrap_or_default();
        let mut targets = vec![(TARGET, q.clone())];
        let mut items = vec![(TARGET, t.item(&q, !t.aliased)?)];
        let mut do_where = None;
        let mut lhs = Vec::new();
        if let Some((d, _, _)) = &mut update_parts {
            for a in std::mem::take(&mut d.assignments) {
                lhs.push(a.target);
                projection.push(SelectItem::UnnamedExpr(a.value));
            }
            do_where = d.selection.take();
            targets.push((EXCLUDED, "excluded".to_string()));
            items.push((EXCLUDED, t.item("excluded", false)?));
        }
        let out = self.secure_mirror(
            Mirror {
                with,
                targets,
                from: Vec::new(),
                source,
                projection,
                selection: do_where,
            },
            items,
        )?;
        let mut projection = out.projection;
        let set_values = projection.split_off(n_ret);
        // New rows: the INSERT check; the updated path's, told apart by
        // xmax = 0 (PostgreSQL 15) when ON CONFLICT DO UPDATE can update.
        let ins_pred: Vec<Option<&Expr>> = chosen.iter().map(|e| e.check.as_ref()).collect();
        let mut ins_check = t.conjuncts(&q, &ins_pred, &ins.restrictive_checks);
        let needs_visible = returning.is_some() || update_parts.is_some();
        if needs_visible {
            ins_check.extend(t.visible(&q));
        }
        let mut on = None;
        let check = match update_parts {
            None => {
                if let Some(target) = conflict_target {
                    on = Some(OnInsert::OnConflict(sqlparser::ast::OnConflict {
                        conflict_target: target,
                        action: OnConflictAction::DoNothing,
                    }));
                }
                and(&ins_check)
            }
            Some((_, upd, upd_chosen)) => {
                let rows_pred: Vec<Option<&Expr>> =
                    upd_chosen.iter().map(|e| e.rows.as_ref()).collect();
                let mut existing = t.conjuncts(&q, &rows_pred, &upd.restrictive);
                existing.extend(t.visible(&q));
                // PostgreSQL checks the proposed row (`excluded`, defaults
                // filled in) with the INSERT checks before it takes the
                // conflict path; then the existing row with UPDATE rules.
                let proposed = and(&t.conjuncts("excluded", &ins_pred, &ins.restrictive_checks))
                    .map(|e| check_call(&e, &new_row_message(t.relation)));
                let existing = and(&existing).map(|e| check_call(&e, &using_message(t.relation)));
                let guard = match (proposed, existing) {
                    (Some(p), Some(e)) => Some(format!("{p} AND {e}")),
                    (p, e) => p.or(e),
                };
                let selection = match (guard, out.selection) {
                    (None, w) => w,
                    (Some(g), None) => {
                        self.note(&g)?;
                        Some(parse_expr(&g)?)
                    }
                    (Some(g), Some(w)) => {
                        self.note(&g)?;
                        Some(template(
                            &format!("CASE WHEN {g} THEN {} END", hole(0)),
                            vec![Some(w)],
                        )?)
                    }
                };
                let assignments = lhs
                    .into_iter()
                    .zip(set_values)
                    .map(|(target, item)| {
                        Ok(Assignment {
                            target,
                            value: item_expr(item)?,
                        })
                    })
                    .collect::<Result<Vec<_>, PgError>>()?;
                self.note_multi_assignments(&assignments)?;
                on = Some(OnInsert::OnConflict(sqlparser::ast::OnConflict {
                    conflict_target: conflict_target.flatten(),
                    action: OnConflictAction::DoUpdate(sqlparser::ast::DoUpdate {
                        assignments,
                        selection,
                    }),
                }));
                let upd_pred: Vec<Option<&Expr>> =
                    upd_chosen.iter().map(|e| e.check.as_ref()).collect();
                let mut upd_check = t.conjuncts(&q, &upd_pred, &upd.restrictive_checks);
                upd_check.extend(t.visible(&q));
                match (and(&ins_check), and(&upd_check)) {
                    (None, None) => None,
                    (i, u) => Some(format!(
                        "CASE WHEN {}.xmax = 0 THEN {} ELSE {} END",
                        quote_ident(&q),
                        i.unwrap_or_else(|| "true".into()),
                        u.unwrap_or_else(|| "true".into())
                    )),
                }
            }
        };
        let secured_returning = returning.map(|r| (r, projection));
        let mut source = out.source;
        let mut columns = columns;
        if let Some(d) = &defaults {
            super::bits_insert::add_columns(d, t.relation, &mut columns, &mut source)?;
        }
        let statement = |returning| {
            Statement::Insert(Insert {
                insert_token,
                optimizer_hints: Vec::new(),
                or: None,
                ignore: false,
                into: true,
                table: TableObject::TableName(t.name()),
                table_alias,
                columns,
                overwrite: false,
                source,
                assignments: Vec::new(),
                partitioned: None,
                after_columns: Vec::new(),
                has_table_keyword: false,
                on,
                returning,
                output: None,
                replace_into: false,
                priority: None,
                insert_alias: None,
                settings: None,
                format_clause: None,
                multi_table_insert_type: None,
                multi_table_into_clauses: Vec::new(),
                multi_table_when_clauses: Vec::new(),
                multi_table_else_clause: None,
            })
        };
        self.expected.push(t.reference());
        // New rows that join groups are written through the INSERT's
        // RETURNING (bits_insert), which only the checked forms of a write
        // carry: a session no check applies to (the admin group) gets one
        // that always passes.
        let check = check.or_else(|| join.as_ref().map(|_| "true".to_string()));
        let (statement, shape) = self.finish(
            statement,
            secured_returning,
            check.map(|c| check_call(&c, &new_row_message(t.relation))),
            out.with,
            WriteTag::Insert,
        )?;
        match join {
            // Inside a WITH: joined where its private name is known.
            Some(join) if self.cte.is_some() => {
                self.cte_join = Some(join);
                Ok((statement, shape))
            }
            Some(join) => {
                super::bits_insert::join_groups(statement, shape, &join, &mut self.expected)
            }
            None => Ok((statement, shape)),
        }
    }
}

/// `COPY t [(cols)] FROM STDIN`: allowed when one INSERT entry has every
/// target column and no check applies; the table is printed
/// schema-qualified. Returns the relation reference.
pub fn copy_from(
    table_name: &mut ObjectName,
    columns: &[Ident],
    ctx: &Context<'_>,
) -> Result<String, PgError> {
    let (schema, relname) = secure::split_name(table_name)?;
    let relation = ctx
        .catalog
        .resolve_relation(schema.as_deref(), &relname, ctx.search_path)
        .ok_or_else(|| secure::unknown_relation(schema.as_deref(), &relname))?;
    if super::catalog_rules::rule(relation).is_some()
        || !matches!(relation.kind, RelKind::Table | RelKind::PartitionedTable)
    {
        return Err(permission_denied(relation));
    }
    let ins = ctx
        .access
        .table(relation, Command::Insert)
        .ok_or_else(|| permission_denied(relation))?;
    let cols: BTreeSet<String> = if columns.is_empty() {
        relation.columns.iter().map(|c| c.name.clone()).collect()
    } else {
        columns.iter().map(fold).collect()
    };
    let having: Vec<&Entry> = ins
        .entries
        .iter()
        .filter(|e| cols.iter().all(|c| e.columns.contains(c)))
        .collect();
    let fits = having.iter().any(|e| e.check.is_none());
    if !fits || !ins.restrictive_checks.is_empty() {
        // The hint names the actual reason: a column no INSERT entry has
        // (or none has them all), or a row check on new rows.
        let rule = "COPY FROM is allowed only where one INSERT entry has every target column \
                    and no row check applies";
        let hint = if ins.entries.is_empty() {
            format!(
                "no INSERT policy on {} applies to this session: {rule}",
                relation.name
            )
        } else if let Some(c) = cols.iter().find(|c| !ins.sees_column(c)) {
            let list = if columns.is_empty() {
                "; list the columns to copy, or use INSERT"
            } else {
                "; use INSERT"
            };
            format!("no INSERT entry of this session has column \"{c}\": {rule}{list}")
        } else if having.is_empty() {
            format!("no single INSERT entry has every target column: {rule}; use INSERT")
        } else {
            format!(
                "a row check applies to new rows of {}: {rule}; use INSERT, which pgward checks",
                relation.name
            )
        };
        return Err(not_supported("COPY FROM for this table").with_hint(hint));
    }
    *table_name = ObjectName(vec![
        ObjectNamePart::Identifier(Ident::with_quote('"', relation.schema.clone())),
        ObjectNamePart::Identifier(Ident::with_quote('"', relation.name.clone())),
    ]);
    Ok(secure::qualified(relation))
}

fn placeholder_factor(placeholder: &str, qualifier: &str) -> TableFactor {
    TableFactor::Table {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote(
            '"',
            placeholder,
        ))]),
        alias: Some(TableAlias {
            explicit: true,
            name: Ident::with_quote('"', qualifier),
            columns: Vec::new(),
            at: None,
        }),
        args: None,
        with_hints: Vec::new(),
        version: None,
        with_ordinality: false,
        partitions: Vec::new(),
        json_path: None,
        sample: None,
        index_hints: Vec::new(),
    }
}

fn target_factor(t: &Target<'_>, alias: Option<Ident>) -> TableFactor {
    TableFactor::Table {
        name: t.name(),
        alias: alias.map(|name| TableAlias {
            explicit: true,
            name,
            columns: Vec::new(),
            at: None,
        }),
        args: None,
        with_hints: Vec::new(),
        version: None,
        with_ordinality: false,
        partitions: Vec::new(),
        json_path: None,
        sample: None,
        index_hints: Vec::new(),
    }
}

/// The name and alias of a plain table as a write target.
fn plain_target(factor: &TableFactor) -> Result<(ObjectName, Option<Ident>), PgError> {
    match factor {
        TableFactor::Table {
            name,
            alias,
            args: None,
            with_hints,
            version: None,
            with_ordinality: false,
            partitions,
            json_path: None,
            sample: None,
            index_hints,
        } if with_hints.is_empty() && partitions.is_empty() && index_hints.is_empty() => {
            if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                return Err(not_supported("a column alias list on a write target"));
            }
            Ok((name.clone(), alias.as_ref().map(|a| a.name.clone())))
        }
        _ => Err(not_supported("this write target")),
    }
}

/// The columns SET names (`col`, `(a, b)`); each must exist.
fn set_columns(assignments: &[Assignment], t: &Target<'_>) -> Result<BTreeSet<String>, PgError> {
    let mut cols = BTreeSet::new();
    for a in assignments {
        let names: Vec<&ObjectName> = match &a.target {
            AssignmentTarget::ColumnName(n) => vec![n],
            AssignmentTarget::Tuple(ns) => ns.iter().collect(),
        };
        for n in names {
            let [ObjectNamePart::Identifier(id)] = n.0.as_slice() else {
                return Err(not_supported("SET of a field or array element"));
            };
            cols.insert(existing_column(t, &fold(id))?);
        }
    }
    Ok(cols)
}

fn existing_column(t: &Target<'_>, name: &str) -> Result<String, PgError> {
    if t.has_column(name) {
        Ok(name.to_string())
    } else {
        Err(PgError::error(
            "42703",
            format!(
                "column \"{name}\" of relation \"{}\" does not exist",
                t.relation.name
            ),
        ))
    }
}

/// The columns an INSERT writes: the listed ones, else the first k of the
/// table; a column whose every VALUES item is DEFAULT is not written.
fn inserted_columns(
    t: &Target<'_>,
    ins: &TableAccess,
    columns: &[ObjectName],
    source: Option<&Query>,
) -> Result<BTreeSet<String>, PgError> {
    let listed: Vec<String> = if columns.is_empty() {
        let width = match source {
            None => Some(0),
            Some(q) => match q.body.as_ref() {
                SetExpr::Values(v) => Some(v.rows.first().map_or(0, |r| r.len())),
                _ => scope::query_outputs(q).map(|o| o.len()),
            },
        };
        match width {
            Some(k) => t
                .relation
                .columns
                .iter()
                .take(k)
                .map(|c| c.name.clone())
                .collect(),
            None => {
                // Every column then, and one entry must have them all.
                let all: Vec<String> = t.relation.columns.iter().map(|c| c.name.clone()).collect();
                if !ins
                    .entries
                    .iter()
                    .any(|e| all.iter().all(|c| e.columns.contains(c)))
                {
                    return Err(PgError::error(
                        code::INSUFFICIENT_PRIVILEGE,
                        format!("permission denied for table {}", t.relation.name),
                    )
                    .with_hint("name the inserted columns: INSERT INTO t (a, b) SELECT …"));
                }
                all
            }
        }
    } else {
        let mut names = Vec::new();
        for c in columns {
            let [ObjectNamePart::Identifier(id)] = c.0.as_slice() else {
                return Err(not_supported("INSERT into a field or array element"));
            };
            names.push(existing_column(t, &fold(id))?);
        }
        names
    };
    let mut inserted: BTreeSet<String> = listed.iter().cloned().collect();
    if let Some(q) = source
        && let SetExpr::Values(v) = q.body.as_ref()
        && !v.rows.is_empty()
    {
        for (i, name) in listed.iter().enumerate() {
            if v.rows.iter().all(|r| r.get(i).is_some_and(is_default)) {
                inserted.remove(name);
            }
        }
    }
    Ok(inserted)
}

fn is_default(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

fn entries_with<'a>(access: &'a TableAccess, cols: &BTreeSet<String>) -> Vec<&'a Entry> {
    access
        .entries
        .iter()
        .filter(|e| cols.iter().all(|c| e.columns.contains(c)))
        .collect()
}

fn column_denied(t: &Target<'_>, access: &TableAccess, cols: &BTreeSet<String>) -> PgError {
    match cols.iter().find(|c| !access.sees_column(c)) {
        Some(c) => PgError::error(
            code::INSUFFICIENT_PRIVILEGE,
            format!(
                "permission denied for column {c} of table {}",
                t.relation.name
            ),
        ),
        None => permission_denied(t.relation),
    }
}

/// Whole-row use of the target (`o`, `o.*`, `f(o)`, `(o).x`, `o::text`) is
/// refused unless every column is visible (THREATS.md "whole-row on write
/// targets").
fn whole_row<T: Visit>(t: &Target<'_>, names: &[&str], node: &T) -> Result<(), PgError> {
    if t.fully_visible() {
        return Ok(());
    }
    struct W<'a> {
        names: &'a [&'a str],
        relation: &'a Relation,
    }
    impl W<'_> {
        fn named(&self, n: &ObjectName) -> bool {
            matches!(n.0.last(), Some(ObjectNamePart::Identifier(id)) if self.names.contains(&fold(id).as_str()))
        }
    }
    impl Visitor for W<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Identifier(id) => {
                    let n = fold(id);
                    if self.names.contains(&n.as_str())
                        && !self.relation.columns.iter().any(|c| c.name == n)
                    {
                        return ControlFlow::Break(());
                    }
                }
                Expr::QualifiedWildcard(n, _) if self.named(n) => return ControlFlow::Break(()),
                Expr::Function(f) => {
                    if let FunctionArguments::List(list) = &f.args {
                        for a in &list.args {
                            let arg = match a {
                                FunctionArg::Unnamed(a) => a,
                                FunctionArg::Named { arg, .. }
                                | FunctionArg::ExprNamed { arg, .. } => arg,
                            };
                            if let FunctionArgExpr::QualifiedWildcard(n) = arg
                                && self.named(n)
                            {
                                return ControlFlow::Break(());
                            }
                        }
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
            for item in &select.projection {
                if let SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(n),
                    _,
                ) = item
                    && self.named(n)
                {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    match node.visit(&mut W {
        names,
        relation: t.relation,
    }) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(PgError::error(
            code::INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {}", t.relation.name),
        )
        .with_hint(
            "a whole-row reference to a write target needs every column visible; name the columns",
        )),
    }
}

/// Qualifiers of FROM/USING items, for `RETURNING *`.
fn from_qualifiers(from: &[TableWithJoins]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut factor = |f: &TableFactor| {
        let name = match f {
            TableFactor::Table { name, alias, .. } => alias
                .as_ref()
                .map(|a| fold(&a.name))
                .or_else(|| match name.0.last() {
                    Some(ObjectNamePart::Identifier(id)) => Some(fold(id)),
                    _ => None,
                }),
            TableFactor::Derived { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::UNNEST { alias, .. } => alias.as_ref().map(|a| fold(&a.name)),
            _ => None,
        };
        out.push(name);
    };
    for twj in from {
        factor(&twj.relation);
        for j in &twj.joins {
            factor(&j.relation);
        }
    }
    out
}

/// `*` and `t.*` of a RETURNING list: the target's visible columns (and
/// the FROM items' own `x.*`); every unaliased item gets the name
/// PostgreSQL would give it, so that cell conditions do not rename it.
fn expand_returning(
    items: Vec<SelectItem>,
    t: &Target<'_>,
    from: &[Option<String>],
) -> Result<Vec<SelectItem>, PgError> {
    let target_columns = || -> Vec<SelectItem> {
        t.relation
            .columns
            .iter()
            .filter(|c| t.select.sees_column(&c.name))
            .map(|c| SelectItem::ExprWithAlias {
                expr: Expr::CompoundIdentifier(vec![
                    Ident::with_quote('"', t.qualifier.clone()),
                    Ident::with_quote('"', c.name.clone()),
                ]),
                alias: Ident::with_quote('"', c.name.clone()),
            })
            .collect()
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            SelectItem::Wildcard(_) => {
                out.extend(target_columns());
                for f in from {
                    let Some(f) = f else {
                        return Err(not_supported("RETURNING * with an unnamed FROM item"));
                    };
                    out.push(SelectItem::QualifiedWildcard(
                        SelectItemQualifiedWildcardKind::ObjectName(ObjectName(vec![
                            ObjectNamePart::Identifier(Ident::with_quote('"', f.clone())),
                        ])),
                        Default::default(),
                    ));
                }
            }
            SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(n),
                token,
            ) if matches!(n.0.as_slice(), [ObjectNamePart::Identifier(id)] if fold(id) == t.qualifier) =>
            {
                let _ = token;
                out.extend(target_columns());
            }
            SelectItem::UnnamedExpr(expr) => {
                let alias = Ident::with_quote('"', figure_colname(&expr));
                out.push(SelectItem::ExprWithAlias { expr, alias });
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return Err(permission_denied(t.relation));
    }
    Ok(out)
}

/// PostgreSQL's `FigureColname`: a column its name, a function its name,
/// a cast its operand's name or else the type's, CASE `case`, otherwise
/// `?column?`.
fn figure_colname(e: &Expr) -> String {
    match e {
        Expr::Nested(inner) => figure_colname(inner),
        Expr::Cast {
            expr, data_type, ..
        } => {
            let inner = figure_colname(expr);
            if inner != "?column?" {
                return inner;
            }
            type_colname(data_type)
        }
        _ => scope::column_name(e),
    }
}

/// The name PostgreSQL gives a cast to this type (its `pg_type` name).
fn type_colname(t: &sqlparser::ast::DataType) -> String {
    let written = t.to_string().to_ascii_lowercase();
    let base = written.split('(').next().unwrap_or("").trim().to_string();
    let base = base
        .strip_prefix("pg_catalog.")
        .unwrap_or(&base)
        .to_string();
    match base.as_str() {
        "int" | "integer" => "int4".into(),
        "bigint" => "int8".into(),
        "smallint" => "int2".into(),
        "boolean" => "bool".into(),
        "real" => "float4".into(),
        "double precision" | "float" => "float8".into(),
        "decimal" => "numeric".into(),
        "character varying" => "varchar".into(),
        "character" | "char" => "bpchar".into(),
        "timestamp with time zone" => "timestamptz".into(),
        "timestamp" | "timestamp without time zone" => "timestamp".into(),
        "time with time zone" => "timetz".into(),
        "time without time zone" => "time".into(),
        other if other.ends_with("[]") => "?column?".into(),
        other => other
            .rsplit('.')
            .next()
            .unwrap_or(other)
            .trim_matches('"')
            .to_string(),
    }
}

/// The name of a RETURNING item (after `expand_returning`).
fn item_name(item: &SelectItem) -> Result<String, PgError> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Ok(fold(alias)),
        SelectItem::UnnamedExpr(e) => Ok(figure_colname(e)),
        _ => Err(
            not_supported("RETURNING x.* of a FROM item in a checked write")
                .with_hint("list the columns"),
        ),
    }
}

fn item_expr(item: SelectItem) -> Result<Expr, PgError> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Ok(e),
        _ => Err(
            not_supported("RETURNING x.* of a FROM item in a checked write")
                .with_hint("list the columns"),
        ),
    }
}

/// References that landed on partial columns read as `CASE WHEN <cell
/// condition> THEN <reference> END`.
fn cells(query: &mut Query, hits: &HashMap<usize, String>) -> Result<(), PgError> {
    struct C<'a> {
        hits: &'a HashMap<usize, String>,
        error: Option<PgError>,
    }
    impl VisitorMut for C<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let addr = expr as *const Expr as usize;
            if let Some(cond) = self.hits.get(&addr) {
                let inner =
                    std::mem::replace(expr, Expr::Value(sqlparser::ast::Value::Null.into()));
                match template(
                    &format!("CASE WHEN {cond} THEN {} END", hole(0)),
                    vec![Some(inner)],
                ) {
                    Ok(e) => *expr = e,
                    Err(e) => {
                        self.error = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut c = C { hits, error: None };
    let _ = VisitMut::visit(query, &mut c);
    match c.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn not_supported(what: &str) -> PgError {
    PgError::error(
        code::FEATURE_NOT_SUPPORTED,
        format!("pgward does not support {what}"),
    )
    .with_hint(
        "pgward secures INSERT (VALUES, SELECT, DEFAULT VALUES, ON CONFLICT, RETURNING), \
         UPDATE (SET, FROM, WHERE, RETURNING) and DELETE (USING, WHERE, RETURNING) on tables",
    )
}
