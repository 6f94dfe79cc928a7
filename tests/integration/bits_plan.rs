//! Permission bits at scale and on INSERT (PRODUCT.md §6): on 100,000
//! documents, a user's rows are found through the index on the owner
//! column and the membership table's index (the plan of the SQL pgward
//! forwards, as `pgward explain` prints it, explained through a
//! BYPASSPOLICY session); an INSERT sets the owner and the default
//! permission and joins the default groups in one statement, with the
//! client's command tag.

use std::process::Command;

use crate::harness::{Pgward, PgwardOptions, SERVICE_ROLE, TestDb};

const SCHEMA: &str = "
CREATE TABLE users (login text PRIMARY KEY, id bigint NOT NULL, groups int[] NOT NULL);
INSERT INTO users VALUES ('alice', 1, '{7}'), ('bob', 2, '{}');
CREATE TABLE documents (
  id int PRIMARY KEY, owner_id bigint, permission bigint NOT NULL DEFAULT 0, title text);
CREATE INDEX documents_owner ON documents (owner_id);
CREATE TABLE document_groups (
  document_id int NOT NULL REFERENCES documents, group_id int NOT NULL, permission bigint,
  PRIMARY KEY (document_id, group_id));
CREATE INDEX document_groups_group ON document_groups (group_id, document_id);
-- 100,000 documents, owner g % 1000 + 1 (alice, id 1, owns 100 of them), all
-- with UserCRUD; the last ten also GuestRead.
INSERT INTO documents
  SELECT g, g % 1000 + 1, 12160 | CASE WHEN g > 99990 THEN 2 ELSE 0 END, 'doc ' || g
    FROM generate_series(1, 100000) g;
-- Every document in one of 500 other groups; documents 1..50 also in
-- group 7 (alice's) with GroupRead.
INSERT INTO document_groups SELECT g, 100 + g % 500, 0 FROM generate_series(1, 100000) g;
INSERT INTO document_groups SELECT g, 7, 32768 FROM generate_series(1, 50) g;
";

const POLICIES: &str = "
CREATE ROLE dba WITH BYPASSPOLICY;
CREATE USER admin PASSWORD 'admin' IN ROLE dba;
CREATE USER alice PASSWORD 'alice';
CREATE USER bob PASSWORD 'bob';
CREATE GLOBAL user_id AS SELECT id FROM public.users WHERE login = @{login_id};
CREATE GLOBAL groups AS SELECT unnest(groups) FROM public.users WHERE login = @{login_id};
CREATE PERMISSION BITS ON documents (
  owner = owner_id,
  permission = permission,
  groups = document_groups (document_id, group_id, permission),
  default_permission = 'UserCRUD | GroupRead',
  table_permission = 'UserCRUD | GroupCRUD | GuestPeek',
  table_groups = (7),
  default_groups = (7, 8)
);
";

/// alice's documents: her 100, the 50 of group 7, the 10 with GuestRead
/// (one of which, 100000, is hers).
const ALICES: i64 = 159;

async fn setup(label: &str) -> anyhow::Result<(TestDb, Pgward)> {
    let db = TestDb::new(label).await?;
    let su = db.superuser().await?;
    su.batch_execute(SCHEMA).await?;
    su.batch_execute(&format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {SERVICE_ROLE};
         ANALYZE users, documents, document_groups;"
    ))
    .await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(POLICIES))
        .await?;
    Ok((db, pgward))
}

/// The SQL pgward forwards for `sql` as `user`, from `pgward explain`.
fn forwarded(pgward: &Pgward, user: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_pgward"))
        .args(["explain", "--config"])
        .arg(pgward.dir().join("pgward.toml"))
        .args(["--user", user, sql])
        .env("PGWARD_LOG", "warn")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Some((_, sql)) = stdout.split_once("forwarded SQL:\n") else {
        panic!("no forwarded SQL in:\n{stdout}");
    };
    Ok(sql.trim().to_string())
}

