//! Securing relations in a read: every table, view or partition named in a
//! FROM clause, at any depth (CTEs, subqueries in every clause, LATERAL, set
//! operations), is replaced by a subquery that carries only the rows and
//! cells the session's entries admit and only the columns some entry has
//! (PRODUCT.md §3 semantics 3–6). Names are resolved through the session's
//! search_path and printed schema-qualified; CTE references are recognised
//! with PostgreSQL's scoping (a non-recursive CTE sees only the CTEs before
//! it).
//!
//! Must never: leave a relation reference that is neither a CTE in scope, an
//! allowed catalog relation, nor a secured subquery.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Query, Select, SelectItem, SetExpr, TableAlias,
    TableFactor, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Location;

use super::access::{Access, Command, TableAccess};
use super::catalog_rules::{self, CatalogRule};
use super::fence;
use super::functions::{self, Decision};
use super::scope::{self, Item, Level, Rule};
use crate::catalog::{Catalog, Relation};
use crate::error::{PgError, code};

/// A relation reference the printed statement will contain, as PostgreSQL
/// will report it (`schema.name`, or the bare name of a CTE).
pub type RelationRef = String;

struct QueryFrame {
    /// Address of the query, to recognise when it is left.
    addr: usize,
    cte_names: Vec<String>,
    cte_addrs: Vec<usize>,
    /// The output column names of each CTE body, when they can be told
    /// from its text; the names its alias list gives; and the SELECT whose
    /// output it is (see `Securer::query_item`).
    cte_columns: Vec<Option<Vec<String>>>,
    cte_renames: Vec<Vec<String>>,
    cte_selects: Vec<Option<usize>>,
    recursive: bool,
    /// The CTE whose body is being visited.
    current_cte: Option<usize>,
    /// The level around the query (see `scope`): its SELECTs hand it the
    /// names they do not have.
    outer: Option<usize>,
    /// Address of the SELECT whose level resolves this query's ORDER BY.
    order_select: Option<usize>,
}

pub struct Securer<'a> {
    catalog: &'a Catalog,
    search_path: &'a [String],
    access: &'a dyn Access,
    queries: Vec<QueryFrame>,
    /// Every query level of the statement (see `scope`), and the ones
    /// being visited, innermost last.
    levels: Vec<Level>,
    current: Vec<usize>,
    /// SELECTs whose level stays open for the ORDER BY of the queries
    /// around them (address → how many), and the level of each SELECT.
    retained: HashMap<usize, usize>,
    select_levels: HashMap<usize, usize>,
    /// Set-operation operands: the level around the query they belong to.
    operand_outer: HashMap<usize, Option<usize>>,
    /// Bare names of ORDER BY, DISTINCT ON and GROUP BY, by address.
    marks: HashMap<usize, Rule>,
    /// What each finished SELECT outputs, by address, for the levels that
    /// read it as a derived table or CTE.
    shapes: HashMap<usize, Item>,
    /// Relation references the printed statement will contain.
    pub expected: Vec<RelationRef>,
    /// Where the names of `ONLY` relations start in the client's text
    /// (see `tokens`), and the ones found on a table reference.
    only: BTreeSet<Location>,
    pub only_used: BTreeSet<Location>,
    /// Address of the outermost query's body when it is a plain SELECT.
    top_select: Option<usize>,
    /// The parameter types declared for `$1`, `$2` … (`PREPARE p (…)`, or
    /// a Parse message).
    parameter_types: Vec<fence::Param>,
    /// Write targets by the placeholder name their factor carries in a
    /// write's read mirror (see `writes`): left in place, read through
    /// this item.
    targets: HashMap<String, Item>,
    /// References that landed on a partial column of a write target:
    /// expression address → cell condition.
    pub partial_hits: HashMap<usize, String>,
    /// `FOR UPDATE/SHARE`: the SELECT it locks and the names after `OF`
    /// (`None`: every relation of its FROM).
    lock: Option<(usize, Option<Vec<String>>)>,
}

impl<'a> Securer<'a> {
    pub fn new(catalog: &'a Catalog, search_path: &'a [String], access: &'a dyn Access) -> Self {
        Securer {
            catalog,
            search_path,
            access,
            queries: Vec::new(),
            levels: Vec::new(),
            current: Vec::new(),
            retained: HashMap::new(),
            select_levels: HashMap::new(),
            operand_outer: HashMap::new(),
            marks: HashMap::new(),
            shapes: HashMap::new(),
            expected: Vec::new(),
            only: BTreeSet::new(),
            only_used: BTreeSet::new(),
            top_select: None,
            parameter_types: Vec::new(),
            targets: HashMap::new(),
            partial_hits: HashMap::new(),
            lock: None,
        }
    }

