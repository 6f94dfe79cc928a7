//! Taking a snapshot: five queries, sent together so they share round
//! trips, over catalog tables that PUBLIC may read (pg_namespace, pg_class,
//! pg_attribute, pg_index, pg_inherits, pg_proc, pg_operator, pg_type).
//! Every name is schema-qualified, so the control connection's search_path
//! does not matter.
//!
//! Each query sees its own snapshot of the catalog; a table created
//! between them at worst leaves the next refresh to pick it up.

use std::time::Instant;

use tokio_postgres::types::FromSql;
use tokio_postgres::{Client, Row};

use super::error::CatalogError;
use super::model::{Column, ForeignKey, Function, Operator, RelKind, Relation, Type};
use super::snapshot::{Catalog, CatalogParts};

/// The schemas a snapshot holds: all but TOAST and temporary ones (other
/// sessions' objects, and the control connection's own are no client's).
const SCHEMA_FILTER: &str = r"n.nspname <> 'pg_toast'
    AND n.nspname NOT LIKE 'pg\_temp\_%'
    AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'";

const SCHEMAS: &str = "SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE {filter}";

/// Columns are aggregated per relation so that a relation and its columns
/// come from one statement. Index columns are not loaded.
const RELATIONS: &str = "\
SELECT c.oid, n.nspname, c.relname, c.relkind::pg_catalog.text, c.relispartition,
       (SELECT i.inhparent FROM pg_catalog.pg_inherits i
         WHERE i.inhrelid = c.oid ORDER BY i.inhseqno LIMIT 1),
       (SELECT x.indkey::pg_catalog.int2[] FROM pg_catalog.pg_index x
         WHERE x.indrelid = c.oid AND x.indisprimary),
       a.names, a.nums, a.types, a.type_names, a.not_null
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN LATERAL (
       SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum) AS names,
              pg_catalog.array_agg(a.attnum ORDER BY a.attnum) AS nums,
              pg_catalog.array_agg(a.atttypid ORDER BY a.attnum) AS types,
              pg_catalog.array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod)
                                   ORDER BY a.attnum) AS type_names,
              pg_catalog.array_agg(a.attnotnull ORDER BY a.attnum) AS not_null
         FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       ) a ON c.relkind NOT IN ('i', 'I')
 WHERE {filter}
 ORDER BY c.oid";

const FUNCTIONS: &str = "\
SELECT p.oid, n.nspname, p.proname, p.proargtypes::pg_catalog.oid[], p.prorettype,
       p.prokind::pg_catalog.text, p.provolatile::pg_catalog.text, p.proleakproof,
       p.prosecdef, p.proretset
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE {filter}
 ORDER BY p.oid";

/// `pg_catalog`'s operators first: they win when another schema defines
/// the same name and operand types (see `CatalogParts::operators`).
const OPERATORS: &str = "\
SELECT o.oid, o.oprname, o.oprleft, o.oprright, o.oprresult, o.oprcode::pg_catalog.oid,
       COALESCE(p.proleakproof, false)
  FROM pg_catalog.pg_operator o
  JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
  LEFT JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
 WHERE {filter}
 ORDER BY n.nspname <> 'pg_catalog', o.oid";

/// A true array type is variable-length with an element type (the
/// `pg_type` documentation); `name` or `point` have `typelem` but are not.
const TYPES: &str = "\
SELECT t.oid, n.nspname, t.typname, t.typcategory::pg_catalog.text,
       CASE WHEN t.typlen = -1 THEN t.typelem ELSE '0'::pg_catalog.oid END,
       t.typarray
  FROM pg_catalog.pg_type t
  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
 WHERE {filter}
 ORDER BY t.oid";

/// Foreign keys as attribute numbers, mapped to names with the relations.
const FOREIGN_KEYS: &str = "\
SELECT c.conrelid, c.conkey::pg_catalog.int2[], c.confrelid, c.confkey::pg_catalog.int2[]
  FROM pg_catalog.pg_constraint c
  JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
 WHERE c.contype = 'f' AND {filter}
 ORDER BY c.oid";

impl Catalog {
    /// Takes a snapshot (generation 1) over `client`, which needs no
    /// privilege beyond PUBLIC's. Cancel-safe: dropping it only abandons
    /// the queries.
    pub async fn load(client: &Client) -> Result<Catalog, CatalogError> {
        let started = Instant::now();
        let sql = |template: &str| template.replace("{filter}", SCHEMA_FILTER);
        let (schemas, relations, functions, operators, types, keys) = tokio::try_join!(
            query(client, "schemas", sql(SCHEMAS)),
            query(client, "relations", sql(RELATIONS)),
            query(client, "functions", sql(FUNCTIONS)),
            query(client, "operators", sql(OPERATORS)),
            query(client, "types", sql(TYPES)),
            query(client, "foreign keys", sql(FOREIGN_KEYS)),
        )?;
        let parts = CatalogParts {
            schemas: schemas
                .iter()
                .map(|r| get(r, 0, "schemas"))
                .collect::<Result<_, _>>()?,
            relations: relations.iter().map(relation).collect::<Result<_, _>>()?,
            functions: functions.iter().map(function).collect::<Result<_, _>>()?,
            operators: operators.iter().map(operator).collect::<Result<_, _>>()?,
            types: types.iter().map(ty).collect::<Result<_, _>>()?,
        };
        let catalog = Catalog::from_parts(parts);
        let keys = keys
            .iter()
            .map(|row| foreign_key(&catalog, row))
            .collect::<Result<Vec<_>, _>>()?;
        let catalog = catalog.with_foreign_keys(keys.into_iter().flatten().collect());
        tracing::debug!(
            relations = catalog.relations.len(),
            functions = catalog.functions.len(),
            operators = catalog.operators.len(),
            types = catalog.types.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "catalog snapshot loaded"
        );
        Ok(catalog)
    }
}

