//! Function calls in a policy-bound statement (PRODUCT.md §3
//! "Statements"): functions outside `pg_catalog` need a `GRANT EXECUTE`;
//! built-ins are allowed except those that run SQL given as text, read files
//! or large objects, reach other servers, change settings outside the
//! allowlist, expose other sessions or signal backends. Calls that describe
//! other sessions or signal backends read as NULL (clients' introspection
//! joins them; nothing is shown or done); the rest are refused.
//!
//! The built-in rules go by category over `pg_catalog` names; a call whose
//! name the catalog does not know is refused (PostgreSQL would not find it
//! either, unless it was created after the snapshot).

use sqlparser::ast::{Expr, ObjectName, ObjectNamePart};

use super::access::Access;
use super::secure::fold;
use crate::catalog::{Catalog, Function};
use crate::error::{PgError, code};

/// What happens to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Replace the call by `NULL::<type>`.
    Null(String),
    Refuse(PgError),
}

/// Names sqlparser keeps as function calls that PostgreSQL's grammar turns
/// into expressions of its own (no pg_proc entry).
const SYNTAX_FORMS: &[&str] = &[
    "coalesce",
    "greatest",
    "least",
    "nullif",
    "grouping",
    "row",
    "array",
    "exists",
    "xmlelement",
    "xmlforest",
    "xmlconcat",
    "xmlpi",
    "xmlroot",
    "xmlparse",
    "xmlserialize",
    "xmlexists",
    "normalize",
    "collation",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "current_catalog",
    "current_schema",
    "cast",
    "treat",
    "extract",
    "overlay",
    "position",
    "substring",
    "trim",
    "ceil",
    "json_object",
    "json_array",
    "json_arrayagg",
    "json_objectagg",
    "user",
    "current_user",
    "current_role",
    "session_user",
    "system_user",
];

/// Built-ins refused whatever their arguments.
fn refused_builtin(name: &str) -> bool {
    const EXACT: &[&str] = &[
        // SQL given as text.
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "table_to_xml",
        "table_to_xmlschema",
        "table_to_xml_and_xmlschema",
        "schema_to_xml",
        "schema_to_xmlschema",
        "schema_to_xml_and_xmlschema",
        "database_to_xml",
        "database_to_xmlschema",
        "database_to_xml_and_xmlschema",
        "ts_stat",
        "ts_rewrite",
        // Files and large objects.
        "pg_read_file",
        "pg_read_binary_file",
        "pg_stat_file",
        "pg_current_logfile",
        "loread",
        "lowrite",
        // Server control, replication (set_config is decided by its
        // arguments, in `set_config_allowed`).
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_export_snapshot",
        "pg_import_system_collations",
        "pg_notify",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_log_backend_memory_contexts",
    ];
    const PREFIXES: &[&str] = &[
        "pg_ls_",
        "lo_",
        "pg_file_",
        "pg_logical_",
        "pg_replication_",
        "pg_create_",
        "pg_drop_replication",
        "pg_copy_",
        "pg_stat_reset",
        "pg_wal_replay",
        "dblink",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Built-ins that describe other sessions or signal backends: NULL.
fn neutralised_builtin(name: &str) -> bool {
    name.starts_with("pg_stat_get_")
        || matches!(
            name,
            "pg_terminate_backend"
                | "pg_cancel_backend"
                | "pg_blocking_pids"
                | "pg_safe_snapshot_blocking_pids"
                | "pg_isolation_test_session_is_blocked"
                | "pg_backend_memory_contexts"
        )
}

fn split(name: &ObjectName) -> Option<(Option<String>, String)> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(id) => Some(fold(id)),
            ObjectNamePart::Function(_) => None,
        })
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [n] => Some((None, n.clone())),
        [s, n] => Some((Some(s.clone()), n.clone())),
        _ => None,
    }
}

