//! The immutable snapshot and its lookup indexes.

use std::collections::{BTreeMap, HashMap};

use super::model::{ForeignKey, Function, Operator, Relation, Type};

/// Everything a snapshot is built from; also how tests build one by hand.
/// Objects whose schema is not listed add that schema.
#[derive(Debug, Clone, Default)]
pub struct CatalogParts {
    pub schemas: Vec<String>,
    pub relations: Vec<Relation>,
    pub functions: Vec<Function>,
    /// When several share a name and operand types, the first one wins: list
    /// `pg_catalog`'s first, as the pinned upstream search_path would find.
    pub operators: Vec<Operator>,
    pub types: Vec<Type>,
}

/// The objects of one schema, by name.
#[derive(Debug, Default)]
pub(super) struct SchemaIndex {
    pub(super) relations: HashMap<String, usize>,
    /// Overloads in oid order.
    pub(super) functions: HashMap<String, Vec<usize>>,
    pub(super) types: HashMap<String, usize>,
}

/// An immutable snapshot of the upstream catalog, shared as `Arc<Catalog>`.
/// Names are stored as PostgreSQL stores them (case-sensitive).
#[derive(Debug)]
pub struct Catalog {
    pub(super) generation: u64,
    pub(super) schemas: BTreeMap<String, SchemaIndex>,
    pub(super) relations: Vec<Relation>,
    pub(super) functions: Vec<Function>,
    pub(super) operators: Vec<Operator>,
    pub(super) types: Vec<Type>,
    pub(super) relation_oids: HashMap<u32, usize>,
    pub(super) function_oids: HashMap<u32, usize>,
    pub(super) type_oids: HashMap<u32, usize>,
    /// Operator name → (left, right) → index.
    pub(super) operator_keys: HashMap<String, HashMap<(u32, u32), usize>>,
    /// Foreign keys, by the oid of the relation that holds them.
    pub(super) foreign_keys: HashMap<u32, Vec<ForeignKey>>,
}

impl Catalog {
    /// Builds a snapshot of generation 1. Within a schema, the first
    /// relation or type of a name wins (PostgreSQL keeps them unique).
    pub fn from_parts(parts: CatalogParts) -> Catalog {
        let CatalogParts {
            schemas: schema_names,
            relations,
            mut functions,
            operators,
            types,
        } = parts;
        functions.sort_by_key(|f| f.oid);

        let mut schemas: BTreeMap<String, SchemaIndex> = schema_names
            .into_iter()
            .map(|s| (s, SchemaIndex::default()))
            .collect();

        let mut relation_oids = HashMap::with_capacity(relations.len());
        for (i, r) in relations.iter().enumerate() {
            relation_oids.entry(r.oid).or_insert(i);
            schemas
                .entry(r.schema.clone())
                .or_default()
                .relations
                .entry(r.name.clone())
                .or_insert(i);
        }
        let mut function_oids = HashMap::with_capacity(functions.len());
        for (i, f) in functions.iter().enumerate() {
            function_oids.entry(f.oid).or_insert(i);
            schemas
                .entry(f.schema.clone())
                .or_default()
                .functions
                .entry(f.name.clone())
                .or_default()
                .push(i);
        }
        let mut type_oids = HashMap::with_capacity(types.len());
        for (i, t) in types.iter().enumerate() {
            type_oids.entry(t.oid).or_insert(i);
            schemas
                .entry(t.schema.clone())
                .or_default()
                .types
                .entry(t.name.clone())
                .or_insert(i);
        }
        let mut operator_keys: HashMap<String, HashMap<(u32, u32), usize>> = HashMap::new();
        for (i, o) in operators.iter().enumerate() {
            operator_keys
                .entry(o.name.clone())
                .or_default()
                .entry((o.left, o.right))
                .or_insert(i);
        }

        Catalog {
            generation: 1,
            schemas,
            relations,
            functions,
            operators,
            types,
            relation_oids,
            function_oids,
            type_oids,
            operator_keys,
            foreign_keys: HashMap::new(),
        }
    }

    /// The same snapshot with these foreign keys (kept apart from
    /// [`CatalogParts`] so that hand-built snapshots need not list any).
    pub fn with_foreign_keys(mut self, keys: Vec<ForeignKey>) -> Catalog {
        for key in keys {
            self.foreign_keys.entry(key.relation).or_default().push(key);
        }
        self
    }

    /// The foreign keys a relation holds.
    pub fn foreign_keys(&self, relation: u32) -> &[ForeignKey] {
        self.foreign_keys.get(&relation).map_or(&[], Vec::as_slice)
    }

    /// A relation by schema and name, as PostgreSQL stores them.
    pub fn relation_named(&self, schema: &str, name: &str) -> Option<&Relation> {
        let i = *self.schemas.get(schema)?.relations.get(name)?;
        self.relations.get(i)
    }

    /// Increments on each refresh through a [`super::CatalogHandle`].
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Schema names in byte order.
    pub fn schemas(&self) -> impl Iterator<Item = &str> {
        self.schemas.keys().map(String::as_str)
    }

    pub fn relations(&self) -> impl Iterator<Item = &Relation> {
        self.relations.iter()
    }

    /// Every function, in oid order (the functions allowlist walks them).
    pub fn functions(&self) -> impl Iterator<Item = &Function> {
        self.functions.iter()
    }

    pub fn types(&self) -> impl Iterator<Item = &Type> {
        self.types.iter()
    }

    pub fn operators(&self) -> impl Iterator<Item = &Operator> {
        self.operators.iter()
    }

    pub fn relation_by_oid(&self, oid: u32) -> Option<&Relation> {
        self.relation_oids.get(&oid).map(|&i| &self.relations[i])
    }

    pub fn function_by_oid(&self, oid: u32) -> Option<&Function> {
        self.function_oids.get(&oid).map(|&i| &self.functions[i])
    }

    pub fn type_by_oid(&self, oid: u32) -> Option<&Type> {
        self.type_oids.get(&oid).map(|&i| &self.types[i])
    }

    /// The operator `name` for these operand types (left 0 for a prefix
    /// operator). Exact types only: no implicit casts are considered.
    pub fn operator(&self, name: &str, left: u32, right: u32) -> Option<&Operator> {
        self.operator_keys
            .get(name)?
            .get(&(left, right))
            .map(|&i| &self.operators[i])
    }
}
