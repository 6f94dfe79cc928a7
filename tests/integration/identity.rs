//! The service identity does not show (THREATS.md "service identity
//! shows", PRODUCT.md §3 semantics 10): through pgward, as alice on the demo
//! data set, the privilege functions answer from alice's policies, and
//! `SHOW search_path` and the search_path functions show her own
//! search_path, with the answer PostgreSQL gives for SHOW (one text column
//! `search_path`, tag `SHOW`) in the simple and the extended protocol.

use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::Type;

use crate::harness::{Pgward, PgwardOptions, TestDb};
use crate::policy_reads::{demo_db, demo_policies, psql};

async fn start(label: &str) -> anyhow::Result<(TestDb, Pgward)> {
    let db = demo_db(label).await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    Ok((db, pgward))
}

/// The rows (first column) and command tags' row counts of a simple query.
fn simple(messages: &[SimpleQueryMessage]) -> (Vec<Option<String>>, Vec<u64>) {
    let mut rows = Vec::new();
    let mut tags = Vec::new();
    for m in messages {
        match m {
            SimpleQueryMessage::Row(r) => rows.push(r.get(0).map(str::to_string)),
            SimpleQueryMessage::CommandComplete(n) => tags.push(*n),
            _ => {}
        }
    }
    (rows, tags)
}

