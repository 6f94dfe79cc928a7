//! A snapshot of the upstream catalog (schemas, relations with their
//! columns, functions, operators, types) and PostgreSQL's name resolution
//! over it, so the rewriter can resolve every name against the client's
//! search_path while the upstream runs with `pg_catalog` only.
//!
//! Owns: loading a snapshot over the control connection with PUBLIC's
//! catalog privileges in a handful of queries, and swapping it whole on
//! refresh. Must never: change a snapshot that readers hold, read catalog
//! tables PUBLIC cannot read, or query per table.

mod error;
mod handle;
mod load;
mod model;
mod resolve;
mod snapshot;

pub use error::CatalogError;
pub use handle::{CatalogHandle, MIN_REFRESH_INTERVAL};
pub use model::{Column, ForeignKey, Function, Operator, RelKind, Relation, Type};
pub use resolve::effective_search_path;
pub use snapshot::{Catalog, CatalogParts};
