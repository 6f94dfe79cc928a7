//! Function calls in a policy-bound statement (PRODUCT.md §3
//! "Statements"): functions outside `pg_catalog` need a `GRANT EXECUTE`;
//! built-ins are allowed except those that run SQL given as text, read files
//! or large objects, reach other servers, change settings outside the
//! allowlist, expose other sessions or signal backends. Calls that describe
//! other sessions or signal backends read as NULL (clients' introspection
//! joins them; nothing is shown or done); the rest are refused.
//!
//! The built-in rules go by category over `pg_catalog` names
//! ([`builtin_category`]); a call whose
//! name the catalog does not know is refused (PostgreSQL would not find it
//! either, unless it was created after the snapshot).

use sqlparser::ast::{Expr, ObjectName, ObjectNamePart};

use super::access::Access;
use super::secure::fold;
use crate::catalog::{Catalog, Function, RelKind, Relation};
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

/// The category a built-in falls in (PRODUCT.md §3 "Statements"): an
/// allowlist by category. Every rule is explicit — a name list or a family
/// of names — and `tests/integration/classification.rs` walks every
/// function of `pg_proc` against it, failing on any whose catalog
/// properties (volatile, parallel-restricted, SECURITY DEFINER, EXECUTE
/// revoked from PUBLIC, created after initdb, a name that speaks of queries,
/// files, XML, sessions …) put it in doubt while no category names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Runs SQL given as text (`query_to_xml`, `ts_stat` …): refused.
    SqlText,
    /// Reads or lists server files (`pg_read_file`, `pg_ls_dir`,
    /// `pg_hba_file_rules`, `pg_control_*` …): refused.
    Files,
    /// Large objects (`lo_*`, `loread`): refused.
    LargeObjects,
    /// Reaches other servers (`dblink*`): refused.
    OtherServers,
    /// Controls the server, replication, WAL or backups, or writes outside
    /// the statement (`pg_reload_conf`, `pg_create_*`, `setval` …), or is
    /// part of DDL (the `*_validator` functions of languages and foreign-data
    /// wrappers): refused.
    ServerControl,
    /// Describes other sessions or signals backends
    /// (`pg_stat_get_*`, `pg_terminate_backend`): read as NULL; refused where
    /// it returns a set.
    OtherSessions,
    /// `set_config`: decided by its arguments ([`set_config_allowed`]).
    Settings,
    /// Volatile, parallel-restricted or suspiciously named, and allowed
    /// after review: each looks at the session itself or at definitions.
    Reviewed,
    /// Any other built-in: allowed.
    Ordinary,
}

impl Category {
    /// Whether a call of a function of this category is refused outright.
    pub fn refused(self) -> bool {
        matches!(
            self,
            Category::SqlText
                | Category::Files
                | Category::LargeObjects
                | Category::OtherServers
                | Category::ServerControl
        )
    }
}

/// Exact names and families (prefixes) of each denied category.
const SQL_TEXT: (&[&str], &[&str]) = (
    &[
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
    ],
    &[],
);

const FILES: (&[&str], &[&str]) = (
    &[
        "pg_stat_file",
        "pg_current_logfile",
        "pg_hba_file_rules",
        "pg_ident_file_mappings",
        "pg_show_all_file_settings",
        "pg_config",
    ],
    &["pg_read_", "pg_ls_", "pg_file_", "pg_control_"],
);

const LARGE_OBJECTS: (&[&str], &[&str]) = (&["loread", "lowrite"], &["lo_"]);

const OTHER_SERVERS: (&[&str], &[&str]) = (&[], &["dblink"]);

const SERVER_CONTROL: (&[&str], &[&str]) = (
    &[
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_rotate_logfile_old",
        "pg_promote",
        "pg_switch_wal",
        "pg_export_snapshot",
        "pg_import_system_collations",
        "pg_notify",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_log_backend_memory_contexts",
        "pg_get_backend_memory_contexts",
        "pg_get_shmem_allocations",
        "pg_get_replication_slots",
        "pg_show_replication_origin_status",
        "pg_stop_making_pinned_objects",
        "pg_nextoid",
        "pg_extension_config_dump",
        "pg_stat_clear_snapshot",
        "pg_stat_force_next_flush",
        "brin_summarize_new_values",
        "brin_summarize_range",
        "brin_desummarize_range",
        "gin_clean_pending_list",
        "setval",
        "currtid2",
    ],
    &[
        "pg_logical_",
        "pg_replication_",
        "pg_create_",
        "pg_drop_replication",
        "pg_copy_",
        "pg_stat_reset",
        "pg_wal_replay",
        "binary_upgrade_",
    ],
);

const OTHER_SESSIONS: (&[&str], &[&str]) = (
    &[
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_blocking_pids",
        "pg_safe_snapshot_blocking_pids",
        "pg_isolation_test_session_is_blocked",
        "pg_backend_memory_contexts",
        "pg_lock_status",
        "pg_prepared_xact",
        "pg_get_multixact_members",
        "pg_stat_have_stats",
        "pg_notification_queue_usage",
    ],
    &["pg_stat_get_"],
);

