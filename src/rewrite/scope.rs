//! Column references and the scopes PostgreSQL resolves them in, so that
//! naming a hidden column anywhere is refused with 42501 (PRODUCT.md §3
//! semantics 6) rather than left to PostgreSQL's 42703 on the secured
//! subquery that lacks it.
//!
//! Every SELECT is a query level with the FROM items it reads. A reference
//! (`c`, `t.c`, `s.t.c`, `db.s.t.c`) is recorded where it is written and
//! resolved once the level's FROM tree is complete: against the level's own
//! items first, then the levels around it, innermost first, as PostgreSQL
//! does for correlated references (subqueries in any clause, LATERAL, CTE
//! bodies, set-operation branches). `ORDER BY name` and `DISTINCT ON
//! (name)` name an output column first, `GROUP BY name` after the FROM
//! columns of its own level, as PostgreSQL's SQL92 rules have it.
//!
//! Items whose columns pgward cannot list (functions in FROM, derived
//! tables and CTEs over `*`) may supply any unqualified name: such a name
//! goes on to the enclosing levels, and is refused when a hidden column of
//! some relation there has that name (PostgreSQL could land on it); a name
//! that matches nothing is left to PostgreSQL.
//!
//! Must never: let a reference that PostgreSQL would resolve to a hidden
//! column of a secured relation pass.

use std::collections::{BTreeMap, BTreeSet};

use sqlparser::ast::{
    AccessExpr, Expr, GroupByExpr, JoinConstraint, JoinOperator, ObjectNamePart, OrderByKind,
    Query, Select, SelectItem, SetExpr, TableFactor, TableWithJoins,
};

use super::secure::fold;
use crate::error::{PgError, code};

/// One FROM item of a level, as names resolve against it.
#[derive(Debug, Clone, Default)]
pub struct Item {
    /// The name a qualified reference uses (alias, relation, CTE or
    /// function name); `None` when it cannot be named (a relation inside a
    /// join that has an alias of its own).
    pub qualifier: Option<String>,
    /// The schema of an unaliased relation, for `schema.table.column`.
    pub schema: Option<String>,
    /// Whether unqualified names reach its columns (not the item of an
    /// aliased join, whose columns are its members').
    pub unqualified: bool,
    pub visible: BTreeSet<String>,
    /// Hidden column → the table it belongs to (for the message).
    pub hidden: BTreeMap<String, String>,
    /// It may have columns beyond `visible` that pgward cannot name.
    pub opaque: bool,
    /// Visible columns that read as `CASE WHEN <condition> THEN <column>
    /// END` (a write target, whose rows are not a secured subquery):
    /// column → condition.
    pub partial: BTreeMap<String, String>,
}

impl Item {
    /// An item whose columns pgward cannot list.
    pub fn opaque(qualifier: Option<String>) -> Item {
        Item {
            qualifier,
            unqualified: true,
            opaque: true,
            ..Item::default()
        }
    }

    /// An item with exactly these columns, all visible (a catalog
    /// relation, a derived table or CTE whose output names are known).
    pub fn known(qualifier: Option<String>, columns: impl IntoIterator<Item = String>) -> Item {
        Item {
            qualifier,
            unqualified: true,
            visible: columns.into_iter().collect(),
            ..Item::default()
        }
    }
}

/// How a bare name is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Input columns of this level, then outer levels.
    Plain,
    /// `ORDER BY name`, `DISTINCT ON (name)`: an output column first.
    Output,
    /// `GROUP BY name`: this level's input columns, then an output column.
    Group,
}

#[derive(Debug, Clone)]
struct Ref {
    parts: Vec<String>,
    rule: Rule,
    /// It passed a level with items pgward cannot list.
    past_opaque: bool,
    /// The error that stands unless the name is a hidden column (a call
    /// `c(t)` of no known function: PostgreSQL's notation for `t.c`).
    otherwise: Option<PgError>,
    /// Address of the expression, when it may need a cell condition.
    addr: Option<usize>,
}

/// A select-list entry, for the output-column rules.
#[derive(Debug, Clone)]
enum Output {
    Name(String),
    /// `*`: the visible columns of every item.
    All,
    /// `t.*`.
    Of(String),
}

