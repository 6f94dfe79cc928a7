//! The session-settings allowlist: one decision for every way a client can
//! change a setting — startup parameters, `-c` / `--name=value` inside the
//! startup `options` parameter, and SET / SET LOCAL / RESET / set_config().
//!
//! Pure logic: it never touches a connection and never applies a setting. It
//! must never let through a setting that changes identity (`role`,
//! `session_authorization`), how SQL text is read (`standard_conforming_strings`,
//! the client encoding, `backslash_quote`, `transform_null_equals` …), which
//! objects names resolve to upstream (`search_path` is tracked by pgward
//! instead), or anything outside the session (server, logging, storage,
//! superuser-only settings). Unknown names are refused too: a name this list
//! does not know cannot be judged safe.

/// SQLSTATEs used here, as PostgreSQL sends them for the same refusals.
mod sqlstate {
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const SYNTAX_ERROR: &str = "42601";
}

/// Why a setting or an `options` string was refused, ready to become an
/// ErrorResponse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingError {
    pub sqlstate: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

impl SettingError {
    fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        SettingError {
            sqlstate,
            message: message.into(),
            hint: None,
        }
    }

    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// What to do with a client's request to set `name` to `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingDecision {
    /// Pass it on upstream with this (normalised) value.
    Allow(String),
    /// The client asked for the value pgward pins anyway
    /// (`standard_conforming_strings = on`): accept, change nothing.
    Pinned,
    /// pgward handles it itself and must not forward it (`search_path`: the
    /// upstream runs with `pg_catalog` only, and names are resolved by pgward
    /// against the client's path).
    Tracked,
    /// Refuse with this error.
    Refuse(SettingError),
}

const IDENTITY_HINT: &str =
    "pgward sets the session's identity from the login; it cannot be changed in a session.";
const ROW_SECURITY_HINT: &str = "Row access is decided by pgward's policies, not by this setting.";
const GENERIC_HINT: &str =
    "Through pgward, clients may change only presentation, locale, timeout and planner settings.";
const STANDARD_CONFORMING_STRINGS_HINT: &str = "pgward keeps standard_conforming_strings on, so \
     that a string literal means the same to pgward as to PostgreSQL.";
const ENCODING_HINT: &str = "pgward talks UTF8 to every client; set client_encoding to UTF8.";

/// Handled by their own rule in [`check`].
const SPECIAL: &[&str] = &[
    "client_encoding",
    "standard_conforming_strings",
    "search_path",
    "role",
    "session_authorization",
    "is_superuser",
    "row_security",
];

/// Names PostgreSQL still accepts for renamed settings (guc.c's
/// map_old_guc_names).
const OLD_NAMES: &[(&str, &str)] = &[
    ("sort_mem", "work_mem"),
    ("vacuum_mem", "maintenance_work_mem"),
];

/// The settings a client may change, in PostgreSQL's spelling.
const ALLOWED: &[&str] = &[
    // Presentation and locale: how values are shown and read back.
    "application_name",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "extra_float_digits",
    "bytea_output",
    "client_min_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "xmloption",
    "xmlbinary",
    // Timeouts and memory for the session's own statements.
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "work_mem",
    "maintenance_work_mem",
    "hash_mem_multiplier",
    // Transaction characteristics.
    "default_transaction_isolation",
    "default_transaction_read_only",
    "default_transaction_deferrable",
    "transaction_isolation",
    "transaction_read_only",
    "transaction_deferrable",
    // Planner costs and switches: they change plans, never results.
    "random_page_cost",
    "seq_page_cost",
    "cpu_tuple_cost",
    "cpu_index_tuple_cost",
    "cpu_operator_cost",
    "effective_cache_size",
    "effective_io_concurrency",
    "geqo",
    "geqo_effort",
    "geqo_generations",
    "geqo_pool_size",
    "geqo_seed",
    "geqo_selection_bias",
    "geqo_threshold",
    "join_collapse_limit",
    "from_collapse_limit",
    "cursor_tuple_fraction",
    "constraint_exclusion",
    "plan_cache_mode",
    "parallel_setup_cost",
    "parallel_tuple_cost",
    "parallel_leader_participation",
    "max_parallel_workers_per_gather",
    "min_parallel_index_scan_size",
    "min_parallel_table_scan_size",
    "recursive_worktable_factor",
    "jit",
    "jit_above_cost",
    "jit_inline_above_cost",
    "jit_optimize_above_cost",
    "enable_async_append",
    "enable_bitmapscan",
    "enable_gathermerge",
    "enable_hashagg",
    "enable_hashjoin",
    "enable_incremental_sort",
    "enable_indexonlyscan",
    "enable_indexscan",
    "enable_material",
    "enable_memoize",
    "enable_mergejoin",
    "enable_nestloop",
    "enable_parallel_append",
    "enable_parallel_hash",
    "enable_partition_pruning",
    "enable_partitionwise_aggregate",
    "enable_partitionwise_join",
    "enable_seqscan",
    "enable_sort",
    "enable_tidscan",
];