/// Reviewed and allowed although the catalog marks them volatile or
/// parallel-restricted or their names sound like a denied category: the
/// session's own state (`pg_backend_pid`, `current_query`, advisory locks,
/// sequences through `nextval`/`currval` as PostgreSQL's own defaults use
/// them), sizes and definitions a catalog reader sees anyway, clocks and
/// random numbers, text search queries, XML values, snapshots as values.
const REVIEWED: (&[&str], &[&str]) = (
    &[
        "_pg_index_position",
        "_pg_truetypid",
        "age",
        "amvalidate",
        "booland_statefunc",
        "boolor_statefunc",
        "clock_timestamp",
        "current_query",
        "current_schema",
        "current_schemas",
        "current_setting",
        "currval",
        "gen_random_uuid",
        "get_current_ts_config",
        "has_server_privilege",
        "inet_client_addr",
        "inet_client_port",
        "inet_server_addr",
        "inet_server_port",
        "lastval",
        "nextval",
        "pg_backend_pid",
        "pg_collation_actual_version",
        "pg_conf_load_time",
        "pg_current_snapshot",
        "pg_current_wal_flush_lsn",
        "pg_current_wal_insert_lsn",
        "pg_current_wal_lsn",
        "pg_current_xact_id",
        "pg_current_xact_id_if_assigned",
        "pg_cursor",
        "pg_database_collation_actual_version",
        "pg_database_size",
        "pg_filenode_relation",
        "pg_get_catalog_foreign_keys",
        "pg_get_function_sqlbody",
        "pg_get_viewdef",
        "pg_get_wal_replay_pause_state",
        "pg_get_wal_resource_managers",
        "pg_indexes_size",
        "pg_is_in_recovery",
        "pg_is_wal_replay_paused",
        "pg_jit_available",
        "pg_last_committed_xact",
        "pg_last_wal_receive_lsn",
        "pg_last_wal_replay_lsn",
        "pg_last_xact_replay_timestamp",
        "pg_listening_channels",
        "pg_my_temp_schema",
        "pg_partition_ancestors",
        "pg_partition_tree",
        "pg_prepared_statement",
        "pg_relation_filenode",
        "pg_relation_filepath",
        "pg_relation_size",
        "pg_sequence_last_value",
        "pg_settings_get_flags",
        "pg_show_all_settings",
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "pg_statistics_obj_is_visible",
        "pg_table_size",
        "pg_tablespace_size",
        "pg_total_relation_size",
        "pg_trigger_depth",
        "pg_ts_config_is_visible",
        "pg_visible_in_snapshot",
        "pg_wal_lsn_diff",
        "pg_walfile_name",
        "pg_walfile_name_offset",
        "pg_xact_status",
        "phraseto_tsquery",
        "plainto_tsquery",
        "querytree",
        "random",
        "session_user",
        "setseed",
        "statement_timestamp",
        "timeofday",
        "to_tsquery",
        "txid_current",
        "txid_current_if_assigned",
        "txid_current_snapshot",
        "txid_status",
        "txid_visible_in_snapshot",
        "websearch_to_tsquery",
        "xml",
        "xmlagg",
        "xmlcomment",
        "xmlconcat2",
        "xmlexists",
        "xmlvalidate",
    ],
    &[
        "pg_advisory_",
        "pg_try_advisory_",
        "pg_event_trigger_",
        "pg_get_statisticsobjdef",
        "pg_snapshot_",
        "pg_xact_commit_timestamp",
        "txid_snapshot_",
        "tsquery",
        "jsonb_path_query",
        "regconfig",
        "xml_",
    ],
);

fn named(name: &str, (exact, prefixes): (&[&str], &[&str])) -> bool {
    exact.contains(&name) || prefixes.iter().any(|p| name.starts_with(p))
}

/// The category of a built-in (a `pg_catalog` or `information_schema`
/// function) by its name. The denied categories are tried first, so a
/// reviewed family never lets a denied name through.
pub fn builtin_category(name: &str) -> Category {
    if named(name, SQL_TEXT) {
        Category::SqlText
    } else if named(name, FILES) {
        Category::Files
    } else if named(name, LARGE_OBJECTS) {
        Category::LargeObjects
    } else if named(name, OTHER_SERVERS) {
        Category::OtherServers
    } else if named(name, SERVER_CONTROL) || name.ends_with("_validator") {
        Category::ServerControl
    } else if named(name, OTHER_SESSIONS) {
        Category::OtherSessions
    } else if name == "set_config" {
        Category::Settings
    } else if named(name, REVIEWED) {
        Category::Reviewed
    } else {
        Category::Ordinary
    }
}

/// The first oid PostgreSQL gives objects created after initdb
/// (`FirstNormalObjectId`): a function in `pg_catalog` with a higher oid
/// was put there later (by an extension or a superuser), is no built-in,
/// and needs a `GRANT EXECUTE` as any function outside `pg_catalog`.
pub const FIRST_NORMAL_OBJECT_ID: u32 = 16384;

/// Whether a function counts as a built-in, decided by category.
pub fn is_builtin(f: &Function) -> bool {
    (f.schema == "pg_catalog" || f.schema == "information_schema") && f.oid < FIRST_NORMAL_OBJECT_ID
}

/// Built-ins refused whatever their arguments.
fn refused_builtin(name: &str) -> bool {
    builtin_category(name).refused()
}

