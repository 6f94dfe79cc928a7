//! What a policy-bound client sees of the writes pgward changed: the
//! statement's own command tag and row count, no rows of pgward's checks,
//! PostgreSQL's column names and types for its own RETURNING, in the simple
//! and the extended protocol, prepared and cached, pipelined with a refusal.
//! Each count is compared with what a direct connection reports for the same
//! statement (run there in a transaction that is rolled back).

use tokio_postgres::types::Type;

use crate::harness::{Pgward, PgwardOptions, SERVICE_ROLE, TestDb};
use crate::protocol::{Msg, Raw, message};

/// `wanda` may write the rows she owns; `rita` owns rows too.
const POLICIES: &str = "\
CREATE ROLE writer;
CREATE USER wanda PASSWORD 'wanda' IN ROLE writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO writer;
CREATE POLICY own_items ON items FOR ALL TO writer USING (owner = @{login_id});
";

async fn start(label: &str) -> anyhow::Result<(TestDb, Pgward)> {
    let db = TestDb::new(label).await?;
    let su = db.superuser().await?;
    su.batch_execute(&format!(
        "CREATE TABLE items (id int PRIMARY KEY, owner text NOT NULL, qty int, note text);
         INSERT INTO items VALUES (1, 'wanda', 1, 'a'), (2, 'wanda', 2, 'b'),
                                  (3, 'rita', 3, 'c');
         GRANT SELECT, INSERT, UPDATE, DELETE ON items TO {SERVICE_ROLE};"
    ))
    .await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(POLICIES))
        .await?;
    Ok((db, pgward))
}

