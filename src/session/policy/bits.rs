//! Permission bits as entries (PRODUCT.md §6): what the bits of a table,
//! of the tables its foreign keys point into, and of functions allow one
//! session.
//!
//! Row predicates are `key IN (arm UNION ALL arm …)`, one arm per way a
//! row admits an operation (owner, membership, guest), so that PostgreSQL
//! can find a user's rows through the index on the owner column and the
//! membership table's index; an OR across the arms would defeat both.
//! Never admits a row through a NULL owner or a NULL user id, and never
//! builds a predicate it cannot fully state: a bit table without a
//! single-column primary key gives no entries (the session is refused).

use std::collections::BTreeSet;

use sqlparser::ast::Expr;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::catalog::{Catalog, Relation};
use crate::error::{PgError, code};
use crate::globals::GlobalValues;
use crate::policy::PolicySet;
use crate::policy::model::QualifiedName;
use crate::policy::model::bits::{Bits, Class, Op, TableBits};
use crate::rewrite::{Columns, Command, Entry, InsertDefaults, Join};

/// Aliases of pgward's own subqueries: they only name relations inside
/// those subqueries, never a client's.
const ROW: &str = "\"pgward bits row\"";
const MEMBER: &str = "\"pgward bits member\"";

/// Who the session is, as far as bits go.
#[derive(Debug, Clone)]
pub struct Who {
    /// None: a guest.
    pub user_id: Option<String>,
    pub groups: Vec<String>,
}

impl Who {
    pub fn from_values(values: &GlobalValues) -> Who {
        let first = |name: &str| -> Vec<String> {
            values
                .get(name)
                .map(|v| {
                    v.rows
                        .iter()
                        .filter_map(|row| row.first().cloned().flatten())
                        .collect()
                })
                .unwrap_or_default()
        };
        let user_id = match values.get("user_id") {
            Some(v) if v.rows.len() == 1 => v.rows[0].first().cloned().flatten(),
            _ => None,
        };
        Who {
            user_id,
            groups: first("groups"),
        }
    }

    fn in_any(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }

    /// Whether table-level `bits` allow `op`: Guest bits for guests, User
    /// bits for any signed-in user, Group bits for members of `groups`.
    pub fn table_allows(&self, bits: Bits, groups: &[String], op: Op) -> bool {
        let class = if self.user_id.is_some() {
            Class::User
        } else {
            Class::Guest
        };
        bits.has(class, op) || (self.in_any(groups) && bits.has(Class::Group, op))
    }

    /// Whether the session is in the table's admin group.
    pub fn is_admin(&self, bits: &TableBits) -> bool {
        bits.admin_group
            .as_ref()
            .is_some_and(|g| self.groups.contains(g))
    }
}

/// The bits declared on `relation`, if any.
pub fn table_bits<'a>(policies: &'a PolicySet, relation: &Relation) -> Option<&'a TableBits> {
    policies
        .table_bits
        .iter()
        .find(|b| names(&b.table, &relation.schema, &relation.name))
}