/// Built-ins that describe other sessions or signal backends: NULL.
fn neutralised_builtin(name: &str) -> bool {
    builtin_category(name) == Category::OtherSessions
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
    let builtin = candidates.iter().all(|f| is_builtin(f));
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

// ---------------------------------------------------------------------------
// Calls pgward answers itself (THREATS.md "service identity shows",
// PRODUCT.md §3 semantics 10): the privilege functions answer for the login
// from its policies, and the search_path readers with the client's own
// search_path. Each call becomes an expression PostgreSQL evaluates without
// any privilege lookup of its own: a constant, or a test of the argument
// against a list pgward computed from the catalog snapshot.

/// The privilege functions pgward answers from its grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Privileged {
    Table,
    Column,
    AnyColumn,
    Schema,
    Function,
    Sequence,
    Database,
}

impl Privileged {
    fn of(name: &str) -> Option<Privileged> {
        Some(match name {
            "has_table_privilege" => Privileged::Table,
            "has_column_privilege" => Privileged::Column,
            "has_any_column_privilege" => Privileged::AnyColumn,
            "has_schema_privilege" => Privileged::Schema,
            "has_function_privilege" => Privileged::Function,
            "has_sequence_privilege" => Privileged::Sequence,
            "has_database_privilege" => Privileged::Database,
            _ => return None,
        })
    }

    /// Arguments without the optional role argument.
    fn arity(self) -> usize {
        match self {
            Privileged::Column => 3,
            _ => 2,
        }
    }

    /// PostgreSQL's privilege names for the function (`convert_*_priv_string`);
    /// `WITH GRANT OPTION` forms are accepted and never held.
    fn privileges(self) -> &'static [(&'static str, Want)] {
        use Want::*;
        match self {
            Privileged::Table => &[
                ("SELECT", Cmd(Command::Select)),
                ("INSERT", Cmd(Command::Insert)),
                ("UPDATE", Cmd(Command::Update)),
                ("DELETE", Cmd(Command::Delete)),
                ("TRUNCATE", Never),
                ("REFERENCES", Never),
                ("TRIGGER", Never),
                ("RULE", Never),
            ],
            Privileged::Column | Privileged::AnyColumn => &[
                ("SELECT", Cmd(Command::Select)),
                ("INSERT", Cmd(Command::Insert)),
                ("UPDATE", Cmd(Command::Update)),
                ("REFERENCES", Never),
            ],
            Privileged::Schema => &[("CREATE", Never), ("USAGE", Usage)],
            Privileged::Function => &[("EXECUTE", Execute)],
            Privileged::Sequence => &[
                ("USAGE", Cmd(Command::Select)),
                ("SELECT", Cmd(Command::Select)),
                ("UPDATE", Cmd(Command::Update)),
            ],
            Privileged::Database => &[
                ("CREATE", Never),
                ("TEMPORARY", Never),
                ("TEMP", Never),
                ("CONNECT", Connect),
            ],
        }
    }
}

/// What a privilege name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Cmd(Command),
    Usage,
    Execute,
    Connect,
    /// A privilege pgward never grants (CREATE, TRUNCATE, grant options …).
    Never,
}

use super::access::Command;

/// Parses a privilege string as PostgreSQL's `convert_any_priv_string`:
/// comma-separated, each item trimmed, names case-insensitive; the call is
/// true when any of them is held. Privileges never held are left out.
fn parse_privileges(text: &str, kind: Privileged) -> Result<Vec<Want>, PgError> {
    let mut wanted = Vec::new();
    for chunk in text.split(',') {
        let chunk =
            chunk.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'));
        let found = kind.privileges().iter().find_map(|(name, want)| {
            if chunk.eq_ignore_ascii_case(name) {
                Some(*want)
            } else if chunk.len() > name.len()
                && chunk.is_char_boundary(name.len())
                && chunk[..name.len()].eq_ignore_ascii_case(name)
                && chunk[name.len()..].eq_ignore_ascii_case(" WITH GRANT OPTION")
            {
                Some(Want::Never)
            } else {
                None
            }
        });
        match found {
            Some(Want::Never) => {}
            Some(w) => wanted.push(w),
            None => {
                return Err(PgError::error(
                    "22023",
                    format!("unrecognized privilege type: \"{chunk}\""),
                ));
            }
        }
    }
    Ok(wanted)
}

/// The session a call is answered for.
struct Answering<'c, 'a> {
    ctx: &'c super::Context<'a>,
    /// The client's search_path as written (`$user` unexpanded).
    client_path: &'c [String],
}

/// Replaces, everywhere in the statement, the calls pgward answers itself:
/// the privilege functions (for the login, from its policies) and
/// `current_schema`, `current_schemas(…)` and `current_setting('search_path')`
/// (from the client's search_path). A select item keeps the column name
/// PostgreSQL gives the call.
pub fn answer_calls(
    statement: &mut sqlparser::ast::Statement,
    ctx: &super::Context<'_>,
    client_path: &[String],
) -> Result<(), PgError> {
    use sqlparser::ast::VisitMut;
    let mut answering = Answering { ctx, client_path };
    match statement.visit(&mut answering) {
        std::ops::ControlFlow::Continue(()) => Ok(()),
        std::ops::ControlFlow::Break(e) => Err(e),
    }
}

impl sqlparser::ast::VisitorMut for Answering<'_, '_> {
    type Break = PgError;