/// Every other PostgreSQL 15 setting (server-wide, superuser-only, logging,
/// debugging, storage, and those that change how SQL text is read), so that
/// refusing one says "permission denied" rather than "unrecognized".
const REFUSED: &[&str] = &[
    "allow_in_place_tablespaces",
    "allow_system_table_mods",
    "archive_cleanup_command",
    "archive_command",
    "archive_library",
    "archive_mode",
    "archive_timeout",
    "array_nulls",
    "authentication_timeout",
    "autovacuum",
    "autovacuum_analyze_scale_factor",
    "autovacuum_analyze_threshold",
    "autovacuum_freeze_max_age",
    "autovacuum_max_workers",
    "autovacuum_multixact_freeze_max_age",
    "autovacuum_naptime",
    "autovacuum_vacuum_cost_delay",
    "autovacuum_vacuum_cost_limit",
    "autovacuum_vacuum_insert_scale_factor",
    "autovacuum_vacuum_insert_threshold",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_vacuum_threshold",
    "autovacuum_work_mem",
    "backend_flush_after",
    "backslash_quote",
    "backtrace_functions",
    "bgwriter_delay",
    "bgwriter_flush_after",
    "bgwriter_lru_maxpages",
    "bgwriter_lru_multiplier",
    "block_size",
    "bonjour",
    "bonjour_name",
    "check_function_bodies",
    "checkpoint_completion_target",
    "checkpoint_flush_after",
    "checkpoint_timeout",
    "checkpoint_warning",
    "client_connection_check_interval",
    "cluster_name",
    "commit_delay",
    "commit_siblings",
    "compute_query_id",
    "config_file",
    "data_checksums",
    "data_directory",
    "data_directory_mode",
    "data_sync_retry",
    "db_user_namespace",
    "deadlock_timeout",
    "debug_assertions",
    "debug_deadlocks",
    "debug_discard_caches",
    "debug_pretty_print",
    "debug_print_parse",
    "debug_print_plan",
    "debug_print_rewritten",
    "default_statistics_target",
    "default_table_access_method",
    "default_tablespace",
    "default_text_search_config",
    "default_toast_compression",
    "default_with_oids",
    "dynamic_library_path",
    "dynamic_shared_memory_type",
    "escape_string_warning",
    "event_source",
    "exit_on_error",
    "extension_destdir",
    "external_pid_file",
    "force_parallel_mode",
    "fsync",
    "full_page_writes",
    "gin_fuzzy_search_limit",
    "gin_pending_list_limit",
    "hba_file",
    "hot_standby",
    "hot_standby_feedback",
    "huge_page_size",
    "huge_pages",
    "ident_file",
    "ignore_checksum_failure",
    "ignore_invalid_pages",
    "ignore_system_indexes",
    "in_hot_standby",
    "integer_datetimes",
    "jit_debugging_support",
    "jit_dump_bitcode",
    "jit_expressions",
    "jit_profiling_support",
    "jit_provider",
    "jit_tuple_deforming",
    "krb_caseins_users",
    "krb_server_keyfile",
    "lc_collate",
    "lc_ctype",
    "lc_messages",
    "listen_addresses",
    "lo_compat_privileges",
    "local_preload_libraries",
    "log_autovacuum_min_duration",
    "log_checkpoints",
    "log_connections",
    "log_destination",
    "log_directory",
    "log_disconnections",
    "log_duration",
    "log_error_verbosity",
    "log_executor_stats",
    "log_file_mode",
    "log_filename",
    "log_hostname",
    "log_line_prefix",
    "log_lock_waits",
    "log_min_duration_sample",
    "log_min_duration_statement",
    "log_min_error_statement",
    "log_min_messages",
    "log_parameter_max_length",
    "log_parameter_max_length_on_error",
    "log_parser_stats",
    "log_planner_stats",
    "log_recovery_conflict_waits",
    "log_replication_commands",
    "log_rotation_age",
    "log_rotation_size",
    "log_startup_progress_interval",
    "log_statement",
    "log_statement_sample_rate",
    "log_statement_stats",
    "log_temp_files",
    "log_timezone",
    "log_transaction_sample_rate",
    "log_truncate_on_rotation",
    "logging_collector",
    "logical_decoding_work_mem",
    "maintenance_io_concurrency",
    "max_connections",
    "max_files_per_process",
    "max_function_args",
    "max_identifier_length",
    "max_index_keys",
    "max_locks_per_transaction",
    "max_logical_replication_workers",
    "max_parallel_maintenance_workers",
    "max_parallel_workers",
    "max_pred_locks_per_page",
    "max_pred_locks_per_relation",
    "max_pred_locks_per_transaction",
    "max_prepared_transactions",
    "max_replication_slots",
    "max_slot_wal_keep_size",
    "max_stack_depth",
    "max_standby_archive_delay",
    "max_standby_streaming_delay",
    "max_sync_workers_per_subscription",
    "max_wal_senders",
    "max_wal_size",
    "max_worker_processes",
    "min_dynamic_shared_memory",
    "min_wal_size",
    "old_snapshot_threshold",
    "optimize_bounded_sort",
    "password_encryption",
    "port",
    "post_auth_delay",
    "pre_auth_delay",
    "primary_conninfo",
    "primary_slot_name",
    "promote_trigger_file",
    "quote_all_identifiers",
    "recovery_end_command",
    "recovery_init_sync_method",
    "recovery_min_apply_delay",
    "recovery_prefetch",
    "recovery_target",
    "recovery_target_action",
    "recovery_target_inclusive",
    "recovery_target_lsn",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_timeline",
    "recovery_target_xid",
    "remove_temp_files_after_crash",
    "restart_after_crash",
    "restore_command",
    "restrict_nonsystem_relation_kind",
    "seed",
    "segment_size",
    "server_encoding",
    "server_version",
    "server_version_num",
    "session_preload_libraries",
    "session_replication_role",
    "shared_buffers",
    "shared_memory_size",
    "shared_memory_size_in_huge_pages",
    "shared_memory_type",
    "shared_preload_libraries",
    "ssl",
    "ssl_ca_file",
    "ssl_cert_file",
    "ssl_ciphers",
    "ssl_crl_dir",
    "ssl_crl_file",
    "ssl_dh_params_file",
    "ssl_ecdh_curve",
    "ssl_key_file",
    "ssl_library",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "ssl_passphrase_command",
    "ssl_passphrase_command_supports_reload",
    "ssl_prefer_server_ciphers",
    "stats_fetch_consistency",
    "superuser_reserved_connections",
    "synchronize_seqscans",
    "synchronous_commit",
    "synchronous_standby_names",
    "syslog_facility",
    "syslog_ident",
    "syslog_sequence_numbers",
    "syslog_split_messages",
    "tcp_keepalives_count",
    "tcp_keepalives_idle",
    "tcp_keepalives_interval",
    "tcp_user_timeout",
    "temp_buffers",
    "temp_file_limit",
    "temp_tablespaces",
    "timezone_abbreviations",
    "trace_lock_oidmin",
    "trace_lock_table",
    "trace_locks",
    "trace_lwlocks",
    "trace_notify",
    "trace_recovery_messages",
    "trace_sort",
    "trace_syncscan",
    "trace_userlocks",
    "track_activities",
    "track_activity_query_size",
    "track_commit_timestamp",
    "track_counts",
    "track_functions",
    "track_io_timing",
    "track_wal_io_timing",
    "transform_null_equals",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
    "update_process_title",
    "vacuum_cost_delay",
    "vacuum_cost_limit",
    "vacuum_cost_page_dirty",
    "vacuum_cost_page_hit",
    "vacuum_cost_page_miss",
    "vacuum_defer_cleanup_age",
    "vacuum_failsafe_age",
    "vacuum_freeze_min_age",
    "vacuum_freeze_table_age",
    "vacuum_multixact_failsafe_age",
    "vacuum_multixact_freeze_min_age",
    "vacuum_multixact_freeze_table_age",
    "wal_block_size",
    "wal_buffers",
    "wal_compression",
    "wal_consistency_checking",
    "wal_debug",
    "wal_decode_buffer_size",
    "wal_init_zero",
    "wal_keep_size",
    "wal_level",
    "wal_log_hints",
    "wal_receiver_create_temp_slot",
    "wal_receiver_status_interval",
    "wal_receiver_timeout",
    "wal_recycle",
    "wal_retrieve_retry_interval",
    "wal_segment_size",
    "wal_sender_timeout",
    "wal_skip_threshold",
    "wal_sync_method",
    "wal_writer_delay",
    "wal_writer_flush_after",
    "zero_damaged_pages",
];

