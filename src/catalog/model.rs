//! The objects a snapshot holds, with names as PostgreSQL stores them
//! (case-sensitive; callers fold unquoted identifiers before looking up).

/// `pg_class.relkind`, reduced to what the rewriter tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelKind {
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
    Sequence,
    /// Composite types, indexes and anything newer: never a readable relation.
    Other,
}

impl RelKind {
    /// Maps a `pg_class.relkind` letter.
    pub fn from_relkind(relkind: char) -> RelKind {
        match relkind {
            'r' => RelKind::Table,
            'p' => RelKind::PartitionedTable,
            'v' => RelKind::View,
            'm' => RelKind::MaterializedView,
            'f' => RelKind::ForeignTable,
            'S' => RelKind::Sequence,
            _ => RelKind::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub kind: RelKind,
    /// In `attnum` order, without dropped and system columns.
    pub columns: Vec<Column>,
    /// Column names in key order; empty without a primary key.
    pub primary_key: Vec<String>,
    /// The partition or (first) inheritance parent.
    pub parent: Option<u32>,
    pub is_partition: bool,
}

impl Relation {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub attnum: i16,
    pub type_oid: u32,
    /// `format_type(atttypid, atttypmod)`, e.g. `numeric(10,2)`.
    pub type_name: String,
    pub not_null: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// Input argument types (`proargtypes`).
    pub arg_types: Vec<u32>,
    pub return_type: u32,
    /// `prokind`: `f` function, `p` procedure, `a` aggregate, `w` window.
    pub kind: char,
    /// `provolatile`: `i` immutable, `s` stable, `v` volatile.
    pub volatility: char,
    pub leakproof: bool,
    pub security_definer: bool,
    pub returns_set: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub oid: u32,
    pub name: String,
    /// Left operand type; 0 for a prefix operator.
    pub left: u32,
    pub right: u32,
    pub result: u32,
    /// The implementing function (`oprcode`); 0 for a shell operator.
    pub function: u32,
    /// `proleakproof` of the implementing function.
    pub leakproof: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// `typcategory`, e.g. `N` numeric, `S` string, `A` array.
    pub category: char,
    /// The element type of a true array type (variable length with
    /// `typelem`); 0 otherwise, also for fixed-length types such as `name`.
    pub element: u32,
    /// The array type whose elements are this type; 0 if none.
    pub array_type: u32,
}

/// A foreign key (`pg_constraint` of type `f`): `columns` of `relation`
/// reference `referenced_columns` of `referenced`, pairwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub relation: u32,
    pub columns: Vec<String>,
    pub referenced: u32,
    pub referenced_columns: Vec<String>,
}