    /// The parameter types declared for `$1`, `$2` ….
    pub fn parameter_types(&self) -> &[fence::Param] {
        &self.parameter_types
    }

    /// A factor named `placeholder` is a write target read through `item`.
    pub fn add_target(&mut self, placeholder: &str, item: Item) {
        self.targets.insert(placeholder.to_string(), item);
    }

    /// The SELECT at `select` locks its rows (`FOR UPDATE/SHARE [OF …]`):
    /// each locked relation also needs an UPDATE entry admitting the row.
    pub fn set_lock(&mut self, select: usize, of: Option<Vec<String>>) {
        self.lock = Some((select, of));
    }

    /// The parameter types a `PREPARE` declares: `$n` has that type, not
    /// the one of the column it is compared with.
    pub fn set_parameter_types(&mut self, types: Vec<sqlparser::ast::DataType>) {
        self.parameter_types = types.iter().map(fence::declared).collect();
    }

    /// The parameter types a Parse message declares, as type oids (0:
    /// unspecified), looked up in the catalog snapshot.
    pub fn set_parameter_oids(&mut self, oids: &[u32]) {
        self.parameter_types = oids
            .iter()
            .map(|&oid| fence::declared_oid(self.catalog, oid))
            .collect();
    }

    /// The positions of names that followed `ONLY` in the client's text.
    /// Only for trees parsed from that text: spans of other trees may
    /// coincide.
    pub fn set_only(&mut self, only: BTreeSet<Location>) {
        self.only = only;
    }

