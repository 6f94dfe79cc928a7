//! Leak fencing: whether the secured subqueries of one query block may go
//! without their `OFFSET 0` fence (PRODUCT.md §3 "Predicates cannot
//! observe hidden rows").
//!
//! Without the fence PostgreSQL pulls the secured subquery up into the
//! block that reads it, and every qual of that block — and every qual an
//! enclosing level pushes down into it — may run on a row before the
//! policy filter does. So a block goes unfenced only when no qual but the
//! ones checked here can reach its scans: the statement's outermost SELECT
//! (there is no level above it), whose FROM tree holds only plain relations
//! (no derived tables, CTE references, functions or LATERAL items that
//! could bring quals of their own), and whose every qual (WHERE, JOIN … ON,
//! HAVING, which the planner may move into WHERE) is an AND/OR/NOT of
//! comparisons between columns and constants whose operator, resolved for
//! the operand types as PostgreSQL resolves it, is leakproof.
//!
//! Must never: answer "unfenced" for anything it cannot type; when in
//! doubt the answer is "fence".

use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, JoinConstraint, JoinOperator, Select, TableFactor,
    TableWithJoins, UnaryOperator, Value,
};

use super::secure::fold;
use crate::catalog::{Catalog, Relation};

const BOOL: u32 = 16;
const INT8: u32 = 20;
const INT2: u32 = 21;
const INT4: u32 = 23;
const TEXT: u32 = 25;
const VARCHAR: u32 = 1043;
const NUMERIC: u32 = 1700;
const UNKNOWN: u32 = 705;

/// What the rewriter knows of the type of a `$n` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Not declared: PostgreSQL gives it the type of what it is compared
    /// with.
    Unspecified,
    /// Declared as this type (oid).
    Type(u32),
    /// Declared as a type pgward cannot tell: never typed, so fenced.
    Untyped,
}

/// A type `PREPARE p (…)` declares.
pub fn declared(t: &DataType) -> Param {
    type_oid(t).map_or(Param::Untyped, Param::Type)
}

/// A type oid a Parse message declares, looked up in the catalog snapshot:
/// 0 (and `unknown`, which PostgreSQL treats alike) leaves the parameter
/// unspecified; an oid the snapshot does not have is not typed.
pub fn declared_oid(catalog: &Catalog, oid: u32) -> Param {
    match oid {
        0 | UNKNOWN => Param::Unspecified,
        _ if catalog.type_by_oid(oid).is_some() => Param::Type(oid),
        _ => Param::Untyped,
    }
}

/// A plain relation of the block and the name its columns are qualified by.
struct Item<'c> {
    alias: String,
    relation: &'c Relation,
}

/// Whether the secured subqueries read directly in `select`'s FROM tree may
/// stay unfenced. `parameters`: the types declared for `$1`, `$2` … (by
/// `PREPARE` or a Parse message). `resolve` maps a table name to its relation, or `None` for
/// anything that is not a plain relation of the catalog (a CTE, an unknown
/// name).
pub fn block_is_leakproof<'c>(
    catalog: &'c Catalog,
    select: &Select,
    parameters: &'c [Param],
    resolve: &dyn Fn(&sqlparser::ast::ObjectName) -> Option<&'c Relation>,
) -> bool {
    let mut items = Vec::new();
    let mut quals = Vec::new();
    let plain = select.into.is_none()
        && select.lateral_views.is_empty()
        && select.prewhere.is_none()
        && select.connect_by.is_empty()
        && select.qualify.is_none()
        && select.cluster_by.is_empty()
        && select.distribute_by.is_empty()
        && select.sort_by.is_empty();
    if !plain {
        return false;
    }
    for twj in &select.from {
        if !collect_from(twj, resolve, &mut items, &mut quals) {
            return false;
        }
    }
    quals.extend(select.selection.as_ref());
    quals.extend(select.having.as_ref());
    let block = Block {
        catalog,
        items,
        parameters,
    };
    quals.iter().all(|q| block.qual(q))
}

fn collect_from<'c, 'e>(
    twj: &'e TableWithJoins,
    resolve: &dyn Fn(&sqlparser::ast::ObjectName) -> Option<&'c Relation>,
    items: &mut Vec<Item<'c>>,
    quals: &mut Vec<&'e Expr>,
) -> bool {
    if !collect_factor(&twj.relation, resolve, items, quals) {
        return false;
    }
    for join in &twj.joins {
        let constraint = match &join.join_operator {
            JoinOperator::Join(c)
            | JoinOperator::Inner(c)
            | JoinOperator::Left(c)
            | JoinOperator::LeftOuter(c)
            | JoinOperator::Right(c)
            | JoinOperator::RightOuter(c)
            | JoinOperator::FullOuter(c)
            | JoinOperator::CrossJoin(c) => c,
            _ => return false,
        };
        match constraint {
            JoinConstraint::On(e) => quals.push(e),
            JoinConstraint::None => {}
            // USING and NATURAL compare columns pgward would have to match
            // up by name across both sides: fenced.
            JoinConstraint::Using(_) | JoinConstraint::Natural => return false,
        }
        if !collect_factor(&join.relation, resolve, items, quals) {
            return false;
        }
    }
    true
}

