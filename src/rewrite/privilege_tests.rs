//! Calls pgward answers itself: the privilege functions answer for the
//! login from its policies, the search_path readers (and `SHOW
//! search_path`) with the client's own search_path. Over the rewriter
//! fixture (alice) widened with a sequence, `pg_namespace` and a session
//! that may also INSERT into `orders`.

use crate::catalog::{Catalog, CatalogParts, RelKind};
use crate::error::PgError;
use crate::rewrite::tests::{Alice, builtin, relation};
use crate::rewrite::{Access, Command, Context, Secured, TableAccess, secure_text_session};

/// Alice, who may also INSERT into `public.orders` and read
/// `public.orders_id_seq`.
struct AliceWrites;

impl Access for AliceWrites {
    fn table(&self, relation: &crate::catalog::Relation, command: Command) -> Option<TableAccess> {
        match (relation.name.as_str(), command) {
            ("orders", Command::Insert) if relation.schema == "public" => {
                Some(TableAccess::everything())
            }
            ("orders_id_seq", Command::Select) => Some(TableAccess::everything()),
            _ => Alice.table(relation, command),
        }
    }

    fn login(&self) -> &str {
        "alice"
    }
}

fn catalog() -> Catalog {
    Catalog::from_parts(CatalogParts {
        schemas: vec![
            "pg_catalog".into(),
            "public".into(),
            "information_schema".into(),
            "other".into(),
            "empty".into(),
            "alice".into(),
        ],
        relations: vec![
            relation(
                1,
                "public",
                "orders",
                RelKind::Table,
                &[
                    "id",
                    "customer_id",
                    "salesrep_id",
                    "amount",
                    "margin",
                    "notes",
                    "status",
                ],
            ),
            relation(
                2,
                "public",
                "employees",
                RelKind::Table,
                &["id", "login", "name", "department_id", "salary", "ssn"],
            ),
            relation(3, "public", "departments", RelKind::Table, &["id", "name"]),
            relation(4, "other", "orders", RelKind::Table, &["id", "x"]),
            relation(
                6,
                "public",
                "orders_id_seq",
                RelKind::Sequence,
                &["last_value"],
            ),
            relation(7, "public", "orders_pkey", RelKind::Other, &["id"]),
            relation(8, "empty", "secret", RelKind::Table, &["id"]),
            relation(
                10,
                "pg_catalog",
                "pg_class",
                RelKind::Table,
                &["oid", "relname", "relkind"],
            ),
            relation(
                11,
                "pg_catalog",
                "pg_authid",
                RelKind::Table,
                &["oid", "rolname", "rolpassword"],
            ),
            relation(
                12,
                "pg_catalog",
                "pg_stat_activity",
                RelKind::View,
                &["pid", "usename", "query"],
            ),
            relation(
                15,
                "pg_catalog",
                "pg_namespace",
                RelKind::Table,
                &["oid", "nspname"],
            ),
        ],
        functions: vec![
            builtin(1000, "count", false),
            builtin(1001, "query_to_xml", false),
            builtin(1002, "pg_terminate_backend", false),
            builtin(1003, "has_table_privilege", false),
            builtin(1004, "current_setting", false),
            builtin(1005, "pg_has_role", false),
            crate::catalog::Function {
                oid: 20000,
                schema: "public".into(),
                name: "order_total".into(),
                arg_types: vec![23],
                return_type: 23,
                kind: 'f',
                volatility: 'v',
                leakproof: false,
                security_definer: false,
                returns_set: false,
            },
        ],
        ..CatalogParts::default()
    })
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Secures `sql` for a client whose search_path is `path` as written.
fn session(sql: &str, path: &[&str]) -> Result<Secured, PgError> {
    let catalog = catalog();
    let client = strings(path);
    let expanded = crate::rewrite::set::expand_search_path(&client, "alice");
    let ctx = Context {
        catalog: &catalog,
        search_path: &expanded,
        access: &AliceWrites,
    };
    secure_text_session(sql, false, &ctx, &client)
}

fn ok(sql: &str) -> String {
    match session(sql, &["$user", "public"]) {
        Ok(s) => s.sql,
        Err(e) => panic!("{sql}: refused with {e}"),
    }
}

fn refused(sql: &str) -> PgError {
    match session(sql, &["$user", "public"]) {
        Ok(s) => panic!("{sql}: allowed as {}", s.sql),
        Err(e) => e,
    }
}

/// The oids in the first `'{…}'::pg_catalog.oid[]` of a secured text.
fn oids(sql: &str) -> Vec<u32> {
    let start = sql.find("'{").expect("an oid list") + 2;
    let end = start + sql[start..].find('}').unwrap();
    sql[start..end]
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn table_privilege_of_a_named_table_is_a_constant() {
    assert_eq!(
        ok("SELECT has_table_privilege('orders', 'SELECT')"),
        "SELECT true AS \"has_table_privilege\""
    );
    assert_eq!(
        ok("SELECT pg_catalog.has_table_privilege('public.departments', 'SELECT') AS d"),
        "SELECT false AS d"
    );
    // INSERT as the policies say (granted to this session), DELETE not.
    assert_eq!(
        ok(
            "SELECT has_table_privilege('orders', 'INSERT'), has_table_privilege('orders', 'delete')"
        ),
        "SELECT true AS \"has_table_privilege\", false AS \"has_table_privilege\""
    );
    // Quoted and qualified names, as PostgreSQL reads a name given as text.
    assert_eq!(
        ok("SELECT has_table_privilege('\"other\".\"orders\"', 'select')"),
        "SELECT true AS \"has_table_privilege\""
    );
    assert_eq!(
        ok("SELECT has_table_privilege('ORDERS', 'select')"),
        "SELECT true AS \"has_table_privilege\""
    );
    // Catalog relations: the readable ones may be selected, nothing else.
    assert_eq!(
        ok("SELECT has_table_privilege('pg_class', 'SELECT'), \
            has_table_privilege('pg_authid', 'SELECT'), \
            has_table_privilege('pg_class', 'UPDATE')"),
        "SELECT true AS \"has_table_privilege\", false AS \"has_table_privilege\", \
         false AS \"has_table_privilege\""
    );
    let e = refused("SELECT has_table_privilege('nosuch', 'SELECT')");
    assert_eq!(
        (e.code, e.message.as_str()),
        ("42P01", "relation \"nosuch\" does not exist")
    );
}

#[test]
fn privilege_strings_read_as_postgresql_reads_them() {
    for (privilege, expected) in [
        ("select", true),
        (" Select ", true),
        ("DELETE, SELECT", true),
        ("DELETE,\tTRUNCATE", false),
        ("SELECT WITH GRANT OPTION", false),
        ("select with grant option, INSERT", true),
        ("REFERENCES, TRIGGER, RULE", false),
    ] {
        assert_eq!(
            ok(&format!(
                "SELECT has_table_privilege('orders', '{privilege}') AS p"
            )),
            format!("SELECT {expected} AS p"),
            "{privilege}"
        );
    }
    for (privilege, chunk) in [
        ("SELEKT", "SELEKT"),
        ("SELECT, ", ""),
        ("SELECT  WITH GRANT OPTION", "SELECT  WITH GRANT OPTION"),
        ("USAGE", "USAGE"),
    ] {
        let e = refused(&format!(
            "SELECT has_table_privilege('orders', '{privilege}')"
        ));
        assert_eq!(e.code, "22023", "{privilege}");
        assert_eq!(
            e.message,
            format!("unrecognized privilege type: \"{chunk}\"")
        );
    }
    let e = refused("SELECT has_table_privilege('orders', p) FROM (VALUES ('SELECT')) v(p)");
    assert_eq!(e.code, "0A000");
    assert!(e.hint.is_some());
}

#[test]
fn the_role_argument_must_be_the_login() {
    for role in [
        "current_user",
        "session_user",
        "CURRENT_ROLE",
        "user",
        "'alice'",
    ] {
        assert_eq!(
            ok(&format!(
                "SELECT has_table_privilege({role}, 'orders', 'SELECT') AS p"
            )),
            "SELECT true AS p",
            "{role}"
        );
    }
    for role in ["'bob'", "'public'", "'Alice'", "'pgward_service'", "10"] {
        let e = refused(&format!(
            "SELECT has_table_privilege({role}, 'orders', 'SELECT')"
        ));
        assert_eq!(e.code, "42501", "{role}");
    }
    let e = refused(
        "SELECT has_table_privilege(r.rolname, 'orders', 'SELECT') FROM pg_catalog.pg_class r",
    );
    assert_eq!(e.code, "42501");
}

#[test]
fn column_privileges_follow_the_visible_columns() {
    assert_eq!(
        ok(
            "SELECT has_column_privilege('orders', 'margin', 'SELECT') AS m, \
            has_column_privilege('orders', 'amount', 'SELECT') AS a, \
            has_column_privilege('orders', 5, 'SELECT') AS by_number, \
            has_column_privilege('orders', 'margin', 'INSERT') AS ins"
        ),
        "SELECT false AS m, true AS a, false AS by_number, true AS ins"
    );
    assert_eq!(
        ok(
            "SELECT has_column_privilege('employees', 'salary', 'select') AS s, \
            has_column_privilege(current_user, 'employees', 'ssn', 'select') AS n"
        ),
        "SELECT true AS s, false AS n"
    );
    // An attribute number that names no column: NULL, as PostgreSQL.
    assert_eq!(
        ok("SELECT has_column_privilege('orders', 99, 'SELECT') AS p"),
        "SELECT NULL::pg_catalog.bool AS p"
    );
    let e = refused("SELECT has_column_privilege('orders', 'nosuch', 'SELECT')");
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            "42703",
            "column \"nosuch\" of relation \"orders\" does not exist"
        )
    );
    // Over pg_class rows: the tables with that column visible.
    let sql = ok("SELECT c.relname FROM pg_catalog.pg_class c \
                  WHERE has_column_privilege(c.oid, 'id', 'SELECT')");
    assert_eq!(oids(&sql), vec![1, 2, 4]);
    assert_eq!(
        refused(
            "SELECT has_column_privilege('orders', c.attname, 'SELECT') FROM pg_catalog.pg_class c"
        )
        .code,
        "0A000"
    );
    assert_eq!(
        ok(
            "SELECT has_any_column_privilege('departments', 'SELECT') AS d, \
            has_any_column_privilege('orders', 'SELECT') AS o"
        ),
        "SELECT false AS d, true AS o"
    );
}

