//! Fixtures shared by the fuzz targets: the rewriter's catalog and session,
//! the same ones the rewrite benchmark uses (`benches/common/mod.rs`: the
//! demo's policy files plus pgbench and TPC-H-style policies with global
//! values, and a hand-built catalog of those tables).

use std::sync::Arc;

use pgward::rewrite::Access;

#[path = "../../benches/common/mod.rs"]
mod common;

pub use common::{USER, catalog};

/// The session of `benchuser`, as a login builds it; global values are the
/// ones the upstream would have answered.
pub fn session() -> Arc<dyn Access + Send + Sync> {
    common::session().0
}

/// The client's search_path as written and as the rewriter gets it.
pub fn search_path() -> (Vec<String>, Vec<String>) {
    (
        vec!["$user".into(), "public".into()],
        vec![USER.into(), "public".into()],
    )
}