/// Encoding names PostgreSQL knows (encnames.c), cleaned as it cleans them:
/// lower case, letters and digits only. Used only to tell "not supported"
/// from "no such encoding".
const PG_ENCODINGS: &[&str] = &[
    "abc",
    "alt",
    "big5",
    "euccn",
    "eucjis2004",
    "eucjp",
    "euckr",
    "euctw",
    "gb18030",
    "gbk",
    "iso88591",
    "iso885910",
    "iso885913",
    "iso885914",
    "iso885915",
    "iso885916",
    "iso88592",
    "iso88593",
    "iso88594",
    "iso88595",
    "iso88596",
    "iso88597",
    "iso88598",
    "iso88599",
    "johab",
    "koi8",
    "koi8r",
    "koi8u",
    "latin1",
    "latin10",
    "latin2",
    "latin3",
    "latin4",
    "latin5",
    "latin6",
    "latin7",
    "latin8",
    "latin9",
    "mskanji",
    "muleinternal",
    "shiftjis",
    "shiftjis2004",
    "sjis",
    "tcvn",
    "tcvn5712",
    "uhc",
    "vscii",
    "win",
    "win1250",
    "win1251",
    "win1252",
    "win1253",
    "win1254",
    "win1255",
    "win1256",
    "win1257",
    "win1258",
    "win866",
    "win874",
    "win932",
    "win936",
    "win949",
    "win950",
    "windows1250",
    "windows1251",
    "windows1252",
    "windows1253",
    "windows1254",
    "windows1255",
    "windows1256",
    "windows1257",
    "windows1258",
    "windows866",
    "windows874",
    "windows932",
    "windows936",
    "windows949",
    "windows950",
];