/// Decides a call of `name` (as written).
pub fn decide(
    catalog: &Catalog,
    search_path: &[String],
    access: &dyn Access,
    name: &ObjectName,
) -> Decision {
    let Some((schema, fname)) = split(name) else {
        return Decision::Refuse(PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            format!("pgward does not support the function name {name}"),
        ));
    };
    let candidates: Vec<&Function> =
        catalog.function_candidates(schema.as_deref(), &fname, search_path);
    if candidates.is_empty() {
        if schema.is_none() && SYNTAX_FORMS.contains(&fname.as_str()) {
            return Decision::Allow;
        }
        return Decision::Refuse(PgError::error(
            "42883",
            format!("function {name} does not exist"),
        ));
    }
    let builtin = candidates
        .iter()
        .all(|f| f.schema == "pg_catalog" || f.schema == "information_schema");
    if !builtin {
        // Outside pg_catalog: every candidate PostgreSQL might pick must be
        // granted, or the call could land on one that is not.
        if candidates.iter().all(|f| access.function(f)) {
            return Decision::Allow;
        }
        return Decision::Refuse(PgError::error(
            code::INSUFFICIENT_PRIVILEGE,
            format!("permission denied for function {fname}"),
        ));
    }
    if refused_builtin(&fname) {
        return Decision::Refuse(PgError::error(
            code::INSUFFICIENT_PRIVILEGE,
            format!("pgward does not allow the function {fname} for this session"),
        ));
    }
    if neutralised_builtin(&fname) {
        if candidates.iter().any(|f| f.returns_set) {
            return Decision::Refuse(PgError::error(
                code::INSUFFICIENT_PRIVILEGE,
                format!("pgward does not allow the function {fname} for this session"),
            ));
        }
        let rettype = candidates
            .first()
            .and_then(|f| catalog.type_by_oid(f.return_type))
            .map_or_else(|| "text".to_string(), |t| format!("pg_catalog.{}", t.name));
        return Decision::Null(rettype);
    }
    Decision::Allow
}

/// `NULL::type` in place of a neutralised call.
pub fn null_of(type_name: &str) -> Expr {
    Expr::Cast {
        kind: sqlparser::ast::CastKind::DoubleColon,
        expr: Box::new(Expr::value(sqlparser::ast::Value::Null)),
        data_type: sqlparser::ast::DataType::Custom(
            ObjectName::from(
                type_name
                    .split('.')
                    .map(sqlparser::ast::Ident::new)
                    .collect::<Vec<_>>(),
            ),
            Vec::new(),
        ),
        format: None,
    }
}

/// `set_config(name, value, is_local)` passes when name and value are
/// literals the settings allowlist allows (search_path excepted: pgward
/// tracks it from SET only).
pub fn set_config_allowed(f: &sqlparser::ast::Function) -> Result<(), PgError> {
    use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments, Value};
    let refuse = || {
        PgError::error(
            code::INSUFFICIENT_PRIVILEGE,
            "pgward allows set_config only with literal names and values the settings allowlist allows",
        )
    };
    let FunctionArguments::List(list) = &f.args else {
        return Err(refuse());
    };
    let text = |i: usize| match list.args.get(i) {
        Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    let (Some(name), Some(value)) = (text(0), text(1)) else {
        return Err(refuse());
    };
    if name.eq_ignore_ascii_case("search_path") || name.eq_ignore_ascii_case("client_encoding") {
        return Err(refuse());
    }
    match crate::settings::check(&name, &value) {
        crate::settings::SettingDecision::Allow(_) | crate::settings::SettingDecision::Pinned => {
            Ok(())
        }
        crate::settings::SettingDecision::Tracked => Err(refuse()),
        crate::settings::SettingDecision::Refuse(e) => {
            let mut err = PgError::error(e.sqlstate, e.message);
            err.hint = e.hint;
            Err(err)
        }
    }
}

/// Whether a call names `pg_catalog.set_config`.
pub fn is_set_config(catalog: &Catalog, search_path: &[String], name: &ObjectName) -> bool {
    split(name).is_some_and(|(schema, fname)| {
        fname == "set_config"
            && catalog
                .function_candidates(schema.as_deref(), &fname, search_path)
                .iter()
                .all(|f| f.schema == "pg_catalog")
    })
}