async fn plan(pgward: &Pgward, sql: &str) -> anyhow::Result<String> {
    let admin = pgward.connect_as("admin", "admin").await?;
    let rows = admin
        .simple_query(&format!("EXPLAIN (COSTS OFF) {sql}"))
        .await?;
    let lines: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    Ok(lines.join("\n"))
}

#[tokio::test]
async fn a_users_rows_are_found_through_the_owner_and_membership_indexes() -> anyhow::Result<()> {
    let (_db, pgward) = setup("bits_plan_indexes").await?;
    let alice = pgward.connect_as("alice", "alice").await?;
    let count: i64 = alice
        .query_one("SELECT count(*) FROM documents", &[])
        .await?
        .get(0);
    assert_eq!(count, ALICES);
    let titled: i64 = alice
        .query_one("SELECT count(title) FROM documents", &[])
        .await?
        .get(0);
    assert_eq!(titled, ALICES);

    let sql = forwarded(&pgward, "alice", "SELECT id, title FROM documents")?;
    assert!(
        sql.contains(" IN (SELECT") && sql.contains("UNION ALL"),
        "not the key IN (arm UNION ALL arm) shape:\n{sql}"
    );
    let plan = plan(&pgward, &sql).await?;
    assert!(
        plan.contains("documents_owner"),
        "the owner arm does not use documents_owner:\n{plan}\n\n{sql}"
    );
    assert!(
        plan.contains("document_groups_group"),
        "the membership arm does not use document_groups_group:\n{plan}\n\n{sql}"
    );
    // bob (no groups, 100 documents) reads his own and the guest-readable ones.
    let bob = pgward.connect_as("bob", "bob").await?;
    let count: i64 = bob
        .query_one("SELECT count(*) FROM documents", &[])
        .await?
        .get(0);
    assert_eq!(count, 110);
    Ok(())
}

#[tokio::test]
async fn insert_sets_owner_permission_and_default_groups_atomically() -> anyhow::Result<()> {
    let (db, pgward) = setup("bits_plan_insert").await?;
    let su = db.superuser().await?;
    let alice = pgward.connect_as("alice", "alice").await?;
    let n = alice
        .execute(
            "INSERT INTO documents (id, title) VALUES (200001, 'a'), (200002, 'b')",
            &[],
        )
        .await?;
    assert_eq!(n, 2);
    let rows = su
        .query(
            "SELECT d.id, d.owner_id, d.permission, array_agg(m.group_id ORDER BY m.group_id),
                    array_agg(m.permission ORDER BY m.group_id)
               FROM documents d JOIN document_groups m ON m.document_id = d.id
              WHERE d.id > 200000 GROUP BY d.id ORDER BY d.id",
            &[],
        )
        .await?;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.get::<_, i64>(1), 1);
        assert_eq!(row.get::<_, i64>(2), 12160 | 32768);
        assert_eq!(row.get::<_, Vec<i32>>(3), vec![7, 8]);
        assert_eq!(
            row.get::<_, Vec<Option<i64>>>(4),
            vec![Some(44928), Some(44928)]
        );
    }
    // The owner may give a row away (the check reads the row as the
    // statement found it); then it is no longer hers to change.
    let n = alice
        .execute("UPDATE documents SET owner_id = 2 WHERE id = 200001", &[])
        .await?;
    assert_eq!(n, 1);
    let err = alice
        .execute("UPDATE documents SET owner_id = 1 WHERE id = 200001", &[])
        .await;
    assert!(matches!(err, Ok(0)), "{err:?}");
    let owner: i64 = su
        .query_one("SELECT owner_id FROM documents WHERE id = 200001", &[])
        .await?
        .get(0);
    assert_eq!(owner, 2);
    // With the client's RETURNING: its rows, and the memberships.
    let returned = alice
        .query(
            "INSERT INTO documents (id, title) VALUES (200003, 'c') RETURNING id, title",
            &[],
        )
        .await?;
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0].get::<_, i32>(0), 200003);
    assert_eq!(returned[0].get::<_, &str>(1), "c");
    let joined: i64 = su
        .query_one(
            "SELECT count(*) FROM document_groups WHERE document_id = 200003",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(joined, 2);
    // Another owner: 42501, and neither the row nor a membership is written.
    let err = alice
        .execute(
            "INSERT INTO documents (id, owner_id, title) VALUES (200004, 2, 'd')",
            &[],
        )
        .await
        .expect_err("an INSERT for another owner must fail");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    let written: i64 = su
        .query_one(
            "SELECT (SELECT count(*) FROM documents WHERE id = 200004)
                  + (SELECT count(*) FROM document_groups WHERE document_id = 200004)",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(written, 0);
    Ok(())
}

/// `pgward check` with these policies against the database of `setup`.
fn check(pgward: &Pgward, policies: &str) -> anyhow::Result<(Option<i32>, String)> {
    let dir = tempfile::Builder::new()
        .prefix("pgward-bits-check-")
        .tempdir()?;
    let file = dir.path().join("bits.sql");
    std::fs::write(&file, policies)?;
    let config = std::fs::read_to_string(pgward.dir().join("pgward.toml"))?;
    let old = pgward.dir().join("10_test.sql");
    let config = config.replace(&*old.to_string_lossy(), &file.to_string_lossy());
    let config_file = dir.path().join("pgward.toml");
    std::fs::write(&config_file, config)?;
    let out = Command::new(env!("CARGO_BIN_EXE_pgward"))
        .args(["check", "--config"])
        .arg(&config_file)
        .env("PGWARD_LOG", "warn")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&*file.to_string_lossy(), "bits.sql");
    Ok((out.status.code(), stderr))
}