/// PostgreSQL's own spelling of a setting name (names are case-insensitive;
/// old aliases map to the current name), or None if PostgreSQL 15 has no such
/// setting. Custom `prefix.name` settings have no canonical spelling.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    if let Some((_, current)) = OLD_NAMES
        .iter()
        .find(|(old, _)| old.eq_ignore_ascii_case(name))
    {
        return Some(current);
    }
    SPECIAL
        .iter()
        .chain(ALLOWED)
        .chain(REFUSED)
        .find(|known| known.eq_ignore_ascii_case(name))
        .copied()
}

/// Decides whether a client may set `name` (case-insensitive) to `value`.
pub fn check(name: &str, value: &str) -> SettingDecision {
    let canonical = match known_name(name) {
        Ok(canonical) => canonical,
        Err(error) => return SettingDecision::Refuse(error),
    };
    // A NUL cannot travel in the protocol's strings and would cut the value
    // short wherever it is copied into a C string.
    if value.contains('\0') {
        return SettingDecision::Refuse(SettingError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"{canonical}\": it contains a NUL character"),
        ));
    }
    match canonical {
        "client_encoding" => match normalize_client_encoding(value) {
            Ok(encoding) => SettingDecision::Allow(encoding.to_string()),
            Err(error) => SettingDecision::Refuse(error),
        },
        "standard_conforming_strings" => {
            if parse_bool(value) == Some(true) {
                SettingDecision::Pinned
            } else {
                SettingDecision::Refuse(
                    SettingError::new(
                        sqlstate::INSUFFICIENT_PRIVILEGE,
                        format!(
                            "permission denied to set parameter \"standard_conforming_strings\" \
                             to \"{value}\""
                        ),
                    )
                    .with_hint(STANDARD_CONFORMING_STRINGS_HINT),
                )
            }
        }
        "search_path" => SettingDecision::Tracked,
        _ => match refusal_hint(canonical) {
            Some(hint) => SettingDecision::Refuse(denied(canonical, hint)),
            None => SettingDecision::Allow(value.to_string()),
        },
    }
}

/// Decides whether a client may RESET `name` (or name it in `SET … TO
/// DEFAULT`): yes for every setting it may set, returning PostgreSQL's
/// spelling of the name.
pub fn check_reset(name: &str) -> Result<&'static str, SettingError> {
    let canonical = known_name(name)?;
    match refusal_hint(canonical) {
        Some(hint) => Err(denied(canonical, hint)),
        None => Ok(canonical),
    }
}

