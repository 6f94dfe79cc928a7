//! The one error type of catalog loading.

/// Why a snapshot could not be taken. Messages name the catalog part that
/// failed, never SQL a client sent.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {what} from the upstream catalog")]
    Query {
        what: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("the upstream catalog returned an unexpected {what} for oid {oid}")]
    Malformed { what: &'static str, oid: u32 },
}

impl CatalogError {
    /// A stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            CatalogError::Query { .. } => "catalog_query",
            CatalogError::Malformed { .. } => "catalog_malformed",
        }
    }
}