    fn pre_visit_select(
        &mut self,
        select: &mut sqlparser::ast::Select,
    ) -> std::ops::ControlFlow<PgError> {
        for item in select.projection.iter_mut() {
            if let sqlparser::ast::SelectItem::UnnamedExpr(e) = item
                && let Some(name) = self.answered(e)
            {
                *item = sqlparser::ast::SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: sqlparser::ast::Ident::with_quote('"', name),
                };
            }
        }
        std::ops::ControlFlow::Continue(())
    }

    // The role argument of a privilege function, given as
    // `pg_catalog."current_user"()`, means what the keyword means there
    // (see `check_role`, and the identity rewrite for the functions pgward
    // does not answer): it becomes the keyword before it is visited.
    fn pre_visit_expr(&mut self, expr: &mut Expr) -> std::ops::ControlFlow<PgError> {
        use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
        if let Expr::Function(f) = expr
            && super::is_privilege_function(&f.name)
            && let FunctionArguments::List(list) = &mut f.args
            && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(first))) = list.args.first_mut()
            && let Expr::Function(call) = first
            && let Some(name) = identity_call(call)
        {
            *first = Expr::Identifier(sqlparser::ast::Ident::new(name));
        }
        std::ops::ControlFlow::Continue(())
    }

    // After the arguments were visited: calls nested in arguments are
    // answered first, and the expression put in place is not walked.
    fn post_visit_expr(&mut self, expr: &mut Expr) -> std::ops::ControlFlow<PgError> {
        match self.answer(expr) {
            Ok(Some(new)) => *expr = new,
            Ok(None) => {}
            Err(e) => return std::ops::ControlFlow::Break(e),
        }
        std::ops::ControlFlow::Continue(())
    }
}

/// A call pgward answers: the function's name, and its arguments.
enum Answered<'e> {
    CurrentSchema,
    CurrentSchemas(&'e Expr),
    SearchPathSetting,
    /// `current_setting` of a setting that names the session's identity.
    IdentitySetting(IdentitySetting),
    /// `current_user()` or `session_user()` called as a function
    /// (`pg_catalog."current_user"()`): the login, as the keywords read.
    IdentityCall(&'static str),
    Privilege(Privileged, String, Vec<&'e Expr>),
}

/// The settings that describe the session's identity (PRODUCT.md §3
/// semantics 11): they read as in a session the login opened itself,
/// without superuser and without `SET ROLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySetting {
    SessionAuthorization,
    IsSuperuser,
    Role,
}

impl IdentitySetting {
    /// The setting of that name (GUC names are case-insensitive).
    pub fn of(name: &str) -> Option<IdentitySetting> {
        [
            IdentitySetting::SessionAuthorization,
            IdentitySetting::IsSuperuser,
            IdentitySetting::Role,
        ]
        .into_iter()
        .find(|s| name.eq_ignore_ascii_case(s.name()))
    }

    /// PostgreSQL's name of the setting (the column `SHOW` answers with).
    pub fn name(self) -> &'static str {
        match self {
            IdentitySetting::SessionAuthorization => "session_authorization",
            IdentitySetting::IsSuperuser => "is_superuser",
            IdentitySetting::Role => "role",
        }
    }

    /// The value the client reads: the login, `off`, and `none` (no `SET
    /// ROLE`, which pgward refuses).
    pub fn value(self, login: &str) -> String {
        match self {
            IdentitySetting::SessionAuthorization => login.to_string(),
            IdentitySetting::IsSuperuser => "off".to_string(),
            IdentitySetting::Role => "none".to_string(),
        }
    }
}

/// The identity functions PostgreSQL has in `pg_catalog` (`current_role`
/// and `user` are keywords only: called as functions PostgreSQL finds none).
const IDENTITY_FUNCTIONS: &[&str] = &["current_user", "session_user"];

/// `current_user()` / `session_user()` with function-call syntax: the
/// name (quoted, or after a schema, as PostgreSQL's grammar requires) with
/// an empty argument list. The keyword forms (`current_user` without
/// parentheses) are left to the identity rewrite of the statement.
fn identity_call(f: &sqlparser::ast::Function) -> Option<&'static str> {
    use sqlparser::ast::FunctionArguments;
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if !list.args.is_empty()
        || !list.clauses.is_empty()
        || list.duplicate_treatment.is_some()
        || f.filter.is_some()
        || f.over.is_some()
        || !f.within_group.is_empty()
    {
        return None;
    }
    let (schema, fname) = split(&f.name)?;
    // `current_user()` unquoted and unqualified is the keyword followed by
    // parentheses: a syntax error in PostgreSQL, left for it to refuse.
    let quoted = matches!(
        f.name.0.last(),
        Some(ObjectNamePart::Identifier(id)) if id.quote_style.is_some()
    );
    if schema.is_none() && !quoted {
        return None;
    }
    IDENTITY_FUNCTIONS.iter().copied().find(|n| *n == fname)
}

impl Answering<'_, '_> {
    /// The column name PostgreSQL gives a call pgward answers.
    fn answered(&self, expr: &Expr) -> Option<String> {
        match self.classify(expr).ok()?? {
            Answered::CurrentSchema => Some("current_schema".into()),
            Answered::CurrentSchemas(_) => Some("current_schemas".into()),
            Answered::SearchPathSetting | Answered::IdentitySetting(_) => {
                Some("current_setting".into())
            }
            Answered::IdentityCall(name) => Some(name.into()),
            Answered::Privilege(_, name, _) => Some(name),
        }
    }

