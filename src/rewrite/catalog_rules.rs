//! The catalog allowlist (PRODUCT.md §3 semantics 11): which `pg_catalog`
//! and `information_schema` relations a policy-bound session may read.
//!
//! Three answers: read as is (definitions clients and BI tools introspect),
//! read with no rows (statistics and other sessions' activity: the shape
//! stays, so tools that join them keep working, but nothing is shown), or
//! refuse (secrets, statistics values, files, other servers). Every relation
//! of PostgreSQL 15's catalog schemas is named by one of the lists
//! (`tests/integration/classification.rs` walks them all); anything in these
//! schemas that no list names is refused.

use crate::catalog::{RelKind, Relation};

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

/// Relations whose rows describe other sessions or data statistics: their
/// columns stay, their rows do not.
const NO_ROWS: &[&str] = &[
    "pg_locks",
    "pg_prepared_xacts",
    "pg_replication_slots",
    "pg_stat_activity",
    "pg_stat_all_indexes",
    "pg_stat_all_tables",
    "pg_stat_archiver",
    "pg_stat_bgwriter",
    "pg_stat_database",
    "pg_stat_database_conflicts",
    "pg_stat_gssapi",
    "pg_stat_progress_analyze",
    "pg_stat_progress_basebackup",
    "pg_stat_progress_cluster",
    "pg_stat_progress_copy",
    "pg_stat_progress_create_index",
    "pg_stat_progress_vacuum",
    "pg_stat_recovery_prefetch",
    "pg_stat_replication",
    "pg_stat_replication_slots",
    "pg_stat_slru",
    "pg_stat_ssl",
    "pg_stat_subscription",
    "pg_stat_subscription_stats",
    "pg_stat_sys_indexes",
    "pg_stat_sys_tables",
    "pg_stat_user_functions",
    "pg_stat_user_indexes",
    "pg_stat_user_tables",
    "pg_stat_wal",
    "pg_stat_wal_receiver",
    "pg_stat_xact_all_tables",
    "pg_stat_xact_sys_tables",
    "pg_stat_xact_user_functions",
    "pg_stat_xact_user_tables",
    "pg_statio_all_indexes",
    "pg_statio_all_sequences",
    "pg_statio_all_tables",
    "pg_statio_sys_indexes",
    "pg_statio_sys_sequences",
    "pg_statio_sys_tables",
    "pg_statio_user_indexes",
    "pg_statio_user_sequences",
    "pg_statio_user_tables",
];

/// Families of statistics views (newer releases add members, such as
/// `pg_stat_io` in PostgreSQL 16): read with no rows, as the listed ones.
const NO_ROWS_PREFIXES: &[&str] = &["pg_stat_", "pg_statio_"];

/// Refused: secrets, data statistics, files and configuration, other
/// servers, large objects, and this server's internals.
const DENIED: &[&str] = &[
    "pg_authid",
    "pg_backend_memory_contexts",
    "pg_config",
    "pg_db_role_setting",
    "pg_file_settings",
    "pg_hba_file_rules",
    "pg_ident_file_mappings",
    "pg_largeobject",
    "pg_largeobject_metadata",
    "pg_parameter_acl",
    "pg_replication_origin",
    "pg_replication_origin_status",
    "pg_shadow",
    "pg_shmem_allocations",
    "pg_statistic",
    "pg_statistic_ext_data",
    "pg_stats",
    "pg_stats_ext",
    "pg_stats_ext_exprs",
    "pg_subscription",
    "pg_subscription_rel",
    "pg_user_mapping",
    "pg_user_mappings",
];

/// `information_schema` views and tables read as is: definitions, as
/// PostgreSQL filters them for the service role (the catalog shows every
/// table, README "Differences from a direct connection").
const INFORMATION_SCHEMA_ALLOWED: &[&str] = &[
    "_pg_foreign_data_wrappers",
    "_pg_foreign_servers",
    "_pg_foreign_table_columns",
    "_pg_foreign_tables",
    "administrable_role_authorizations",
    "applicable_roles",
    "attributes",
    "character_sets",
    "check_constraint_routine_usage",
    "check_constraints",
    "collation_character_set_applicability",
    "collations",
    "column_column_usage",
    "column_domain_usage",
    "column_options",
    "column_privileges",
    "column_udt_usage",
    "columns",
    "constraint_column_usage",
    "constraint_table_usage",
    "data_type_privileges",
    "domain_constraints",
    "domain_udt_usage",
    "domains",
    "element_types",
    "enabled_roles",
    "foreign_data_wrapper_options",
    "foreign_data_wrappers",
    "foreign_server_options",
    "foreign_servers",
    "foreign_table_options",
    "foreign_tables",
    "information_schema_catalog_name",
    "key_column_usage",
    "parameters",
    "referential_constraints",
    "role_column_grants",
    "role_routine_grants",
    "role_table_grants",
    "role_udt_grants",
    "role_usage_grants",
    "routine_column_usage",
    "routine_privileges",
    "routine_routine_usage",
    "routine_sequence_usage",
    "routine_table_usage",
    "routines",
    "schemata",
    "sequences",
    "sql_features",
    "sql_implementation_info",
    "sql_parts",
    "sql_sizing",
    "table_constraints",
    "table_privileges",
    "tables",
    "transforms",
    "triggered_update_columns",
    "triggers",
    "udt_privileges",
    "usage_privileges",
    "user_defined_types",
    "view_column_usage",
    "view_routine_usage",
    "view_table_usage",
    "views",
];

