//! PRODUCT.md §3: errors from the database reach policy-bound clients
//! without DETAIL, WHERE, CONTEXT and the column/constraint/data fields
//! (THREATS.md "error fields"). Each statement runs through pgward once as
//! alice (policy-bound, demo policies) and once as admin (BYPASSPOLICY):
//! admin's error shows that PostgreSQL sent the field, alice's that it
//! did not reach her, while severity, SQLSTATE, message and hint are the
//! same for both. Notices likewise.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use tokio_postgres::error::DbError;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::harness::{Pgward, PgwardOptions, TestDb};
use crate::policy_reads::{demo_db, demo_policies};

/// Functions alice may call that make PostgreSQL fill every field: a RAISE
/// with all its options, a notice with a detail, and dynamic SQL that fails
/// inside the function (internal query and position).
const FUNCTIONS: &str = "
CREATE FUNCTION public.raise_everything() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING MESSAGE = 'raised on purpose', ERRCODE = '23514',
    DETAIL = 'Failing row contains (7, secret-detail).', HINT = 'raised hint',
    SCHEMA = 'secret_schema', TABLE = 'secret_table', COLUMN = 'secret_column',
    DATATYPE = 'secret_type', CONSTRAINT = 'secret_constraint';
END $$;
CREATE FUNCTION public.notice_with_detail() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE 'noticed on purpose' USING DETAIL = 'secret-notice-detail', HINT = 'notice hint';
  RETURN 1;
END $$;
CREATE FUNCTION public.dynamic_failure() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'SELECT no_such_column FROM pg_catalog.pg_class';
  RETURN 1;
END $$;
";

const EXTRA_POLICIES: &str = "
CREATE ROLE dba WITH BYPASSPOLICY;
CREATE USER admin PASSWORD 'admin' IN ROLE dba;
GRANT EXECUTE ON FUNCTION public.raise_everything() TO employee;
GRANT EXECUTE ON FUNCTION public.notice_with_detail() TO employee;
GRANT EXECUTE ON FUNCTION public.dynamic_failure() TO employee;
";

/// A field of an upstream error or notice that a policy-bound client must
/// never see.
#[derive(Debug, Clone, Copy)]
enum Field {
    Detail,
    Where,
    Schema,
    Table,
    Column,
    Datatype,
    Constraint,
    /// `P`, or `p` with `q` (tokio-postgres reads both as the position).
    Position,
    /// `F`, `L`, `R`.
    Source,
}

const DROPPED: &[Field] = &[
    Field::Detail,
    Field::Where,
    Field::Schema,
    Field::Table,
    Field::Column,
    Field::Datatype,
    Field::Constraint,
    Field::Position,
    Field::Source,
];

fn has(e: &DbError, field: Field) -> bool {
    match field {
        Field::Detail => e.detail().is_some(),
        Field::Where => e.where_().is_some(),
        Field::Schema => e.schema().is_some(),
        Field::Table => e.table().is_some(),
        Field::Column => e.column().is_some(),
        Field::Datatype => e.datatype().is_some(),
        Field::Constraint => e.constraint().is_some(),
        Field::Position => e.position().is_some(),
        Field::Source => e.file().is_some() || e.line().is_some() || e.routine().is_some(),
    }
}

/// A connection through pgward that keeps the notices it receives.
struct Session {
    client: Client,
    notices: Arc<Mutex<Vec<DbError>>>,
}

impl Session {
    async fn open(pgward: &Pgward, db: &TestDb, user: &str) -> anyhow::Result<Session> {
        let conn = pgward.conn_string(user, user, db.name());
        let (client, mut connection) = tokio_postgres::connect(&conn, NoTls).await?;
        let notices = Arc::new(Mutex::new(Vec::new()));
        let sink = notices.clone();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(m)) = messages.next().await {
                if let AsyncMessage::Notice(n) = m
                    && let Ok(mut seen) = sink.lock()
                {
                    seen.push(n);
                }
            }
        });
        Ok(Session { client, notices })
    }

    /// The error of `sql`, sent with the simple or the extended protocol.
    async fn error(&self, sql: &str, extended: bool) -> DbError {
        let result = if extended {
            self.client.query(sql, &[]).await.map(|_| ())
        } else {
            self.client.simple_query(sql).await.map(|_| ())
        };
        match result {
            Ok(()) => panic!("{sql}: expected an error"),
            Err(e) => e
                .as_db_error()
                .cloned()
                .unwrap_or_else(|| panic!("{sql}: not a database error: {e:?}")),
        }
    }

    fn take_notices(&self) -> Vec<DbError> {
        let mut seen = self
            .notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *seen)
    }
}

async fn setup(label: &str) -> anyhow::Result<(TestDb, Pgward)> {
    let db = demo_db(label).await?;
    db.superuser().await?.batch_execute(FUNCTIONS).await?;
    let policies = format!("{}\n{EXTRA_POLICIES}", demo_policies()?);
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&policies))
        .await?;
    Ok((db, pgward))
}