/// The SQL pgward forwards for wanda's `sql` (`pgward explain` with the
/// running proxy's configuration).
fn forwarded(pgward: &Pgward, sql: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgward"))
        .args(["explain", "--config"])
        .arg(pgward.dir().join("pgward.toml"))
        .args(["--user", "wanda", sql])
        .env("PGWARD_LOG", "warn")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        stdout.contains("decision: allowed"),
        "{sql}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// The premise of a test: pgward reshapes `sql` — a Silent write carries
/// pgward's own RETURNING of its checks, a Tagged one is wrapped in a
/// SELECT.
fn assert_reshaped(pgward: &Pgward, sql: &str, tagged: bool) -> anyhow::Result<()> {
    let text = forwarded(pgward, sql)?;
    assert!(text.contains("pgward.\"check\"("), "{sql}: {text}");
    assert_eq!(text.contains("WITH \"pgward_w\""), tagged, "{sql}: {text}");
    Ok(())
}

/// The row count a direct connection reports for `sql`, rolled back.
async fn direct_count(db: &TestDb, sql: &str) -> anyhow::Result<u64> {
    let mut direct = db.service().await?;
    let tx = direct.transaction().await?;
    let n = tx.execute(sql, &[]).await?;
    tx.rollback().await?;
    Ok(n)
}

async fn rows_of(db: &TestDb, owner: &str) -> anyhow::Result<Vec<(i32, i32)>> {
    let direct = db.service().await?;
    Ok(direct
        .query(
            "SELECT id, qty FROM items WHERE owner = $1 ORDER BY id",
            &[&owner],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// psql's output (aligned, with the command tags it prints).
async fn psql(conn: &str, sql: &str) -> anyhow::Result<(String, String)> {
    let out = tokio::process::Command::new("psql")
        .arg(conn)
        .args(["-X", "-v", "ON_ERROR_STOP=0", "-c", sql])
        .output()
        .await?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn in_a_multi_statement_query_only_the_write_is_reshaped() -> anyhow::Result<()> {
    let (db, pgward) = start("shapes_simple").await?;
    assert_reshaped(
        &pgward,
        "INSERT INTO items VALUES (10, 'wanda', 5, 'n')",
        false,
    )?;
    let c = pgward.connect_as("wanda", "wanda").await?;
    let msgs = c
        .simple_query(
            "SELECT 'before'; INSERT INTO items VALUES (10, 'wanda', 5, 'n'); SELECT 'after'",
        )
        .await?;
    let mut seen = Vec::new();
    for m in &msgs {
        match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                seen.push(format!("row {}", r.get(0).unwrap_or("NULL")))
            }
            tokio_postgres::SimpleQueryMessage::CommandComplete(n) => {
                seen.push(format!("complete {n}"))
            }
            _ => {}
        }
    }
    assert_eq!(
        seen,
        [
            "row before",
            "complete 1",
            "complete 1",
            "row after",
            "complete 1"
        ],
        "no row of pgward's check between the SELECTs"
    );
    assert_eq!(rows_of(&db, "wanda").await?, [(1, 1), (2, 2), (10, 5)]);

    // psql prints the write's own tag and no result table for it.
    let conn = pgward.conn_string("wanda", "wanda", db.name());
    let (out, err) = psql(&conn, "INSERT INTO items VALUES (11, 'wanda', 6, 'p')").await?;
    assert_eq!(out.trim(), "INSERT 0 1", "stderr: {err}");
    let (out, err) = psql(
        &conn,
        "UPDATE items SET qty = qty + 1 WHERE owner = 'wanda'",
    )
    .await?;
    assert_eq!(out.trim(), "UPDATE 4", "stderr: {err}");
    Ok(())
}

#[tokio::test]
async fn extended_protocol_counts_match_a_direct_connection() -> anyhow::Result<()> {
    let (db, pgward) = start("shapes_extended").await?;
    let c = pgward.connect_as("wanda", "wanda").await?;
    let statements = [
        "INSERT INTO items VALUES (20, 'wanda', 1, 'x')",
        "INSERT INTO items SELECT g, 'wanda', g, 'g' FROM generate_series(30, 32) g",
        "UPDATE items SET qty = qty + 10 WHERE owner = 'wanda'",
        "UPDATE items SET note = 'z' WHERE owner = 'wanda' AND id > 30",
        "DELETE FROM items WHERE owner = 'wanda' AND id >= 31",
    ];
    for sql in statements {
        if !sql.starts_with("DELETE") {
            assert_reshaped(&pgward, sql, false)?;
        }
        let want = direct_count(&db, sql).await?;
        // Twice: the second comes from the rewrite cache.
        for round in 0..2 {
            let stmt = c.prepare(sql).await?;
            assert!(stmt.columns().is_empty(), "{sql}: described as NoData");
            let got = c.execute(&stmt, &[]).await?;
            assert_eq!(got, want, "{sql} (round {round})");
            if sql.starts_with("INSERT") {
                // Inserted once only: undo for the second round.
                let direct = db.service().await?;
                direct
                    .execute("DELETE FROM items WHERE id >= 20 AND id < 40", &[])
                    .await?;
                if round == 0 {
                    continue;
                }
            }
        }
    }
    // With parameters.
    let n = c
        .execute(
            "INSERT INTO items VALUES ($1, 'wanda', $2, 'p')",
            &[&40i32, &7i32],
        )
        .await?;
    assert_eq!(n, 1);
    assert!(rows_of(&db, "wanda").await?.contains(&(40, 7)));
    Ok(())
}

#[tokio::test]
async fn returning_rows_have_postgresqls_names_and_types() -> anyhow::Result<()> {
    let (db, pgward) = start("shapes_returning").await?;
    let c = pgward.connect_as("wanda", "wanda").await?;
    let direct = db.service().await?;
    let cases = [
        "UPDATE items SET qty = qty + 1 WHERE id = 1 RETURNING id, qty, note, qty * 2, owner || '!'",
        "INSERT INTO items VALUES (50, 'wanda', 3, 'r') RETURNING *",
        "DELETE FROM items WHERE id = 2 RETURNING id, note AS gone",
    ];
    for sql in cases {
        if !sql.starts_with("DELETE") {
            assert_reshaped(&pgward, sql, true)?;
        }
        let want = direct.prepare(sql).await?;
        let got = c.prepare(sql).await?;
        let columns = |s: &tokio_postgres::Statement| -> Vec<(String, Type)> {
            s.columns()
                .iter()
                .map(|c| (c.name().to_string(), c.type_().clone()))
                .collect()
        };
        assert_eq!(columns(&got), columns(&want), "{sql}");
    }
    let rows = c
        .query(
            "UPDATE items SET qty = qty + 1 WHERE owner = 'wanda' RETURNING id, qty",
            &[],
        )
        .await?;
    let mut got: Vec<(i32, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    got.sort();
    assert_eq!(got, [(1, 2), (2, 3)]);
    // The tag counts the write's rows; execute reads it.
    let n = c
        .execute(
            "UPDATE items SET qty = qty + 1 WHERE owner = 'wanda' RETURNING id",
            &[],
        )
        .await?;
    assert_eq!(n, 2);
    let conn = pgward.conn_string("wanda", "wanda", db.name());
    // psql prints the tag PostgreSQL would: the write's, not `SELECT 1`.
    let (out, err) = psql(
        &conn,
        "UPDATE items SET note = 'u' WHERE id = 2 RETURNING id, note",
    )
    .await?;
    assert!(
        out.contains(" id | note \n----+------\n  2 | u\n"),
        "{out}\n{err}"
    );
    assert!(out.trim_end().ends_with("UPDATE 1"), "{out}\n{err}");
    let (out, err) = psql(
        &conn,
        "INSERT INTO items VALUES (51, 'wanda', 1, 'i') RETURNING qty",
    )
    .await?;
    assert!(out.trim_end().ends_with("INSERT 0 1"), "{out}\n{err}");
    let (out, err) = psql(&conn, "DELETE FROM items WHERE id = 2 RETURNING id").await?;
    assert!(out.trim_end().ends_with("DELETE 1"), "{out}\n{err}");
    assert!(out.contains(" id \n----\n  2\n"), "{out}");
    Ok(())
}

fn cstr(s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    b
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut b = cstr(name);
    b.extend(cstr(sql));
    b.extend(0i16.to_be_bytes());
    message(b'P', &b)
}

fn bind(portal: &str, statement: &str) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(cstr(statement));
    b.extend([0, 0, 0, 0, 0, 0]);
    message(b'B', &b)
}

fn describe(kind: u8, name: &str) -> Vec<u8> {
    let mut b = vec![kind];
    b.extend(cstr(name));
    message(b'D', &b)
}

fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(max_rows.to_be_bytes());
    message(b'E', &b)
}

fn sync() -> Vec<u8> {
    message(b'S', b"")
}

fn tags(msgs: &[Msg]) -> String {
    msgs.iter().map(|m| m.tag as char).collect()
}

fn command_tag(m: &Msg) -> String {
    String::from_utf8_lossy(m.body.strip_suffix(b"\0").unwrap_or(&m.body)).into_owned()
}

async fn raw(pgward: &Pgward, db: &TestDb) -> anyhow::Result<Raw> {
    let mut raw = Raw::connect(pgward.port()).await?;
    raw.login("wanda", "wanda", db.name()).await?;
    Ok(raw)
}

#[tokio::test]
async fn a_silent_portal_executed_with_a_row_limit_completes() -> anyhow::Result<()> {
    let (db, pgward) = start("shapes_max_rows").await?;
    let sql = "INSERT INTO items SELECT g, 'wanda', g, 'g' FROM generate_series(60, 64) g";
    assert_reshaped(&pgward, sql, false)?;
    let mut raw = raw(&pgward, &db).await?;
    let mut pipeline = parse("", sql);
    pipeline.extend(bind("", ""));
    pipeline.extend(describe(b'P', ""));
    pipeline.extend(execute("", 2));
    pipeline.extend(sync());
    raw.send(&pipeline).await?;
    let msgs = raw.until_ready().await?;
    // Not PortalSuspended after two of pgward's check rows: the client's
    // INSERT has no rows, and completes.
    assert_eq!(tags(&msgs), "12nCZ", "{msgs:?}");
    assert_eq!(command_tag(&msgs[3]), "INSERT 0 5");
    assert_eq!(rows_of(&db, "wanda").await?.len(), 7);
    Ok(())
}

#[tokio::test]
async fn a_refused_write_in_a_pipeline_keeps_its_place() -> anyhow::Result<()> {
    let (db, pgward) = start("shapes_pipeline").await?;
    assert_reshaped(
        &pgward,
        "UPDATE items SET qty = 100 WHERE owner = 'wanda'",
        false,
    )?;
    let mut raw = raw(&pgward, &db).await?;
    // A write, a write of a row wanda may not make (refused by pgward or
    // by its check inside PostgreSQL), a write after it (skipped).
    let mut pipeline = parse("w", "UPDATE items SET qty = 100 WHERE owner = 'wanda'");
    pipeline.extend(bind("", "w"));
    pipeline.extend(describe(b'S', "w"));
    pipeline.extend(execute("", 0));
    pipeline.extend(parse("", "INSERT INTO items VALUES (70, 'rita', 1, 'x')"));
    pipeline.extend(bind("", ""));
    pipeline.extend(execute("", 0));
    pipeline.extend(parse("", "DELETE FROM items WHERE id = 1"));
    pipeline.extend(bind("", ""));
    pipeline.extend(execute("", 0));
    pipeline.extend(sync());
    raw.send(&pipeline).await?;
    let msgs = raw.until_ready().await?;
    let t = tags(&msgs);
    // PostgreSQL's check raises after Parse and Bind; a refusal by pgward
    // comes in place of the Parse.
    assert!(t == "12tnC12EZ" || t == "12tnCEZ", "{t}: {msgs:?}");
    assert_eq!(command_tag(&msgs[4]), "UPDATE 2");
    let error = msgs.iter().find_map(Msg::error).expect("an error");
    assert_eq!(error.code(), "42501", "{error:?}");
    // Implicit transaction of the pipeline: nothing of it stays.
    assert_eq!(rows_of(&db, "wanda").await?, [(1, 1), (2, 2)]);
    assert_eq!(rows_of(&db, "rita").await?, [(3, 3)]);

    // The prepared write is still shaped after the failed cycle.
    let mut again = bind("", "w");
    again.extend(execute("", 1));
    again.extend(sync());
    raw.send(&again).await?;
    let msgs = raw.until_ready().await?;
    assert_eq!(tags(&msgs), "2CZ", "{msgs:?}");
    assert_eq!(command_tag(&msgs[1]), "UPDATE 2");
    assert_eq!(rows_of(&db, "wanda").await?, [(1, 100), (2, 100)]);
    Ok(())
}