    fn classify<'e>(&self, expr: &'e Expr) -> Result<Option<Answered<'e>>, PgError> {
        use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
        let f = match expr {
            // `current_schema` without parentheses: a keyword, never a column.
            Expr::Identifier(id)
                if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("current_schema") =>
            {
                return Ok(Some(Answered::CurrentSchema));
            }
            Expr::Function(f) => f,
            _ => return Ok(None),
        };
        let Some((schema, fname)) = split(&f.name) else {
            return Ok(None);
        };
        if schema.as_deref().is_some_and(|s| s != "pg_catalog") {
            return Ok(None);
        }
        // A function of that name outside pg_catalog that the client's
        // search_path finds is the client's own: decided as any other.
        let candidates =
            self.ctx
                .catalog
                .function_candidates(schema.as_deref(), &fname, self.ctx.search_path);
        if candidates.iter().any(|c| c.schema != "pg_catalog") {
            return Ok(None);
        }
        let args: Vec<&Expr> = match &f.args {
            FunctionArguments::None => Vec::new(),
            FunctionArguments::List(list) => {
                if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
                    return Ok(None);
                }
                let mut args = Vec::with_capacity(list.args.len());
                for a in &list.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
                        _ => {
                            if Privileged::of(&fname).is_some() {
                                return Err(PgError::error(
                                    code::FEATURE_NOT_SUPPORTED,
                                    format!("pgward does not support named arguments to {fname}"),
                                ));
                            }
                            return Ok(None);
                        }
                    }
                }
                args
            }
            FunctionArguments::Subquery(_) => return Ok(None),
        };
        if let Some(name) = identity_call(f) {
            return Ok(Some(Answered::IdentityCall(name)));
        }
        Ok(match (fname.as_str(), args.as_slice()) {
            ("current_schema", []) => Some(Answered::CurrentSchema),
            ("current_schemas", [implicit]) => Some(Answered::CurrentSchemas(implicit)),
            ("current_setting", [name] | [name, _]) => match string_literal(name) {
                Some(n) if n.eq_ignore_ascii_case("search_path") => {
                    Some(Answered::SearchPathSetting)
                }
                Some(n) => IdentitySetting::of(&n).map(Answered::IdentitySetting),
                None => None,
            },
            (name, _) => Privileged::of(name).map(|k| Answered::Privilege(k, fname.clone(), args)),
        })
    }

    fn answer(&self, expr: &Expr) -> Result<Option<Expr>, PgError> {
        let Some(call) = self.classify(expr)? else {
            return Ok(None);
        };
        let sql = match call {
            Answered::CurrentSchema => match self.schemas(false).first() {
                Some(s) => format!("{}::pg_catalog.name", quote_literal(s)),
                None => "NULL::pg_catalog.name".to_string(),
            },
            Answered::CurrentSchemas(implicit) => {
                let with = name_array(&self.schemas(true));
                let without = name_array(&self.schemas(false));
                match literal_bool(implicit) {
                    Some(true) => with,
                    Some(false) => without,
                    None => {
                        return template(
                            &format!(
                                "CASE {ARG} WHEN true THEN {with} WHEN false THEN {without} END"
                            ),
                            implicit,
                        )
                        .map(Some);
                    }
                }
            }
            Answered::SearchPathSetting => format!(
                "{}::pg_catalog.text",
                quote_literal(&super::set::shown_search_path(self.client_path))
            ),
            Answered::IdentitySetting(setting) => format!(
                "{}::pg_catalog.text",
                quote_literal(&setting.value(self.ctx.access.login()))
            ),
            Answered::IdentityCall(_) => format!(
                "{}::pg_catalog.name",
                quote_literal(self.ctx.access.login())
            ),
            Answered::Privilege(kind, name, args) => {
                return self.privilege(kind, &name, &args).map(Some);
            }
        };
        parse_expr(&sql).map(Some)
    }

    /// The schemas of the client's search_path that exist and that the
    /// login may use, as PostgreSQL's `current_schemas` lists them (with
    /// `implicit`: `pg_catalog` first unless the path names it).
    fn schemas(&self, implicit: bool) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if implicit && !self.ctx.search_path.iter().any(|s| s == "pg_catalog") {
            out.push("pg_catalog".into());
        }
        for s in self.ctx.search_path {
            if !out.contains(s)
                && self.ctx.catalog.schemas().any(|c| c == s)
                && self.schema_usable(s)
            {
                out.push(s.clone());
            }
        }
        out
    }

    /// USAGE on a schema: the catalog schemas, and those the login may
    /// read something in.
    fn schema_usable(&self, schema: &str) -> bool {
        schema == "pg_catalog"
            || schema == "information_schema"
            || self.ctx.catalog.relations().any(|r| {
                r.schema == schema
                    && r.kind != RelKind::Other
                    && self.relation_allows(r, &[Want::Cmd(Command::Select)], Scope::Table)
            })
    }

    /// Whether the login holds one of `wanted` on a relation, for the whole
    /// table (some entry), some column, or one column.
    fn relation_allows(&self, relation: &Relation, wanted: &[Want], scope: Scope<'_>) -> bool {
        if let Scope::Column(c) = scope
            && relation.column(c).is_none()
        {
            return false;
        }
        if super::catalog_rules::rule(relation).is_some() {
            // Catalog relations: readable ones may be selected, nothing else.
            let readable = !matches!(
                super::catalog_rules::rule(relation),
                Some(super::catalog_rules::CatalogRule::Deny)
            );
            return readable && wanted.contains(&Want::Cmd(Command::Select));
        }
        wanted.iter().any(|w| {
            let Want::Cmd(command) = w else {
                return false;
            };
            self.ctx
                .access
                .table(relation, *command)
                .is_some_and(|a| match scope {
                    Scope::Table => !a.entries.is_empty(),
                    Scope::AnyColumn => a.entries.iter().any(|e| match &e.columns {
                        super::access::Columns::All => !relation.columns.is_empty(),
                        super::access::Columns::Some(set) => {
                            relation.columns.iter().any(|c| set.contains(&c.name))
                        }
                    }),
                    Scope::Column(c) => a.sees_column(c),
                })
        })
    }

    fn privilege(&self, kind: Privileged, name: &str, args: &[&Expr]) -> Result<Expr, PgError> {
        let args = if args.len() == kind.arity() + 1 {
            self.check_role(name, args[0])?;
            &args[1..]
        } else if args.len() == kind.arity() {
            args
        } else {
            return Err(PgError::error(
                "42883",
                format!(
                    "function {name} with {} arguments does not exist",
                    args.len()
                ),
            ));
        };
        let privilege = args.last().and_then(|a| string_literal(a)).ok_or_else(|| {
            PgError::error(
                code::FEATURE_NOT_SUPPORTED,
                format!("pgward answers {name} only for a literal privilege"),
            )
            .with_hint("pass the privilege as a string literal, such as 'SELECT'")
        })?;
        let object = args[0];
        match kind {
            Privileged::Table
            | Privileged::AnyColumn
            | Privileged::Sequence
            | Privileged::Column => {
                let column = if kind == Privileged::Column {
                    Some(column_arg(name, args[1])?)
                } else {
                    None
                };
                self.relation_privilege(kind, object, column, &privilege)
            }
            Privileged::Schema => {
                if let Some(schema) = string_literal(object) {
                    if !self.ctx.catalog.schemas().any(|s| s == schema) {
                        return Err(PgError::error(
                            "3F000",
                            format!("schema \"{schema}\" does not exist"),
                        ));
                    }
                    let wanted = parse_privileges(&privilege, kind)?;
                    return Ok(bool_expr(
                        wanted.contains(&Want::Usage) && self.schema_usable(&schema),
                    ));
                }
                let wanted = parse_privileges(&privilege, kind)?;
                let usable: Vec<String> = if wanted.contains(&Want::Usage) {
                    self.ctx
                        .catalog
                        .schemas()
                        .filter(|s| self.schema_usable(s))
                        .map(str::to_string)
                        .collect()
                } else {
                    Vec::new()
                };
                // A name (text or name) is compared as is; an oid through
                // the schemas of those names.
                let names = text_array(&usable);
                template(
                    &format!(
                        "({ARG}::pg_catalog.text = ANY ({names}) OR {ARG}::pg_catalog.text IN \
                         (SELECT n.oid::pg_catalog.text FROM pg_catalog.pg_namespace AS n \
                         WHERE n.nspname::pg_catalog.text = ANY ({names})))"
                    ),
                    object,
                )
            }
            Privileged::Function => {
                let wanted = parse_privileges(&privilege, kind)?;
                if !wanted.contains(&Want::Execute) {
                    return template(
                        &format!(
                            "CASE WHEN {ARG}::pg_catalog.regprocedure IS NULL THEN NULL ELSE false END"
                        ),
                        object,
                    );
                }
                // Built-in functions (oids below 16384) by the refused and
                // neutralised categories; the others by GRANT EXECUTE.
                let mut denied_builtin = Vec::new();
                let mut allowed_other = Vec::new();
                for f in self.ctx.catalog.functions() {
                    let may = self.may_execute(f);
                    if f.oid < 16384 && !may {
                        denied_builtin.push(f.oid);
                    } else if f.oid >= 16384 && may {
                        allowed_other.push(f.oid);
                    }
                }
                template(
                    &format!(
                        "CASE WHEN {ARG}::pg_catalog.regprocedure::pg_catalog.oid < '16384'::pg_catalog.oid \
                         THEN {ARG}::pg_catalog.regprocedure::pg_catalog.oid <> ALL ({}) \
                         ELSE {ARG}::pg_catalog.regprocedure::pg_catalog.oid = ANY ({}) END",
                        oid_array(&denied_builtin),
                        oid_array(&allowed_other)
                    ),
                    object,
                )
            }
            Privileged::Database => {
                let connect = parse_privileges(&privilege, kind)?.contains(&Want::Connect);
                if string_literal(object).is_some() {
                    return Ok(bool_expr(connect));
                }
                template(
                    &format!("CASE WHEN {ARG} IS NULL THEN NULL ELSE {connect} END"),
                    object,
                )
            }
        }
    }

    /// The role argument: the login itself (by name, or as `current_user`,
    /// `session_user`, `current_role`, `user`). pgward answers for no other
    /// role.
    fn check_role(&self, name: &str, role: &Expr) -> Result<(), PgError> {
        let keyword = |id: &sqlparser::ast::Ident| {
            id.quote_style.is_none()
                && ["current_user", "session_user", "current_role", "user"]
                    .contains(&id.value.to_ascii_lowercase().as_str())
        };
        let own = match role {
            Expr::Identifier(id) => keyword(id),
            Expr::Function(f) => {
                matches!(f.args, sqlparser::ast::FunctionArguments::None)
                    && f.name.0.len() == 1
                    && matches!(f.name.0.first(), Some(ObjectNamePart::Identifier(id)) if keyword(id))
            }
            other => string_literal(other).is_some_and(|r| r == self.ctx.access.login()),
        };
        if own {
            return Ok(());
        }
        Err(PgError::error(
            code::INSUFFICIENT_PRIVILEGE,
            format!("pgward answers {name} only for the session's own login"),
        )
        .with_hint("leave out the role argument, or pass current_user"))
    }

    /// May the login call this function (the EXECUTE rules of [`decide`])?
    fn may_execute(&self, f: &Function) -> bool {
        if is_builtin(f) {
            !refused_builtin(&f.name) && !neutralised_builtin(&f.name)
        } else {
            self.ctx.access.function(f)
        }
    }

    fn relation_privilege(
        &self,
        kind: Privileged,
        object: &Expr,
        column: Option<ColumnArg>,
        privilege: &str,
    ) -> Result<Expr, PgError> {
        let scope_of = |rel| scope_for(column.as_ref(), kind, rel);
        let relation = match object_literal(object) {
            ObjectLiteral::Name(text) => {
                let (schema, relname) = parse_relation_name(&text)?;
                let found = self
                    .ctx
                    .catalog
                    .resolve_relation(schema.as_deref(), &relname, self.ctx.search_path)
                    .ok_or_else(|| {
                        let shown = match &schema {
                            Some(s) => format!("{s}.{relname}"),
                            None => relname.clone(),
                        };
                        PgError::error("42P01", format!("relation \"{shown}\" does not exist"))
                    })?;
                Some(found)
            }
            ObjectLiteral::Oid(oid) => match self.ctx.catalog.relation_by_oid(oid) {
                Some(r) => Some(r),
                // PostgreSQL answers NULL for an oid that names nothing.
                None => return parse_expr("NULL::pg_catalog.bool"),
            },
            ObjectLiteral::Other => None,
        };
        let wanted = parse_privileges(privilege, kind)?;
        if let Some(rel) = relation {
            if kind == Privileged::Sequence && rel.kind != RelKind::Sequence {
                return Err(PgError::error(
                    "42809",
                    format!("\"{}\" is not a sequence", rel.name),
                ));
            }
            let scope = match scope_of(rel) {
                Some(s) => s,
                None => {
                    return match &column {
                        Some(ColumnArg::Name(c)) => Err(PgError::error(
                            "42703",
                            format!("column \"{c}\" of relation \"{}\" does not exist", rel.name),
                        )),
                        // An attribute number that names no column: NULL.
                        _ => parse_expr("NULL::pg_catalog.bool"),
                    };
                }
            };
            return Ok(bool_expr(self.relation_allows(rel, &wanted, scope)));
        }
        // Any relation expression (an oid, a name as text): the relations
        // the login holds the privilege on, by oid.
        let oids: Vec<u32> = self
            .ctx
            .catalog
            .relations()
            .filter(|r| r.kind != RelKind::Other)
            .filter(|r| kind != Privileged::Sequence || r.kind == RelKind::Sequence)
            .filter(|r| scope_of(r).is_some_and(|s| self.relation_allows(r, &wanted, s)))
            .map(|r| r.oid)
            .collect();
        template(
            &format!(
                "{ARG}::pg_catalog.regclass::pg_catalog.oid = ANY ({})",
                oid_array(&oids)
            ),
            object,
        )
    }
}

