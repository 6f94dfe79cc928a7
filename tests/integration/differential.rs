//! Differential test against PostgreSQL's own row-level security (PRODUCT.md
//! §3, semantics 5: for a user whose applicable policies all name roles with
//! the same column grants, pgward's result equals PostgreSQL's).
//!
//! The fixture under `tests/differential/` states one policy set twice: as
//! pgward policies (`policies.sql`) and as native RLS policies with column
//! grants (`native.sql`), whose globals come from SECURITY DEFINER functions
//! keyed on `current_user` (`schema.sql`). A seeded generator writes SELECT
//! statements over the four tables — joins of every kind, aggregates,
//! subqueries in every clause, set operations, CTEs (one recursive pattern),
//! window functions, ORDER BY/LIMIT/OFFSET — naming only columns every test
//! user may see (and, for a few, a hidden one, which both must refuse). Each
//! runs through pgward as each user and directly as the PostgreSQL role of
//! the same name; answers are compared as multisets of rows as text (column
//! names included), errors by SQLSTATE class.
//!
//! `PGWARD_DIFF_SEED` and `PGWARD_DIFF_QUERIES` override the fixed seed and
//! the 5,000 queries of the CI run; `scripts/differential.sh` runs a longer
//! one with a random seed. A mismatch prints the seed, the query and both
//! answers.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Instant;

use futures_util::StreamExt;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::harness::{PgwardOptions, TestDb, connect};

const SCHEMA: &str = include_str!("../differential/schema.sql");
const POLICIES: &str = include_str!("../differential/policies.sql");
const NATIVE: &str = include_str!("../differential/native.sql");

/// The test users: pgward logins and PostgreSQL roles of the same name and
/// password (policies.sql, native.sql).
const USERS: &[(&str, &str)] = &[("dt_ann", "ann"), ("dt_bob", "bob"), ("dt_cy", "cy")];

const DEFAULT_SEED: u64 = 20_261_123;
const DEFAULT_QUERIES: usize = 5_000;
/// Statements in flight per connection.
const PIPELINE_DEPTH: usize = 8;

/// Query shapes on which pgward is known to answer differently from native
/// RLS: the generator never emits a feature named here. Each entry names the
/// bug it works around; remove it once the bug is fixed.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

// ---------------------------------------------------------------------------
// The generator.

/// SplitMix64: tiny, seedable, and its sequence never changes with a crate
/// upgrade, so a printed seed reproduces a run for good.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Int,
    Num,
    Text,
    Date,
}

struct Col {
    name: &'static str,
    ty: Ty,
    /// Literals worth comparing this column with.
    lits: &'static [&'static str],
}

struct Table {
    name: &'static str,
    /// The columns every test user may read.
    cols: &'static [Col],
    /// A column no test user may read.
    hidden: &'static str,
}