/// One query level (a SELECT).
#[derive(Debug, Default)]
pub struct Level {
    /// Address of the SELECT.
    pub select: usize,
    /// The level references not found here go on to.
    pub parent: Option<usize>,
    pub items: Vec<Item>,
    /// Where the items of each table factor being visited start.
    starts: Vec<usize>,
    refs: Vec<Ref>,
    outputs: Vec<Output>,
    /// The statement's outermost SELECT with only leakproof quals (see
    /// `fence`).
    pub unfenced: bool,
    /// References that landed on a partial column of an item: the
    /// expression's address and the cell condition.
    pub partial_hits: Vec<(usize, String)>,
}

impl Level {
    pub fn new(parent: Option<usize>, select: &Select, unfenced: bool) -> Level {
        let mut level = Level {
            select: select as *const Select as usize,
            parent,
            unfenced,
            outputs: select.projection.iter().map(output).collect(),
            ..Level::default()
        };
        // USING names a column of both sides; the names are no expressions
        // the visitor sees.
        for twj in &select.from {
            using_columns(twj, &mut |name| {
                level.refs.push(Ref {
                    parts: vec![name],
                    rule: Rule::Plain,
                    past_opaque: false,
                    otherwise: None,
                    addr: None,
                });
            });
        }
        level
    }

    pub fn record(&mut self, parts: Vec<String>, rule: Rule) {
        self.record_at(parts, rule, None);
    }

    /// A reference written at the expression with this address.
    pub fn record_at(&mut self, parts: Vec<String>, rule: Rule, addr: Option<usize>) {
        self.refs.push(Ref {
            parts,
            rule,
            past_opaque: false,
            otherwise: None,
            addr,
        });
    }

    /// A reference whose refusal `otherwise` stands unless it lands on a
    /// hidden column (which is refused as such).
    pub fn record_or(&mut self, parts: Vec<String>, otherwise: PgError) {
        self.refs.push(Ref {
            parts,
            rule: Rule::Plain,
            past_opaque: false,
            otherwise: Some(otherwise),
            addr: None,
        });
    }

    /// A table factor starts: the items it adds follow.
    pub fn factor_started(&mut self) {
        self.starts.push(self.items.len());
    }

    /// A table factor ended; `join_alias` when it is a parenthesised join
    /// with an alias, which hides its members' names.
    pub fn factor_ended(&mut self, join_alias: Option<(String, Vec<String>)>) {
        let start = self.starts.pop().unwrap_or(self.items.len());
        let Some((alias, renamed)) = join_alias else {
            return;
        };
        let mut join = Item {
            qualifier: Some(alias),
            unqualified: false,
            opaque: !renamed.is_empty(),
            ..Item::default()
        };
        let start = start.min(self.items.len());
        for member in &mut self.items[start..] {
            if member.qualifier.is_none() && !member.unqualified {
                continue;
            }
            member.qualifier = None;
            member.schema = None;
            join.visible.extend(member.visible.iter().cloned());
            join.hidden
                .extend(member.hidden.iter().map(|(c, t)| (c.clone(), t.clone())));
            join.opaque |= member.opaque;
        }
        join.visible.extend(renamed);
        self.items.push(join);
    }

    /// What the select list outputs, as a FROM item of the level around
    /// reads it: `*` and `t.*` carry the hidden columns along (PostgreSQL
    /// would output them, so naming them outside is naming them). `t.*`
    /// may name an item of an enclosing level (LATERAL).
    pub fn shape(levels: &[Level], id: usize) -> Item {
        let level = &levels[id];
        let mut shape = Item {
            unqualified: true,
            ..Item::default()
        };
        let mut take = |i: &Item| {
            shape.visible.extend(i.visible.iter().cloned());
            shape
                .hidden
                .extend(i.hidden.iter().map(|(c, t)| (c.clone(), t.clone())));
            shape.opaque |= i.opaque;
        };
        for o in &level.outputs {
            match o {
                Output::Name(n) => {
                    take(&Item::known(None, [n.clone()]));
                }
                Output::All => level
                    .items
                    .iter()
                    .filter(|i| i.unqualified)
                    .for_each(&mut take),
                Output::Of(q) => {
                    let named = |l: &Level| {
                        l.items
                            .iter()
                            .filter(|i| i.qualifier.as_deref() == Some(q))
                            .cloned()
                            .collect::<Vec<_>>()
                    };
                    let mut at = Some(id);
                    while let Some(l) = at {
                        let found = named(&levels[l]);
                        if !found.is_empty() {
                            found.iter().for_each(&mut take);
                            break;
                        }
                        at = levels[l].parent;
                    }
                }
            }
        }
        shape
    }