/// The part of a relation a call asks about; `None` for a column the
/// relation does not have.
fn scope_for<'r>(
    column: Option<&ColumnArg>,
    kind: Privileged,
    rel: &'r Relation,
) -> Option<Scope<'r>> {
    Some(match (column, kind) {
        (Some(ColumnArg::Name(c)), _) => Scope::Column(rel.column(c)?.name.as_str()),
        (Some(ColumnArg::Number(n)), _) => {
            Scope::Column(rel.columns.iter().find(|c| c.attnum == *n)?.name.as_str())
        }
        (None, Privileged::AnyColumn) => Scope::AnyColumn,
        (None, _) => Scope::Table,
    })
}

/// How much of a relation a privilege is asked for.
#[derive(Debug, Clone, Copy)]
enum Scope<'r> {
    Table,
    AnyColumn,
    Column(&'r str),
}

enum ColumnArg {
    Name(String),
    Number(i16),
}

fn column_arg(name: &str, e: &Expr) -> Result<ColumnArg, PgError> {
    match object_literal(e) {
        ObjectLiteral::Name(c) => Ok(ColumnArg::Name(c)),
        ObjectLiteral::Oid(n) => i16::try_from(n)
            .map(ColumnArg::Number)
            .map_err(|_| PgError::error("22003", "smallint out of range")),
        ObjectLiteral::Other => Err(PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            format!("pgward answers {name} only for a literal column"),
        )
        .with_hint("pass the column as a string literal or attribute number")),
    }
}

