//! The catalog allowlist (PRODUCT.md §3 semantics 11): which `pg_catalog`
//! and `information_schema` relations a policy-bound session may read.
//!
//! Three answers: read as is (definitions clients and BI tools introspect),
//! read with no rows (statistics and other sessions' activity: the shape
//! stays, so tools that join them keep working, but nothing is shown), or
//! refuse (secrets, statistics values, files, other servers). Anything in
//! these schemas that is not listed is refused.

use crate::catalog::Relation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogRule {
    Allow,
    NoRows,
    Deny,
}

const ALLOWED: &[&str] = &[
    "pg_aggregate",
    "pg_am",
    "pg_amop",
    "pg_amproc",
    "pg_attrdef",
    "pg_attribute",
    "pg_auth_members",
    "pg_available_extension_versions",
    "pg_available_extensions",
    "pg_cast",
    "pg_class",
    "pg_collation",
    "pg_constraint",
    "pg_conversion",
    "pg_cursors",
    "pg_database",
    "pg_default_acl",
    "pg_depend",
    "pg_description",
    "pg_enum",
    "pg_event_trigger",
    "pg_extension",
    "pg_foreign_data_wrapper",
    "pg_foreign_server",
    "pg_foreign_table",
    "pg_group",
    "pg_index",
    "pg_indexes",
    "pg_inherits",
    "pg_init_privs",
    "pg_language",
    "pg_matviews",
    "pg_namespace",
    "pg_opclass",
    "pg_operator",
    "pg_opfamily",
    "pg_partitioned_table",
    "pg_policies",
    "pg_policy",
    "pg_prepared_statements",
    "pg_proc",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_publication_tables",
    "pg_range",
    "pg_rewrite",
    "pg_roles",
    "pg_rules",
    "pg_seclabel",
    "pg_seclabels",
    "pg_sequence",
    "pg_sequences",
    "pg_settings",
    "pg_shdepend",
    "pg_shdescription",
    "pg_shseclabel",
    "pg_statistic_ext",
    "pg_tables",
    "pg_tablespace",
    "pg_timezone_abbrevs",
    "pg_timezone_names",
    "pg_transform",
    "pg_trigger",
    "pg_ts_config",
    "pg_ts_config_map",
    "pg_ts_dict",
    "pg_ts_parser",
    "pg_ts_template",
    "pg_type",
    "pg_user",
    "pg_views",
];

/// Relations whose rows describe other sessions or data statistics.
const NO_ROWS: &[&str] = &[
    "pg_locks",
    "pg_prepared_xacts",
    "pg_replication_slots",
    "pg_stat_activity",
];

/// How a policy-bound session may read a catalog relation; `None` for
/// relations outside the catalog schemas.
pub fn rule(relation: &Relation) -> Option<CatalogRule> {
    match relation.schema.as_str() {
        "information_schema" => Some(CatalogRule::Allow),
        "pg_catalog" => {
            let name = relation.name.as_str();
            Some(if ALLOWED.contains(&name) {
                CatalogRule::Allow
            } else if NO_ROWS.contains(&name)
                || name.starts_with("pg_stat_")
                || name.starts_with("pg_statio_")
            {
                CatalogRule::NoRows
            } else {
                // pg_authid, pg_shadow, pg_statistic, pg_stats, pg_stats_ext,
                // pg_user_mapping(s), pg_largeobject*, pg_hba_file_rules,
                // pg_file_settings, pg_config, and anything unlisted.
                CatalogRule::Deny
            })
        }
        s if s.starts_with("pg_toast") || s.starts_with("pg_temp") => Some(CatalogRule::Deny),
        _ => None,
    }
}