#[tokio::test]
async fn privilege_functions_answer_for_the_login() -> anyhow::Result<()> {
    let (db, pgward) = start("identity_privileges").await?;
    let c = pgward.connect_as("alice", "alice").await?;

    // alice reads orders (without margin) and may insert into it (the demo
    // policies); she holds nothing on departments.
    let row = c
        .query_one(
            "SELECT has_table_privilege('orders', 'SELECT'), \
                    has_table_privilege('departments', 'SELECT'), \
                    has_table_privilege('orders', 'INSERT'), \
                    has_table_privilege('orders', 'DELETE'), \
                    has_table_privilege(current_user, 'public.orders', 'select, delete'), \
                    has_table_privilege('alice', 'orders', 'SELECT WITH GRANT OPTION'), \
                    has_column_privilege('orders', 'margin', 'SELECT'), \
                    has_column_privilege('orders', 'amount', 'SELECT'), \
                    has_any_column_privilege('departments', 'SELECT'), \
                    has_schema_privilege('public', 'USAGE'), \
                    has_schema_privilege('public', 'CREATE'), \
                    has_database_privilege(current_database(), 'CONNECT'), \
                    has_database_privilege(current_database(), 'TEMP'), \
                    has_table_privilege('pg_catalog.pg_class', 'SELECT'), \
                    has_table_privilege('pg_authid', 'SELECT')",
            &[],
        )
        .await?;
    let got: Vec<bool> = (0..row.len()).map(|i| row.get(i)).collect();
    assert_eq!(
        got,
        [
            true, false, true, false, true, false, false, true, false, true, false, true, false,
            true, false
        ]
    );

    // The catalog-wide form (Metabase, DBeaver): true exactly for the
    // tables alice can read.
    let rows = c
        .query(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = 'public' AND c.relkind = 'r' \
                AND pg_catalog.has_table_privilege(c.oid, 'SELECT') ORDER BY 1",
            &[],
        )
        .await?;
    let readable: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(readable, ["customers", "employees", "orders"]);
    let rows = c
        .query(
            "SELECT c.relname::text, pg_catalog.has_table_privilege(c.oid, 'SELECT') \
               FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .await?;
    let all: Vec<(String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        all,
        [
            ("customers".to_string(), true),
            ("departments".to_string(), false),
            ("employees".to_string(), true),
            ("orders".to_string(), true)
        ]
    );

    // Errors as PostgreSQL gives them, and refusals for other roles.
    let direct = db.service().await?;
    for sql in [
        "SELECT has_table_privilege('orders', 'SELEKT')",
        "SELECT has_table_privilege('no_such_table', 'SELECT')",
        "SELECT has_column_privilege('orders', 'no_such_column', 'SELECT')",
    ] {
        let via = c
            .simple_query(sql)
            .await
            .err()
            .and_then(|e| e.as_db_error().cloned());
        let want = direct
            .simple_query(sql)
            .await
            .err()
            .and_then(|e| e.as_db_error().cloned());
        let (Some(via), Some(want)) = (via, want) else {
            anyhow::bail!("{sql}: both should fail");
        };
        assert_eq!(via.code(), want.code(), "{sql}");
        assert_eq!(via.message(), want.message(), "{sql}");
    }
    let e = c
        .simple_query("SELECT has_table_privilege('pgward_service', 'orders', 'SELECT')")
        .await
        .err()
        .and_then(|e| e.as_db_error().cloned());
    assert_eq!(
        e.map(|e| e.code().code().to_string()),
        Some("42501".to_string())
    );

    // psql, simple protocol.
    let conn = pgward.conn_string("alice", "alice", db.name());
    let (out, err) = psql(
        &conn,
        "SELECT has_table_privilege('orders','SELECT'), has_table_privilege('departments','SELECT'), \
         has_column_privilege('orders','margin','SELECT')",
    )
    .await?;
    assert_eq!(out.trim(), "t|f|f", "{err}");
    Ok(())
}

#[tokio::test]
async fn show_search_path_is_the_clients_own() -> anyhow::Result<()> {
    let (db, pgward) = start("identity_search_path").await?;
    let c = pgward.connect_as("alice", "alice").await?;

    // Simple protocol: SHOW's tag (no row count), not SELECT 1's.
    let (rows, tags) = simple(&c.simple_query("SHOW search_path").await?);
    assert_eq!(rows, [Some("\"$user\", public".to_string())]);
    assert_eq!(tags, [0]);
    let (rows, tags) = simple(
        &c.simple_query("SET search_path = other, public; SHOW search_path; SELECT 1")
            .await?,
    );
    assert_eq!(
        rows,
        [Some("other, public".to_string()), Some("1".to_string())]
    );
    assert_eq!(tags, [0, 0, 1]);

    // Extended protocol: one text column named search_path, tag SHOW (its
    // row count reads 0; a SELECT's reads 1), every time the statement runs.
    let stmt = c.prepare("SHOW search_path").await?;
    assert_eq!(stmt.columns().len(), 1);
    assert_eq!(stmt.columns()[0].name(), "search_path");
    assert_eq!(stmt.columns()[0].type_(), &Type::TEXT);
    for _ in 0..2 {
        assert_eq!(c.execute(&stmt, &[]).await?, 0);
        assert_eq!(c.execute("SELECT 1", &[]).await?, 1);
    }
    let row = c.query_one(&stmt, &[]).await?;
    assert_eq!(row.get::<_, String>(0), "other, public");

    // The search_path functions read the client's path too.
    let row = c
        .query_one(
            "SELECT current_setting('search_path'), current_schema()::text, \
                    current_schemas(false)::text[], current_schemas(true)::text[]",
            &[],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "other, public");
    // `other` does not exist: the first existing schema is public.
    assert_eq!(row.get::<_, String>(1), "public");
    assert_eq!(row.get::<_, Vec<String>>(2), ["public"]);
    assert_eq!(row.get::<_, Vec<String>>(3), ["pg_catalog", "public"]);

    let (rows, tags) = simple(
        &c.simple_query("RESET search_path; SHOW search_path")
            .await?,
    );
    assert_eq!(rows, [Some("\"$user\", public".to_string())]);
    assert_eq!(tags, [0, 0]);

    // As a direct connection shows it, quoting included.
    let direct = db.service().await?;
    let set = "SET search_path = \"Other\", \"user\", public";
    c.batch_execute(set).await?;
    direct.batch_execute(set).await?;
    let via: String = c.query_one("SHOW search_path", &[]).await?.get(0);
    let want: String = direct.query_one("SHOW search_path", &[]).await?.get(0);
    assert_eq!(via, want);
    assert_eq!(via, "\"Other\", \"user\", public");

    // psql prints what it prints on a direct connection (the SET's tag,
    // then the value; a SELECT would print no tag either way, so the tag
    // itself is checked above).
    let conn = pgward.conn_string("alice", "alice", db.name());
    let sql = "SET search_path = other, public; SHOW search_path";
    let (out, err) = psql(&conn, sql).await?;
    let (want, _) = psql(&db.service_url(), sql).await?;
    assert_eq!(out, want, "{err}");
    assert_eq!(out.trim(), "SET\nother, public", "{err}");
    Ok(())
}

/// A connection with `options` (`-c name=value …`) in its startup packet.
async fn connect_with_options(conn: &str, options: &str) -> anyhow::Result<tokio_postgres::Client> {
    let mut config: tokio_postgres::Config = conn.parse()?;
    config.options(options);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A search_path from the startup packet is read as PostgreSQL reads the
/// setting (unquoted names lower-cased, quoted ones kept whole, commas
/// inside quotes included), and shown as the client wrote it, as
/// PostgreSQL shows it; RESET and DISCARD ALL return to it.
#[tokio::test]
async fn startup_search_path_reads_as_postgresql_reads_it() -> anyhow::Result<()> {
    let (db, pgward) = start("identity_startup_path").await?;
    let via_conn = pgward.conn_string("alice", "alice", db.name());
    for options in [
        "-c search_path=Public",
        "-c search_path=PUBLIC,\"$user\"",
        r#"-c search_path=\"My,\ S\",Public"#,
        r#"--search-path=\"Other\",\ public"#,
    ] {
        let via = connect_with_options(&via_conn, options).await?;
        let direct = connect_with_options(&db.service_url(), options).await?;
        // alice's three orders: `orders` is found in public.
        let count: i64 = via
            .query_one("SELECT count(*) FROM orders", &[])
            .await?
            .get(0);
        assert_eq!(count, 3, "{options}");
        for sql in ["SHOW search_path", "SELECT current_setting('search_path')"] {
            let got: String = via.query_one(sql, &[]).await?.get(0);
            let want: String = direct.query_one(sql, &[]).await?.get(0);
            assert_eq!(got, want, "{options}: {sql}");
        }
        for reset in [
            "SET search_path = other; RESET search_path",
            "SET search_path = other; RESET ALL",
            "SET search_path = other; DISCARD ALL",
        ] {
            // One statement at a time: DISCARD ALL cannot run inside the
            // implicit transaction of a multi-statement text.
            for sql in reset.split("; ") {
                via.batch_execute(sql).await?;
                direct.batch_execute(sql).await?;
            }
            let got: String = via.query_one("SHOW search_path", &[]).await?.get(0);
            let want: String = direct.query_one("SHOW search_path", &[]).await?.get(0);
            assert_eq!(got, want, "{options}: {reset}");
            let count: i64 = via
                .query_one("SELECT count(*) FROM orders", &[])
                .await?
                .get(0);
            assert_eq!(count, 3, "{options}: {reset}");
        }
    }
    // The shown text is the client's own: `Public` as written.
    let via = connect_with_options(&via_conn, "-c search_path=Public").await?;
    let shown: String = via.query_one("SHOW search_path", &[]).await?.get(0);
    assert_eq!(shown, "Public");
    // A quoted name keeps its case: no schema "PUBLIC" exists, so
    // `orders` is not found, as PostgreSQL would not find it.
    let via = connect_with_options(&via_conn, "-c search_path=\"PUBLIC\"").await?;
    let e = via
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .expect_err("orders found through schema \"PUBLIC\"");
    assert_eq!(e.code().map(|c| c.code()), Some("42P01"), "{e:?}");
    // A malformed list fails the login, as PostgreSQL fails it.
    for options in [r"-c search_path=a\ b", "-c search_path=\"a"] {
        let got = connect_with_options(&via_conn, options)
            .await
            .expect_err("malformed search_path accepted");
        let want = connect_with_options(&db.service_url(), options)
            .await
            .expect_err("PostgreSQL accepted a malformed search_path");
        let code = |e: &anyhow::Error| {
            e.downcast_ref::<tokio_postgres::Error>()
                .and_then(|e| e.code())
                .map(|c| c.code().to_string())
        };
        assert_eq!(code(&got), code(&want), "{options}: {got:?}");
        assert_eq!(code(&got).as_deref(), Some("22023"), "{options}");
    }
    Ok(())
}

/// `SHOW` of the identity settings: PostgreSQL's answer (one text column
/// named after the setting, tag SHOW) with the login's values, in the
/// simple and the extended protocol.
#[tokio::test]
async fn show_identity_settings_answers_as_postgresql_for_the_login() -> anyhow::Result<()> {
    let (db, pgward) = start("identity_show").await?;
    let c = pgward.connect_as("alice", "alice").await?;
    let (rows, tags) = simple(
        &c.simple_query("SHOW session_authorization; SHOW is_superuser; SELECT 1; SHOW role")
            .await?,
    );
    assert_eq!(
        rows,
        [
            Some("alice".to_string()),
            Some("off".to_string()),
            Some("1".to_string()),
            Some("none".to_string())
        ]
    );
    assert_eq!(tags, [0, 0, 1, 0]);
    let direct = db.service().await?;
    for (setting, value) in [
        ("session_authorization", "alice"),
        ("is_superuser", "off"),
        ("role", "none"),
    ] {
        let sql = format!("SHOW {setting}");
        let stmt = c.prepare(&sql).await?;
        let want = direct.prepare(&sql).await?;
        let shape = |s: &tokio_postgres::Statement| {
            s.columns()
                .iter()
                .map(|c| (c.name().to_string(), c.type_().clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&stmt), shape(&want), "{sql}");
        assert_eq!(c.execute(&stmt, &[]).await?, 0, "{sql}: tag SHOW");
        let row = c.query_one(&stmt, &[]).await?;
        assert_eq!(row.get::<_, String>(0), value, "{sql}");
    }
    // psql prints what it prints on a direct connection, the value aside.
    let conn = pgward.conn_string("alice", "alice", db.name());
    let (out, err) = psql(&conn, "SHOW is_superuser").await?;
    assert_eq!(out.trim(), "off", "{err}");
    Ok(())
}