/// The canonical name, or the error PostgreSQL would give for an unknown
/// one. Custom `prefix.name` settings exist in PostgreSQL as placeholders,
/// so they are "permission denied" rather than "unrecognized".
fn known_name(name: &str) -> Result<&'static str, SettingError> {
    canonical_name(name).ok_or_else(|| {
        if name.contains('.') {
            denied(name, GENERIC_HINT)
        } else {
            SettingError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("unrecognized configuration parameter \"{name}\""),
            )
        }
    })
}

/// Why a known setting is refused, or None if a client may change it.
/// `client_encoding`, `standard_conforming_strings` and `search_path` are
/// allowed here: their values are judged (or handled) separately.
fn refusal_hint(canonical: &str) -> Option<&'static str> {
    match canonical {
        "client_encoding" | "standard_conforming_strings" | "search_path" => None,
        "role" | "session_authorization" | "is_superuser" => Some(IDENTITY_HINT),
        "row_security" => Some(ROW_SECURITY_HINT),
        c if ALLOWED.contains(&c) => None,
        _ => Some(GENERIC_HINT),
    }
}

fn denied(name: &str, hint: &str) -> SettingError {
    SettingError::new(
        sqlstate::INSUFFICIENT_PRIVILEGE,
        format!("permission denied to set parameter \"{name}\""),
    )
    .with_hint(hint)
}

/// PostgreSQL's boolean spellings (parse_bool): on/off, true/false, yes/no,
/// 1/0, and unambiguous prefixes of true/false/yes/no, case-insensitive.
fn parse_bool(value: &str) -> Option<bool> {
    let v = value.to_ascii_lowercase();
    let prefix_of = |word: &str| !v.is_empty() && word.starts_with(v.as_str());
    match v.as_str() {
        "on" | "1" => Some(true),
        "of" | "off" | "0" => Some(false),
        _ if prefix_of("true") || prefix_of("yes") => Some(true),
        _ if prefix_of("false") || prefix_of("no") => Some(false),
        _ => None,
    }
}

/// Normalises a client encoding name as PostgreSQL does (letters and digits
/// only, case-insensitive: `utf8`, `'utf-8'`, `UTF_8`, `unicode` are one
/// name). Only UTF8 is accepted. `SQL_ASCII` is accepted and treated as
/// UTF8: clients that ask for it (some ODBC setups) mean "do not convert",
/// and with a UTF8 database that is UTF8 — while letting it through would
/// let unchecked bytes reach pgward's parser.
pub fn normalize_client_encoding(value: &str) -> Result<&'static str, SettingError> {
    let cleaned: String = value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    match cleaned.as_str() {
        "utf8" | "unicode" | "sqlascii" => Ok("UTF8"),
        known if PG_ENCODINGS.contains(&known) => Err(SettingError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("client encoding \"{value}\" is not supported by pgward"),
        )
        .with_hint(ENCODING_HINT)),
        _ => Err(SettingError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"client_encoding\": \"{value}\""),
        )
        .with_hint(ENCODING_HINT)),
    }
}

/// Parses the startup packet's `options` parameter as PostgreSQL does
/// (postinit.c `pg_split_opts`, then the `-c` / `--` switches of
/// `process_postgres_switches`): arguments are separated by whitespace, a
/// backslash makes the next character literal (so `\ ` is a space inside an
/// argument), and each argument is `-c name=value`, `-cname=value` or
/// `--name=value`; dashes in the name become underscores. Returns the
/// (name, value) pairs in order, unchecked: each still goes through
/// [`check`]. Every other switch PostgreSQL knows (`-e`, `-B`, `-d` …) is
/// refused, since each sets some server setting in disguise.
pub fn parse_options(options: &str) -> Result<Vec<(String, String)>, SettingError> {
    let mut args = split_options(options).into_iter();
    let mut settings = Vec::new();
    while let Some(arg) = args.next() {
        let (switch, spec) = if let Some(long) = arg.strip_prefix("--") {
            ("--", long.to_string())
        } else if let Some(attached) = arg.strip_prefix("-c") {
            if attached.is_empty() {
                let Some(next) = args.next() else {
                    return Err(SettingError::new(
                        sqlstate::SYNTAX_ERROR,
                        "option -c requires a name=value argument",
                    ));
                };
                ("-c ", next)
            } else {
                ("-c ", attached.to_string())
            }
        } else if arg.starts_with('-') {
            return Err(SettingError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                format!("option \"{arg}\" in the startup \"options\" parameter is not allowed"),
            )
            .with_hint("pgward accepts only -c name=value and --name=value there."));
        } else {
            return Err(SettingError::new(
                sqlstate::SYNTAX_ERROR,
                format!("invalid command-line argument for server process: {arg}"),
            ));
        };
        settings.push(parse_long_option(switch, &spec)?);
    }
    Ok(settings)
}