/// `information_schema` views refused: user mappings and their options
/// (which may hold the passwords of other servers).
const INFORMATION_SCHEMA_DENIED: &[&str] =
    &["_pg_user_mappings", "user_mapping_options", "user_mappings"];

/// Whether pgward's catalog rules govern relations of `schema`.
pub fn is_catalog_schema(schema: &str) -> bool {
    matches!(schema, "pg_catalog" | "information_schema")
        || schema.starts_with("pg_toast")
        || schema.starts_with("pg_temp")
}

/// The rule an explicit list (or family of names) gives a relation of a
/// catalog schema; `None` when nothing names it, or outside those schemas.
/// Indexes and composite types are no readable relation: refused.
pub fn listed(relation: &Relation) -> Option<CatalogRule> {
    let name = relation.name.as_str();
    match relation.schema.as_str() {
        _ if relation.kind == RelKind::Other && is_catalog_schema(&relation.schema) => {
            Some(CatalogRule::Deny)
        }
        "information_schema" => {
            if INFORMATION_SCHEMA_ALLOWED.contains(&name) {
                Some(CatalogRule::Allow)
            } else if INFORMATION_SCHEMA_DENIED.contains(&name) {
                Some(CatalogRule::Deny)
            } else {
                None
            }
        }
        "pg_catalog" => {
            if ALLOWED.contains(&name) {
                Some(CatalogRule::Allow)
            } else if NO_ROWS.contains(&name)
                || NO_ROWS_PREFIXES.iter().any(|p| name.starts_with(p))
            {
                Some(CatalogRule::NoRows)
            } else if DENIED.contains(&name) {
                Some(CatalogRule::Deny)
            } else {
                None
            }
        }
        s if s.starts_with("pg_toast") || s.starts_with("pg_temp") => Some(CatalogRule::Deny),
        _ => None,
    }
}

/// How a policy-bound session may read a catalog relation; `None` for
/// relations outside the catalog schemas. What no list names is refused.
pub fn rule(relation: &Relation) -> Option<CatalogRule> {
    if !is_catalog_schema(&relation.schema) {
        return None;
    }
    Some(listed(relation).unwrap_or(CatalogRule::Deny))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(schema: &str, name: &str, kind: RelKind) -> Relation {
        Relation {
            oid: 1,
            schema: schema.into(),
            name: name.into(),
            kind,
            columns: Vec::new(),
            primary_key: Vec::new(),
            parent: None,
            is_partition: false,
        }
    }

    #[test]
    fn every_answer_comes_from_a_list_and_the_rest_is_refused() {
        let view = |s: &str, n: &str| rel(s, n, RelKind::View);
        let listed = |s: &str, n: &str| listed(&view(s, n));
        let rule = |s: &str, n: &str| rule(&view(s, n));
        assert_eq!(listed("pg_catalog", "pg_class"), Some(CatalogRule::Allow));
        assert_eq!(
            listed("pg_catalog", "pg_stat_activity"),
            Some(CatalogRule::NoRows)
        );
        // A statistics view of a newer release: its family reads no rows.
        assert_eq!(
            listed("pg_catalog", "pg_stat_io"),
            Some(CatalogRule::NoRows)
        );
        assert_eq!(listed("pg_catalog", "pg_stats"), Some(CatalogRule::Deny));
        assert_eq!(
            listed("information_schema", "columns"),
            Some(CatalogRule::Allow)
        );
        assert_eq!(
            listed("information_schema", "user_mappings"),
            Some(CatalogRule::Deny)
        );
        // Unlisted: no list names it, and the rewriter refuses it.
        assert_eq!(listed("pg_catalog", "pg_new_thing"), None);
        assert_eq!(rule("pg_catalog", "pg_new_thing"), Some(CatalogRule::Deny));
        assert_eq!(listed("information_schema", "new_view"), None);
        assert_eq!(
            rule("information_schema", "new_view"),
            Some(CatalogRule::Deny)
        );
        assert_eq!(rule("pg_toast", "pg_toast_1259"), Some(CatalogRule::Deny));
        assert_eq!(rule("public", "orders"), None);
        assert_eq!(listed("public", "orders"), None);
        // An index is no readable relation, whatever its name.
        let index = rel("pg_catalog", "pg_class_oid_index", RelKind::Other);
        assert_eq!(super::listed(&index), Some(CatalogRule::Deny));
    }
}