const fn col(name: &'static str, ty: Ty, lits: &'static [&'static str]) -> Col {
    Col { name, ty, lits }
}

const IDS: &[&str] = &["1", "3", "5", "8", "42", "77", "119", "300"];
const DEPTS: &[&str] = &["1", "2", "3", "5", "9"];
const REGIONS: &[&str] = &["'emea'", "'amer'", "'apac'", "'mars'"];
const DATES: &[&str] = &[
    "DATE '2019-06-01'",
    "DATE '2021-01-01'",
    "DATE '2022-09-15'",
    "DATE '2023-12-31'",
    "DATE '2024-06-30'",
];

const TABLES: &[Table] = &[
    Table {
        name: "departments",
        cols: &[
            col("id", Ty::Int, DEPTS),
            col("name", Ty::Text, &["'dept_2'", "'dept_5'", "'dept_9'"]),
            col("region", Ty::Text, REGIONS),
            col("budget", Ty::Int, &["0", "10000", "25000", "40000"]),
        ],
        hidden: "secret_code",
    },
    Table {
        name: "employees",
        cols: &[
            col("id", Ty::Int, IDS),
            col("name", Ty::Text, &["'emp_007'", "'emp_050'", "'emp_100'"]),
            col("dept_id", Ty::Int, DEPTS),
            col("manager_id", Ty::Int, &["1", "2", "4", "6", "30"]),
            col("salary", Ty::Int, &["40000", "65000", "90000", "110000"]),
            col("hired", Ty::Date, DATES),
            col("grade", Ty::Int, &["1", "2", "3", "5"]),
        ],
        hidden: "ssn",
    },
    Table {
        name: "orders",
        cols: &[
            col("id", Ty::Int, IDS),
            col("emp_id", Ty::Int, &["1", "10", "60", "120"]),
            col("dept_id", Ty::Int, DEPTS),
            col("product_id", Ty::Int, &["1", "7", "20", "40"]),
            col(
                "customer",
                Ty::Text,
                &["'cust_0'", "'cust_17'", "'cust_33'"],
            ),
            col("amount", Ty::Num, &["50", "100.5", "250", "400"]),
            col(
                "status",
                Ty::Text,
                &["'open'", "'closed'", "'draft'", "'archived'", "'shipped'"],
            ),
            col("region", Ty::Text, REGIONS),
            col("created", Ty::Date, DATES),
            col("note", Ty::Text, &["'note 1'", "'note 5'", "'note 12'"]),
        ],
        hidden: "margin",
    },
    Table {
        name: "products",
        cols: &[
            col("id", Ty::Int, &["1", "7", "20", "40"]),
            col("name", Ty::Text, &["'prod_3'", "'prod_30'"]),
            col(
                "category",
                Ty::Text,
                &["'tools'", "'food'", "'books'", "'toys'"],
            ),
            col("price", Ty::Num, &["10", "25.5", "60", "85"]),
        ],
        hidden: "cost",
    },
];

/// Join keys: (table, column, table, column).
const KEYS: &[(&str, &str, &str, &str)] = &[
    ("employees", "dept_id", "departments", "id"),
    ("orders", "emp_id", "employees", "id"),
    ("orders", "dept_id", "departments", "id"),
    ("orders", "product_id", "products", "id"),
    ("employees", "manager_id", "employees", "id"),
    ("orders", "region", "departments", "region"),
    ("orders", "dept_id", "employees", "dept_id"),
];

/// Something a FROM clause makes visible: a table (maybe through a derived
/// table or a CTE of the same columns) under an alias.
#[derive(Clone)]
struct Rel {
    alias: String,
    table: &'static Table,
    cols: Vec<&'static Col>,
}

impl Rel {
    fn has(&self, name: &str) -> bool {
        self.cols.iter().any(|c| c.name == name)
    }
}

/// A generated statement and the features it uses.
struct Generated {
    sql: String,
    features: Vec<&'static str>,
}

struct Gen {
    rng: Rng,
    next_alias: usize,
    features: Vec<&'static str>,
    /// CTEs the statement being built defines (named like tables).
    ctes: Vec<Rel>,
    /// Name columns without their alias where one relation is in scope
    /// (the rewriter must scope bare names as PostgreSQL does).
    bare: bool,
}

fn known_difference(feature: &str) -> bool {
    KNOWN_DIFFERENCES.iter().any(|(f, _)| *f == feature)
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng(seed),
            next_alias: 0,
            features: Vec::new(),
            ctes: Vec::new(),
            bare: false,
        }
    }

    /// Whether to use `feature` this time: with `percent` chance, never
    /// when it is a known difference.
    fn on(&mut self, feature: &'static str, percent: u64) -> bool {
        if known_difference(feature) || !self.rng.chance(percent) {
            return false;
        }
        if !self.features.contains(&feature) {
            self.features.push(feature);
        }
        true
    }

    fn alias(&mut self) -> String {
        self.next_alias += 1;
        format!("a{}", self.next_alias)
    }

    fn statement(&mut self) -> Generated {
        self.next_alias = 0;
        self.features.clear();
        self.ctes.clear();
        self.bare = false;
        self.bare = self.on("unqualified", 25);
        let sql = if self.on("hidden_column", 2) {
            self.hidden_column_query()
        } else if self.on("recursive_cte", 4) {
            self.recursive_query()
        } else {
            let mut with = String::new();
            if self.on("cte", 15) {
                with = self.ctes_clause();
            }
            let (body, arity, sortable) = match self.rng.below(10) {
                0..=2 => self.plain_select(2),
                3..=4 => self.aggregate_select(2),
                5 => self.window_select(),
                6..=7 => self.set_operation(),
                _ => self.plain_select(2),
            };
            let mut sql = format!("{with}{body}");
            if sortable && self.on("order_limit", 35) {
                sql += &self.order_by_all(arity);
            }
            sql
        };
        Generated {
            sql,
            features: self.features.clone(),
        }
    }

    /// `ORDER BY` every output column (a total order on what the client
    /// sees, so LIMIT/OFFSET pick the same multiset on both sides).
    fn order_by_all(&mut self, arity: usize) -> String {
        let keys: Vec<String> = (1..=arity)
            .map(|i| {
                let dir = if self.rng.chance(30) { " DESC" } else { "" };
                let nulls = if self.rng.chance(20) {
                    " NULLS FIRST"
                } else {
                    ""
                };
                format!("{i}{dir}{nulls}")
            })
            .collect();
        let mut sql = format!(" ORDER BY {}", keys.join(", "));
        if self.rng.chance(60) {
            sql += &format!(" LIMIT {}", 1 + self.rng.below(20));
        }
        if self.on("offset", 40) {
            sql += &format!(" OFFSET {}", self.rng.below(10));
        }
        sql
    }

    fn table(&mut self) -> &'static Table {
        self.rng.pick(TABLES)
    }

    fn rel_of(&mut self, table: &'static Table) -> Rel {
        Rel {
            alias: self.alias(),
            table,
            cols: table.cols.iter().collect(),
        }
    }

    fn column<'a>(&mut self, scope: &'a [Rel]) -> (String, &'static Col, &'a Rel) {
        let rel = self.rng.pick(scope);
        let col = *self.rng.pick(&rel.cols);
        (self.name(scope, rel, col), col, rel)
    }

    /// How to name `col` of `rel`, one of `scope`.
    fn name(&self, scope: &[Rel], rel: &Rel, col: &Col) -> String {
        if self.bare && scope.len() == 1 {
            col.name.to_string()
        } else {
            format!("{}.{}", rel.alias, col.name)
        }
    }

    fn column_of_type(&mut self, scope: &[Rel], ty: Ty) -> Option<(String, &'static Col)> {
        let this = &*self;
        let all: Vec<(String, &'static Col)> = scope
            .iter()
            .flat_map(|r| {
                r.cols
                    .iter()
                    .filter(|c| c.ty == ty)
                    .map(move |c| (this.name(scope, r, c), *c))
            })
            .collect();
        if all.is_empty() {
            None
        } else {
            Some(self.rng.pick(&all).clone())
        }
    }

    fn literal(&mut self, col: &Col) -> String {
        self.rng.pick(col.lits).to_string()
    }

    /// `WITH name AS (…)[, …] ` defining one or two CTEs over single tables.
    fn ctes_clause(&mut self) -> String {
        let n = 1 + self.rng.below(2);
        let mut parts = Vec::new();
        for i in 0..n {
            let table = self.table();
            let inner = self.rel_of(table);
            let pred = self.predicate(std::slice::from_ref(&inner), 1);
            // A CTE may shadow its own table: its body still reads the
            // table, what follows reads the CTE.
            let shadows = !self.ctes.iter().any(|c| c.alias == table.name)
                && self.on("cte_shadows_table", 15);
            let name = if shadows {
                table.name.to_string()
            } else {
                format!("c{i}_{}", table.name)
            };
            let cols: Vec<&str> = table.cols.iter().map(|c| c.name).collect();
            let materialized = if self.on("cte_materialized", 20) {
                "MATERIALIZED "
            } else {
                ""
            };
            parts.push(format!(
                "{name} AS {materialized}(SELECT {} FROM {} {} WHERE {pred})",
                cols.iter()
                    .map(|c| format!("{}.{c}", inner.alias))
                    .collect::<Vec<_>>()
                    .join(", "),
                table.name,
                inner.alias
            ));
            self.ctes.push(Rel {
                alias: name,
                table,
                cols: table.cols.iter().collect(),
            });
        }
        format!("WITH {} ", parts.join(", "))
    }

    /// One FROM item: a table, a CTE, or a derived table.
    fn table_ref(&mut self, depth: usize) -> (String, Rel) {
        if !self.ctes.is_empty() && self.rng.chance(50) {
            let cte = self.rng.pick(&self.ctes).clone();
            let alias = self.alias();
            let rel = Rel {
                alias: alias.clone(),
                ..cte.clone()
            };
            return (format!("{} {alias}", cte.alias), rel);
        }
        let table = self.table();
        if depth > 0 && self.on("derived_table", 12) {
            let inner = self.rel_of(table);
            let pred = self.predicate(std::slice::from_ref(&inner), depth - 1);
            let alias = self.alias();
            let cols: Vec<String> = table
                .cols
                .iter()
                .map(|c| format!("{}.{}", inner.alias, c.name))
                .collect();
            let rel = Rel {
                alias: alias.clone(),
                table,
                cols: table.cols.iter().collect(),
            };
            return (
                format!(
                    "(SELECT {} FROM {} {} WHERE {pred}) {alias}",
                    cols.join(", "),
                    table.name,
                    inner.alias
                ),
                rel,
            );
        }
        let rel = self.rel_of(table);
        (format!("{} {}", table.name, rel.alias), rel)
    }

    /// An equality joining `new` to one of `scope`, by a known key when
    /// there is one, else by any two columns of one type.
    fn join_condition(&mut self, scope: &[Rel], new: &Rel) -> String {
        let mut keyed = Vec::new();
        for rel in scope {
            for (t1, c1, t2, c2) in KEYS {
                if rel.table.name == *t1 && new.table.name == *t2 && rel.has(c1) && new.has(c2) {
                    keyed.push(format!("{}.{c1} = {}.{c2}", rel.alias, new.alias));
                }
                if new.table.name == *t1 && rel.table.name == *t2 && new.has(c1) && rel.has(c2) {
                    keyed.push(format!("{}.{c1} = {}.{c2}", new.alias, rel.alias));
                }
            }
        }
        if !keyed.is_empty() && self.rng.chance(85) {
            return self.rng.pick(&keyed).clone();
        }
        let bare = std::mem::replace(&mut self.bare, false);
        let mut condition = None;
        for _ in 0..10 {
            let (left, col, _) = self.column(scope);
            if let Some((right, _)) = self.column_of_type(std::slice::from_ref(new), col.ty) {
                condition = Some(format!("{left} = {right}"));
                break;
            }
        }
        self.bare = bare;
        if let Some(condition) = condition {
            return condition;
        }
        format!("{}.id = {}.id", scope[0].alias, new.alias)
    }

    /// A column name `new` shares with exactly one relation of `scope`, of
    /// one type: what `JOIN … USING (name)` may name.
    fn shared_column(&mut self, scope: &[Rel], new: &Rel) -> Option<&'static str> {
        let shared: Vec<&'static str> = new
            .cols
            .iter()
            .filter(|c| {
                let owners: Vec<&Rel> = scope.iter().filter(|r| r.has(c.name)).collect();
                owners.len() == 1
                    && owners[0]
                        .cols
                        .iter()
                        .any(|o| o.name == c.name && o.ty == c.ty)
            })
            .map(|c| c.name)
            .collect();
        if shared.is_empty() {
            None
        } else {
            Some(shared[self.rng.below(shared.len())])
        }
    }

    /// A FROM clause of one to three items and the relations it shows.
    fn join_tree(&mut self, depth: usize) -> (String, Vec<Rel>) {
        let (mut sql, first) = self.table_ref(depth);
        let mut scope = vec![first];
        let extra = match self.rng.below(10) {
            0..=3 => 0,
            4..=8 => 1,
            _ => 2,
        };
        for _ in 0..extra {
            if depth > 0 && self.on("lateral", 6) {
                let (lateral, rel) = self.lateral_item(&scope);
                sql += &lateral;
                scope.push(rel);
                continue;
            }
            let kind = self.rng.below(12);
            if kind == 0 && !known_difference("cross_join") {
                // Only the small table: the product stays small.
                self.on("cross_join", 100);
                let rel = self.rel_of(&TABLES[0]);
                sql += &format!(" CROSS JOIN departments {}", rel.alias);
                scope.push(rel);
                continue;
            }
            let (item, rel) = self.table_ref(depth);
            let on = self.join_condition(&scope, &rel);
            let (join, feature) = match kind {
                1..=3 => ("LEFT JOIN", "left_join"),
                4..=5 => ("RIGHT JOIN", "right_join"),
                6..=7 => ("FULL JOIN", "full_join"),
                _ => ("JOIN", "inner_join"),
            };
            if !self.on(feature, 100) {
                // A known difference: fall back to an inner join.
                sql += &format!(" JOIN {item} ON {on}");
                scope.push(rel);
                continue;
            }
            if let Some(shared) = self.shared_column(&scope, &rel)
                && self.on("join_using", 15)
            {
                sql += &format!(" {join} {item} USING ({shared})");
                scope.push(rel);
                continue;
            }
            let mut on = on;
            // FULL JOIN needs a merge- or hash-joinable condition: only
            // equalities there.
            if feature != "full_join" && depth > 0 && self.on("subquery_in_on", 10) {
                let mut both = scope.clone();
                both.push(rel.clone());
                on = format!("{on} AND {}", self.subquery_predicate(&both, depth - 1));
            } else if feature != "full_join" && self.rng.chance(25) {
                let mut both = scope.clone();
                both.push(rel.clone());
                on = format!("{on} AND {}", self.simple_predicate(&both));
            }
            sql += &format!(" {join} {item} ON {on}");
            scope.push(rel);
        }
        (sql, scope)
    }

    /// `[LEFT] JOIN LATERAL (…) ON true` / `CROSS JOIN LATERAL`: up to a few
    /// rows of another table correlated with the FROM so far, in a total
    /// order (its primary key) so that LIMIT is deterministic.
    fn lateral_item(&mut self, scope: &[Rel]) -> (String, Rel) {
        let table = self.table();
        let inner = self.rel_of(table);
        let on = self.join_condition(scope, &inner);
        let alias = self.alias();
        let n = 1 + self.rng.below(3);
        let picked: Vec<&'static Col> = table
            .cols
            .iter()
            .filter(|c| c.name == "id" || self.rng.chance(50))
            .collect();
        let list: Vec<String> = picked
            .iter()
            .map(|c| format!("{}.{}", inner.alias, c.name))
            .collect();
        let body = format!(
            "(SELECT {} FROM {} {} WHERE {on} ORDER BY {}.id LIMIT {n}) {alias}",
            list.join(", "),
            table.name,
            inner.alias,
            inner.alias
        );
        let rel = Rel {
            alias,
            table,
            cols: picked,
        };
        if self.rng.chance(50) {
            (format!(" LEFT JOIN LATERAL {body} ON true"), rel)
        } else {
            (format!(" CROSS JOIN LATERAL {body}"), rel)
        }
    }

    fn comparison(&mut self) -> &'static str {
        const OPS: &[&str] = &["=", "<>", "<", "<=", ">", ">="];
        let op: &&'static str = self.rng.pick(OPS);
        op
    }

    /// A predicate without subqueries over `scope`.
    fn simple_predicate(&mut self, scope: &[Rel]) -> String {
        let (c, col, rel) = self.column(scope);
        match self.rng.below(9) {
            0..=2 => {
                let op = self.comparison();
                let lit = self.literal(col);
                format!("{c} {op} {lit}")
            }
            3 => format!(
                "{c} IS {}NULL",
                if self.rng.chance(50) { "NOT " } else { "" }
            ),
            4 => {
                let (a, b) = (self.literal(col), self.literal(col));
                format!("{c} BETWEEN {a} AND {b}")
            }
            5 => {
                let (a, b) = (self.literal(col), self.literal(col));
                let not = if self.rng.chance(30) { "NOT " } else { "" };
                format!("{c} {not}IN ({a}, {b})")
            }
            6 if col.ty == Ty::Text => {
                let lit = self.literal(col);
                let prefix: String = lit.trim_matches('\'').chars().take(3).collect();
                format!("{c} LIKE '{prefix}%'")
            }
            7 => {
                // Two columns of one type, maybe of different relations.
                let other_alias = rel.alias.clone();
                match self.column_of_type(scope, col.ty) {
                    Some((other, _)) if other != c => {
                        let op = self.comparison();
                        format!("{c} {op} {other}")
                    }
                    _ => format!("{other_alias}.id IS NOT NULL"),
                }
            }
            _ => {
                let lit = self.literal(col);
                format!("coalesce({c}, {lit}) = {lit}")
            }
        }
    }

    /// A predicate over `scope`, maybe with subqueries (correlated to
    /// `scope`) when `depth` allows.
    fn predicate(&mut self, scope: &[Rel], depth: usize) -> String {
        match self.rng.below(10) {
            0..=4 => self.simple_predicate(scope),
            5..=6 if depth > 0 => self.subquery_predicate(scope, depth - 1),
            7 => {
                let a = self.predicate(scope, depth.saturating_sub(1));
                let b = self.predicate(scope, depth.saturating_sub(1));
                let op = if self.rng.chance(50) { "AND" } else { "OR" };
                format!("({a} {op} {b})")
            }
            8 => {
                let a = self.simple_predicate(scope);
                format!("NOT ({a})")
            }
            _ => self.simple_predicate(scope),
        }
    }

    /// When names are bare: `inner.c = x`, where `x` names a column of the
    /// one outer relation that `inner` lacks, so PostgreSQL resolves it one
    /// level out.
    fn outer_bare_reference(&mut self, scope: &[Rel], inner: &Rel) -> Option<String> {
        if !self.bare || scope.len() != 1 || !self.rng.chance(50) {
            return None;
        }
        let outer: Vec<&'static Col> = scope[0]
            .cols
            .iter()
            .copied()
            .filter(|c| !inner.table.cols.iter().any(|i| i.name == c.name))
            .filter(|c| inner.cols.iter().any(|i| i.ty == c.ty))
            .collect();
        if outer.is_empty() {
            return None;
        }
        let o = *self.rng.pick(&outer);
        let same: Vec<&'static Col> = inner
            .cols
            .iter()
            .copied()
            .filter(|i| i.ty == o.ty)
            .collect();
        let i = *self.rng.pick(&same);
        self.on("outer_reference", 100);
        Some(format!("{}.{} = {}", inner.alias, i.name, o.name))
    }

    /// EXISTS, IN, = ANY, or a comparison with a scalar aggregate subquery.
    fn subquery_predicate(&mut self, scope: &[Rel], depth: usize) -> String {
        let table = self.table();
        let inner = self.rel_of(table);
        let correlated = self.rng.chance(60);
        let mut conds = Vec::new();
        if correlated {
            match self.outer_bare_reference(scope, &inner) {
                Some(condition) => conds.push(condition),
                None => conds.push(self.join_condition(scope, &inner)),
            }
        }
        if self.rng.chance(60) {
            conds.push(self.predicate(std::slice::from_ref(&inner), depth));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let from = format!("{} {}", table.name, inner.alias);
        match self.rng.below(5) {
            0 => {
                self.on("exists", 100);
                let not = if self.rng.chance(35) { "NOT " } else { "" };
                format!("{not}EXISTS (SELECT 1 FROM {from}{filter})")
            }
            1 | 2 => {
                self.on("in_subquery", 100);
                let (c, col, _) = self.column(scope);
                let Some((inner_col, _)) =
                    self.column_of_type(std::slice::from_ref(&inner), col.ty)
                else {
                    // No column of that type there: compare as text.
                    let ic = format!("{}.id", inner.alias);
                    return format!("{c}::text IN (SELECT {ic}::text FROM {from}{filter})");
                };
                if self.rng.chance(30) {
                    format!("{c} = ANY (SELECT {inner_col} FROM {from}{filter})")
                } else {
                    let not = if self.on("not_in", 30) { "NOT " } else { "" };
                    format!("{c} {not}IN (SELECT {inner_col} FROM {from}{filter})")
                }
            }
            _ => {
                self.on("scalar_subquery", 100);
                let (c, col, _) = self.column(scope);
                let agg = match col.ty {
                    Ty::Int | Ty::Num => *self.rng.pick(&["max", "min", "avg", "sum"]),
                    Ty::Text | Ty::Date => *self.rng.pick(&["max", "min"]),
                };
                let inner_col = self
                    .column_of_type(std::slice::from_ref(&inner), col.ty)
                    .map(|(c, _)| c);
                match inner_col {
                    Some(ic) => {
                        let op = self.comparison();
                        format!("{c} {op} (SELECT {agg}({ic}) FROM {from}{filter})")
                    }
                    None => format!(
                        "(SELECT count(*) FROM {from}{filter}) > {}",
                        self.rng.below(5)
                    ),
                }
            }
        }
    }

    /// A select-list expression over `scope`.
    fn expression(&mut self, scope: &[Rel], depth: usize) -> String {
        let (c, col, _) = self.column(scope);
        match self.rng.below(12) {
            0 if matches!(col.ty, Ty::Int | Ty::Num) => {
                format!("{c} + {}", self.rng.below(100))
            }
            1 if col.ty == Ty::Text => format!("upper({c})"),
            2 => {
                let lit = self.literal(col);
                format!("coalesce({c}, {lit})")
            }
            3 => {
                let p = self.simple_predicate(scope);
                format!("CASE WHEN {p} THEN 1 ELSE 0 END")
            }
            4 if depth > 0 && self.on("subquery_in_select", 100) => {
                let table = self.table();
                let inner = self.rel_of(table);
                let on = self.join_condition(scope, &inner);
                if self.rng.chance(50) {
                    format!(
                        "(SELECT count(*) FROM {} {} WHERE {on})",
                        table.name, inner.alias
                    )
                } else {
                    let (ic, _, _) = self.column(std::slice::from_ref(&inner));
                    format!(
                        "(SELECT max({ic}) FROM {} {} WHERE {on})",
                        table.name, inner.alias
                    )
                }
            }
            5 if col.ty == Ty::Date => format!("extract(year FROM {c})"),
            7 if depth > 0 && self.on("array_subquery", 20) => {
                let table = self.table();
                let inner = self.rel_of(table);
                let on = self.join_condition(scope, &inner);
                let (ic, _, _) = self.column(std::slice::from_ref(&inner));
                format!(
                    "array_to_string(ARRAY(SELECT {ic} FROM {} {} WHERE {on} \
                     ORDER BY 1 NULLS LAST), ',', '-')",
                    table.name, inner.alias
                )
            }
            6 if self.on("identity", 15) => {
                // Reads as the login through pgward, and natively too.
                format!("{c}::text || current_user")
            }
            _ => c,
        }
    }

    /// `SELECT [DISTINCT] … FROM … [WHERE …]`: the SQL, its arity, and
    /// whether ORDER BY 1..n may follow.
    fn plain_select(&mut self, depth: usize) -> (String, usize, bool) {
        let (from, scope) = self.join_tree(depth);
        let n = 1 + self.rng.below(4);
        let items: Vec<String> = (0..n)
            .map(|i| {
                let e = self.expression(&scope, depth);
                if self.rng.chance(50) {
                    format!("{e} AS x{i}")
                } else {
                    e
                }
            })
            .collect();
        let distinct = if self.on("distinct", 10) {
            "DISTINCT "
        } else {
            ""
        };
        let mut sql = format!("SELECT {distinct}{} FROM {from}", items.join(", "));
        if self.rng.chance(75) {
            sql += &format!(" WHERE {}", self.predicate(&scope, depth));
        }
        if distinct.is_empty() && depth > 0 && self.on("subquery_in_order_by", 5) {
            // A subquery in ORDER BY, then every output column: the order
            // is total on what the client sees.
            let table = self.table();
            let inner = self.rel_of(table);
            let on = self.join_condition(&scope, &inner);
            let keys: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
            sql += &format!(
                " ORDER BY (SELECT count(*) FROM {} {} WHERE {on}), {} LIMIT {}",
                table.name,
                inner.alias,
                keys.join(", "),
                1 + self.rng.below(15)
            );
            return (sql, n, false);
        }
        (sql, n, true)
    }

    fn aggregate(&mut self, scope: &[Rel]) -> String {
        let (c, col, _) = self.column(scope);
        match (self.rng.below(7), col.ty) {
            (0, _) => "count(*)".into(),
            (1, _) => format!("count({c})"),
            (2, _) => format!("count(DISTINCT {c})"),
            (3, Ty::Int | Ty::Num) => format!("sum({c})"),
            (4, Ty::Int | Ty::Num) => format!("avg({c})"),
            (5, Ty::Text) => format!("string_agg({c}, ',' ORDER BY {c})"),
            (6, _) => {
                let p = self.simple_predicate(scope);
                format!("bool_or({p})")
            }
            (_, _) if self.on("aggregate_filter", 15) => {
                let p = self.simple_predicate(scope);
                format!("count(*) FILTER (WHERE {p})")
            }
            (_, _) => format!("max({c})"),
        }
    }

    /// `SELECT keys, aggregates … GROUP BY keys [HAVING …]`.
    fn aggregate_select(&mut self, depth: usize) -> (String, usize, bool) {
        let (from, scope) = self.join_tree(depth);
        let keys: Vec<String> = (0..self.rng.below(3))
            .map(|_| self.column(&scope).0)
            .collect();
        let naggs = 1 + self.rng.below(3);
        let aggs: Vec<String> = (0..naggs).map(|_| self.aggregate(&scope)).collect();
        let mut items = keys.clone();
        items.extend(aggs);
        let mut sql = format!("SELECT {} FROM {from}", items.join(", "));
        if self.rng.chance(60) {
            sql += &format!(" WHERE {}", self.predicate(&scope, depth));
        }
        self.on("aggregate", 100);
        if !keys.is_empty() {
            self.on("group_by", 100);
            if self.on("rollup", 10) {
                sql += &format!(" GROUP BY ROLLUP ({})", keys.join(", "));
            } else {
                sql += &format!(" GROUP BY {}", keys.join(", "));
            }
            if self.on("having", 40) {
                let agg = self.aggregate(&scope);
                if depth > 0 && self.on("subquery_in_having", 30) {
                    let table = self.table();
                    sql += &format!(
                        " HAVING count(*) > (SELECT count(*) / 50 FROM {} {})",
                        table.name,
                        self.alias()
                    );
                } else if agg.starts_with("count") {
                    sql += &format!(" HAVING {agg} > {}", self.rng.below(4));
                } else {
                    sql += &format!(" HAVING {agg} IS NOT NULL");
                }
            }
        }
        (sql, items.len(), true)
    }

    /// Window functions whose value does not depend on the order of peer
    /// rows (ranks, and aggregates over the default RANGE frame), plus
    /// row_number/lag over a single table ordered by its key.
    fn window_select(&mut self) -> (String, usize, bool) {
        self.on("window", 100);
        let (from, scope) = self.join_tree(1);
        let (part, _, _) = self.column(&scope);
        let (ord, ocol, _) = self.column(&scope);
        let mut items = vec![part.clone(), ord.clone()];
        let over = format!("OVER (PARTITION BY {part} ORDER BY {ord})");
        let f = match self.rng.below(5) {
            0 => format!("rank() {over}"),
            1 => format!("dense_rank() {over}"),
            2 => format!("count(*) {over}"),
            3 if matches!(ocol.ty, Ty::Int | Ty::Num) => format!("sum({ord}) {over}"),
            _ => format!("max({ord}) OVER (PARTITION BY {part})"),
        };
        items.push(f);
        if scope.len() == 1 && self.rng.chance(50) {
            let key = format!("{}.id", scope[0].alias);
            items.push(format!("row_number() OVER (ORDER BY {key})"));
            items.push(format!(
                "lag({ord}) OVER (PARTITION BY {part} ORDER BY {key})"
            ));
        }
        let mut sql = format!("SELECT {} FROM {from}", items.join(", "));
        if self.rng.chance(60) {
            sql += &format!(" WHERE {}", self.predicate(&scope, 1));
        }
        (sql, items.len(), true)
    }

    /// A branch of a set operation: a SELECT of the given column types.
    fn typed_select(&mut self, tys: &[Ty]) -> String {
        let (from, scope) = self.join_tree(1);
        let items: Vec<String> = tys
            .iter()
            .map(|ty| match self.column_of_type(&scope, *ty) {
                Some((c, _)) => c,
                None => match ty {
                    Ty::Int => "NULL::int".into(),
                    Ty::Num => "NULL::numeric".into(),
                    Ty::Text => "NULL::text".into(),
                    Ty::Date => "NULL::date".into(),
                },
            })
            .collect();
        let mut sql = format!("SELECT {} FROM {from}", items.join(", "));
        if self.rng.chance(70) {
            sql += &format!(" WHERE {}", self.predicate(&scope, 1));
        }
        sql
    }

    fn set_operation(&mut self) -> (String, usize, bool) {
        let n = 1 + self.rng.below(2);
        let tys: Vec<Ty> = (0..n)
            .map(|_| {
                *self
                    .rng
                    .pick(&[Ty::Int, Ty::Int, Ty::Text, Ty::Date, Ty::Num])
            })
            .collect();
        let (op, feature) = *self.rng.pick(&[
            ("UNION", "union"),
            ("UNION ALL", "union"),
            ("INTERSECT", "intersect"),
            ("INTERSECT ALL", "intersect"),
            ("EXCEPT", "except"),
            ("EXCEPT ALL", "except"),
        ]);
        if !self.on(feature, 100) {
            return self.plain_select(1);
        }
        let a = self.typed_select(&tys);
        let b = self.typed_select(&tys);
        let mut sql = format!("{a} {op} {b}");
        if self.rng.chance(20) {
            let c = self.typed_select(&tys);
            sql = format!("({sql}) UNION ALL ({c})");
        }
        (sql, n, true)
    }

    /// The recursive pattern: walk the manager tree down from the employees
    /// a predicate picks, or up from them, a few levels deep.
    fn recursive_query(&mut self) -> String {
        let start = self.rel_of(&TABLES[1]);
        let pred = self.predicate(std::slice::from_ref(&start), 1);
        let s = &start.alias;
        let levels = 1 + self.rng.below(5);
        let step = if self.rng.chance(50) {
            "e.manager_id = c.id"
        } else {
            "e.id = c.manager_id"
        };
        let walk = format!(
            "WITH RECURSIVE chain(id, name, manager_id, dept_id, depth) AS (\
             SELECT {s}.id, {s}.name, {s}.manager_id, {s}.dept_id, 0 FROM employees {s} WHERE {pred} \
             UNION ALL SELECT e.id, e.name, e.manager_id, e.dept_id, c.depth + 1 \
             FROM employees e JOIN chain c ON {step} WHERE c.depth < {levels}) "
        );
        match self.rng.below(3) {
            0 => format!(
                "{walk}SELECT depth, count(*), count(DISTINCT id) FROM chain GROUP BY depth"
            ),
            1 => format!(
                "{walk}SELECT c.id, c.name, c.depth, d.name FROM chain c \
                 LEFT JOIN departments d ON d.id = c.dept_id"
            ),
            _ => format!(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {}) \
                 SELECT n.x, count(o.id), sum(o.amount) FROM n LEFT JOIN orders o ON o.dept_id = n.x \
                 GROUP BY n.x",
                3 + levels
            ),
        }
    }

    /// A statement naming a column no test user may read, somewhere: both
    /// sides must refuse it with 42501.
    fn hidden_column_query(&mut self) -> String {
        let table = self.table();
        let t = self.alias();
        let h = table.hidden;
        match self.rng.below(4) {
            0 => format!("SELECT {t}.id, {t}.{h} FROM {} {t}", table.name),
            1 => format!(
                "SELECT {t}.id FROM {} {t} WHERE {t}.{h} IS NULL",
                table.name
            ),
            2 => format!(
                "SELECT count(*) FROM {} {t} ORDER BY max({t}.{h})",
                table.name
            ),
            _ => format!(
                "SELECT d.id FROM departments d WHERE EXISTS \
                 (SELECT 1 FROM {} {t} WHERE {t}.{h} IS NOT NULL AND {t}.id = d.id)",
                table.name
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// Running and comparing.

/// What a statement returned, comparable across connections.
#[derive(PartialEq, Eq, Hash, Clone)]
enum Answer {
    /// Column names and the rows as text, sorted (a multiset).
    Rows(Vec<String>, Vec<Vec<Option<String>>>),
    /// The SQLSTATE's class (its first two characters) and the full error.
    Error(String, String),
}

impl Answer {
    fn class(&self) -> Option<&str> {
        match self {
            Answer::Rows(..) => None,
            Answer::Error(class, _) => Some(class),
        }
    }

    fn code(&self) -> &str {
        match self {
            Answer::Rows(..) => "",
            Answer::Error(_, e) => &e[..5],
        }
    }

    fn same(&self, other: &Answer) -> bool {
        match (self, other) {
            (Answer::Error(a, _), Answer::Error(b, _)) => a == b,
            _ => self == other,
        }
    }

    fn show(&self) -> String {
        match self {
            Answer::Error(_, e) => format!("error {e}"),
            Answer::Rows(names, rows) => {
                let mut text = format!("{} rows, columns {names:?}\n", rows.len());
                for row in rows.iter().take(12) {
                    text += &format!("    {row:?}\n");
                }
                if rows.len() > 12 {
                    text += "    …\n";
                }
                text
            }
        }
    }

    fn digest(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

fn answer(
    result: Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>,
) -> anyhow::Result<Answer> {
    match result {
        Ok(messages) => {
            let mut names = Vec::new();
            let mut rows = Vec::new();
            for m in messages {
                match m {
                    SimpleQueryMessage::RowDescription(cols) => {
                        names = cols.iter().map(|c| c.name().to_string()).collect();
                    }
                    SimpleQueryMessage::Row(row) => {
                        rows.push(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_string))
                                .collect(),
                        );
                    }
                    _ => {}
                }
            }
            rows.sort();
            Ok(Answer::Rows(names, rows))
        }
        Err(e) => {
            let db = e
                .as_db_error()
                .ok_or_else(|| anyhow::anyhow!("not a database error: {e}"))?;
            let code = db.code().code();
            Ok(Answer::Error(
                code[..2].to_string(),
                format!("{code}: {}", db.message()),
            ))
        }
    }
}

struct Mismatch {
    index: usize,
    user: &'static str,
    features: Vec<&'static str>,
    sql: String,
    pgward: Answer,
    native: Answer,
}

/// Runs every statement through pgward and natively as one user, in
/// pipelines, and returns both answers per statement.
async fn run_user(
    pgward: &Client,
    native: &Client,
    statements: &[Generated],
) -> anyhow::Result<Vec<(Answer, Answer)>> {
    let mut out = Vec::with_capacity(statements.len());
    let mut answers = futures_util::stream::iter(statements.iter())
        .map(|g| async move {
            let (p, n) = tokio::join!(pgward.simple_query(&g.sql), native.simple_query(&g.sql));
            (g, p, n)
        })
        .buffered(PIPELINE_DEPTH);
    while let Some((g, p, n)) = answers.next().await {
        let p = answer(p).map_err(|e| anyhow::anyhow!("through pgward: {e}\n{}", g.sql))?;
        let n = answer(n).map_err(|e| anyhow::anyhow!("natively: {e}\n{}", g.sql))?;
        out.push((p, n));
    }
    Ok(out)
}

fn env_number(name: &str) -> anyhow::Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(
            v.trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("{name}={v}: {e}"))?,
        )),
        _ => Ok(None),
    }
}