enum ObjectLiteral {
    Name(String),
    Oid(u32),
    Other,
}

fn object_literal(e: &Expr) -> ObjectLiteral {
    if let Some(s) = string_literal(e) {
        return ObjectLiteral::Name(s);
    }
    if let Expr::Value(v) = e
        && let sqlparser::ast::Value::Number(n, _) = &v.value
        && let Ok(oid) = n.parse::<u32>()
    {
        return ObjectLiteral::Oid(oid);
    }
    ObjectLiteral::Other
}

fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            sqlparser::ast::Value::SingleQuotedString(s)
            | sqlparser::ast::Value::EscapedStringLiteral(s)
            | sqlparser::ast::Value::DollarQuotedString(sqlparser::ast::DollarQuotedString {
                value: s,
                ..
            }) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn literal_bool(e: &Expr) -> Option<bool> {
    match e {
        Expr::Value(v) => match &v.value {
            sqlparser::ast::Value::Boolean(b) => Some(*b),
            _ => None,
        },
        _ => None,
    }
}

/// A relation name given as text, read as PostgreSQL's
/// `stringToQualifiedNameList`: dot-separated, unquoted parts folded to
/// lower case, `""` inside quotes for one `"`.
fn parse_relation_name(text: &str) -> Result<(Option<String>, String), PgError> {
    let invalid = || PgError::error("42602", "invalid name syntax");
    let mut parts = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(invalid()),
                }
            }
            if part.is_empty() {
                return Err(invalid());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' || c.is_whitespace() {
                    break;
                }
                part.push(c.to_ascii_lowercase());
                chars.next();
            }
            if part.is_empty() {
                return Err(invalid());
            }
        }
        parts.push(part);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some('.') => {}
            Some(_) => return Err(invalid()),
        }
    }
    match parts.len() {
        1 => Ok((None, parts.remove(0))),
        2 => {
            let name = parts.remove(1);
            Ok((Some(parts.remove(0)), name))
        }
        _ => Err(PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            format!("cross-database references are not implemented: {text}"),
        )),
    }
}

