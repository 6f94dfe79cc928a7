//! tokio-postgres through pgward: prepared statements reused many times,
//! binary parameters and results of the common types (compared byte for byte
//! with the same query on a direct connection), pipelined errors, transaction
//! states, statements pgward cannot parse, and the empty query.
//!
//! Types the crate cannot decode without optional features (numeric, uuid,
//! json, jsonb) travel as raw binary values: `Binary` reads any result as its
//! wire bytes and `Typed` sends bytes built here for a declared type.

use std::error::Error as StdError;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use sha2::{Digest, Sha256};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Row, SimpleQueryMessage};

use crate::harness::{PgwardOptions, TestDb};

type BoxError = Box<dyn StdError + Sync + Send>;

/// A result value in PostgreSQL's binary format, whatever its type.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binary(Vec<u8>);

impl<'a> FromSql<'a> for Binary {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Binary(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A parameter sent as the given binary bytes; the statement must declare
/// (or infer) exactly `ty` for it.
#[derive(Debug)]
struct Typed {
    ty: Type,
    bytes: Vec<u8>,
}

impl ToSql for Typed {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != self.ty {
            return Err(format!("parameter is {ty}, value is {}", self.ty).into());
        }
        out.extend_from_slice(&self.bytes);
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

fn sqlstate(e: &tokio_postgres::Error) -> Option<&str> {
    e.code().map(|c| c.code())
}

/// Asserts that `result` failed with `code`.
fn assert_sqlstate<T: std::fmt::Debug>(result: Result<T, tokio_postgres::Error>, code: &str) {
    match result {
        Ok(v) => panic!("expected SQLSTATE {code}, got success: {v:?}"),
        Err(e) => assert_eq!(sqlstate(&e), Some(code), "unexpected error: {e:?}"),
    }
}

/// Every column of a row in binary form, NULL as None.
fn raw_row(row: &Row) -> Vec<Option<Vec<u8>>> {
    (0..row.len())
        .map(|i| row.get::<_, Option<Binary>>(i).map(|b| b.0))
        .collect()
}

/// Runs `sql` through pgward and directly; the rows, their column names and
/// types and every value's bytes must be the same.
async fn same_both_ways(
    through: &Client,
    direct: &Client,
    sql: &str,
    params: &Params<'_>,
) -> anyhow::Result<Vec<Row>> {
    let ours = through
        .query(sql, params)
        .await
        .map_err(|e| anyhow::anyhow!("through pgward: {sql}: {e:?}"))?;
    let theirs = direct.query(sql, params).await?;
    assert_eq!(ours.len(), theirs.len(), "row count of {sql}");
    for (a, b) in ours.iter().zip(&theirs) {
        let columns = |r: &Row| {
            r.columns()
                .iter()
                .map(|c| (c.name().to_string(), c.type_().clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(columns(a), columns(b), "columns of {sql}");
        assert_eq!(raw_row(a), raw_row(b), "values of {sql}");
    }
    Ok(ours)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (xorshift), so a failure reproduces.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Test users: alice's role bypasses policies (statements forwarded as
/// sent), carol is bound by policies (statements parsed, secured and printed
/// by pgward). Table-free queries run as both.
const USERS: [&str; 2] = ["alice", "carol"];

async fn setup(label: &str) -> anyhow::Result<(TestDb, crate::harness::Pgward, Client)> {
    let db = TestDb::new(label).await?;
    let policies = format!("{}{BOUND_POLICIES}", crate::harness::DEFAULT_POLICIES);
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&policies))
        .await?;
    let direct = db.service().await?;
    Ok((db, pgward, direct))
}

#[tokio::test]
async fn prepared_statements_are_reused_many_times() -> anyhow::Result<()> {
    let (_db, pgward, direct) = setup("prepared_reused").await?;
    let client = pgward.connect_as("alice", "alice").await?;
    direct
        .batch_execute("CREATE TABLE items (id int4 PRIMARY KEY, name text NOT NULL, qty int8)")
        .await?;

    let started = Instant::now();
    let insert = client
        .prepare("INSERT INTO items (id, name, qty) VALUES ($1, $2, $3)")
        .await?;
    for i in 1..=500_i32 {
        let qty = (i % 7 != 0).then_some(i64::from(i) * 1_000_000_007);
        let n = client
            .execute(&insert, &[&i, &format!("item-{i}-Zürich"), &qty])
            .await?;
        assert_eq!(n, 1, "INSERT of row {i}");
    }
    let select = client
        .prepare("SELECT name, qty, $2::int4 * id FROM items WHERE id = $1")
        .await?;
    for i in (1..=500_i32).rev() {
        let row = client.query_one(&select, &[&i, &-3_i32]).await?;
        assert_eq!(row.get::<_, String>(0), format!("item-{i}-Zürich"));
        let qty: Option<i64> = row.get(1);
        assert_eq!(qty, (i % 7 != 0).then_some(i64::from(i) * 1_000_000_007));
        assert_eq!(row.get::<_, i32>(2), -3 * i);
    }
    // A statement without a table, re-executed with both NULL and values.
    let echo = client
        .prepare("SELECT $1::text IS NULL, coalesce($1::text, 'none')")
        .await?;
    for i in 0..100 {
        let value = (i % 2 == 0).then(|| format!("v{i}"));
        let row = client.query_one(&echo, &[&value]).await?;
        assert_eq!(row.get::<_, bool>(0), value.is_none());
        assert_eq!(
            row.get::<_, String>(1),
            value.unwrap_or_else(|| "none".into())
        );
    }
    eprintln!("1,100 prepared executions took {:?}", started.elapsed());

    let row = direct
        .query_one(
            "SELECT count(*), count(qty), sum(qty)::text FROM items",
            &[],
        )
        .await?;
    let expected_sum: i64 = (1..=500_i64)
        .filter(|i| i % 7 != 0)
        .map(|i| i * 1_000_000_007)
        .sum();
    assert_eq!(row.get::<_, i64>(0), 500);
    assert_eq!(row.get::<_, i64>(1), 500 - 500 / 7);
    assert_eq!(row.get::<_, String>(2), expected_sum.to_string());
    Ok(())
}

#[tokio::test]
async fn integers_text_and_bool_round_trip_in_binary() -> anyhow::Result<()> {
    let (_db, pgward, direct) = setup("binary_scalars").await?;
    for user in USERS {
        let client = pgward.connect_as(user, user).await?;

        let sql = "SELECT $1::int2, $2::int4, $3::int8, $2::int4::int8 * 2, $4::bool, NOT $4::bool";
        for (a, b, c, f) in [
            (0_i16, 0_i32, 0_i64, false),
            (-1, -1, -1, true),
            (i16::MIN, i32::MIN, i64::MIN, true),
            (i16::MAX, i32::MAX, i64::MAX, false),
        ] {
            let rows = same_both_ways(&client, &direct, sql, &[&a, &b, &c, &f]).await?;
            let row = &rows[0];
            assert_eq!(row.get::<_, i16>(0), a);
            assert_eq!(row.get::<_, i32>(1), b);
            assert_eq!(row.get::<_, i64>(2), c);
            assert_eq!(row.get::<_, i64>(3), i64::from(b) * 2);
            assert_eq!(row.get::<_, bool>(4), f);
            assert_eq!(row.get::<_, bool>(5), !f);
        }

        let sql = "SELECT $1::text, length($1::text), octet_length($1::text)";
        for text in [
            String::new(),
            "plain".to_string(),
            "it's \"quoted\" \\ and ; -- not a comment".to_string(),
            "Zürich 東京 🦀".to_string(),
            "tab\tnewline\ncr\r".to_string(),
            "x".repeat(200_000),
        ] {
            let rows = same_both_ways(&client, &direct, sql, &[&text]).await?;
            let row = &rows[0];
            assert_eq!(row.get::<_, String>(0), text);
            assert_eq!(row.get::<_, i32>(1) as usize, text.chars().count());
            assert_eq!(row.get::<_, i32>(2) as usize, text.len());
        }
    }
    Ok(())
}

#[tokio::test]
async fn bytea_round_trips_every_byte_and_a_mebibyte() -> anyhow::Result<()> {
    let (_db, pgward, direct) = setup("binary_bytea").await?;
    for user in USERS {
        let client = pgward.connect_as(user, user).await?;

        let sql = "SELECT $1::bytea, length($1::bytea), encode(sha256($1::bytea), 'hex')";
        let every_byte: Vec<u8> = (0..=255).collect();
        let mebibyte = noise(1024 * 1024, 0x9e37_79b9_7f4a_7c15);
        for value in [Vec::new(), every_byte.clone(), mebibyte] {
            let rows = same_both_ways(&client, &direct, sql, &[&value]).await?;
            let row = &rows[0];
            assert!(row.get::<_, Vec<u8>>(0) == value, "bytea echo differs");
            assert_eq!(row.get::<_, i32>(1) as usize, value.len());
            assert_eq!(row.get::<_, String>(2), hex(&Sha256::digest(&value)));
        }

        // Built by the server: every byte value in order.
        let rows = same_both_ways(
            &client,
            &direct,
            "SELECT decode(string_agg(lpad(to_hex(b), 2, '0'), '' ORDER BY b), 'hex') \
             FROM generate_series(0, 255) b",
            &[],
        )
        .await?;
        assert_eq!(rows[0].get::<_, Vec<u8>>(0), every_byte);
    }
    Ok(())
}

#[tokio::test]
async fn timestamptz_numeric_uuid_and_json_round_trip_in_binary() -> anyhow::Result<()> {
    let (_db, pgward, direct) = setup("binary_rich").await?;
    for user in USERS {
        let client = pgward.connect_as(user, user).await?;

        // timestamptz, on both sides of PostgreSQL's 2000 epoch and of 1970.
        let sql = "SELECT $1::timestamptz, \
                   to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')";
        for (time, text) in [
            (
                SystemTime::UNIX_EPOCH + Duration::from_micros(1_709_209_800_123_456),
                "2024-02-29 12:30:00.123456",
            ),
            (SystemTime::UNIX_EPOCH, "1970-01-01 00:00:00.000000"),
            (
                SystemTime::UNIX_EPOCH - Duration::from_secs(86_400 * 365),
                "1969-01-01 00:00:00.000000",
            ),
        ] {
            let rows = same_both_ways(&client, &direct, sql, &[&time]).await?;
            assert_eq!(rows[0].get::<_, SystemTime>(0), time);
            assert_eq!(rows[0].get::<_, String>(1), text);
        }
        same_both_ways(
            &client,
            &direct,
            "SELECT 'infinity'::timestamptz, '-infinity'::timestamptz, now() - now()",
            &[],
        )
        .await?;

        // numeric: the binary form comes from the direct connection, goes
        // through pgward as a parameter and must come back unchanged.
        for literal in [
            "0",
            "-0.5",
            "3.14159",
            "123456789012345678901234567890.123456789",
            "0.000000000000000000001",
            "-99999999999999999999.99",
            "NaN",
        ] {
            let row = direct
                .query_one(
                    "SELECT $1::text::numeric, $1::text::numeric::text",
                    &[&literal],
                )
                .await?;
            let bytes = row.get::<_, Binary>(0).0;
            let canonical: String = row.get(1);
            let param = Typed {
                ty: Type::NUMERIC,
                bytes: bytes.clone(),
            };
            let rows = same_both_ways(
                &client,
                &direct,
                "SELECT $1::numeric, $1::numeric::text, $1::numeric * 2",
                &[&param],
            )
            .await?;
            assert_eq!(rows[0].get::<_, Binary>(0).0, bytes, "numeric {literal}");
            assert_eq!(rows[0].get::<_, String>(1), canonical);
        }

        // uuid: 16 bytes in, the same 16 bytes and the canonical text out.
        let uuid: Vec<u8> = (0..16).map(|i| 0x10 * (i % 16) + i).collect();
        let text = {
            let h = hex(&uuid);
            format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        };
        let param = Typed {
            ty: Type::UUID,
            bytes: uuid.clone(),
        };
        let rows = same_both_ways(
            &client,
            &direct,
            "SELECT $1::uuid, $1::uuid::text, $2::text::uuid",
            &[&param, &text],
        )
        .await?;
        assert_eq!(rows[0].get::<_, Binary>(0).0, uuid);
        assert_eq!(rows[0].get::<_, String>(1), text);
        assert_eq!(rows[0].get::<_, Binary>(2).0, uuid);

        // json is sent and returned as text; jsonb as a version byte (1) and text.
        let doc = r#"{"k": [1, "zwei", null, true], "ü": {"n": 1.5}, "q": "a\"b"}"#;
        let json = Typed {
            ty: Type::JSON,
            bytes: doc.as_bytes().to_vec(),
        };
        let mut jsonb_bytes = vec![1];
        jsonb_bytes.extend_from_slice(doc.as_bytes());
        let jsonb = Typed {
            ty: Type::JSONB,
            bytes: jsonb_bytes,
        };
        let rows = same_both_ways(
            &client,
            &direct,
            "SELECT $1::json, $2::jsonb, $2::jsonb -> 'k' ->> 1, $1::json -> 'ü' ->> 'n', \
             jsonb_typeof($2::jsonb -> 'k' -> 2)",
            &[&json, &jsonb],
        )
        .await?;
        let row = &rows[0];
        assert_eq!(row.get::<_, Binary>(0).0, doc.as_bytes());
        let jsonb_out = row.get::<_, Binary>(1).0;
        assert_eq!(jsonb_out[0], 1, "jsonb binary format version");
        let parsed: serde_json::Value = serde_json::from_slice(&jsonb_out[1..])?;
        assert_eq!(parsed, serde_json::from_str::<serde_json::Value>(doc)?);
        assert_eq!(row.get::<_, String>(2), "zwei");
        assert_eq!(row.get::<_, String>(3), "1.5");
        assert_eq!(row.get::<_, String>(4), "null");
    }
    Ok(())
}

#[tokio::test]
async fn arrays_and_nulls_round_trip_in_binary() -> anyhow::Result<()> {
    let (_db, pgward, direct) = setup("binary_arrays").await?;
    for user in USERS {
        let client = pgward.connect_as(user, user).await?;

        let ints = vec![Some(1_i32), None, Some(-3), Some(i32::MAX)];
        let texts = vec![
            Some("a".to_string()),
            None,
            Some("Zürich".to_string()),
            Some(String::new()),
            Some("NULL".to_string()),
        ];
        let empty: Vec<i32> = Vec::new();
        let rows = same_both_ways(
            &client,
            &direct,
            "SELECT $1::int4[], $2::text[], $3::int4[], array_length($1::int4[], 1), \
             array_position($2::text[], NULL), $2::text[]::text",
            &[&ints, &texts, &empty],
        )
        .await?;
        let row = &rows[0];
        assert_eq!(row.get::<_, Vec<Option<i32>>>(0), ints);
        assert_eq!(row.get::<_, Vec<Option<String>>>(1), texts);
        assert!(row.get::<_, Vec<i32>>(2).is_empty());
        assert_eq!(row.get::<_, i32>(3), 4);
        assert_eq!(row.get::<_, i32>(4), 2);
        assert_eq!(row.get::<_, String>(5), r#"{a,NULL,Zürich,"","NULL"}"#);

        same_both_ways(
            &client,
            &direct,
            "SELECT ARRAY[[1, 2], [3, NULL]]::int4[], ARRAY['{}', NULL]::jsonb[], \
             '{}'::text[], ARRAY[1.5, NULL]::numeric[]",
            &[],
        )
        .await?;

        // NULL parameters of every kind, and NULL results.
        let rows = same_both_ways(
            &client,
            &direct,
            "SELECT $1::int4, $2::text, $3::bytea, $4::bool, $5::int8, $6::int4[], \
             $1::int4 IS NULL, NULL::jsonb, NULL::uuid, NULL::numeric, NULL::timestamptz",
            &[
                &None::<i32>,
                &None::<String>,
                &None::<Vec<u8>>,
                &None::<bool>,
                &None::<i64>,
                &None::<Vec<i32>>,
            ],
        )
        .await?;
        let raw = raw_row(&rows[0]);
        assert_eq!(raw.len(), 11);
        for (i, value) in raw.iter().enumerate() {
            if i == 6 {
                assert_eq!(value.as_deref(), Some(&[1_u8][..]), "IS NULL is true");
            } else {
                assert!(value.is_none(), "column {i} should be NULL");
            }
        }

        // The same through the unnamed statement of query_typed (one round trip).
        let rows = client
            .query_typed(
                "SELECT $1 || '!', array_length($2, 1), $3 IS NULL",
                &[
                    (&"typed", Type::TEXT),
                    (&ints, Type::INT4_ARRAY),
                    (&None::<i64>, Type::INT8),
                ],
            )
            .await?;
        assert_eq!(rows[0].get::<_, String>(0), "typed!");
        assert_eq!(rows[0].get::<_, i32>(1), 4);
        assert!(rows[0].get::<_, bool>(2));
    }
    Ok(())
}

/// The values of every row of a simple query, as text.
fn simple_rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn command_tags(messages: &[SimpleQueryMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn simple_protocol_text_results_match_a_direct_connection() -> anyhow::Result<()> {
    let (_db, pgward, direct) = setup("simple_text").await?;
    for user in USERS {
        let client = pgward.connect_as(user, user).await?;

        let sql = "SELECT 1::int2, -2::int4, 9223372036854775807::int8, 1.50::numeric, \
                   'Zürich 東京'::text, '\\x00ff'::bytea, true, \
                   '2024-02-29 12:30:00+00'::timestamptz AT TIME ZONE 'UTC', \
                   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '{\"a\": [1, null]}'::json, \
                   '{\"a\": [1, null]}'::jsonb, ARRAY[1, NULL, 3], ARRAY['a', NULL, 'b c'], NULL";
        let ours = client.simple_query(sql).await?;
        let theirs = direct.simple_query(sql).await?;
        let rows = simple_rows(&ours);
        assert_eq!(rows, simple_rows(&theirs));
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            rows,
            vec![vec![
                s("1"),
                s("-2"),
                s("9223372036854775807"),
                s("1.50"),
                s("Zürich 東京"),
                s("\\x00ff"),
                s("t"),
                s("2024-02-29 12:30:00"),
                s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                s("{\"a\": [1, null]}"),
                s("{\"a\": [1, null]}"),
                s("{1,NULL,3}"),
                s("{a,NULL,\"b c\"}"),
                None,
            ]]
        );

        // Several statements in one Query: every result and command tag arrives.
        let sql = "SELECT g FROM generate_series(1, 3) g; SELECT 'x' AS only; \
                   SELECT 1 WHERE false; SELECT 'a', 'b' UNION ALL SELECT 'c', NULL";
        let ours = client.simple_query(sql).await?;
        let theirs = direct.simple_query(sql).await?;
        assert_eq!(simple_rows(&ours), simple_rows(&theirs));
        assert_eq!(command_tags(&ours), vec![3, 1, 0, 2], "{user}");
        assert_eq!(command_tags(&ours), command_tags(&theirs));
    }
    Ok(())
}

#[tokio::test]
async fn an_error_inside_a_pipeline_surfaces_and_the_rest_runs() -> anyhow::Result<()> {
    let (_db, pgward, _direct) = setup("pipeline_error").await?;
    for user in USERS {
        let client = pgward.connect_as(user, user).await?;

        // Prepared once, then three executions in flight at once.
        let divide = client.prepare("SELECT $1::int4 / $2::int4").await?;
        let (a, b, c) = tokio::join!(
            client.query_one(&divide, &[&6_i32, &3_i32]),
            client.query_one(&divide, &[&1_i32, &0_i32]),
            client.query_one(&divide, &[&9_i32, &3_i32]),
        );
        assert_eq!(a?.get::<_, i32>(0), 2);
        assert_sqlstate(b, "22012");
        assert_eq!(c?.get::<_, i32>(0), 3);

        // Unprepared: each query's Parse, Describe, Bind and Execute interleave.
        let (a, b, c) = tokio::join!(
            client.query_one("SELECT 'first'::text", &[]),
            client.query_one("SELECT 1 / $1::int4", &[&0_i32]),
            client.query_one("SELECT 'third'::text", &[]),
        );
        assert_eq!(a?.get::<_, String>(0), "first");
        assert_sqlstate(b, "22012");
        assert_eq!(c?.get::<_, String>(0), "third");

        // Forty in flight, every third failing.
        let results = futures_util::future::join_all((0..40_i32).map(|i| {
            let divide = &divide;
            let client = &client;
            async move {
                let divisor = if i % 3 == 1 { 0 } else { i + 1 };
                client.query_one(divide, &[&(i * 100), &divisor]).await
            }
        }))
        .await;
        for (i, result) in (0_i32..).zip(results) {
            if i % 3 == 1 {
                assert_sqlstate(result, "22012");
            } else {
                assert_eq!(result?.get::<_, i32>(0), i * 100 / (i + 1), "query {i}");
            }
        }

        let row = client.query_one("SELECT 'still here'::text", &[]).await?;
        assert_eq!(row.get::<_, String>(0), "still here");
    }
    Ok(())
}

#[tokio::test]
async fn transactions_commit_roll_back_and_stay_aborted_after_an_error() -> anyhow::Result<()> {
    let (_db, pgward, direct) = setup("transactions").await?;
    let mut client = pgward.connect_as("alice", "alice").await?;
    direct
        .batch_execute("CREATE TABLE ledger (id int4 PRIMARY KEY, note text)")
        .await?;

    client
        .batch_execute("BEGIN; INSERT INTO ledger VALUES (1, 'committed')")
        .await?;
    assert_eq!(count(&direct).await?, 0, "not visible before COMMIT");
    client.batch_execute("COMMIT").await?;
    assert_eq!(count(&direct).await?, 1);

    client.batch_execute("BEGIN").await?;
    client
        .execute(
            "INSERT INTO ledger VALUES ($1, $2)",
            &[&2_i32, &"rolled back"],
        )
        .await?;
    client.batch_execute("ROLLBACK").await?;
    assert_eq!(count(&direct).await?, 1);

    // The crate's transaction API: commit, rollback on drop, savepoints.
    let mut tx = client.transaction().await?;
    tx.execute("INSERT INTO ledger VALUES (3, 'tx')", &[])
        .await?;
    {
        let sp = tx.savepoint("sp1").await?;
        sp.execute("INSERT INTO ledger VALUES (4, 'savepoint')", &[])
            .await?;
        assert_sqlstate(sp.execute("SELECT 1 / 0", &[]).await, "22012");
        assert_sqlstate(sp.execute("SELECT 1", &[]).await, "25P02");
        sp.rollback().await?;
    }
    tx.execute("INSERT INTO ledger VALUES (5, 'after savepoint')", &[])
        .await?;
    tx.commit().await?;
    assert_eq!(list(&direct).await?, vec![1, 3, 5]);
    {
        let tx = client.transaction().await?;
        tx.execute("INSERT INTO ledger VALUES (6, 'dropped')", &[])
            .await?;
        drop(tx);
    }
    // Within the same session: the dropped transaction's row is gone, so
    // the ROLLBACK sent on drop went through.
    let six = client
        .query("SELECT id FROM ledger WHERE id = 6", &[])
        .await?;
    assert!(
        six.is_empty(),
        "the dropped transaction was not rolled back"
    );
    assert_eq!(list(&direct).await?, vec![1, 3, 5]);

    // An error aborts the transaction until ROLLBACK, for simple and
    // extended queries alike.
    client
        .batch_execute("BEGIN; INSERT INTO ledger VALUES (7, 'lost')")
        .await?;
    assert_sqlstate(client.simple_query("SELECT 1 / 0").await, "22012");
    assert_sqlstate(client.simple_query("SELECT 1").await, "25P02");
    assert_sqlstate(client.query("SELECT $1::int4", &[&1_i32]).await, "25P02");
    assert_sqlstate(
        client
            .execute("INSERT INTO ledger VALUES (8, 'lost too')", &[])
            .await,
        "25P02",
    );
    // COMMIT of an aborted transaction rolls it back.
    let tags = client.simple_query("COMMIT").await?;
    assert_eq!(command_tags(&tags), vec![0]);
    assert_eq!(list(&direct).await?, vec![1, 3, 5]);
    let row = client.query_one("SELECT 2::int4", &[]).await?;
    assert_eq!(row.get::<_, i32>(0), 2);

    // A unique violation inside an extended-protocol transaction.
    client.batch_execute("BEGIN").await?;
    client
        .execute("INSERT INTO ledger VALUES ($1, 'x')", &[&9_i32])
        .await?;
    assert_sqlstate(
        client
            .execute("INSERT INTO ledger VALUES ($1, 'dup')", &[&1_i32])
            .await,
        "23505",
    );
    assert_sqlstate(
        client.query("SELECT count(*) FROM ledger", &[]).await,
        "25P02",
    );
    client.batch_execute("ROLLBACK").await?;
    assert_eq!(list(&direct).await?, vec![1, 3, 5]);

    // The same transaction states for a user bound by policies, whose
    // transaction control and savepoints pgward passes through.
    let mut bound = pgward.connect_as("carol", "carol").await?;
    bound.batch_execute("BEGIN").await?;
    assert_sqlstate(
        bound.query_one("SELECT 1 / $1::int4", &[&0_i32]).await,
        "22012",
    );
    assert_sqlstate(bound.simple_query("SELECT 1").await, "25P02");
    bound.batch_execute("ROLLBACK").await?;
    let tx = bound.transaction().await?;
    let status = tx.query_one("SELECT 'in tx'::text", &[]).await?;
    assert_eq!(status.get::<_, String>(0), "in tx");
    tx.batch_execute("SAVEPOINT sp").await?;
    assert_sqlstate(tx.simple_query("SELECT 1 / 0").await, "22012");
    assert_sqlstate(tx.query_one("SELECT 1", &[]).await, "25P02");
    tx.batch_execute("ROLLBACK TO SAVEPOINT sp").await?;
    let row = tx.query_one("SELECT $1::int4 + 1", &[&1_i32]).await?;
    assert_eq!(row.get::<_, i32>(0), 2, "the savepoint rollback recovered");
    tx.commit().await?;
    let row = bound.query_one("SELECT 'after'::text", &[]).await?;
    assert_eq!(row.get::<_, String>(0), "after");
    Ok(())
}

async fn count(direct: &Client) -> anyhow::Result<i64> {
    Ok(direct
        .query_one("SELECT count(*) FROM ledger", &[])
        .await?
        .get(0))
}

async fn list(direct: &Client) -> anyhow::Result<Vec<i32>> {
    Ok(direct
        .query("SELECT id FROM ledger ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// A user bound by policies (no BYPASSPOLICY role): its statements go
/// through pgward's parser, so pgward itself refuses what it cannot parse.
const BOUND_POLICIES: &str = "\
CREATE ROLE bound;
CREATE USER carol PASSWORD 'carol' IN ROLE bound;
";

/// Asserts that `result` is pgward's own refusal with 42601, not
/// PostgreSQL's syntax error.
fn assert_refused_by_pgward<T: std::fmt::Debug>(result: Result<T, tokio_postgres::Error>) {
    let e = match result {
        Ok(v) => panic!("expected a refusal, got success: {v:?}"),
        Err(e) => e,
    };
    assert_eq!(sqlstate(&e), Some("42601"), "{e:?}");
    let db = e.as_db_error().expect("a database error");
    assert_eq!(db.severity(), "ERROR");
    let says_pgward = |s: Option<&str>| s.is_some_and(|s| s.contains("pgward"));
    assert!(
        says_pgward(Some(db.message())) || says_pgward(db.hint()),
        "the error does not come from pgward: {db:?}"
    );
}

#[tokio::test]
async fn unparseable_statements_give_42601_and_the_session_continues() -> anyhow::Result<()> {
    let db = TestDb::new("unparseable").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(BOUND_POLICIES))
        .await?;
    let client = pgward.connect_as("carol", "carol").await?;
    let direct = db.service().await?;

    // Simple protocol.
    assert_refused_by_pgward(client.simple_query("SELEC 1").await);
    let rows = client.simple_query("SELECT 'alive'").await?;
    assert_eq!(simple_rows(&rows), vec![vec![Some("alive".to_string())]]);

    // A Query string with one bad statement runs none of it, as in
    // PostgreSQL, where the whole string fails to parse: no transaction
    // was opened by its BEGIN.
    for c in [&client, &direct] {
        assert_sqlstate(c.simple_query("BEGIN; SELEC 2").await, "42601");
        let row = c.query_one("SELECT 3::int4", &[]).await?;
        assert_eq!(row.get::<_, i32>(0), 3);
    }
    assert_refused_by_pgward(client.simple_query("BEGIN; SELEC 2").await);
    assert_refused_by_pgward(client.simple_query("SELECT 1; SELEC 2").await);

    // Extended protocol: Parse of unparseable text.
    assert_refused_by_pgward(client.prepare("SELEC 1").await);
    assert_refused_by_pgward(client.query("SELEC $1", &[&1_i32]).await);
    assert_refused_by_pgward(
        client
            .query_typed("SELEC $1", &[(&1_i32, Type::INT4)])
            .await,
    );
    let row = client.query_one("SELECT $1::int4 + 1", &[&41_i32]).await?;
    assert_eq!(row.get::<_, i32>(0), 42);

    // Inside a transaction block it aborts the transaction, simple ...
    client.batch_execute("BEGIN; SELECT 1").await?;
    assert_refused_by_pgward(client.simple_query("SELEC 1").await);
    assert_sqlstate(client.simple_query("SELECT 1").await, "25P02");
    assert_sqlstate(client.query_one("SELECT 1", &[]).await, "25P02");
    client.batch_execute("ROLLBACK").await?;

    // ... and extended.
    client.batch_execute("BEGIN").await?;
    let row = client.query_one("SELECT $1::text", &[&"in tx"]).await?;
    assert_eq!(row.get::<_, String>(0), "in tx");
    assert_refused_by_pgward(client.prepare("SELEC 1").await);
    assert_sqlstate(
        client.query_one("SELECT $1::int4", &[&1_i32]).await,
        "25P02",
    );
    assert_sqlstate(client.simple_query("SELECT 1").await, "25P02");
    // COMMIT of the aborted transaction ends it, as a rollback.
    client.batch_execute("COMMIT").await?;
    let row = client.query_one("SELECT $1::int4 * 2", &[&21_i32]).await?;
    assert_eq!(row.get::<_, i32>(0), 42);

    // The refusal in the middle of pipelined traffic: only its own request
    // fails, the ones before and after it get their answers.
    let divide = client.prepare("SELECT $1::int4 / $2::int4").await?;
    let (a, b, c, d, e) = tokio::join!(
        client.query_one("SELECT 1::int4", &[]),
        client.prepare("SELEC 2"),
        client.query_one(&divide, &[&4_i32, &2_i32]),
        client.query_one(&divide, &[&4_i32, &0_i32]),
        client.query_one("SELECT 5::int4", &[]),
    );
    assert_eq!(a?.get::<_, i32>(0), 1);
    assert_refused_by_pgward(b);
    assert_eq!(c?.get::<_, i32>(0), 2);
    assert_sqlstate(d, "22012");
    assert_eq!(e?.get::<_, i32>(0), 5);

    // Many refusals and errors in flight at once.
    let results = futures_util::future::join_all((0..30_i32).map(|i| {
        let client = &client;
        async move {
            match i % 3 {
                0 => client
                    .query_one("SELECT $1::int4", &[&i])
                    .await
                    .map(|r| Some(r.get::<_, i32>(0))),
                1 => client.prepare("SELEC 1").await.map(|_| None),
                _ => client.query_one("SELECT 1 / 0", &[]).await.map(|_| None),
            }
        }
    }))
    .await;
    for (i, result) in (0_i32..).zip(results) {
        match i % 3 {
            0 => assert_eq!(result?, Some(i)),
            1 => assert_refused_by_pgward(result),
            _ => assert_sqlstate(result, "22012"),
        }
    }

    let row = client.query_one("SELECT 'still here'::text", &[]).await?;
    assert_eq!(row.get::<_, String>(0), "still here");
    Ok(())
}

#[tokio::test]
async fn empty_queries_return_without_error() -> anyhow::Result<()> {
    let db = TestDb::new("empty_query").await?;
    let policies = format!("{}{BOUND_POLICIES}", crate::harness::DEFAULT_POLICIES);
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&policies))
        .await?;
    let direct = db.service().await?;
    for (user, password) in [("alice", "alice"), ("carol", "carol")] {
        let client = pgward.connect_as(user, password).await?;
        for sql in ["", " ", ";", " ; ;", "-- only a comment"] {
            let ours = client
                .simple_query(sql)
                .await
                .unwrap_or_else(|e| panic!("{user}: simple query {sql:?} failed: {e:?}"));
            let theirs = direct.simple_query(sql).await?;
            assert_eq!(ours.len(), theirs.len(), "{user}: messages for {sql:?}");
            assert!(simple_rows(&ours).is_empty());
            client.batch_execute(sql).await?;
        }
        // An empty Parse, as pools send for validity checks.
        let ours = client.query("", &[]).await?;
        let theirs = direct.query("", &[]).await?;
        assert!(ours.is_empty() && theirs.is_empty());

        let row = client.query_one("SELECT 'after'::text", &[]).await?;
        assert_eq!(row.get::<_, String>(0), "after", "{user}");
    }
    Ok(())
}