    /// Output names of the select list that can be told.
    fn output_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for o in &self.outputs {
            match o {
                Output::Name(n) => {
                    names.insert(n.clone());
                }
                Output::All => {
                    for i in self.items.iter().filter(|i| i.unqualified) {
                        names.extend(i.visible.iter().cloned());
                    }
                }
                Output::Of(q) => {
                    for i in self
                        .items
                        .iter()
                        .filter(|i| i.qualifier.as_deref() == Some(q))
                    {
                        names.extend(i.visible.iter().cloned());
                    }
                }
            }
        }
        names
    }
}

/// Where a reference lands in one level.
enum Found {
    /// On a hidden column: (column, table).
    Hidden(String, String),
    /// On something else of this level; the cell condition when it is a
    /// partial column.
    Here(Option<String>),
    /// Not in this level; `opaque`: an item here might have had it.
    NotHere { opaque: bool },
}

fn resolve_here(level: &Level, r: &Ref) -> Found {
    match r.parts.as_slice() {
        [] => Found::Here(None),
        [name] => {
            let outputs = match r.rule {
                Rule::Plain => BTreeSet::new(),
                Rule::Output | Rule::Group => level.output_names(),
            };
            if r.rule == Rule::Output && outputs.contains(name) {
                return Found::Here(None);
            }
            let reachable = || level.items.iter().filter(|i| i.unqualified);
            if let Some(table) = reachable().find_map(|i| i.hidden.get(name)) {
                return Found::Hidden(name.clone(), table.clone());
            }
            if let Some(item) = reachable().find(|i| i.visible.contains(name)) {
                return Found::Here(item.partial.get(name).cloned());
            }
            if r.rule == Rule::Group && outputs.contains(name) {
                return Found::Here(None);
            }
            Found::NotHere {
                opaque: reachable().any(|i| i.opaque),
            }
        }
        parts => {
            // (qualifier, schema, column) for each reading PostgreSQL may
            // give the name: t.c[.field…], s.t.c[.field…], db.s.t.c.
            let mut readings = vec![(&parts[0], None, &parts[1])];
            if parts.len() >= 3 {
                readings.push((&parts[1], Some(&parts[0]), &parts[2]));
            }
            if parts.len() >= 4 {
                readings.push((&parts[2], Some(&parts[1]), &parts[3]));
            }
            let mut matched = None;
            for (qualifier, schema, column) in readings {
                for item in level.items.iter().filter(|i| {
                    i.qualifier.as_ref() == Some(qualifier)
                        && schema.is_none_or(|s| i.schema.as_ref() == Some(s))
                }) {
                    if let Some(table) = item.hidden.get(column) {
                        return Found::Hidden(column.clone(), table.clone());
                    }
                    if matched.is_none() {
                        matched = Some(item.partial.get(column).cloned());
                    }
                }
            }
            if let Some(partial) = matched {
                Found::Here(partial)
            } else {
                Found::NotHere { opaque: false }
            }
        }
    }
}

/// Resolves the references of a finished level: refuses those that land on
/// a hidden column here, hands the ones not found here to the enclosing
/// level (resolved when that one finishes), and drops those not found at
/// the outermost level (PostgreSQL answers them).
pub fn finish(levels: &mut [Level], id: usize) -> Result<(), PgError> {
    let refs = std::mem::take(&mut levels[id].refs);
    let parent = levels[id].parent;
    for r in refs {
        match resolve_here(&levels[id], &r) {
            Found::Hidden(column, table) => return Err(column_denied(&column, &table, &r)),
            Found::Here(partial) => {
                if let Some(e) = r.otherwise {
                    return Err(e);
                }
                if let (Some(condition), Some(addr)) = (partial, r.addr) {
                    levels[id].partial_hits.push((addr, condition));
                }
            }
            Found::NotHere { opaque } => match parent {
                Some(p) => levels[p].refs.push(Ref {
                    rule: Rule::Plain,
                    past_opaque: r.past_opaque || opaque,
                    ..r
                }),
                None => {
                    if let Some(e) = r.otherwise {
                        return Err(e);
                    }
                }
            },
        }
    }
    Ok(())
}