/// `name=value`, with dashes in the name turned into underscores
/// (guc.c ParseLongOption).
fn parse_long_option(switch: &str, spec: &str) -> Result<(String, String), SettingError> {
    let Some((name, value)) = spec.split_once('=') else {
        return Err(SettingError::new(
            sqlstate::SYNTAX_ERROR,
            format!("{switch}{spec} requires a value"),
        ));
    };
    if name.is_empty() {
        return Err(SettingError::new(
            sqlstate::SYNTAX_ERROR,
            format!("invalid command-line argument for server process: {switch}{spec}"),
        ));
    }
    Ok((name.replace('-', "_"), value.to_string()))
}

/// pg_split_opts: whitespace separates arguments unless escaped by a
/// backslash; a backslash is dropped and the character after it kept as is.
fn split_options(options: &str) -> Vec<String> {
    // C's isspace() in the C locale, which is what PostgreSQL uses here.
    fn is_space(c: char) -> bool {
        matches!(c, ' ' | '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r')
    }
    let mut args = Vec::new();
    let mut chars = options.chars().peekable();
    loop {
        while chars.peek().is_some_and(|&c| is_space(c)) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut arg = String::new();
        let mut escaped = false;
        while let Some(&c) = chars.peek() {
            if is_space(c) && !escaped {
                break;
            }
            chars.next();
            if !escaped && c == '\\' {
                escaped = true;
            } else {
                escaped = false;
                arg.push(c);
            }
        }
        args.push(arg);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str, value: &str) -> SettingError {
        match check(name, value) {
            SettingDecision::Refuse(error) => error,
            other => panic!("{name}={value}: expected a refusal, got {other:?}"),
        }
    }

    fn allow(value: &str) -> SettingDecision {
        SettingDecision::Allow(value.to_string())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn presentation_and_planner_settings_are_allowed_as_given() {
        for (name, value) in [
            ("application_name", "psql"),
            ("DateStyle", "ISO, MDY"),
            ("datestyle", "German"),
            ("TIMEZONE", "Europe/Berlin"),
            ("intervalstyle", "iso_8601"),
            ("extra_float_digits", "3"),
            ("statement_timeout", "5s"),
            ("lock_timeout", "1000"),
            ("idle_in_transaction_session_timeout", "1min"),
            ("idle_session_timeout", "0"),
            ("work_mem", "64MB"),
            ("maintenance_work_mem", "1GB"),
            ("bytea_output", "escape"),
            ("geqo", "off"),
            ("jit", "off"),
            ("enable_seqscan", "off"),
            ("enable_partitionwise_join", "on"),
            ("random_page_cost", "1.1"),
            ("seq_page_cost", "1"),
            ("cpu_tuple_cost", "0.01"),
            ("cpu_index_tuple_cost", "0.005"),
            ("cpu_operator_cost", "0.0025"),
            ("effective_cache_size", "4GB"),
            ("default_transaction_isolation", "serializable"),
            ("default_transaction_read_only", "on"),
            ("default_transaction_deferrable", "on"),
            ("transaction_isolation", "repeatable read"),
            ("transaction_read_only", "on"),
            ("lc_monetary", "C"),
            ("lc_numeric", "C"),
            ("lc_time", "C"),
            ("xmloption", "content"),
            ("client_min_messages", "warning"),
        ] {
            assert_eq!(check(name, value), allow(value), "{name}");
        }
    }

    #[test]
    fn canonical_spelling_and_old_names() {
        assert_eq!(canonical_name("datestyle"), Some("DateStyle"));
        assert_eq!(canonical_name("TIMEZONE"), Some("TimeZone"));
        assert_eq!(canonical_name("IntervalStyle"), Some("IntervalStyle"));
        assert_eq!(canonical_name("sort_mem"), Some("work_mem"));
        assert_eq!(canonical_name("SEARCH_PATH"), Some("search_path"));
        assert_eq!(canonical_name("no_such_thing"), None);
        assert_eq!(canonical_name("myapp.tenant"), None);
        assert_eq!(check("vacuum_mem", "1GB"), allow("1GB"));
    }

    #[test]
    fn search_path_is_tracked() {
        assert_eq!(
            check("search_path", "app, public"),
            SettingDecision::Tracked
        );
        assert_eq!(check("Search_Path", "\"$user\""), SettingDecision::Tracked);
    }

    #[test]
    fn standard_conforming_strings_is_pinned_on() {
        for value in ["on", "ON", "true", "t", "yes", "y", "1", "tru"] {
            assert_eq!(
                check("standard_conforming_strings", value),
                SettingDecision::Pinned,
                "{value}"
            );
        }
        for value in ["off", "false", "0", "no", "of", "o", "", "banana"] {
            let error = refused("standard_conforming_strings", value);
            assert_eq!(error.sqlstate, "42501", "{value}");
            assert_eq!(
                error.message,
                format!(
                    "permission denied to set parameter \"standard_conforming_strings\" to \"{value}\""
                )
            );
            assert!(error.hint.is_some());
        }
    }

    #[test]
    fn client_encoding_is_normalised_to_utf8() {
        for value in [
            "utf8",
            "'utf-8'",
            "UTF8",
            "UTF-8",
            "unicode",
            "Utf_8",
            "SQL_ASCII",
        ] {
            assert_eq!(normalize_client_encoding(value), Ok("UTF8"), "{value}");
            assert_eq!(check("client_encoding", value), allow("UTF8"), "{value}");
        }
        let latin = refused("CLIENT_ENCODING", "LATIN1");
        assert_eq!(latin.sqlstate, "0A000");
        assert_eq!(
            latin.message,
            "client encoding \"LATIN1\" is not supported by pgward"
        );
        assert_eq!(latin.hint.as_deref(), Some(ENCODING_HINT));
        assert_eq!(refused("client_encoding", "WIN-1252").sqlstate, "0A000");
        let bogus = refused("client_encoding", "klingon");
        assert_eq!(bogus.sqlstate, "22023");
        assert_eq!(
            bogus.message,
            "invalid value for parameter \"client_encoding\": \"klingon\""
        );
        assert_eq!(refused("client_encoding", "").sqlstate, "22023");
    }

    #[test]
    fn identity_and_security_settings_are_refused() {
        for name in ["role", "ROLE", "session_authorization", "is_superuser"] {
            let error = refused(name, "postgres");
            assert_eq!(error.sqlstate, "42501");
            assert_eq!(error.hint.as_deref(), Some(IDENTITY_HINT));
        }
        let error = refused("row_security", "off");
        assert_eq!(
            error.message,
            "permission denied to set parameter \"row_security\""
        );
        assert_eq!(error.hint.as_deref(), Some(ROW_SECURITY_HINT));
    }

    #[test]
    fn other_postgresql_settings_are_permission_denied() {
        for name in [
            "lc_messages",
            "allow_system_table_mods",
            "log_statement",
            "log_min_messages",
            "debug_print_plan",
            "trace_sort",
            "zero_damaged_pages",
            "ignore_system_indexes",
            "local_preload_libraries",
            "session_preload_libraries",
            "temp_tablespaces",
            "default_tablespace",
            "check_function_bodies",
            "default_table_access_method",
            "default_text_search_config",
            "dynamic_library_path",
            "synchronous_commit",
            "session_replication_role",
            "wal_compression",
            "backslash_quote",
            "transform_null_equals",
            "array_nulls",
            "tcp_keepalives_idle",
            "shared_buffers",
            "server_version",
        ] {
            let error = refused(name, "x");
            assert_eq!(error.sqlstate, "42501", "{name}");
            assert_eq!(
                error.message,
                format!("permission denied to set parameter \"{name}\"")
            );
            assert_eq!(error.hint.as_deref(), Some(GENERIC_HINT));
        }
        // Reported in PostgreSQL's spelling.
        assert_eq!(
            refused("LC_MESSAGES", "C").message,
            "permission denied to set parameter \"lc_messages\""
        );
    }

    #[test]
    fn custom_and_unknown_names() {
        let custom = refused("plpgsql.variable_conflict", "use_column");
        assert_eq!(custom.sqlstate, "42501");
        assert_eq!(
            custom.message,
            "permission denied to set parameter \"plpgsql.variable_conflict\""
        );
        assert_eq!(refused("myapp.tenant_id", "42").sqlstate, "42501");
        let unknown = refused("no_such_setting", "1");
        assert_eq!(unknown.sqlstate, "42704");
        assert_eq!(
            unknown.message,
            "unrecognized configuration parameter \"no_such_setting\""
        );
        assert_eq!(refused("enable_everything", "on").sqlstate, "42704");
    }

    #[test]
    fn values_with_nul_are_refused() {
        let error = refused("application_name", "a\0b");
        assert_eq!(error.sqlstate, "22023");
        assert_eq!(refused("search_path", "a\0").sqlstate, "22023");
    }

    #[test]
    fn every_listed_name_is_classified_once() {
        let mut all: Vec<String> = SPECIAL
            .iter()
            .chain(ALLOWED)
            .chain(REFUSED)
            .map(|n| n.to_ascii_lowercase())
            .collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "a name is listed twice");
        for name in ALLOWED {
            assert_eq!(check(name, "1"), allow("1"), "{name}");
            assert_eq!(check_reset(name), Ok(*name));
        }
        for name in REFUSED {
            assert_eq!(refused(name, "1").sqlstate, "42501", "{name}");
            assert!(check_reset(name).is_err(), "{name}");
        }
    }

    #[test]
    fn reset() {
        assert_eq!(check_reset("TIMEZONE"), Ok("TimeZone"));
        assert_eq!(check_reset("search_path"), Ok("search_path"));
        assert_eq!(check_reset("client_encoding"), Ok("client_encoding"));
        assert_eq!(
            check_reset("standard_conforming_strings"),
            Ok("standard_conforming_strings")
        );
        assert_eq!(check_reset("role").map_err(|e| e.sqlstate), Err("42501"));
        assert_eq!(check_reset("nope").map_err(|e| e.sqlstate), Err("42704"));
    }

    #[test]
    fn options_both_c_forms_and_long_form() {
        assert_eq!(
            parse_options("-c search_path=app -cstatement_timeout=5s --work-mem=64MB"),
            Ok(pairs(&[
                ("search_path", "app"),
                ("statement_timeout", "5s"),
                ("work_mem", "64MB"),
            ]))
        );
        assert_eq!(parse_options(""), Ok(vec![]));
        assert_eq!(parse_options("  \t\n "), Ok(vec![]));
        // Only the name's dashes become underscores; `=` splits once.
        assert_eq!(
            parse_options("--application-name=a-b=c"),
            Ok(pairs(&[("application_name", "a-b=c")]))
        );
        assert_eq!(parse_options("-c x.y="), Ok(pairs(&[("x.y", "")])));
    }

    #[test]
    fn options_backslash_escapes() {
        assert_eq!(
            parse_options(r"-c application_name=my\ app -c search_path=a,\ b"),
            Ok(pairs(&[
                ("application_name", "my app"),
                ("search_path", "a, b")
            ]))
        );
        assert_eq!(
            parse_options(r"-c application_name=back\\slash\"),
            Ok(pairs(&[("application_name", r"back\slash")]))
        );
        // An escaped `-` or `c` is still just that character.
        assert_eq!(
            parse_options(r"\-c DateStyle=ISO\,\ MDY"),
            Ok(pairs(&[("DateStyle", "ISO, MDY")]))
        );
    }

    #[test]
    fn options_bad_switches_and_arguments() {
        for options in ["-e", "-B 1000", "-d 5", "-F", "-ce"] {
            match parse_options(options) {
                Err(e) if options == "-ce" => {
                    assert_eq!(e.sqlstate, "42601", "{options}");
                    assert_eq!(e.message, "-c e requires a value");
                }
                Err(e) => {
                    assert_eq!(e.sqlstate, "42501", "{options}");
                    assert!(e.message.starts_with("option \"-"), "{}", e.message);
                    assert!(e.hint.is_some());
                }
                Ok(v) => panic!("{options}: accepted {v:?}"),
            }
        }
        let missing = parse_options("-c");
        assert_eq!(missing.map_err(|e| e.sqlstate), Err("42601"));
        let no_value = parse_options("--statement_timeout");
        assert_eq!(
            no_value.map_err(|e| e.message),
            Err("--statement_timeout requires a value".to_string())
        );
        let stray = parse_options("-c a=1 stray");
        assert_eq!(
            stray.map_err(|e| e.message),
            Err("invalid command-line argument for server process: stray".to_string())
        );
        assert_eq!(parse_options("--=x").map_err(|e| e.sqlstate), Err("42601"));
    }
}