#[test]
fn pg_class_wide_calls_test_the_oid_against_the_readable_relations() {
    let sql = ok("SELECT c.relname FROM pg_catalog.pg_class c \
                  WHERE has_table_privilege(c.oid, 'SELECT')");
    assert!(
        sql.contains("(c.oid)::pg_catalog.regclass::pg_catalog.oid = ANY('{"),
        "{sql}"
    );
    // orders, employees, other.orders, the sequence, pg_class and the
    // no-rows statistics view: not departments, the index, empty.secret
    // or pg_authid.
    assert_eq!(oids(&sql), vec![1, 2, 4, 6, 10, 12, 15]);
    let sql = ok("SELECT has_table_privilege(c.oid, 'INSERT') FROM pg_catalog.pg_class c");
    assert_eq!(oids(&sql), vec![1]);
    // A name as text (Metabase's privilege query), with the role argument.
    let sql = ok(
        "SELECT has_any_column_privilege(current_user, '\"' || t.relname || '\"', 'update') \
                  FROM pg_catalog.pg_class t",
    );
    assert!(
        sql.contains("::pg_catalog.regclass::pg_catalog.oid = ANY('{}'"),
        "{sql}"
    );
    // A literal oid is looked up; one that names nothing reads NULL.
    assert_eq!(
        ok(
            "SELECT has_table_privilege(1, 'SELECT') AS a, has_table_privilege(3, 'SELECT') AS b, \
            has_table_privilege(999, 'SELECT') AS c"
        ),
        "SELECT true AS a, false AS b, NULL::pg_catalog.bool AS c"
    );
}