fn collect_factor<'c, 'e>(
    factor: &'e TableFactor,
    resolve: &dyn Fn(&sqlparser::ast::ObjectName) -> Option<&'c Relation>,
    items: &mut Vec<Item<'c>>,
    quals: &mut Vec<&'e Expr>,
) -> bool {
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
            let Some(relation) = resolve(name) else {
                return false;
            };
            let alias = match alias {
                // Renamed columns would need matching by position.
                Some(a) if !a.columns.is_empty() => return false,
                Some(a) => fold(&a.name),
                None => relation.name.clone(),
            };
            items.push(Item { alias, relation });
            true
        }
        TableFactor::NestedJoin {
            table_with_joins,
            alias: None,
        } => collect_from(table_with_joins, resolve, items, quals),
        _ => false,
    }
}

/// One operand of a comparison, typed as PostgreSQL would type it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Operand {
    /// A column of one of the block's relations, of this type.
    Column(u32),
    /// An untyped string literal, NULL or a `$n` parameter: it takes the
    /// type of the other side.
    Unknown,
    /// A constant of this type.
    Constant(u32),
}

struct Block<'c> {
    catalog: &'c Catalog,
    items: Vec<Item<'c>>,
    parameters: &'c [Param],
}

impl Block<'_> {
    /// A qual built only from leakproof comparisons joined by AND/OR/NOT.
    fn qual(&self, e: &Expr) -> bool {
        match e {
            Expr::Nested(inner) => self.qual(inner),
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr,
            } => self.qual(expr),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And | BinaryOperator::Or,
                right,
            } => self.qual(left) && self.qual(right),
            Expr::BinaryOp { left, op, right } => match comparison(op) {
                Some(name) => self.compare(name, left, right),
                None => false,
            },
            // A boolean column or constant on its own: no function runs.
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Value(_) => {
                self.operand(e).is_some()
            }
            Expr::IsNull(x)
            | Expr::IsNotNull(x)
            | Expr::IsTrue(x)
            | Expr::IsNotTrue(x)
            | Expr::IsFalse(x)
            | Expr::IsNotFalse(x) => self.operand(x).is_some(),
            Expr::IsDistinctFrom(l, r) | Expr::IsNotDistinctFrom(l, r) => self.compare("=", l, r),
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (lo, hi) = if *negated { ("<", ">") } else { (">=", "<=") };
                self.compare(lo, expr, low) && self.compare(hi, expr, high)
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => self.in_list(expr, list, *negated),
            Expr::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => self.compare(if *negated { "!~~" } else { "~~" }, expr, pattern),
            Expr::ILike {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => self.compare(if *negated { "!~~*" } else { "~~*" }, expr, pattern),
            _ => false,
        }
    }

    fn compare(&self, op: &str, left: &Expr, right: &Expr) -> bool {
        let (Some(l), Some(r)) = (self.operand(left), self.operand(right)) else {
            return false;
        };
        match (l, r) {
            // Columns of one type only: the planner derives more
            // comparisons between the members of an equality (a = b, b = 5
            // gives a = 5), and with mixed types those would use
            // cross-type operators nobody checked.
            (Operand::Column(a), Operand::Column(b)) => a == b && self.leakproof(op, a, b),
            (Operand::Column(t), Operand::Unknown) | (Operand::Unknown, Operand::Column(t)) => {
                self.leakproof(op, t, t)
            }
            (Operand::Column(t), Operand::Constant(c)) => self.leakproof(op, t, c),
            (Operand::Constant(c), Operand::Column(t)) => self.leakproof(op, c, t),
            // Constants only: no row ever reaches the operator.
            _ => true,
        }
    }

    /// `x [NOT] IN (…)`: PostgreSQL compares with `=` (`<>`) at the common
    /// type of all the values; only lists whose common type is the column's
    /// own are accepted, so the column is never cast.
    fn in_list(&self, expr: &Expr, list: &[Expr], negated: bool) -> bool {
        let Some(Operand::Column(t)) = self.operand(expr) else {
            return false;
        };
        let same_type = list.iter().all(|e| match self.operand(e) {
            Some(Operand::Unknown) => true,
            Some(Operand::Constant(c)) => c == t || (t == INT8 && c == INT4),
            _ => false,
        });
        !list.is_empty() && same_type && self.leakproof(if negated { "<>" } else { "=" }, t, t)
    }

    fn operand(&self, e: &Expr) -> Option<Operand> {
        match e {
            Expr::Nested(inner) => self.operand(inner),
            Expr::Identifier(id) => self.column(None, &fold(id)),
            Expr::CompoundIdentifier(ids) => match ids.as_slice() {
                [q, c] => self.column(Some(&fold(q)), &fold(c)),
                _ => None,
            },
            Expr::Value(v) => match &v.value {
                Value::Placeholder(p) => self.parameter(p),
                other => literal(other, false),
            },
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr,
            } => match expr.as_ref() {
                Expr::Value(v) => literal(&v.value, true),
                _ => None,
            },
            // A cast of a constant runs once, whatever the rows.
            Expr::Cast {
                kind: CastKind::DoubleColon | CastKind::Cast,
                expr,
                data_type,
                format: None,
            } => match self.operand(expr)? {
                Operand::Column(_) => None,
                Operand::Unknown | Operand::Constant(_) => {
                    Some(Operand::Constant(type_oid(data_type)?))
                }
            },
            _ => None,
        }
    }

    /// `$n`: of the type `PREPARE` or the Parse message declares for it,
    /// else it takes the type of what it is compared with.
    fn parameter(&self, p: &str) -> Option<Operand> {
        let digits = p.strip_prefix('$')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: usize = digits.parse().ok()?;
        match self.parameters.get(n.checked_sub(1)?) {
            Some(Param::Type(oid)) => Some(Operand::Constant(*oid)),
            Some(Param::Untyped) => None,
            Some(Param::Unspecified) | None => Some(Operand::Unknown),
        }
    }

    /// The type of a column of the block: qualified by an alias, or the one
    /// relation that has it.
    fn column(&self, qualifier: Option<&str>, name: &str) -> Option<Operand> {
        let mut found = self
            .items
            .iter()
            .filter(|i| qualifier.is_none_or(|q| i.alias == q))
            .filter_map(|i| i.relation.column(name));
        let column = found.next()?;
        if found.next().is_some() {
            return None;
        }
        Some(Operand::Column(column.type_oid))
    }

    /// The operator PostgreSQL picks for these operand types is leakproof.
    /// varchar has no comparison operators of its own: PostgreSQL uses
    /// text's (varchar is binary-coercible to text).
    fn leakproof(&self, op: &str, left: u32, right: u32) -> bool {
        let as_text = |t: u32| if t == VARCHAR { TEXT } else { t };
        self.catalog
            .operator(op, left, right)
            .or_else(|| self.catalog.operator(op, as_text(left), as_text(right)))
            .is_some_and(|o| o.leakproof)
    }
}