    /// A plain relation of the catalog for a FROM name, as `secure_table`
    /// will resolve it; `None` for CTEs and unknown names.
    fn plain_relation(&self, name: &ObjectName) -> Option<&'a Relation> {
        let (schema, relname) = split_name(name).ok()?;
        if schema.is_none() && self.cte_in_scope(&relname) {
            return None;
        }
        self.catalog
            .resolve_relation(schema.as_deref(), &relname, self.search_path)
    }

    /// Whether this table name followed `ONLY` in the client's text.
    fn take_only(&mut self, name: &ObjectName) -> bool {
        let start = match name.0.first() {
            Some(ObjectNamePart::Identifier(id)) => id.span.start,
            _ => return false,
        };
        if self.only.contains(&start) {
            self.only_used.insert(start);
            return true;
        }
        false
    }

    fn cte_in_scope(&self, name: &str) -> bool {
        self.cte(name).is_some()
    }

    /// The CTE a name finds (PostgreSQL's scoping: innermost query first; a
    /// non-recursive CTE sees only the CTEs before it): its query frame and
    /// position.
    fn cte(&self, name: &str) -> Option<(&QueryFrame, usize)> {
        self.queries.iter().rev().find_map(|q| {
            let visible = match q.current_cte {
                Some(i) if !q.recursive => i,
                _ => q.cte_names.len(),
            };
            q.cte_names[..visible]
                .iter()
                .rposition(|n| n == name)
                .map(|i| (q, i))
        })
    }

    /// The FROM item of a derived table or CTE reference: the output of
    /// its SELECT once secured (`*` carries hidden columns along), else the
    /// names its text gives, else columns pgward cannot list.
    fn query_item(
        &self,
        qualifier: Option<String>,
        select: Option<usize>,
        renames: &[String],
        outputs: Option<Vec<String>>,
    ) -> Item {
        let shape = select.and_then(|s| self.shapes.get(&s));
        match (shape, outputs) {
            (Some(shape), _) if renames.is_empty() => Item {
                qualifier,
                ..shape.clone()
            },
            (shape, Some(mut names)) => {
                for (n, r) in names.iter_mut().zip(renames) {
                    n.clone_from(r);
                }
                Item {
                    hidden: shape.map(|s| s.hidden.clone()).unwrap_or_default(),
                    ..Item::known(qualifier, names)
                }
            }
            (shape, None) => Item {
                visible: renames.iter().cloned().collect(),
                hidden: shape
                    .map(|s| {
                        s.hidden
                            .iter()
                            .filter(|(c, _)| !renames.contains(c))
                            .map(|(c, t)| (c.clone(), t.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                ..Item::opaque(qualifier)
            },
        }
    }

    fn record(&mut self, parts: Vec<String>, rule: Rule) {
        if let Some(&id) = self.current.last() {
            self.levels[id].record(parts, rule);
        }
    }

    /// Leaves a level: its names are resolved (see `scope`), and what it
    /// outputs is kept for the level that reads it.
    fn finish_level(&mut self, id: usize) -> Result<(), PgError> {
        if let Some(i) = self.current.iter().rposition(|&l| l == id) {
            self.current.remove(i);
        }
        let shape = Level::shape(&self.levels, id);
        self.shapes.insert(self.levels[id].select, shape);
        scope::finish(&mut self.levels, id)?;
        self.partial_hits
            .extend(std::mem::take(&mut self.levels[id].partial_hits));
        Ok(())
    }

    /// Adds a FROM item to the level being visited.
    fn add_item(&mut self, item: Item) {
        if let Some(&id) = self.current.last() {
            self.levels[id].items.push(item);
        }
    }

    /// The FROM item of a factor pgward does not replace (functions,
    /// derived tables, joins): names its alias gives, and its columns when
    /// they can be told.
    fn other_item(&mut self, factor: &TableFactor) {
        let alias_of = |a: &Option<TableAlias>| a.as_ref().map(|a| fold(&a.name));
        let renamed = |a: &Option<TableAlias>| renames(a.as_ref());
        let item = match factor {
            // Its members are items already; an alias is applied when the
            // factor ends.
            TableFactor::NestedJoin { .. } => return,
            TableFactor::Derived {
                subquery, alias, ..
            } => self.query_item(
                alias_of(alias),
                scope::order_select(&subquery.body).map(|s| s as usize),
                &renamed(alias),
                scope::query_outputs(subquery),
            ),
            TableFactor::Function { name, alias, .. } | TableFactor::Table { name, alias, .. } => {
                let qualifier = alias_of(alias).or_else(|| match name.0.last() {
                    Some(ObjectNamePart::Identifier(id)) => Some(fold(id)),
                    _ => None,
                });
                Item {
                    visible: renamed(alias).into_iter().collect(),
                    ..Item::opaque(qualifier)
                }
            }
            TableFactor::UNNEST { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::JsonTable { alias, .. } => Item {
                visible: renamed(alias).into_iter().collect(),
                ..Item::opaque(alias_of(alias))
            },
            _ => Item::opaque(None),
        };
        self.add_item(item);
    }

    /// A function in FROM (`generate_series(…)`): allowed or refused; one
    /// that would read as NULL has no place there.
    fn check_from_function(&self, name: &ObjectName) -> Result<(), PgError> {
        match functions::decide(self.catalog, self.search_path, self.access, name) {
            Decision::Allow => Ok(()),
            Decision::Refuse(e) => Err(e),
            Decision::Null(_) => Err(PgError::error(
                code::INSUFFICIENT_PRIVILEGE,
                format!("pgward does not allow the function {name} in FROM"),
            )),
        }
    }

    fn secure_table(&mut self, factor: &mut TableFactor) -> Result<(), PgError> {
        let TableFactor::Table {
            name,
            alias,
            args,
            with_hints,
            version,
            with_ordinality,
            partitions,
            json_path,
            sample,
            index_hints,
        } = factor
        else {
            if let TableFactor::Function { name, .. } = factor {
                self.check_from_function(name)?;
            }
            self.other_item(factor);
            return Ok(());
        };
        if args.is_some() {
            // A function in FROM (`generate_series(…)`).
            self.check_from_function(name)?;
            self.other_item(factor);
            return Ok(());
        }
        if !with_hints.is_empty()
            || version.is_some()
            || *with_ordinality
            || !partitions.is_empty()
            || json_path.is_some()
            || sample.is_some()
            || !index_hints.is_empty()
        {
            return Err(not_supported("this form of table reference"));
        }
        let only = self.take_only(name);
        let (schema, relname) = split_name(name)?;
        if schema.is_none()
            && let Some(item) = self.targets.get(&relname)
        {
            let item = item.clone();
            self.add_item(item);
            return Ok(());
        }
        if schema.is_none()
            && let Some((frame, i)) = self.cte(&relname)
        {
            if only {
                return Err(not_supported("ONLY with a WITH query"));
            }
            let qualifier = Some(
                alias
                    .as_ref()
                    .map_or_else(|| relname.clone(), |a| fold(&a.name)),
            );
            // The CTE's own alias list renames its body's columns, the
            // reference's alias list renames those again.
            let mut names = frame.cte_renames[i].clone();
            for (n, r) in names.iter_mut().zip(renames(alias.as_ref())) {
                *n = r;
            }
            let mut renamed = renames(alias.as_ref());
            if renamed.len() < names.len() {
                renamed.extend(names[renamed.len()..].iter().cloned());
            }
            let item = self.query_item(
                qualifier,
                frame.cte_selects[i],
                &renamed,
                frame.cte_columns[i].clone(),
            );
            self.add_item(item);
            self.expected.push(relname);
            return Ok(());
        }
        let relation = self
            .catalog
            .resolve_relation(schema.as_deref(), &relname, self.search_path)
            .ok_or_else(|| unknown_relation(schema.as_deref(), &relname))?;

        let item = |hidden: &dyn Fn(&str) -> bool| {
            let renames = renames(alias.as_ref());
            let mut item = Item {
                qualifier: Some(factor_alias(alias, relation)),
                schema: alias.is_none().then(|| relation.schema.clone()),
                unqualified: true,
                ..Item::default()
            };
            for (i, column) in relation.columns.iter().enumerate() {
                let name = renames.get(i).unwrap_or(&column.name).clone();
                if hidden(&column.name) {
                    // Renamed or not, the hidden column's own name is
                    // refused too.
                    item.hidden
                        .insert(column.name.clone(), relation.name.clone());
                    item.hidden.insert(name, relation.name.clone());
                } else {
                    item.visible.insert(name);
                }
            }
            item
        };
        if let Some(rule) = catalog_rules::rule(relation) {
            let alias_name = factor_alias(alias, relation);
            let item = item(&|_| false);
            self.catalog_relation(alias_name, relation, rule, factor, only)?;
            self.add_item(item);
            return Ok(());
        }
        let mut access = self
            .access
            .table(relation, Command::Select)
            .ok_or_else(|| permission_denied(relation))?;
        let alias_name = factor_alias(alias, relation);
        if let Some((select, of)) = &self.lock
            && self
                .current
                .last()
                .is_some_and(|&l| self.levels[l].select == *select)
            && of.as_ref().is_none_or(|of| of.contains(&alias_name))
        {
            // A locked row must be one an UPDATE entry admits (PRODUCT.md
            // §3 semantics 8).
            let update = self
                .access
                .table(relation, Command::Update)
                .ok_or_else(|| permission_denied(relation))?;
            let rows = row_condition(&update);
            if rows != "true" {
                access.restrictive.push(parse_expr(&rows)?);
            }
        }
        let item = item(&|c| !access.sees_column(c));
        // Directly in the FROM tree of a leakproof outermost SELECT (the
        // only level being visited): no qual but checked ones reaches it.
        let fence = !(self.current.len() == 1 && self.levels[self.current[0]].unfenced);
        let shape = Shape {
            keep_all_columns: false,
            fence,
            only,
        };
        let subquery = secured_subquery(relation, &access, alias.as_ref(), shape)?;
        // The relation itself and those of the policy predicates, once for
        // each place pgward printed them (a cell condition repeats its
        // entry's predicate), as PostgreSQL reads pgward's own subquery.
        self.expected.extend(subquery_relations(&subquery)?);
        self.add_item(item);
        *factor = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(subquery),
            alias: Some(TableAlias {
                explicit: true,
                name: Ident::with_quote('"', alias_name),
                columns: Vec::new(),
                at: None,
            }),
            sample: None,
        };
        Ok(())
    }

    fn catalog_relation(
        &mut self,
        alias_name: String,
        relation: &Relation,
        rule: CatalogRule,
        factor: &mut TableFactor,
        only: bool,
    ) -> Result<(), PgError> {
        match rule {
            CatalogRule::Deny => Err(permission_denied(relation)),
            CatalogRule::Allow => {
                // Left in place, schema-qualified.
                if let TableFactor::Table { name, .. } = factor {
                    *name = qualified_name(relation, only);
                }
                self.expected.push(reference(relation, only));
                Ok(())
            }
            CatalogRule::NoRows => {
                let alias = match factor {
                    TableFactor::Table { alias, .. } => alias.clone(),
                    _ => None,
                };
                let nothing = TableAccess {
                    entries: Vec::new(),
                    restrictive: Vec::new(),
                    restrictive_checks: Vec::new(),
                    predicate_relations: Vec::new(),
                };
                let shape = Shape {
                    keep_all_columns: true,
                    fence: true,
                    only,
                };
                let subquery = secured_subquery(relation, &nothing, alias.as_ref(), shape)?;
                self.expected.push(reference(relation, only));
                *factor = TableFactor::Derived {
                    lateral: false,
                    subquery: Box::new(subquery),
                    alias: Some(TableAlias {
                        explicit: true,
                        name: Ident::with_quote('"', alias_name),
                        columns: Vec::new(),
                        at: None,
                    }),
                    sample: None,
                };
                Ok(())
            }
        }
    }
}

impl VisitorMut for Securer<'_> {
    type Break = PgError;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<PgError> {
        let addr = query as *const Query as usize;
        if let Some(top) = self.queries.last_mut()
            && let Some(i) = top.cte_addrs.iter().position(|a| *a == addr)
        {
            top.current_cte = Some(i);
        }
        if self.queries.is_empty() {
            // The statement's outermost query: only its own SELECT may go
            // unfenced, never the branches of a set operation.
            self.top_select = match query.body.as_ref() {
                SetExpr::Select(s) => Some(s.as_ref() as *const Select as usize),
                _ => None,
            };
        }
        if let SetExpr::Table(_) = query.body.as_ref() {
            // `TABLE t` becomes `SELECT * FROM t`, secured like any FROM item.
            if let Err(e) = expand_table_command(query) {
                return ControlFlow::Break(e);
            }
        }
        let (cte_names, cte_addrs, recursive) = match &query.with {
            Some(with) => (
                with.cte_tables
                    .iter()
                    .map(|c| fold(&c.alias.name))
                    .collect(),
                with.cte_tables
                    .iter()
                    .map(|c| c.query.as_ref() as *const Query as usize)
                    .collect(),
                with.recursive,
            ),
            None => (Vec::new(), Vec::new(), false),
        };
        let ctes = query.with.as_ref().map_or(&[][..], |w| &w.cte_tables[..]);
        let cte_columns = ctes
            .iter()
            .map(|c| scope::query_outputs(&c.query))
            .collect();
        let cte_renames = ctes.iter().map(|c| renames(Some(&c.alias))).collect();
        let cte_selects = ctes
            .iter()
            .map(|c| scope::order_select(&c.query.body).map(|s| s as usize))
            .collect();
        // The level around the query: the one being visited, except for
        // operands of a set operation, which belong to the level around it.
        let outer = self
            .operand_outer
            .remove(&addr)
            .unwrap_or_else(|| self.current.last().copied());
        let mut operands = Vec::new();
        scope::operand_queries(&query.body, &mut operands);
        for q in operands {
            self.operand_outer.insert(q, outer);
        }
        let order_select = scope::order_select(&query.body).map(|s| s as usize);
        if let Some(s) = order_select {
            *self.retained.entry(s).or_default() += 1;
        }
        scope::order_by_names(query, |addr, rule| {
            self.marks.insert(addr, rule);
        });
        self.queries.push(QueryFrame {
            addr,
            cte_names,
            cte_addrs,
            cte_columns,
            cte_renames,
            cte_selects,
            recursive,
            current_cte: None,
            outer,
            order_select,
        });
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<PgError> {
        let addr = query as *const Query as usize;
        let mut order_select = None;
        if self.queries.last().is_some_and(|q| q.addr == addr) {
            order_select = self.queries.pop().and_then(|q| q.order_select);
        }
        if let Some(top) = self.queries.last_mut()
            && top
                .current_cte
                .is_some_and(|i| top.cte_addrs.get(i) == Some(&addr))
        {
            top.current_cte = None;
        }
        // The ORDER BY has been visited: the SELECT that resolves it may
        // finish, unless a query around this one also orders by it.
        if let Some(s) = order_select
            && let Some(count) = self.retained.get_mut(&s)
        {
            *count -= 1;
            if *count == 0 {
                self.retained.remove(&s);
                if let Some(&id) = self.select_levels.get(&s)
                    && let Err(e) = self.finish_level(id)
                {
                    return ControlFlow::Break(e);
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<PgError> {
        // A call that will read as NULL keeps the column name PostgreSQL
        // gives the call, not the one it would give a cast.
        for item in select.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(Expr::Function(f)) = item
                && let Decision::Null(_) =
                    functions::decide(self.catalog, self.search_path, self.access, &f.name)
                && let Some(ObjectNamePart::Identifier(id)) = f.name.0.last()
            {
                let alias = Ident::with_quote('"', fold(id));
                let expr = Expr::Function(f.clone());
                *item = SelectItem::ExprWithAlias { expr, alias };
            }
        }
        let addr = select as *const Select as usize;
        let top = self.top_select == Some(addr);
        let unfenced = top
            && self.current.is_empty()
            && fence::block_is_leakproof(self.catalog, select, &self.parameter_types, &|n| {
                self.plain_relation(n)
            });
        let parent = self.queries.last().and_then(|q| q.outer);
        let id = self.levels.len();
        self.levels.push(Level::new(parent, select, unfenced));
        self.current.push(id);
        self.select_levels.insert(addr, id);
        scope::select_names(select, |addr, rule| {
            self.marks.insert(addr, rule);
        });
        ControlFlow::Continue(())
    }

    fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<PgError> {
        let addr = select as *const Select as usize;
        // A SELECT that resolves an ORDER BY finishes after it.
        if self.retained.contains_key(&addr) {
            return ControlFlow::Continue(());
        }
        if let Some(&id) = self.select_levels.get(&addr)
            && let Err(e) = self.finish_level(id)
        {
            return ControlFlow::Break(e);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<PgError> {
        if let Expr::Function(f) = expr {
            if functions::is_set_config(self.catalog, self.search_path, &f.name) {
                return match functions::set_config_allowed(f) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => ControlFlow::Break(e),
                };
            }
            match functions::decide(self.catalog, self.search_path, self.access, &f.name) {
                Decision::Allow => {}
                Decision::Null(t) => {
                    // The arguments are dropped, yet they were named.
                    let mut names = Vec::new();
                    let _ = sqlparser::ast::visit_expressions(&*f, |e| {
                        names.extend(scope::reference(e));
                        ControlFlow::<()>::Continue(())
                    });
                    for parts in names {
                        self.record(parts, Rule::Plain);
                    }
                    *expr = functions::null_of(&t);
                }
                Decision::Refuse(e) => {
                    // `margin(o)` is PostgreSQL's notation for `o.margin`:
                    // a hidden column named so is 42501, else the refusal
                    // stands once the name is resolved.
                    if e.code == "42883"
                        && let Some(parts) = scope::functional_column(f)
                        && let Some(&id) = self.current.last()
                    {
                        self.levels[id].record_or(parts, e);
                        return ControlFlow::Continue(());
                    }
                    return ControlFlow::Break(e);
                }
            }
            return ControlFlow::Continue(());
        }
        if let Some(parts) = scope::reference(expr) {
            let addr = expr as *const Expr as usize;
            let rule = self.marks.remove(&addr).unwrap_or(Rule::Plain);
            if let Some(&id) = self.current.last() {
                self.levels[id].record_at(parts, rule, Some(addr));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, _factor: &mut TableFactor) -> ControlFlow<PgError> {
        if let Some(&id) = self.current.last() {
            self.levels[id].factor_started();
        }
        ControlFlow::Continue(())
    }

    // Replacing after the children were visited keeps the visitor from
    // walking into the subquery pgward built.
    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<PgError> {
        let join_alias = match factor {
            TableFactor::NestedJoin {
                alias: Some(alias), ..
            } => Some((fold(&alias.name), renames(Some(alias)))),
            _ => None,
        };
        if let Err(e) = self.secure_table(factor) {
            return ControlFlow::Break(e);
        }
        if let Some(&id) = self.current.last() {
            self.levels[id].factor_ended(join_alias);
        }
        ControlFlow::Continue(())
    }
}

/// The name PostgreSQL gives an identifier: unquoted ones fold to lower
/// case, ASCII letters only (PostgreSQL's `downcase_identifier` under a
/// multibyte encoding such as UTF-8).
pub fn fold(id: &Ident) -> String {
    match id.quote_style {
        Some(_) => id.value.clone(),
        None => id.value.to_ascii_lowercase(),
    }
}

pub(super) fn split_name(name: &ObjectName) -> Result<(Option<String>, String), PgError> {
    let mut parts = Vec::new();
    for part in &name.0 {
        match part {
            ObjectNamePart::Identifier(id) => parts.push(fold(id)),
            ObjectNamePart::Function(_) => return Err(not_supported("computed object names")),
        }
    }
    match parts.as_slice() {
        [name] => Ok((None, name.clone())),
        [schema, name] => Ok((Some(schema.clone()), name.clone())),
        [_db, schema, name] => Err(PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            format!("cross-database references are not implemented: {schema}.{name}"),
        )),
        _ => Err(PgError::error(
            code::SYNTAX_ERROR,
            format!("improper qualified name (too many dotted names): {name}"),
        )),
    }
}

/// The column names an alias list gives (`t AS x(a, b)`).
fn renames(alias: Option<&TableAlias>) -> Vec<String> {
    alias
        .map(|a| a.columns.iter().map(|c| fold(&c.name)).collect())
        .unwrap_or_default()
}

fn factor_alias(alias: &Option<TableAlias>, relation: &Relation) -> String {
    alias
        .as_ref()
        .map_or_else(|| relation.name.clone(), |a| fold(&a.name))
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn qualified(relation: &Relation) -> String {
    format!("{}.{}", relation.schema, relation.name)
}

/// The reference verification expects: `schema.name`, or `ONLY
/// schema.name` for a relation read without its children.
fn reference(relation: &Relation, only: bool) -> RelationRef {
    if only {
        format!("ONLY {}", qualified(relation))
    } else {
        qualified(relation)
    }
}

/// `"schema"."name"`, or `ONLY "schema"."name"`. sqlparser has no ONLY in
/// its table references, so that one is printed as one unquoted identifier
/// built from quoted parts; verification confirms PostgreSQL's reading.
fn qualified_name(relation: &Relation, only: bool) -> ObjectName {
    if only {
        let text = format!(
            "ONLY {}.{}",
            quote_ident(&relation.schema),
            quote_ident(&relation.name)
        );
        return ObjectName(vec![ObjectNamePart::Identifier(Ident::new(text))]);
    }
    ObjectName(vec![
        ObjectNamePart::Identifier(Ident::with_quote('"', relation.schema.clone())),
        ObjectNamePart::Identifier(Ident::with_quote('"', relation.name.clone())),
    ])
}

/// How a secured subquery is built.
#[derive(Clone, Copy)]
struct Shape {
    /// Every column as is (catalog relations read with no rows).
    keep_all_columns: bool,
    /// `OFFSET 0` when the subquery filters rows.
    fence: bool,
    /// `FROM ONLY`: without child tables.
    only: bool,
}

/// `(SELECT <visible cells> FROM [ONLY] schema.t WHERE <some entry admits>
/// [OFFSET 0])`.
/// A column alias list (`t AS x(a, b)`) renames by position in the table,
/// as PostgreSQL does, hidden columns included.
fn secured_subquery(
    relation: &Relation,
    access: &TableAccess,
    alias: Option<&TableAlias>,
    shape: Shape,
) -> Result<Query, PgError> {
    let renames: Vec<String> = alias
        .map(|a| a.columns.iter().map(|c| fold(&c.name)).collect())
        .unwrap_or_default();
    let mut projection = Vec::new();
    for (i, column) in relation.columns.iter().enumerate() {
        let out_name = renames.get(i).unwrap_or(&column.name);
        let col = quote_ident(&column.name);
        let cell = if shape.keep_all_columns {
            col
        } else {
            match cell_condition(access, &column.name) {
                CellCondition::Hidden => continue,
                CellCondition::Always => col,
                CellCondition::When(cond) => format!("CASE WHEN {cond} THEN {col} END"),
            }
        };
        projection.push(format!("{cell} AS {}", quote_ident(out_name)));
    }
    if projection.is_empty() {
        return Err(permission_denied(relation));
    }
    let rows = row_condition(access);
    // A subquery that filters rows is fenced with OFFSET 0: PostgreSQL then
    // neither pulls it up nor pushes the user's predicates into it, so no
    // user predicate (a division by zero, a failing cast) runs on a row the
    // policy hides. Unfiltered relations, and those whose block has only
    // leakproof quals (`fence`), stay unfenced: pulled up, index scans keep
    // working through them.
    let fence = if rows == "true" || !shape.fence {
        ""
    } else {
        " OFFSET 0"
    };
    let sql = format!(
        "SELECT {} FROM {}.{} WHERE {rows}{fence}",
        projection.join(", "),
        quote_ident(&relation.schema),
        quote_ident(&relation.name),
    );
    let mut query = parse_select(&sql)?;
    if shape.only
        && let SetExpr::Select(select) = query.body.as_mut()
        && let Some(TableFactor::Table { name, .. }) =
            select.from.first_mut().map(|f| &mut f.relation)
    {
        *name = qualified_name(relation, true);
    }
    Ok(query)
}

pub(super) enum CellCondition {
    Hidden,
    Always,
    When(String),
}

pub(super) fn cell_condition(access: &TableAccess, column: &str) -> CellCondition {
    let with: Vec<_> = access
        .entries
        .iter()
        .filter(|e| e.columns.contains(column))
        .collect();
    if with.is_empty() {
        return CellCondition::Hidden;
    }
    // Every row the subquery returns is admitted by an entry with the
    // column, or one entry with it admits all rows.
    if with.len() == access.entries.len() || with.iter().any(|e| e.rows.is_none()) {
        return CellCondition::Always;
    }
    let parts: Vec<String> = with
        .iter()
        .filter_map(|e| e.rows.as_ref().map(|r| format!("({r})")))
        .collect();
    CellCondition::When(parts.join(" OR "))
}

pub(super) fn row_condition(access: &TableAccess) -> String {
    let permissive = if access.entries.is_empty() {
        "false".to_string()
    } else if access.entries.iter().any(|e| e.rows.is_none()) {
        "true".to_string()
    } else {
        let parts: Vec<String> = access
            .entries
            .iter()
            .filter_map(|e| e.rows.as_ref().map(|r| format!("({r})")))
            .collect();
        format!("({})", parts.join(" OR "))
    };
    let mut all = vec![permissive];
    all.extend(access.restrictive.iter().map(|r| format!("({r})")));
    all.join(" AND ")
}

/// The relation references PostgreSQL reads in a secured subquery pgward
/// built (its text is pgward's: the relation and trusted policy SQL).
fn subquery_relations(subquery: &Query) -> Result<Vec<RelationRef>, PgError> {
    let parsed = pg_query::parse(&subquery.to_string()).map_err(|e| {
        tracing::error!("pgward built a subquery PostgreSQL cannot parse: {e}");
        not_supported("this statement")
    })?;
    super::verify::relations(&parsed)
}

/// An expression pgward built, as a tree.
pub fn parse_expr(sql: &str) -> Result<Expr, PgError> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| {
            tracing::error!("pgward built an expression it cannot parse: {e}");
            PgError::error(
                code::FEATURE_NOT_SUPPORTED,
                "pgward could not secure this statement",
            )
        })
}

pub fn parse_select(sql: &str) -> Result<Query, PgError> {
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| {
        tracing::error!("pgward built SQL it cannot parse: {e}");
        PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            "pgward could not secure this statement",
        )
    })?;
    match statements.pop() {
        Some(sqlparser::ast::Statement::Query(q)) if statements.is_empty() => Ok(*q),
        _ => Err(PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            "pgward could not secure this statement",
        )),
    }
}

/// `TABLE t` → `SELECT * FROM t`. sqlparser keeps the name as a plain
/// string, losing quoting: only plain lower-case names are accepted.
fn expand_table_command(query: &mut Query) -> Result<(), PgError> {
    let SetExpr::Table(table) = query.body.as_ref() else {
        return Ok(());
    };
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let mut parts = Vec::new();
    if let Some(schema) = &table.schema_name {
        parts.push(schema.clone());
    }
    match &table.table_name {
        Some(name) => parts.push(name.clone()),
        None => return Err(not_supported("TABLE without a name")),
    }
    if !parts.iter().all(|p| plain(p)) {
        return Err(not_supported(
            "TABLE with a quoted or mixed-case name; use SELECT * FROM",
        ));
    }
    let sql = format!("SELECT * FROM {}", parts.join("."));
    let q = parse_select(&sql)?;
    query.body = q.body;
    Ok(())
}

fn not_supported(what: &str) -> PgError {
    PgError::error(
        code::FEATURE_NOT_SUPPORTED,
        format!("pgward does not support {what}"),
    )
}

pub(super) fn unknown_relation(schema: Option<&str>, name: &str) -> PgError {
    let shown = match schema {
        Some(s) => format!("{s}.{name}"),
        None => name.to_string(),
    };
    PgError::error("42P01", format!("relation \"{shown}\" does not exist"))
}

pub fn permission_denied(relation: &Relation) -> PgError {
    let kind = match relation.kind {
        crate::catalog::RelKind::View => "view",
        crate::catalog::RelKind::MaterializedView => "materialized view",
        crate::catalog::RelKind::Sequence => "sequence",
        _ => "table",
    };
    PgError::error(
        code::INSUFFICIENT_PRIVILEGE,
        format!("permission denied for {kind} {}", relation.name),
    )
}