#[test]
fn schema_database_function_and_sequence_privileges() {
    assert_eq!(
        ok("SELECT has_schema_privilege('public', 'USAGE') AS p, \
            has_schema_privilege('other', 'usage') AS o, \
            has_schema_privilege('empty', 'USAGE') AS e, \
            has_schema_privilege('pg_catalog', 'USAGE') AS c, \
            has_schema_privilege('public', 'CREATE') AS cr"),
        "SELECT true AS p, true AS o, false AS e, true AS c, false AS cr"
    );
    let e = refused("SELECT has_schema_privilege('nosuch', 'USAGE')");
    assert_eq!(e.code, "3F000");
    let sql = ok("SELECT n.nspname FROM pg_catalog.pg_namespace n \
                  WHERE has_schema_privilege(n.nspname, 'USAGE')");
    for schema in [
        "'public'",
        "'other'",
        "'pg_catalog'",
        "'information_schema'",
    ] {
        assert!(sql.contains(schema), "{schema}: {sql}");
    }
    assert!(!sql.contains("'empty'"), "{sql}");
    assert!(!sql.contains("'alice'"), "{sql}");

    assert_eq!(
        ok("SELECT has_database_privilege('demo', 'CONNECT') AS c, \
            has_database_privilege(current_user, 'demo', 'TEMP') AS t, \
            has_database_privilege('demo', 'create, temporary') AS cr"),
        "SELECT true AS c, false AS t, false AS cr"
    );
    assert_eq!(
        refused("SELECT has_database_privilege('demo', 'USAGE')").code,
        "22023"
    );

    let sql = ok("SELECT has_function_privilege('order_total(integer)', 'EXECUTE') AS f");
    assert!(sql.contains("::pg_catalog.regprocedure"), "{sql}");
    // Refused and neutralised built-ins are denied; order_total (no GRANT
    // EXECUTE for alice) is not among the allowed.
    assert!(
        sql.contains("<> ALL('{1001,1002}'::pg_catalog.oid[])"),
        "{sql}"
    );
    assert!(sql.contains("= ANY('{}'::pg_catalog.oid[])"), "{sql}");
    assert_eq!(
        refused("SELECT has_function_privilege('count()', 'SELECT')").code,
        "22023"
    );

    assert_eq!(
        ok(
            "SELECT has_sequence_privilege('orders_id_seq', 'USAGE') AS u, \
            has_sequence_privilege('orders_id_seq', 'UPDATE') AS up"
        ),
        "SELECT true AS u, false AS up"
    );
    let e = refused("SELECT has_sequence_privilege('orders', 'USAGE')");
    assert_eq!(
        (e.code, e.message.as_str()),
        ("42809", "\"orders\" is not a sequence")
    );
}