fn comparison(op: &BinaryOperator) -> Option<&'static str> {
    Some(match op {
        BinaryOperator::Eq => "=",
        BinaryOperator::NotEq => "<>",
        BinaryOperator::Lt => "<",
        BinaryOperator::LtEq => "<=",
        BinaryOperator::Gt => ">",
        BinaryOperator::GtEq => ">=",
        _ => return None,
    })
}

/// A literal's type as PostgreSQL's `make_const` assigns it: an integer
/// that fits int4 is int4, else int8, else numeric; any other number is
/// numeric; strings and NULL are unknown until compared.
fn literal(v: &Value, negated: bool) -> Option<Operand> {
    match v {
        Value::Number(n, false) => {
            let text = if negated { format!("-{n}") } else { n.clone() };
            Some(Operand::Constant(if text.parse::<i32>().is_ok() {
                INT4
            } else if text.parse::<i64>().is_ok() {
                INT8
            } else {
                NUMERIC
            }))
        }
        _ if negated => None,
        Value::Boolean(_) => Some(Operand::Constant(BOOL)),
        Value::SingleQuotedString(_)
        | Value::DollarQuotedString(_)
        | Value::EscapedStringLiteral(_)
        | Value::Null => Some(Operand::Unknown),
        _ => None,
    }
}

/// Built-in types a constant may be cast to here; anything else is not
/// typed (and so fenced).
fn type_oid(t: &DataType) -> Option<u32> {
    Some(match t {
        DataType::Int(None) | DataType::Integer(None) | DataType::Int4(None) => INT4,
        DataType::BigInt(None) | DataType::Int8(None) => INT8,
        DataType::SmallInt(None) | DataType::Int2(None) => INT2,
        DataType::Text => TEXT,
        DataType::Boolean | DataType::Bool => BOOL,
        _ => return None,
    })
}