fn column_denied(column: &str, table: &str, r: &Ref) -> PgError {
    let e = PgError::error(
        code::INSUFFICIENT_PRIVILEGE,
        format!("permission denied for column {column} of table {table}"),
    );
    if r.past_opaque && r.parts.len() == 1 {
        e.with_hint(format!(
            "pgward cannot tell whether a function or subquery in FROM has a column \
             {column}; qualify the name with that item's alias"
        ))
    } else {
        e
    }
}

/// `c(t)`: a call PostgreSQL reads as the column `t.c` when no function
/// `c` takes `t`'s row type. The parts `[t, c]`.
pub fn functional_column(f: &sqlparser::ast::Function) -> Option<Vec<String>> {
    use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let [ObjectNamePart::Identifier(name)] = f.name.0.as_slice() else {
        return None;
    };
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let plain = list.duplicate_treatment.is_none()
        && list.clauses.is_empty()
        && f.filter.is_none()
        && f.over.is_none()
        && f.within_group.is_empty()
        && matches!(f.parameters, FunctionArguments::None);
    match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(t)))] if plain => {
            Some(vec![fold(t), fold(name)])
        }
        _ => None,
    }
}

/// The parts of a column reference: `c`, `t.c`, `(t).c`, `t.c[1]`.
pub fn reference(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Identifier(id) => Some(vec![fold(id)]),
        Expr::CompoundIdentifier(ids) => Some(ids.iter().map(fold).collect()),
        Expr::CompoundFieldAccess { root, access_chain } => {
            let mut root = root.as_ref();
            while let Expr::Nested(inner) = root {
                root = inner;
            }
            let mut parts = match root {
                Expr::Identifier(id) => vec![fold(id)],
                Expr::CompoundIdentifier(ids) => ids.iter().map(fold).collect(),
                _ => return None,
            };
            for access in access_chain {
                match access {
                    AccessExpr::Dot(Expr::Identifier(id)) => parts.push(fold(id)),
                    _ => break,
                }
            }
            // The root alone is visited as a reference of its own.
            (parts.len() > 1).then_some(parts)
        }
        _ => None,
    }
}

/// Bare names of `ORDER BY` (output column first).
pub fn order_by_names(query: &Query, mut mark: impl FnMut(usize, Rule)) {
    if let Some(order_by) = &query.order_by
        && let OrderByKind::Expressions(list) = &order_by.kind
    {
        for o in list {
            if let Expr::Identifier(_) = &o.expr {
                mark(&o.expr as *const Expr as usize, Rule::Output);
            }
        }
    }
}

/// Bare names of `GROUP BY` and `DISTINCT ON`.
pub fn select_names(select: &Select, mut mark: impl FnMut(usize, Rule)) {
    if let GroupByExpr::Expressions(list, _) = &select.group_by {
        for e in list {
            if let Expr::Identifier(_) = e {
                mark(e as *const Expr as usize, Rule::Group);
            }
        }
    }
    if let Some(sqlparser::ast::Distinct::On(list)) = &select.distinct {
        for e in list {
            if let Expr::Identifier(_) = e {
                mark(e as *const Expr as usize, Rule::Output);
            }
        }
    }
}

/// The SELECT whose level resolves a query's ORDER BY: its body, or the
/// leftmost SELECT of a set operation or parenthesised query (PostgreSQL
/// attaches `(SELECT …) ORDER BY x` to the inner SELECT; a set operation's
/// ORDER BY may only name output columns, which the leftmost branch names).
pub fn order_select(body: &SetExpr) -> Option<*const Select> {
    match body {
        SetExpr::Select(s) => Some(s.as_ref() as *const Select),
        SetExpr::SetOperation { left, .. } => order_select(left),
        SetExpr::Query(q) => order_select(&q.body),
        _ => None,
    }
}