/// Alice's error has none of [`DROPPED`] and the same severity, SQLSTATE,
/// message and hint as admin's, which has every field of `sent`.
fn assert_scrubbed(sql: &str, alice: &DbError, admin: &DbError, sent: &[Field]) {
    for field in sent {
        assert!(
            has(admin, *field),
            "{sql}: PostgreSQL sent no {field:?} to the bypass session: {admin:?}"
        );
    }
    for field in DROPPED {
        assert!(
            !has(alice, *field),
            "{sql}: {field:?} reached alice: {alice:?}"
        );
    }
    assert_eq!(alice.severity(), admin.severity(), "{sql}");
    assert_eq!(alice.parsed_severity(), admin.parsed_severity(), "{sql}");
    assert_eq!(alice.code(), admin.code(), "{sql}");
    assert_eq!(alice.message(), admin.message(), "{sql}");
    assert_eq!(alice.hint(), admin.hint(), "{sql}");
    assert!(
        !format!("{alice:?}").contains("secret"),
        "{sql}: a dropped value reached alice: {alice:?}"
    );
}

#[tokio::test]
async fn upstream_errors_lose_their_row_fields_for_policy_bound_sessions() -> anyhow::Result<()> {
    let (db, pgward) = setup("error_scrub").await?;
    let alice = Session::open(&pgward, &db, "alice").await?;
    let admin = Session::open(&pgward, &db, "admin").await?;

    use Field::*;
    let cases: &[(&str, &str, &[Field])] = &[
        ("SELECT 1/0", "22012", &[Source]),
        (
            "SELECT * FROM orders WHERE id = 'x'",
            "22P02",
            &[Position, Source],
        ),
        (
            r#"SELECT '{"a": 1, "b"'::jsonb"#,
            "22P02",
            &[Detail, Where, Position, Source],
        ),
        (
            "SELECT pg_catalog.jsonb_path_query('{}', 'strict $.a')",
            "2203A",
            &[Source],
        ),
        (
            "SELECT public.raise_everything()",
            "23514",
            &[
                Detail, Where, Schema, Table, Column, Datatype, Constraint, Source,
            ],
        ),
        (
            "SELECT public.dynamic_failure()",
            "42703",
            &[Where, Position, Source],
        ),
    ];
    for &(sql, code, sent) in cases {
        for extended in [false, true] {
            let a = alice.error(sql, extended).await;
            let b = admin.error(sql, extended).await;
            assert_eq!(a.code().code(), code, "{sql}: {a:?}");
            assert_scrubbed(sql, &a, &b, sent);
        }
    }
    // The hint survives: PostgreSQL's advice, not row contents.
    let raised = alice.error("SELECT public.raise_everything()", false).await;
    assert_eq!(raised.hint(), Some("raised hint"));
    assert_eq!(raised.message(), "raised on purpose");

    // The session goes on after a scrubbed error, in and out of a
    // transaction (the error still aborts it upstream).
    let rows = alice
        .client
        .query("SELECT count(*) FROM orders", &[])
        .await?;
    assert_eq!(rows[0].get::<_, i64>(0), 3);
    alice.client.batch_execute("BEGIN").await?;
    let in_tx = alice.error("SELECT 1/0", false).await;
    assert_eq!(in_tx.code().code(), "22012");
    let aborted = alice.error("SELECT 1", false).await;
    assert_eq!(aborted.code().code(), "25P02");
    alice.client.batch_execute("ROLLBACK").await?;

    // pgward's own errors keep their hint (and any detail) as pgward wrote them.
    let own = alice
        .error(
            "SELECT has_table_privilege('bob', 'orders', 'SELECT')",
            false,
        )
        .await;
    assert_eq!(own.code().code(), "42501");
    assert_eq!(
        own.hint(),
        Some("leave out the role argument, or pass current_user")
    );
    Ok(())
}

#[tokio::test]
async fn upstream_notices_lose_their_row_fields_for_policy_bound_sessions() -> anyhow::Result<()> {
    let (db, pgward) = setup("notice_scrub").await?;
    let alice = Session::open(&pgward, &db, "alice").await?;
    let admin = Session::open(&pgward, &db, "admin").await?;
    for extended in [false, true] {
        let sql = "SELECT public.notice_with_detail()";
        if extended {
            alice.client.query(sql, &[]).await?;
            admin.client.query(sql, &[]).await?;
        } else {
            alice.client.simple_query(sql).await?;
            admin.client.simple_query(sql).await?;
        }
        let (a, b) = (alice.take_notices(), admin.take_notices());
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].detail(), Some("secret-notice-detail"));
        assert_scrubbed(
            sql,
            &a[0],
            &b[0],
            &[Field::Detail, Field::Where, Field::Source],
        );
        assert_eq!(a[0].code().code(), "00000");
        assert_eq!(a[0].message(), "noticed on purpose");
        assert_eq!(a[0].hint(), Some("notice hint"));
    }
    // A WARNING-level notice from PostgreSQL itself: COMMIT without a
    // transaction (no detail to drop, but the source fields go).
    alice.client.simple_query("COMMIT").await?;
    admin.client.simple_query("COMMIT").await?;
    let (a, b) = (alice.take_notices(), admin.take_notices());
    assert_eq!((a.len(), b.len()), (1, 1), "{a:?} {b:?}");
    assert_scrubbed("COMMIT", &a[0], &b[0], &[Field::Source]);
    assert_eq!(a[0].code().code(), "25P01");
    Ok(())
}
