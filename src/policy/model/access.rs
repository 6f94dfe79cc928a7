//! Table access as the policy files state it: grants (which roles may run
//! which command on which columns) and row policies, per table.
//!
//! Owns the vocabulary later stages build entries from (PRODUCT.md §3,
//! Semantics 3–8): commands, column sets, whether a table is policed, which
//! policies apply to a set of effective roles. Table names are kept as
//! written (`orders` and `public.orders` are different keys here); resolving
//! them against the catalog is not this module's job, and nothing here ever
//! decides that a name is a table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sqlparser::ast::Expr;

use super::{PUBLIC, WithGlobals};
use crate::policy::error::Location;

/// A command a grant gives or a policy covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    Select,
    Insert,
    Update,
    Delete,
}

impl Command {
    pub const ALL: [Command; 4] = [
        Command::Select,
        Command::Insert,
        Command::Update,
        Command::Delete,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            Command::Select => "SELECT",
            Command::Insert => "INSERT",
            Command::Update => "UPDATE",
            Command::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// `FOR ALL` or `FOR <command>` of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyCommand {
    All,
    Only(Command),
}

impl PolicyCommand {
    pub fn covers(self, command: Command) -> bool {
        match self {
            PolicyCommand::All => true,
            PolicyCommand::Only(only) => only == command,
        }
    }
}

impl fmt::Display for PolicyCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyCommand::All => f.write_str("ALL"),
            PolicyCommand::Only(command) => command.fmt(f),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Entries come from permissive policies (ORed).
    Permissive,
    /// ANDed onto every entry.
    Restrictive,
}

/// A possibly schema-qualified name as written, each part already folded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    pub schema: Option<String>,
    pub name: String,
}

impl QualifiedName {
    /// Whether both names could denote the same object once resolved: the
    /// same name, and the same schema unless one of them leaves it to the
    /// search path.
    pub fn may_be(&self, other: &QualifiedName) -> bool {
        self.name == other.name
            && match (&self.schema, &other.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{}.", quote_ident(schema))?;
        }
        f.write_str(&quote_ident(&self.name))
    }
}

/// An identifier as it must be written to mean itself: bare when it is a
/// plain lower-case name, in double quotes otherwise.
pub fn quote_ident(name: &str) -> String {
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The columns a grant covers: every column of the table (a grant without a
/// column list, including columns added later), or the listed ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSet(Option<BTreeSet<String>>);

impl ColumnSet {
    pub fn all() -> Self {
        ColumnSet(None)
    }

    pub fn of<I: IntoIterator<Item = S>, S: Into<String>>(columns: I) -> Self {
        ColumnSet(Some(columns.into_iter().map(Into::into).collect()))
    }

    pub fn is_all(&self) -> bool {
        self.0.is_none()
    }

    /// The listed columns; None means all columns.
    pub fn columns(&self) -> Option<&BTreeSet<String>> {
        self.0.as_ref()
    }

    pub fn contains(&self, column: &str) -> bool {
        self.0.as_ref().is_none_or(|set| set.contains(column))
    }

    pub fn union_with(&mut self, other: &ColumnSet) {
        match (&mut self.0, &other.0) {
            (None, _) => {}
            (mine, None) => *mine = None,
            (Some(mine), Some(theirs)) => mine.extend(theirs.iter().cloned()),
        }
    }
}

/// Grants on one table (or on every table of a schema): per command, per
/// role, the columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(BTreeMap<Command, BTreeMap<String, ColumnSet>>);

impl Grants {
    /// Adds a grant; grants of one command to one role add up, as repeated
    /// GRANTs do in PostgreSQL.
    pub fn add(&mut self, command: Command, role: &str, columns: &ColumnSet) {
        self.0
            .entry(command)
            .or_default()
            .entry(role.to_string())
            .and_modify(|held| held.union_with(columns))
            .or_insert_with(|| columns.clone());
    }

    /// What `role` itself was granted for `command` (not what it holds
    /// through membership).
    pub fn to_role(&self, command: Command, role: &str) -> Option<&ColumnSet> {
        self.0.get(&command)?.get(role)
    }

    /// Every role granted `command`, with its columns.
    pub fn for_command(&self, command: Command) -> impl Iterator<Item = (&str, &ColumnSet)> {
        self.0
            .get(&command)
            .into_iter()
            .flat_map(|roles| roles.iter().map(|(role, columns)| (role.as_str(), columns)))
    }

    /// The columns granted for `command` to any of `roles` (for example a
    /// session's effective roles), or None when none of them has a grant.
    pub fn held_by<'a>(
        &self,
        command: Command,
        roles: impl IntoIterator<Item = &'a str>,
    ) -> Option<ColumnSet> {
        let granted = self.0.get(&command)?;
        let mut held: Option<ColumnSet> = None;
        for role in roles {
            if let Some(columns) = granted.get(role) {
                match &mut held {
                    Some(held) => held.union_with(columns),
                    None => held = Some(columns.clone()),
                }
            }
        }
        held
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeMap::is_empty)
    }
}

