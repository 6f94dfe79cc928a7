//! What a session may do with one relation, as the rewriter consumes it:
//! the *entries* of PRODUCT.md §3 semantics 3–5, already bound to the
//! session (roles resolved, globals injected as typed literals).

use std::collections::BTreeSet;

use sqlparser::ast::Expr;

use crate::catalog::Relation;

/// The command a relation is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    Select,
    Insert,
    Update,
    Delete,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Select => "SELECT",
            Command::Insert => "INSERT",
            Command::Update => "UPDATE",
            Command::Delete => "DELETE",
        }
    }
}

/// A set of columns: every column of the relation, or the named ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Columns {
    All,
    Some(BTreeSet<String>),
}

impl Columns {
    pub fn contains(&self, column: &str) -> bool {
        match self {
            Columns::All => true,
            Columns::Some(set) => set.contains(column),
        }
    }
}

/// One way the session reaches rows of a relation: the rows a predicate
/// admits (`None`: all rows) and the columns it may see of them.
#[derive(Debug, Clone)]
pub struct Entry {
    pub rows: Option<Expr>,
    pub columns: Columns,
    /// What a new row must satisfy when written through this entry (the
    /// policy's WITH CHECK, or its USING): `None` when every new row
    /// passes (an unpoliced table, or a check of literally `true`).
    pub check: Option<Expr>,
}

/// Everything the session may do with a relation for one command.
#[derive(Debug, Clone)]
pub struct TableAccess {
    /// Permissive entries; none means no rows (a policed table with no
    /// applicable policy), as in PostgreSQL.
    pub entries: Vec<Entry>,
    /// Restrictive predicates ANDed onto every entry.
    pub restrictive: Vec<Expr>,
    /// The restrictive policies' checks, ANDed onto every new row.
    pub restrictive_checks: Vec<Expr>,
    /// Relations the predicates above read (trusted DBA SQL, semantics 9),
    /// as PostgreSQL will name them in the printed statement: verification
    /// expects them.
    pub predicate_relations: Vec<String>,
}

impl TableAccess {
    /// Every row and column: an unpoliced table granted without a column list.
    pub fn everything() -> TableAccess {
        TableAccess {
            entries: vec![Entry {
                rows: None,
                columns: Columns::All,
                check: None,
            }],
            restrictive: Vec::new(),
            restrictive_checks: Vec::new(),
            predicate_relations: Vec::new(),
        }
    }

    /// Whether some entry has the column.
    pub fn sees_column(&self, column: &str) -> bool {
        self.entries.iter().any(|e| e.columns.contains(column))
    }
}

/// What pgward adds to the session's INSERTs into a relation (permission
/// bits, PRODUCT.md §6): values for columns the INSERT does not list, and
/// memberships every new row joins in the same statement.
#[derive(Debug, Clone, Default)]
pub struct InsertDefaults {
    /// (column, value) for each column the INSERT does not list.
    pub columns: Vec<(String, Expr)>,
    pub join: Option<Join>,
}

/// `INSERT INTO table (row_key, group[, permission]) SELECT key, group[,
/// the new row's permission]` for every new row and group.
#[derive(Debug, Clone)]
pub struct Join {
    pub schema: String,
    pub table: String,
    pub row_key: String,
    pub group: String,
    /// The membership's permission column, filled with the new row's.
    pub permission: Option<String>,
    /// The inserted relation's key and permission columns.
    pub key: String,
    pub row_permission: String,
    /// Groups, as text literals of unknown type.
    pub groups: Vec<String>,
}

/// The session's rights, asked relation by relation.
pub trait Access {
    /// `None`: the session holds no grant for the command on the relation
    /// (42501).
    fn table(&self, relation: &Relation, command: Command) -> Option<TableAccess>;
    /// The login, for identity functions (`current_user` …).
    fn login(&self) -> &str;
    /// Whether the session may call a function outside `pg_catalog`
    /// (GRANT EXECUTE).
    fn function(&self, _function: &crate::catalog::Function) -> bool {
        false
    }
    /// SELECT entries that admit a row from its own values, added for
    /// write targets: the SELECT entries' predicates may read the table
    /// itself, which does not show the rows of the statement that writes
    /// them, so RETURNING and new-row visibility need these (permission
    /// bits).
    fn own_row_entries(&self, _relation: &Relation) -> Vec<Entry> {
        Vec::new()
    }
    /// Columns and memberships pgward adds to an INSERT (permission bits).
    fn insert_defaults(&self, _relation: &Relation) -> Option<InsertDefaults> {
        None
    }
}