#[tokio::test]
async fn check_validates_permission_bits_against_the_catalog() -> anyhow::Result<()> {
    let (db, pgward) = setup("bits_plan_check").await?;
    db.superuser()
        .await?
        .batch_execute(
            "CREATE TABLE notes (id int PRIMARY KEY, owner_id text, permission numeric);
             CREATE TABLE note_groups (note_id bigint, group_id int, permission int2);
             CREATE TABLE keyless (owner_id bigint, permission bigint);
             CREATE FUNCTION public.publish(int) RETURNS boolean LANGUAGE sql AS 'SELECT true';",
        )
        .await?;
    let (code, stderr) = check(&pgward, POLICIES)?;
    assert_eq!(code, Some(0), "{stderr}");
    let bad = "CREATE USER alice PASSWORD 'alice';
CREATE GLOBAL user_id AS SELECT id FROM public.users WHERE login = @{login_id};
CREATE PERMISSION BITS ON notes (owner = owner_id, permission = permission,
  groups = note_groups (note_id, group_id, permission), table_permission = 'UserCRUD');
CREATE PERMISSION BITS ON keyless (owner = owner_id, permission = permission, table_permission = 1);
CREATE PERMISSION BITS ON missing (owner = o, permission = p, table_permission = 1);
CREATE PERMISSION BITS ON documents (owner = owner, permission = permission, table_permission = 1);
CREATE PERMISSION BITS ON FUNCTION public.publish(int) (table_permission = 'UserExecute');
CREATE PERMISSION BITS ON FUNCTION public.publish(text) (table_permission = 'UserExecute');
";
    let (code, stderr) = check(&pgward, bad)?;
    assert_eq!(code, Some(1), "{stderr}");
    for expected in [
        "bits.sql:3:34: error: owner column \"owner_id\" is text but the global user_id is of another type",
        "bits.sql:3:52: error: permission column \"permission\" is numeric: it must be integer or bigint",
        "bits.sql:4:12: error: membership key \"note_id\" is bigint but the primary key \"id\" of public.notes is integer",
        "bits.sql:4:12: error: permission column \"permission\" is smallint: it must be integer or bigint",
        "bits.sql:5:27: error: table public.keyless needs a primary key of one column",
        "bits.sql:6:27: error: table public.missing does not exist",
        "bits.sql:7:38: error: column \"owner\" of relation \"documents\" does not exist",
        "bits.sql:9:36: error: function public.publish(TEXT) does not exist",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("bits.sql:8:"), "{stderr}");
    Ok(())
}