/// Everything the policy files say about one table (named as written).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableRules {
    pub grants: Grants,
    /// In the order they were declared.
    pub policies: Vec<Policy>,
}

impl TableRules {
    /// Whether some policy covers `command`, whatever role it names: then
    /// entries come from policies, not from grants (Semantics 3).
    pub fn is_policed(&self, command: Command) -> bool {
        self.policies.iter().any(|p| p.command.covers(command))
    }

    /// The policies that cover `command`.
    pub fn policies_for(&self, command: Command) -> impl Iterator<Item = &Policy> {
        self.policies
            .iter()
            .filter(move |p| p.command.covers(command))
    }
}

/// `CREATE POLICY`.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub table: QualifiedName,
    pub kind: PolicyKind,
    pub command: PolicyCommand,
    /// The roles (or users) in `TO`; `"public"` for PUBLIC, which is also
    /// the default.
    pub roles: Vec<String>,
    /// None: as in PostgreSQL, the policy admits no existing row.
    pub using: Option<WithGlobals<Expr>>,
    pub check: Option<WithGlobals<Expr>>,
    /// Where the policy's name is.
    pub location: Location,
    /// Where the table name after ON is.
    pub table_location: Location,
}

impl Policy {
    /// Whether the policy applies to a session with these effective roles
    /// (which always include PUBLIC).
    pub fn applies_to(&self, effective_roles: &[String]) -> bool {
        self.roles
            .iter()
            .any(|role| role == PUBLIC || effective_roles.contains(role))
    }

    pub fn names_public(&self) -> bool {
        self.roles.iter().any(|role| role == PUBLIC)
    }

    /// The expression new rows must satisfy: `WITH CHECK`, or `USING` when
    /// there is none (PostgreSQL's rule). None: no new row passes.
    pub fn new_row_check(&self) -> Option<&WithGlobals<Expr>> {
        self.check.as_ref().or(self.using.as_ref())
    }

    /// The globals its expressions reference, each once.
    pub fn referenced_globals(&self) -> BTreeSet<&str> {
        self.using
            .iter()
            .chain(self.check.iter())
            .flat_map(|e| e.global_names())
            .collect()
    }
}

/// Where grants on tables were written: one entry per privilege of a GRANT
/// and table (or schema) it names, kept for diagnostics against the catalog
/// (`pgward check`: unknown tables and columns at file:line:column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableGrant {
    pub target: GrantedTables,
    pub command: Command,
    /// None: every column. Each listed column with where it was written.
    pub columns: Option<Vec<(String, Location)>>,
    pub roles: Vec<String>,
    /// Where the table (or schema) name was written.
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantedTables {
    Table(QualifiedName),
    /// `ON ALL TABLES IN SCHEMA s`.
    AllInSchema(String),
}