/// The placeholder for the call's argument in [`template`].
const ARG: &str = "\"pgward arg\"";

/// Parses `sql` and puts `arg` (parenthesised) wherever the placeholder
/// stands: the argument's own tree is kept, never printed and re-read.
fn template(sql: &str, arg: &Expr) -> Result<Expr, PgError> {
    use sqlparser::ast::{VisitMut, VisitorMut};
    use std::ops::ControlFlow;
    struct Fill<'a>(&'a Expr);
    impl VisitorMut for Fill<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Identifier(id) = expr
                && id.quote_style == Some('"')
                && id.value == "pgward arg"
            {
                *expr = Expr::Nested(Box::new(self.0.clone()));
            }
            ControlFlow::Continue(())
        }
    }
    let mut expr = parse_expr(sql)?;
    let _ = expr.visit(&mut Fill(arg));
    Ok(expr)
}

fn parse_expr(sql: &str) -> Result<Expr, PgError> {
    sqlparser::parser::Parser::new(&sqlparser::dialect::PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| {
            tracing::error!("pgward built an expression it cannot parse: {e}");
            PgError::error(
                code::FEATURE_NOT_SUPPORTED,
                "pgward could not answer this function call",
            )
        })
}

fn bool_expr(b: bool) -> Expr {
    Expr::value(sqlparser::ast::Value::Boolean(b))
}

fn quote_literal(s: &str) -> String {
    super::set::quote_literal(s)
}

fn oid_array(oids: &[u32]) -> String {
    let list: Vec<String> = oids.iter().map(u32::to_string).collect();
    format!("'{{{}}}'::pg_catalog.oid[]", list.join(","))
}

fn text_array(items: &[String]) -> String {
    array_of(items, "text")
}

fn name_array(items: &[String]) -> String {
    array_of(items, "name")
}

fn array_of(items: &[String], ty: &str) -> String {
    let list: Vec<String> = items.iter().map(|s| quote_literal(s)).collect();
    format!("ARRAY[{}]::pg_catalog.{ty}[]", list.join(", "))
}

#[cfg(test)]
#[path = "privilege_tests.rs"]
mod privilege_tests;

#[cfg(test)]
mod category_tests {
    use super::{Category, builtin_category};

    #[test]
    fn denied_categories_win_over_reviewed_families() {
        for (name, want) in [
            ("query_to_xml", Category::SqlText),
            ("cursor_to_xmlschema", Category::SqlText),
            ("ts_rewrite", Category::SqlText),
            ("pg_read_file_old", Category::Files),
            ("pg_read_binary_file", Category::Files),
            ("pg_hba_file_rules", Category::Files),
            ("pg_control_system", Category::Files),
            ("lo_import", Category::LargeObjects),
            ("loread", Category::LargeObjects),
            ("dblink_exec", Category::OtherServers),
            (
                "binary_upgrade_set_next_pg_type_oid",
                Category::ServerControl,
            ),
            ("setval", Category::ServerControl),
            ("fmgr_sql_validator", Category::ServerControl),
            ("pg_stat_reset_shared", Category::ServerControl),
            ("pg_stat_get_activity", Category::OtherSessions),
            ("pg_lock_status", Category::OtherSessions),
            ("pg_terminate_backend", Category::OtherSessions),
            ("set_config", Category::Settings),
            ("xml_is_well_formed", Category::Reviewed),
            ("to_tsquery", Category::Reviewed),
            ("pg_try_advisory_lock", Category::Reviewed),
            ("lower", Category::Ordinary),
            ("xpath", Category::Ordinary),
        ] {
            assert_eq!(builtin_category(name), want, "{name}");
        }
        assert!(Category::Files.refused());
        assert!(!Category::OtherSessions.refused());
        assert!(!Category::Reviewed.refused());
    }
}