async fn count(c: &Client, sql: &str) -> anyhow::Result<i64> {
    let rows = c.simple_query(sql).await?;
    rows.iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no count from {sql}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgward_answers_as_native_row_level_security() -> anyhow::Result<()> {
    let seed = env_number("PGWARD_DIFF_SEED")?.unwrap_or(DEFAULT_SEED);
    let total = env_number("PGWARD_DIFF_QUERIES")?.unwrap_or(DEFAULT_QUERIES as u64) as usize;
    eprintln!(
        "differential: seed {seed}, {total} queries, {} users",
        USERS.len()
    );

    let db = TestDb::new("differential").await?;
    db.service().await?.batch_execute(SCHEMA).await?;
    let su = db.superuser().await?;
    su.batch_execute(NATIVE).await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(POLICIES))
        .await?;

    // The native roles are what they must be for the comparison to mean
    // anything: no superuser, no BYPASSRLS, owners of nothing here.
    let names = USERS
        .iter()
        .map(|(u, _)| format!("'{u}'"))
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        count(
            &su,
            &format!(
                "SELECT count(*) FROM pg_roles WHERE rolname IN ({names}) \
                 AND NOT rolsuper AND NOT rolbypassrls AND rolcanlogin"
            )
        )
        .await?,
        USERS.len() as i64
    );
    assert_eq!(
        count(
            &su,
            &format!(
                "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner \
                 WHERE r.rolname IN ({names}) OR r.rolname LIKE 'dt\\_%'"
            )
        )
        .await?,
        0
    );

    let mut sessions = Vec::new();
    for (user, password) in USERS {
        let through = pgward.connect_as(user, password).await?;
        let direct = connect(&format!(
            "host=127.0.0.1 port={} dbname={} user={user} password={password}",
            db.cluster().port(),
            db.name()
        ))
        .await?;
        // Each user sees some but not all rows of every policed table, on
        // both sides: the policies are in force and not vacuous.
        for (table, all) in [("orders", 600), ("employees", 120), ("departments", 9)] {
            let sql = format!("SELECT count(id) FROM {table}");
            let (p, n) = (count(&through, &sql).await?, count(&direct, &sql).await?);
            assert!(
                0 < n && n < all,
                "{user} sees {n} of {all} {table} natively"
            );
            assert_eq!(p, n, "{user}: {sql}");
        }
        sessions.push((*user, through, direct));
    }

    let mut generator = Gen::new(seed);
    let statements: Vec<Generated> = (0..total).map(|_| generator.statement()).collect();
    let show = env_number("PGWARD_DIFF_SHOW")?.unwrap_or(0) as usize;
    for (i, g) in statements.iter().take(show).enumerate() {
        eprintln!("#{i} {:?}: {}", g.features, g.sql);
    }

    let started = Instant::now();
    let runs = futures_util::future::try_join_all(
        sessions
            .iter()
            .map(|(_, through, direct)| run_user(through, direct, &statements)),
    )
    .await?;
    let elapsed = started.elapsed();

    let mut mismatches = Vec::new();
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    let mut rows_answers = 0;
    let mut policy_dependent = 0;
    let mut noted = 0;
    for (i, g) in statements.iter().enumerate() {
        let mut digests = Vec::new();
        for ((user, _, _), run) in sessions.iter().zip(&runs) {
            let (p, n) = &run[i];
            match n.class() {
                Some(_) => *classes.entry(n.code().to_string()).or_default() += 1,
                None => rows_answers += 1,
            }
            digests.push(n.digest());
            if n.class().is_some() && !g.features.contains(&"hidden_column") && noted < 5 {
                // Both sides refused it alike, but the generator meant it to run.
                noted += 1;
                eprintln!("note: query #{i} as {user}: {}\n  {}", n.show(), g.sql);
            }
            if !p.same(n) {
                mismatches.push(Mismatch {
                    index: i,
                    user,
                    features: g.features.clone(),
                    sql: g.sql.clone(),
                    pgward: p.clone(),
                    native: n.clone(),
                });
            }
        }
        if digests.iter().any(|d| *d != digests[0]) {
            policy_dependent += 1;
        }
    }

    let comparisons = total * USERS.len();
    eprintln!(
        "differential: seed {seed}: {comparisons} comparisons in {:.1}s; {rows_answers} \
         answered with rows, errors by SQLSTATE {classes:?}; {policy_dependent} of {total} \
         queries answer differently for different users; {} mismatches",
        elapsed.as_secs_f64(),
        mismatches.len()
    );
    for m in mismatches.iter().take(30) {
        eprintln!(
            "MISMATCH seed {seed} query #{} as {} (features {:?}):\n  {}\n  pgward: {}  native: {}",
            m.index,
            m.user,
            m.features,
            m.sql,
            m.pgward.show(),
            m.native.show()
        );
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches between pgward and native RLS (seed {seed}); see above",
        mismatches.len()
    );
    // The generated statements must mostly run, and the policies must
    // matter to them: otherwise agreement would prove little.
    assert!(
        rows_answers * 100 >= comparisons * 90,
        "only {rows_answers} of {comparisons} statements answered with rows: {classes:?}"
    );
    assert!(
        policy_dependent * 100 >= total * 30,
        "only {policy_dependent} of {total} statements depend on the user"
    );
    Ok(())
}