fn names(name: &QualifiedName, schema: &str, relation: &str) -> bool {
    name.name == relation && name.schema.as_deref().unwrap_or("public") == schema
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn qualified(name: &QualifiedName) -> String {
    format!(
        "{}.{}",
        ident(name.schema.as_deref().unwrap_or("public")),
        ident(&name.name)
    )
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// An array literal of unknown type, which PostgreSQL reads as an array
/// of the column's type it is compared with (`group_id = ANY('{1,2}')`):
/// the membership index stays usable whatever type `@{groups}` has.
fn array_literal(items: &[String]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|i| format!("\"{}\"", i.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    literal(&format!("{{{}}}", items.join(",")))
}

fn failed(what: &str) -> PgError {
    tracing::error!("permission bits: {what}");
    PgError::error(
        code::FEATURE_NOT_SUPPORTED,
        "pgward could not apply permission bits",
    )
}

pub fn parse(sql: &str) -> Result<Expr, PgError> {
    let mut e = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| failed(&format!("{e} in {sql}")))?;
    crate::rewrite::literals::protect(&mut e)?;
    Ok(e)
}

/// A table with bits as the predicates need it.
struct Target<'a> {
    bits: &'a TableBits,
    table: String,
    key: String,
    /// The owner column's type, for a typed literal of the user id.
    owner_type: Option<String>,
}

impl<'a> Target<'a> {
    fn new(bits: &'a TableBits, relation: &Relation) -> Result<Target<'a>, PgError> {
        let [key] = relation.primary_key.as_slice() else {
            return Err(failed(&format!(
                "table \"{}\" needs a primary key of one column",
                relation.name
            )));
        };
        Ok(Target {
            bits,
            table: format!("{}.{}", ident(&relation.schema), ident(&relation.name)),
            key: key.clone(),
            owner_type: relation.column(&bits.owner).map(|c| c.type_name.clone()),
        })
    }

    fn user_literal(&self, user_id: &str) -> String {
        match &self.owner_type {
            Some(t) => format!("{}::{t}", literal(user_id)),
            None => literal(user_id),
        }
    }

    /// `SELECT key … UNION ALL …`: the keys of the rows that admit `op`.
    fn arms(&self, who: &Who, op: Op) -> String {
        let b = self.bits;
        let bit = |class| Bits::bit(class, op);
        let mut arms = Vec::new();
        if let Some(user_id) = &who.user_id {
            arms.push(format!(
                "SELECT {ROW}.{k} FROM {t} AS {ROW} WHERE {ROW}.{o} = {u} AND ({ROW}.{p} & {x}) <> 0",
                k = ident(&self.key),
                t = self.table,
                o = ident(&b.owner),
                u = self.user_literal(user_id),
                p = ident(&b.permission),
                x = bit(Class::User),
            ));
        }
        if let Some(m) = &b.groups
            && !who.groups.is_empty()
        {
            let member = format!(
                "{MEMBER}.{g} = ANY({a})",
                g = ident(&m.group),
                a = array_literal(&who.groups)
            );
            arms.push(match &m.permission {
                Some(mp) => format!(
                    "SELECT {MEMBER}.{rk} FROM {mt} AS {MEMBER} WHERE {member} AND ({MEMBER}.{mp} & {x}) <> 0",
                    rk = ident(&m.row_key),
                    mt = qualified(&m.table),
                    mp = ident(mp),
                    x = bit(Class::Group),
                ),
                None => format!(
                    "SELECT {MEMBER}.{rk} FROM {mt} AS {MEMBER} JOIN {t} AS {ROW} ON {ROW}.{k} = {MEMBER}.{rk} \
                     WHERE {member} AND ({ROW}.{p} & {x}) <> 0",
                    rk = ident(&m.row_key),
                    mt = qualified(&m.table),
                    t = self.table,
                    k = ident(&self.key),
                    p = ident(&b.permission),
                    x = bit(Class::Group),
                ),
            });
        }
        arms.push(format!(
            "SELECT {ROW}.{k} FROM {t} AS {ROW} WHERE ({ROW}.{p} & {x}) <> 0",
            k = ident(&self.key),
            t = self.table,
            p = ident(&b.permission),
            x = bit(Class::Guest),
        ));
        arms.join(" UNION ALL ")
    }

    /// The rows of this table (as its unqualified key) that admit `op`.
    fn admits(&self, who: &Who, op: Op) -> String {
        format!("{} IN ({})", ident(&self.key), self.arms(who, op))
    }
}

/// The entries the bits on `relation` give the session for `command`
/// (none when the table-level bits refuse it).
pub fn entries(
    bits: &TableBits,
    relation: &Relation,
    who: &Who,
    command: Command,
) -> Result<Vec<Entry>, PgError> {
    let all = |rows: Option<Expr>, check: Option<Expr>| Entry {
        rows,
        columns: Columns::All,
        check,
    };
    if who.is_admin(bits) {
        return Ok(vec![all(None, None)]);
    }
    let allows = |op| who.table_allows(bits.table_permission, &bits.table_groups, op);
    let target = Target::new(bits, relation)?;
    let mut entries = Vec::new();
    match command {
        Command::Select if allows(Op::Peek) => {
            entries.push(all(Some(parse(&target.admits(who, Op::Read))?), None));
            entries.push(Entry {
                rows: Some(parse(&target.admits(who, Op::Peek))?),
                columns: Columns::Some(relation.primary_key.iter().cloned().collect()),
                check: None,
            });
        }
        Command::Insert if allows(Op::Create) => {
            let owner = ident(&bits.owner);
            let check = match &who.user_id {
                Some(user_id) => format!("{owner} = {}", target.user_literal(user_id)),
                None => format!("{owner} IS NULL"),
            };
            entries.push(all(None, Some(parse(&check)?)));
        }
        Command::Update if allows(Op::Update) => {
            let rows = target.admits(who, Op::Update);
            let others: BTreeSet<String> = relation
                .columns
                .iter()
                .map(|c| c.name.clone())
                .filter(|c| *c != bits.owner && *c != bits.permission)
                .collect();
            entries.push(Entry {
                rows: Some(parse(&rows)?),
                columns: Columns::Some(others),
                check: None,
            });
            // Every column, for rows the user owned before the UPDATE: the
            // check's subquery reads the table as the statement found it
            // (a statement does not see its own changes), so an owner may
            // give a row away, and a non-owner changing the owner or the
            // permission gets 42501 (as PostgreSQL refuses a column it
            // holds no privilege on) rather than a silent UPDATE 0.
            if let Some(user_id) = &who.user_id {
                let owned = format!(
                    "{k} IN (SELECT {ROW}.{k} FROM {t} AS {ROW} WHERE {ROW}.{o} = {u})",
                    k = ident(&target.key),
                    t = target.table,
                    o = ident(&bits.owner),
                    u = target.user_literal(user_id)
                );
                entries.push(all(Some(parse(&rows)?), Some(parse(&owned)?)));
            }
        }
        Command::Delete if allows(Op::Delete) => {
            entries.push(all(Some(parse(&target.admits(who, Op::Delete))?), None));
        }
        _ => {}
    }
    Ok(entries)
}

/// SELECT entries that admit a row from its own owner and permission
/// values and its memberships (Read: every column; Peek: the key), for
/// write targets, whose new rows the table's predicates cannot see. None
/// for admins (their entry admits every row) and without table Peek.
pub fn own_row_entries(
    bits: &TableBits,
    relation: &Relation,
    who: &Who,
) -> Result<Vec<Entry>, PgError> {
    if who.is_admin(bits) || !who.table_allows(bits.table_permission, &bits.table_groups, Op::Peek)
    {
        return Ok(Vec::new());
    }
    let target = Target::new(bits, relation)?;
    let admits = |op: Op| -> Result<Expr, PgError> {
        let bit = |class| Bits::bit(class, op);
        let permission = ident(&bits.permission);
        let mut arms = vec![format!("({permission} & {}) <> 0", bit(Class::Guest))];
        if let Some(user_id) = &who.user_id {
            arms.push(format!(
                "({} = {} AND ({permission} & {}) <> 0)",
                ident(&bits.owner),
                target.user_literal(user_id),
                bit(Class::User)
            ));
        }
        if let Some(m) = &bits.groups
            && !who.groups.is_empty()
        {
            let member = format!(
                "{MEMBER}.{g} = ANY({a})",
                g = ident(&m.group),
                a = array_literal(&who.groups)
            );
            arms.push(match &m.permission {
                Some(mp) => format!(
                    "{k} IN (SELECT {MEMBER}.{rk} FROM {mt} AS {MEMBER} WHERE {member} AND ({MEMBER}.{mp} & {x}) <> 0)",
                    k = ident(&target.key),
                    rk = ident(&m.row_key),
                    mt = qualified(&m.table),
                    mp = ident(mp),
                    x = bit(Class::Group),
                ),
                None => format!(
                    "(({permission} & {x}) <> 0 AND {k} IN (SELECT {MEMBER}.{rk} FROM {mt} AS {MEMBER} WHERE {member}))",
                    k = ident(&target.key),
                    rk = ident(&m.row_key),
                    mt = qualified(&m.table),
                    x = bit(Class::Group),
                ),
            });
        }
        parse(&arms.join(" OR "))
    };
    Ok(vec![
        Entry {
            rows: Some(admits(Op::Read)?),
            columns: Columns::All,
            check: None,
        },
        Entry {
            rows: Some(admits(Op::Peek)?),
            columns: Columns::Some(relation.primary_key.iter().cloned().collect()),
            check: None,
        },
    ])
}

/// What an INSERT into a table with bits gets: the owner (the session's
/// user id; a guest's rows keep the column's default, and the check wants
/// it NULL), the default permission, and the default groups.
pub fn insert_defaults(
    bits: &TableBits,
    relation: &Relation,
    who: &Who,
) -> Result<InsertDefaults, PgError> {
    let mut columns = Vec::new();
    if let Some(user_id) = &who.user_id {
        let owner_type = relation.column(&bits.owner).map(|c| c.type_name.clone());
        let value = match owner_type {
            Some(t) => format!("{}::{t}", literal(user_id)),
            None => literal(user_id),
        };
        columns.push((bits.owner.clone(), parse(&value)?));
    }
    if let Some(permission) = bits.default_permission {
        columns.push((bits.permission.clone(), parse(&permission.to_string())?));
    }
    let join = match &bits.groups {
        Some(m) if !bits.default_groups.is_empty() => {
            let [key] = relation.primary_key.as_slice() else {
                return Err(failed(&format!(
                    "table \"{}\" needs a primary key of one column",
                    relation.name
                )));
            };
            Some(Join {
                schema: m.table.schema.clone().unwrap_or_else(|| "public".into()),
                table: m.table.name.clone(),
                row_key: m.row_key.clone(),
                group: m.group.clone(),
                permission: m.permission.clone(),
                key: key.clone(),
                row_permission: bits.permission.clone(),
                groups: bits.default_groups.clone(),
            })
        }
        _ => None,
    };
    Ok(InsertDefaults { columns, join })
}

/// Restrictive new-row checks of an INSERT or UPDATE into `relation`: each
/// foreign key pointing into a table with bits needs the Refer bit on the
/// row it references (a key with a NULL column references nothing).
pub fn refer_checks(
    policies: &PolicySet,
    catalog: &Catalog,
    relation: &Relation,
    who: &Who,
) -> Result<Vec<Expr>, PgError> {
    let mut checks = Vec::new();
    for fk in catalog.foreign_keys(relation.oid) {
        let Some(referenced) = catalog.relation_by_oid(fk.referenced) else {
            continue;
        };
        let Some(bits) = table_bits(policies, referenced) else {
            continue;
        };
        if who.is_admin(bits) {
            continue;
        }
        let target = Target::new(bits, referenced)?;
        let nulls: Vec<String> = fk
            .columns
            .iter()
            .map(|c| format!("{} IS NULL", ident(c)))
            .collect();
        let columns: Vec<String> = fk.columns.iter().map(|c| ident(c)).collect();
        let keys = if fk.referenced_columns == [target.key.clone()] {
            target.arms(who, Op::Refer)
        } else {
            let cols: Vec<String> = fk
                .referenced_columns
                .iter()
                .map(|c| format!("{ROW}.{}", ident(c)))
                .collect();
            format!(
                "SELECT {} FROM {} AS {ROW} WHERE {ROW}.{} IN ({})",
                cols.join(", "),
                target.table,
                ident(&target.key),
                target.arms(who, Op::Refer)
            )
        };
        checks.push(parse(&format!(
            "{} OR ({}) IN ({keys})",
            nulls.join(" OR "),
            columns.join(", ")
        ))?);
    }
    Ok(checks)
}

/// For a membership table: rows (old and new) must belong to rows of the
/// table with bits that admit Update. None when `relation` is no table's
/// membership or the session is that table's admin.
pub fn membership_guard(
    policies: &PolicySet,
    catalog: &Catalog,
    relation: &Relation,
    who: &Who,
) -> Result<Vec<Expr>, PgError> {
    let mut guards = Vec::new();
    for bits in &policies.table_bits {
        let Some(m) = &bits.groups else { continue };
        if !names(&m.table, &relation.schema, &relation.name) || who.is_admin(bits) {
            continue;
        }
        let schema = bits.table.schema.as_deref().unwrap_or("public");
        let Some(table) = catalog.relation_named(schema, &bits.table.name) else {
            return Err(failed(&format!(
                "table \"{}\" is not in the catalog",
                bits.table.name
            )));
        };
        let target = Target::new(bits, table)?;
        guards.push(parse(&format!(
            "{} IN ({})",
            ident(&m.row_key),
            target.arms(who, Op::Update)
        ))?);
    }
    Ok(guards)
}

#[cfg(test)]
mod tests;