#[test]
fn search_path_readers_answer_with_the_clients_path() {
    let s = session(
        "SELECT current_schema(), current_schema, current_schemas(true), \
         current_schemas(false), current_setting('search_path')",
        &["other", "$user", "empty", "nosuch", "public"],
    )
    .unwrap();
    // `$user` is alice, whose schema exists but holds nothing she may read;
    // `empty` likewise: neither is usable; `nosuch` does not exist.
    assert_eq!(
        s.sql,
        "SELECT 'other'::pg_catalog.name AS \"current_schema\", \
         'other'::pg_catalog.name AS \"current_schema\", \
         ARRAY['pg_catalog', 'other', 'public']::pg_catalog.name[] AS \"current_schemas\", \
         ARRAY['other', 'public']::pg_catalog.name[] AS \"current_schemas\", \
         'other, \"$user\", empty, nosuch, public'::pg_catalog.text AS \"current_setting\""
    );
    let s = session("SELECT current_schema()", &["nosuch"]).unwrap();
    assert_eq!(s.sql, "SELECT NULL::pg_catalog.name AS \"current_schema\"");
    let s = session("SELECT current_schemas(true)", &["public", "pg_catalog"]).unwrap();
    assert_eq!(
        s.sql,
        "SELECT ARRAY['public', 'pg_catalog']::pg_catalog.name[] AS \"current_schemas\""
    );
    // Other settings are the upstream's to answer.
    assert_eq!(
        ok("SELECT current_setting('work_mem')"),
        "SELECT current_setting('work_mem')"
    );
}

#[test]
fn show_search_path_is_the_clients_own() {
    let s = session("SHOW search_path", &["$user", "public"]).unwrap();
    assert_eq!(
        s.sql,
        "SELECT '\"$user\", public'::pg_catalog.text AS search_path"
    );
    assert_eq!(s.shows, vec![0]);
    // As PostgreSQL's SHOW quotes: keywords, capitals, spaces, quotes.
    let s = session(
        "SHOW SEARCH_PATH",
        &["Other", "user", "a b", "x\"y", "public"],
    )
    .unwrap();
    assert_eq!(
        s.sql,
        "SELECT '\"Other\", \"user\", \"a b\", \"x\"\"y\", public'::pg_catalog.text AS search_path"
    );
    // A change applies to the statements after it in the same text.
    let s = session(
        "SET search_path = other, public; SHOW search_path; SELECT * FROM orders; RESET search_path; SHOW search_path",
        &["$user", "public"],
    )
    .unwrap();
    assert_eq!(s.shows, vec![1, 4]);
    assert!(
        s.sql
            .contains("'other, public'::pg_catalog.text AS search_path"),
        "{}",
        s.sql
    );
    assert!(s.sql.contains("FROM \"other\".\"orders\""), "{}", s.sql);
    assert!(
        s.sql
            .ends_with("SELECT '\"$user\", public'::pg_catalog.text AS search_path"),
        "{}",
        s.sql
    );
    assert_eq!(s.search_path, Some(None));
    // Other settings: passed through.
    let s = session("SHOW work_mem", &["public"]).unwrap();
    assert_eq!((s.sql.as_str(), s.shows.len()), ("SHOW work_mem", 0));
}