/// Queries that are operands of a set operation (or a parenthesised
/// body): they belong to the same level as the query around them.
pub fn operand_queries(body: &SetExpr, out: &mut Vec<usize>) {
    match body {
        SetExpr::SetOperation { left, right, .. } => {
            operand_queries(left, out);
            operand_queries(right, out);
        }
        SetExpr::Query(q) => out.push(q.as_ref() as *const Query as usize),
        _ => {}
    }
}

/// The output column names of a query, when every one can be told.
pub fn query_outputs(query: &Query) -> Option<Vec<String>> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left,
            SetExpr::Query(q) => body = &q.body,
            _ => break,
        }
    }
    match body {
        SetExpr::Select(s) => s
            .projection
            .iter()
            .map(|item| match output(item) {
                Output::Name(n) => Some(n),
                Output::All | Output::Of(_) => None,
            })
            .collect(),
        SetExpr::Values(v) => Some(
            (1..=v.rows.first().map_or(0, |r| r.len()))
                .map(|i| format!("column{i}"))
                .collect(),
        ),
        _ => None,
    }
}

fn output(item: &SelectItem) -> Output {
    match item {
        SelectItem::UnnamedExpr(e) => Output::Name(column_name(e)),
        SelectItem::ExprWithAlias { alias, .. } => Output::Name(fold(alias)),
        SelectItem::QualifiedWildcard(kind, _) => match kind {
            sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(name) => {
                match name.0.last() {
                    Some(ObjectNamePart::Identifier(id)) => Output::Of(fold(id)),
                    _ => Output::All,
                }
            }
            sqlparser::ast::SelectItemQualifiedWildcardKind::Expr(_) => Output::All,
        },
        SelectItem::Wildcard(_) | SelectItem::ExprWithAliases { .. } => Output::All,
    }
}

/// The name PostgreSQL gives an unaliased select-list expression
/// (`FigureColname`), as far as it matters here.
pub fn column_name(e: &Expr) -> String {
    let name = match e {
        Expr::Identifier(id) => Some(fold(id)),
        Expr::CompoundIdentifier(ids) => ids.last().map(fold),
        Expr::Nested(inner) => return column_name(inner),
        Expr::Cast { expr, .. } => return column_name(expr),
        Expr::Function(f) => match f.name.0.last() {
            Some(ObjectNamePart::Identifier(id)) => Some(fold(id)),
            _ => None,
        },
        Expr::Case { .. } => Some("case".to_string()),
        Expr::Exists { .. } => Some("exists".to_string()),
        Expr::Array(_) => Some("array".to_string()),
        Expr::CompoundFieldAccess { .. } => reference(e).and_then(|p| p.last().cloned()),
        _ => None,
    };
    name.unwrap_or_else(|| "?column?".to_string())
}

/// The columns `USING (…)` names, in this FROM tree (not in subqueries).
fn using_columns(twj: &TableWithJoins, found: &mut dyn FnMut(String)) {
    factor_usings(&twj.relation, found);
    for join in &twj.joins {
        let constraint = match &join.join_operator {
            JoinOperator::Join(c)
            | JoinOperator::Inner(c)
            | JoinOperator::Left(c)
            | JoinOperator::LeftOuter(c)
            | JoinOperator::Right(c)
            | JoinOperator::RightOuter(c)
            | JoinOperator::FullOuter(c)
            | JoinOperator::CrossJoin(c)
            | JoinOperator::Semi(c)
            | JoinOperator::LeftSemi(c)
            | JoinOperator::RightSemi(c)
            | JoinOperator::Anti(c)
            | JoinOperator::LeftAnti(c)
            | JoinOperator::RightAnti(c)
            | JoinOperator::StraightJoin(c)
            | JoinOperator::AsOf { constraint: c, .. } => Some(c),
            _ => None,
        };
        if let Some(JoinConstraint::Using(names)) = constraint {
            for name in names {
                if let Some(ObjectNamePart::Identifier(id)) = name.0.last() {
                    found(fold(id));
                }
            }
        }
        factor_usings(&join.relation, found);
    }
}

fn factor_usings(factor: &TableFactor, found: &mut dyn FnMut(String)) {
    if let TableFactor::NestedJoin {
        table_with_joins, ..
    } = factor
    {
        using_columns(table_with_joins, found);
    }
}