async fn query(client: &Client, what: &'static str, sql: String) -> Result<Vec<Row>, CatalogError> {
    client
        .query(sql.as_str(), &[])
        .await
        .map_err(|source| CatalogError::Query { what, source })
}

/// One value; a type mismatch is an error, not a panic.
fn get<'a, T: FromSql<'a>>(
    row: &'a Row,
    idx: usize,
    what: &'static str,
) -> Result<T, CatalogError> {
    row.try_get(idx)
        .map_err(|source| CatalogError::Query { what, source })
}

/// A `"char"` column, read as text.
fn letter(row: &Row, idx: usize, what: &'static str, oid: u32) -> Result<char, CatalogError> {
    get::<&str>(row, idx, what)?
        .chars()
        .next()
        .ok_or(CatalogError::Malformed { what, oid })
}

/// An aggregated column list; NULL for a relation without columns.
fn list<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<Vec<T>, CatalogError> {
    Ok(get::<Option<Vec<T>>>(row, idx, "relations")?.unwrap_or_default())
}

/// One foreign key with column names; None when either side is not in
/// the snapshot (a schema the filter leaves out).
fn foreign_key(catalog: &Catalog, row: &Row) -> Result<Option<ForeignKey>, CatalogError> {
    const WHAT: &str = "foreign keys";
    let relation: u32 = get(row, 0, WHAT)?;
    let referenced: u32 = get(row, 2, WHAT)?;
    let names = |oid: u32, nums: Vec<i16>| -> Option<Vec<String>> {
        let r = catalog.relation_by_oid(oid)?;
        nums.iter()
            .map(|n| {
                r.columns
                    .iter()
                    .find(|c| c.attnum == *n)
                    .map(|c| c.name.clone())
            })
            .collect()
    };
    let columns = names(relation, get(row, 1, WHAT)?);
    let referenced_columns = names(referenced, get(row, 3, WHAT)?);
    Ok(columns
        .zip(referenced_columns)
        .map(|(columns, referenced_columns)| ForeignKey {
            relation,
            columns,
            referenced,
            referenced_columns,
        }))
}

fn relation(row: &Row) -> Result<Relation, CatalogError> {
    const WHAT: &str = "relations";
    let oid: u32 = get(row, 0, WHAT)?;
    let names: Vec<String> = list(row, 7)?;
    let nums: Vec<i16> = list(row, 8)?;
    let types: Vec<u32> = list(row, 9)?;
    let type_names: Vec<String> = list(row, 10)?;
    let not_null: Vec<bool> = list(row, 11)?;
    let n = names.len();
    if [nums.len(), types.len(), type_names.len(), not_null.len()] != [n; 4] {
        return Err(CatalogError::Malformed {
            what: "column list",
            oid,
        });
    }
    let columns: Vec<Column> = names
        .into_iter()
        .zip(nums)
        .zip(types)
        .zip(type_names)
        .zip(not_null)
        .map(
            |((((name, attnum), type_oid), type_name), not_null)| Column {
                name,
                attnum,
                type_oid,
                type_name,
                not_null,
            },
        )
        .collect();
    let primary_key = list::<i16>(row, 6)?
        .into_iter()
        .filter_map(|attnum| {
            columns
                .iter()
                .find(|c| c.attnum == attnum)
                .map(|c| c.name.clone())
        })
        .collect();
    Ok(Relation {
        oid,
        schema: get(row, 1, WHAT)?,
        name: get(row, 2, WHAT)?,
        kind: RelKind::from_relkind(letter(row, 3, "relkind", oid)?),
        is_partition: get(row, 4, WHAT)?,
        parent: get(row, 5, WHAT)?,
        primary_key,
        columns,
    })
}

fn function(row: &Row) -> Result<Function, CatalogError> {
    const WHAT: &str = "functions";
    let oid: u32 = get(row, 0, WHAT)?;
    Ok(Function {
        oid,
        schema: get(row, 1, WHAT)?,
        name: get(row, 2, WHAT)?,
        arg_types: get(row, 3, WHAT)?,
        return_type: get(row, 4, WHAT)?,
        kind: letter(row, 5, "prokind", oid)?,
        volatility: letter(row, 6, "provolatile", oid)?,
        leakproof: get(row, 7, WHAT)?,
        security_definer: get(row, 8, WHAT)?,
        returns_set: get(row, 9, WHAT)?,
    })
}

fn operator(row: &Row) -> Result<Operator, CatalogError> {
    const WHAT: &str = "operators";
    Ok(Operator {
        oid: get(row, 0, WHAT)?,
        name: get(row, 1, WHAT)?,
        left: get(row, 2, WHAT)?,
        right: get(row, 3, WHAT)?,
        result: get(row, 4, WHAT)?,
        function: get(row, 5, WHAT)?,
        leakproof: get(row, 6, WHAT)?,
    })
}

fn ty(row: &Row) -> Result<Type, CatalogError> {
    const WHAT: &str = "types";
    let oid: u32 = get(row, 0, WHAT)?;
    Ok(Type {
        oid,
        schema: get(row, 1, WHAT)?,
        name: get(row, 2, WHAT)?,
        category: letter(row, 3, "typcategory", oid)?,
        element: get(row, 4, WHAT)?,
        array_type: get(row, 5, WHAT)?,
    })
}