#[test]
fn set_search_path_values_are_whole_names() {
    let s = session("SET search_path TO 'a, b', \"$user\", Public", &["public"]).unwrap();
    assert_eq!(
        s.search_path,
        Some(Some(strings(&["a, b", "$user", "public"])))
    );
    assert_eq!(
        crate::rewrite::set::shown_search_path(&strings(&["a, b", "$user", "public"])),
        "\"a, b\", \"$user\", public"
    );
}

#[test]
fn identity_settings_read_as_the_login_and_are_tagged_show() {
    let s = session(
        "SHOW session_authorization; SHOW search_path; SHOW work_mem; SHOW is_superuser; SHOW Role",
        &["public"],
    )
    .unwrap();
    assert_eq!(s.shows, vec![0, 1, 3, 4]);
    let statements: Vec<&str> = s.sql.split(";\n").collect();
    assert_eq!(
        statements,
        [
            "SELECT 'alice'::pg_catalog.text AS session_authorization",
            "SELECT 'public'::pg_catalog.text AS search_path",
            "SHOW work_mem",
            "SELECT 'off'::pg_catalog.text AS is_superuser",
            "SELECT 'none'::pg_catalog.text AS role",
        ]
    );
    // The service role's name never appears: every value is pgward's.
    assert_eq!(
        ok(
            "SELECT current_setting('session_authorization'), current_setting('is_superuser'), \
            current_setting('Role', false), \"session_user\"(), pg_catalog.\"current_user\"()"
        ),
        "SELECT 'alice'::pg_catalog.text AS \"current_setting\", \
         'off'::pg_catalog.text AS \"current_setting\", \
         'none'::pg_catalog.text AS \"current_setting\", \
         'alice'::pg_catalog.name AS \"session_user\", \
         'alice'::pg_catalog.name AS \"current_user\""
    );
    // Other settings are PostgreSQL's to answer.
    assert_eq!(
        ok("SELECT current_setting('work_mem')"),
        "SELECT current_setting('work_mem')"
    );
}

#[test]
fn identity_call_as_a_role_argument_is_the_login() {
    // Answered functions accept it as the login …
    assert_eq!(
        ok("SELECT has_table_privilege(pg_catalog.\"current_user\"(), 'orders', 'INSERT')"),
        "SELECT true AS \"has_table_privilege\""
    );
    // … and the ones PostgreSQL answers get the upstream role, as for the
    // keyword (the login is no role upstream).
    let sql = ok("SELECT pg_has_role(\"session_user\"(), 'pg_monitor', 'MEMBER')");
    assert!(
        sql.contains("pg_has_role(pg_catalog.\"current_user\"(), 'pg_monitor', 'MEMBER')"),
        "{sql}"
    );
    assert!(!sql.contains("alice"), "{sql}");
}

#[test]
fn statements_sqlparser_cannot_read_keep_their_place_in_a_text() {
    // A SHOW after a FETCH is still tagged at its own position.
    let s = session("FETCH ALL c; SHOW role; MOVE c", &["public"]).unwrap();
    assert_eq!(s.shows, vec![1]);
    assert_eq!(
        s.sql,
        "FETCH FORWARD ALL FROM \"c\";\nSELECT 'none'::pg_catalog.text AS role;\nMOVE FORWARD 1 FROM \"c\""
    );
    // A search_path change before a FETCH applies after it, and is reported.
    let s = session(
        "SET search_path = other; FETCH 1 c; SHOW search_path; SELECT x FROM orders",
        &["public"],
    )
    .unwrap();
    assert_eq!(s.shows, vec![2]);
    assert_eq!(s.search_path, Some(Some(strings(&["other"]))));
    assert!(
        s.sql.contains("'other'::pg_catalog.text AS search_path"),
        "{}",
        s.sql
    );
    assert!(s.sql.contains("FROM \"other\".\"orders\""), "{}", s.sql);
    // A Parse message holds one statement, whatever sqlparser reads.
    let catalog = catalog();
    let path = strings(&["public"]);
    let ctx = Context {
        catalog: &catalog,
        search_path: &path,
        access: &AliceWrites,
    };
    let e = secure_text_session("FETCH ALL c; FETCH ALL d", true, &ctx, &path).unwrap_err();
    assert_eq!(e.code, "42601");
    assert!(secure_text_session("FETCH ALL c", true, &ctx, &path).is_ok());
    // Refused kinds name themselves, after comments.
    let e = refused("/* x */ DO $$BEGIN END$$");
    assert_eq!(
        (e.code, e.message.as_str()),
        ("42501", "pgward does not allow DO for this session")
    );
    let e = refused("SELECT 1; alter system set work_mem = '1MB'");
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            "42501",
            "pgward does not allow ALTER SYSTEM for this session"
        )
    );
}
