//! Permission bits on rows (PRODUCT.md §6) through pgward, checked against
//! the rows the database holds afterwards.
//!
//! - `row_bits_one_by_one`: a row per bit (and one with none), read,
//!   updated, deleted and referred to by the owner, a group member, another
//!   signed-in user and a guest.
//! - `table_bits_and_function_execute`: a table and a function per bit
//!   (and one with none) for the table-level checks: reads need Peek,
//!   INSERT needs Create, a function needs Execute.
//! - `owners_defaults_groups_and_policies`: the owner forced on INSERT,
//!   default permission and groups in the client's own statement, the owner
//!   and permission columns, the admin group, a NULL owner, membership bits
//!   overriding the row's, membership writes, and GRANT/POLICY entries on
//!   the same table (a union, with a restrictive policy still applying).
//!
//! Identities come from globals over the tables `bit_users` and
//! `bit_members`. The guest is `gus`, a signed-in login without a user id
//! (§6: "a session without a user id is a guest"); the guest login of
//! `[auth.guest]` is exercised by `examples` (daptin).

use std::fmt::Write as _;

use tokio_postgres::Client;

use crate::harness::{Pgward, PgwardOptions, SERVICE_ROLE, TestDb};
use crate::writes::{Reply, Wire, fingerprint, warnings};

/// Bit names, lowest first (§6): class × operation.
const CLASSES: [&str; 3] = ["Guest", "User", "Group"];
const OPS: [&str; 7] = [
    "Peek", "Read", "Create", "Update", "Delete", "Execute", "Refer",
];
const PEEK: usize = 0;
const READ: usize = 1;
const CREATE: usize = 2;
const UPDATE: usize = 3;
const DELETE: usize = 4;
const EXECUTE: usize = 5;
const REFER: usize = 6;
/// Bit `b` (0..21) has the value 1 << b; row/table/function `k` of the
/// bit tables has bit k - 1, and k = 0 has none.
const BITS: u32 = 21;
const ALLOW_ALL: i64 = (1 << 21) - 1;

fn bit_name(b: u32) -> String {
    format!("{}{}", CLASSES[(b / 7) as usize], OPS[(b % 7) as usize])
}

/// The bit of row, table or function `k`.
fn bit_of(k: u32) -> Option<u32> {
    k.checked_sub(1)
}

fn mask(k: u32) -> i64 {
    bit_of(k).map_or(0, |b| 1i64 << b)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Who {
    /// user id 1, owns every row of the bit tables
    Owner,
    /// user id 2, in group 10 (every row's group, and the table groups)
    Member,
    /// user id 3, no groups
    Other,
    /// no user id
    Guest,
}

const WHO: [(Who, &str); 4] = [
    (Who::Owner, "olive"),
    (Who::Member, "gary"),
    (Who::Other, "otto"),
    (Who::Guest, "gus"),
];

/// §6: a row admits X when the owner is the session's user and the User
/// bit X is set; or the Guest bit X is set; or the row is in one of the
/// session's groups and the Group bit X is set.
fn row_admits(who: Who, bits: i64, op: usize) -> bool {
    let has = |class: usize| bits & (1i64 << (class * 7 + op)) != 0;
    has(0) || (who == Who::Owner && has(1)) || (who == Who::Member && has(2))
}

/// §6, table level: Guest bits for guests, User bits for any signed-in
/// user, Group bits for members of `table_groups` (group 10).
fn table_admits(who: Who, bits: i64, op: usize) -> bool {
    let has = |class: usize| bits & (1i64 << (class * 7 + op)) != 0;
    match who {
        Who::Guest => has(0),
        Who::Member => has(1) || has(2),
        Who::Owner | Who::Other => has(1),
    }
}

const SCHEMA: &str = "
CREATE TABLE bit_users (login text PRIMARY KEY, id bigint NOT NULL);
CREATE TABLE bit_members (login text NOT NULL, group_id int NOT NULL);
INSERT INTO bit_users VALUES ('olive', 1), ('gary', 2), ('otto', 3), ('adam', 4);
INSERT INTO bit_members VALUES ('gary', 10), ('adam', 99);

-- one row per bit
CREATE TABLE things (id int PRIMARY KEY, owner_id bigint, permission bigint NOT NULL, name text);
CREATE TABLE thing_groups (thing_id int NOT NULL, group_id int NOT NULL, PRIMARY KEY (thing_id, group_id));
CREATE TABLE thing_refs (thing_id int NOT NULL REFERENCES things (id), note text NOT NULL);

-- one row each; table k has table bit k - 1
CREATE TABLE tl_groups (thing_id int NOT NULL, group_id int NOT NULL);
INSERT INTO tl_groups VALUES (1, 10);
DO $$ BEGIN
  FOR k IN 0..21 LOOP
    EXECUTE format('CREATE TABLE tl_%s (id int PRIMARY KEY, owner_id bigint, permission bigint, name text)', k);
    EXECUTE format('INSERT INTO tl_%s VALUES (1, 1, 2097151, %L)', k, 'row of ' || k);
    EXECUTE format('CREATE FUNCTION fn_%s() RETURNS int LANGUAGE sql AS %L', k, 'SELECT ' || k);
  END LOOP;
END $$;

-- owners, defaults, memberships with their own bits, policies
CREATE TABLE docs (id int PRIMARY KEY, owner_id bigint, permission bigint, title text NOT NULL);
CREATE TABLE doc_groups (doc_id int NOT NULL, group_id int NOT NULL, permission bigint,
                         PRIMARY KEY (doc_id, group_id));
";

/// The bit rows, restored between groups of statements; `extra` is ORed
/// into every row's bits.
fn reset_things(extra: i64) -> String {
    format!(
        "DELETE FROM thing_refs; DELETE FROM thing_groups; DELETE FROM things;
         INSERT INTO things SELECT k, 1, CASE WHEN k = 0 THEN 0 ELSE 1::bigint << (k - 1) END | {extra},
                'thing ' || k FROM generate_series(0, 21) k;
         INSERT INTO thing_groups SELECT k, 10 FROM generate_series(0, 21) k;"
    )
}

const RESET_DOCS: &str = "
DELETE FROM doc_groups; DELETE FROM docs;
INSERT INTO docs VALUES
  (1, 1, 12160, 'olive private'),
  (2, 1, 44928, 'group peek'),
  (3, 1, 12160, 'group read'),
  (4, NULL, 12160, 'nobody'),
  (5, 1, 176000, 'group edit'),
  (6, 1, 12160, 'group read only'),
  (7, 1, 12160, 'policy row'),
  (8, 3, 12160, 'hidden'),
  (9, 3, 12160, 'otto notes');
INSERT INTO doc_groups VALUES
  (2, 10, 16384),
  (3, 10, 32768),
  (5, 10, 163840),
  (6, 10, 32768);
";

fn policies() -> String {
    let mut p = String::from(
        "CREATE ROLE clerk;
CREATE USER olive PASSWORD 'olive';
CREATE USER gary PASSWORD 'gary';
CREATE USER otto PASSWORD 'otto' IN ROLE clerk;
CREATE USER adam PASSWORD 'adam';
CREATE USER gus PASSWORD 'gus';
CREATE GLOBAL user_id AS SELECT id FROM bit_users WHERE login = @{login_id};
CREATE GLOBAL groups AS SELECT group_id FROM bit_members WHERE login = @{login_id};

GRANT INSERT ON thing_refs TO PUBLIC;
CREATE PERMISSION BITS ON things (
  owner = owner_id,
  permission = permission,
  groups = thing_groups (thing_id, group_id),
  default_permission = 'UserCRUD',
  table_permission = 'ALLOW_ALL',
  table_groups = (10),
  admin_group = 99
);

-- Membership writes need a grant, and then the Update bit of the row.
GRANT SELECT, INSERT, UPDATE, DELETE ON doc_groups TO PUBLIC;
CREATE PERMISSION BITS ON docs (
  owner = owner_id,
  permission = permission,
  groups = doc_groups (doc_id, group_id, permission),
  default_permission = 'UserCRUD | GroupRead',
  table_permission = 'GuestPeek | UserCRUD | GroupCRUD',
  table_groups = (10),
  default_groups = (10, 11),
  admin_group = 99
);
GRANT SELECT (id, title) ON docs TO clerk;
CREATE POLICY clerk_reads ON docs FOR SELECT TO clerk USING (title LIKE 'policy%');
CREATE POLICY clerk_not_hidden ON docs AS RESTRICTIVE FOR SELECT TO clerk
  USING (title <> 'hidden');
",
    );
    for k in 0..=BITS {
        let bits = match bit_of(k) {
            Some(b) => bit_name(b),
            None => "0".into(),
        };
        let _ = write!(
            p,
            "CREATE PERMISSION BITS ON tl_{k} (owner = owner_id, permission = permission, \
             groups = tl_groups (thing_id, group_id), default_permission = 'ALLOW_ALL', \
             table_permission = '{bits}', table_groups = (10));\n\
             CREATE PERMISSION BITS ON FUNCTION public.fn_{k}() (table_permission = '{bits}');\n"
        );
    }
    p
}

async fn bits_db(label: &str) -> anyhow::Result<(TestDb, Client, Pgward)> {
    let db = TestDb::new(label).await?;
    let su = db.superuser().await?;
    su.batch_execute(SCHEMA).await?;
    su.batch_execute(&reset_things(0)).await?;
    su.batch_execute(RESET_DOCS).await?;
    su.batch_execute(&format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {SERVICE_ROLE};
         GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {SERVICE_ROLE};"
    ))
    .await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&policies()))
        .await?;
    Ok((db, su, pgward))
}

async fn sessions(pgward: &Pgward, db: &TestDb) -> anyhow::Result<Vec<(Who, &'static str, Wire)>> {
    let mut out = Vec::new();
    for (who, user) in WHO {
        out.push((
            who,
            user,
            Wire::login(pgward.port(), user, user, db.name()).await?,
        ));
    }
    Ok(out)
}

/// The outcome of a reply as one line: the SQLSTATE, or the tag and rows.
fn outcome(reply: &Reply) -> String {
    match reply.code() {
        Some(code) => code.to_string(),
        None => format!("{} {:?}", reply.tag().unwrap_or("(no tag)"), reply.rows),
    }
}

/// Rows of one column of text on the superuser connection.
async fn strings(su: &Client, sql: &str) -> anyhow::Result<Vec<String>> {
    Ok(su
        .query(sql, &[])
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect())
}

fn note(problems: &mut String, who: &str, sql: &str, want: &str, got: &str) {
    if want != got {
        let _ = writeln!(problems, "{who}: {sql}\n  wanted {want}\n  got    {got}");
    }
}

#[tokio::test]
async fn row_bits_one_by_one() -> anyhow::Result<()> {
    let (db, su, pgward) = bits_db("bits_rows").await?;
    let mut sessions = sessions(&pgward, &db).await?;
    let mut problems = String::new();

    // Bare bits: reads show the Read rows whole and the Peek rows as their
    // key; no row can be written, as none is both writable and visible
    // (§3.8: only rows the user can SELECT are updated or deleted).
    for (who, user, wire) in &mut sessions {
        let sql = "SELECT id, owner_id, permission, name FROM things ORDER BY id";
        let reply = wire.run(sql).await?;
        let want: Vec<String> = (0..=BITS)
            .filter_map(|k| {
                if row_admits(*who, mask(k), READ) {
                    Some(format!("{k}|1|{}|thing {k}", mask(k)))
                } else if row_admits(*who, mask(k), PEEK) {
                    Some(format!("{k}|NULL|NULL|NULL"))
                } else {
                    None
                }
            })
            .collect();
        note(
            &mut problems,
            user,
            sql,
            &format!("SELECT {} {want:?}", want.len()),
            &outcome(&reply),
        );
        let (before, _) = fingerprint(&su, &["things"]).await?;
        for sql in ["UPDATE things SET name = 'changed'", "DELETE FROM things"] {
            let reply = wire.run(sql).await?;
            let verb = sql.split(' ').next().unwrap_or_default();
            note(
                &mut problems,
                user,
                sql,
                &format!("{verb} 0 []"),
                &outcome(&reply),
            );
        }
        let (after, rows) = fingerprint(&su, &["things"]).await?;
        if before != after {
            let _ = writeln!(problems, "{user}: bare bits, things changed:\n{rows}");
            su.batch_execute(&reset_things(0)).await?;
        }

        // Refer: a child row pointing at row k needs k's Refer bit.
        let mut wrong = Vec::new();
        for k in 0..=BITS {
            let sql = format!("INSERT INTO thing_refs (thing_id, note) VALUES ({k}, '{user}')");
            let reply = wire.run(&sql).await?;
            let want = if row_admits(*who, mask(k), REFER) {
                "INSERT 0 1 []"
            } else {
                "42501"
            };
            let got = outcome(&reply);
            if got != want {
                wrong.push(format!("row {k}: wanted {want}, got {got}"));
            }
        }
        if !wrong.is_empty() {
            let _ = writeln!(
                problems,
                "{user}: INSERT INTO thing_refs (thing_id, note) VALUES (k, …)\n  {}",
                wrong.join("\n  ")
            );
        }
        let got = strings(
            &su,
            &format!(
                "SELECT coalesce(string_agg(thing_id::text, ',' ORDER BY thing_id), '') \
                 FROM thing_refs WHERE note = '{user}'"
            ),
        )
        .await?;
        let want: Vec<String> = (0..=BITS)
            .filter(|k| row_admits(*who, mask(*k), REFER))
            .map(|k| k.to_string())
            .collect();
        note(
            &mut problems,
            user,
            "thing_refs afterwards",
            &want.join(","),
            &got.join(""),
        );
    }

    // Every row also GuestPeek, so that every row is visible (its key):
    // now the Update and Delete bits decide.
    su.batch_execute(&reset_things(1)).await?;
    for (who, user, wire) in &mut sessions {
        let visible = |k: u32| mask(k) | 1;
        let sql = "SELECT id, name FROM things ORDER BY id";
        let reply = wire.run(sql).await?;
        let want: Vec<String> = (0..=BITS)
            .map(|k| {
                if row_admits(*who, visible(k), READ) {
                    format!("{k}|thing {k}")
                } else {
                    format!("{k}|NULL")
                }
            })
            .collect();
        note(
            &mut problems,
            user,
            sql,
            &format!("SELECT 22 {want:?}"),
            &outcome(&reply),
        );

        for (op, sql) in [
            (UPDATE, "UPDATE things SET name = 'changed'"),
            (DELETE, "DELETE FROM things"),
        ] {
            let reply = wire.run(sql).await?;
            let rows: Vec<u32> = (0..=BITS)
                .filter(|k| row_admits(*who, visible(*k), op))
                .collect();
            let verb = OPS[op].to_uppercase();
            note(
                &mut problems,
                user,
                sql,
                &format!("{verb} {} []", rows.len()),
                &outcome(&reply),
            );
            let check = if op == UPDATE {
                "SELECT id::text AS k FROM things WHERE name = 'changed' ORDER BY things.id"
            } else {
                "SELECT g::text AS k FROM generate_series(0, 21) g \
                 WHERE g NOT IN (SELECT id FROM things) ORDER BY g.g"
            };
            let got = strings(&su, check).await?;
            let want: Vec<String> = rows.iter().map(|k| k.to_string()).collect();
            note(
                &mut problems,
                user,
                &format!("{sql}: rows written"),
                &want.join(","),
                &got.join(","),
            );
            su.batch_execute(&reset_things(1)).await?;
        }
    }
    assert!(
        problems.is_empty(),
        "{problems}\npgward's warnings:\n{}",
        warnings(&pgward.log())
    );
    Ok(())
}

#[tokio::test]
async fn table_bits_and_function_execute() -> anyhow::Result<()> {
    let (db, su, pgward) = bits_db("bits_tables").await?;
    let mut sessions = sessions(&pgward, &db).await?;
    let mut problems = String::new();
    for (who, user, wire) in &mut sessions {
        let user_id = match who {
            Who::Owner => "1",
            Who::Member => "2",
            Who::Other => "3",
            Who::Guest => "NULL",
        };
        for k in 0..=BITS {
            let bits = mask(k);
            let sql = format!("SELECT id, name FROM tl_{k}");
            let want = if table_admits(*who, bits, PEEK) {
                format!("SELECT 1 [\"1|row of {k}\"]")
            } else {
                "42501".into()
            };
            note(
                &mut problems,
                user,
                &sql,
                &want,
                &outcome(&wire.run(&sql).await?),
            );

            // INSERT: table Create; the owner is the inserting user, the
            // permission the table's default.
            let sql = format!("INSERT INTO tl_{k} (id, name) VALUES (2, 'new')");
            let allowed = table_admits(*who, bits, CREATE);
            let want = if allowed { "INSERT 0 1 []" } else { "42501" };
            note(
                &mut problems,
                user,
                &sql,
                want,
                &outcome(&wire.run(&sql).await?),
            );
            let got = strings(
                &su,
                &format!(
                    "SELECT format('%s|%s|%s', id, coalesce(owner_id::text, 'NULL'), permission) \
                     FROM tl_{k} WHERE id = 2"
                ),
            )
            .await?;
            let want: Vec<String> = if allowed {
                vec![format!("2|{user_id}|{ALLOW_ALL}")]
            } else {
                vec![]
            };
            note(
                &mut problems,
                user,
                &format!("{sql}: row 2"),
                &format!("{want:?}"),
                &format!("{got:?}"),
            );
            su.batch_execute(&format!("DELETE FROM tl_{k} WHERE id = 2"))
                .await?;

            // A function with bits needs its Execute bit; there is no per-row
            // Execute.
            let sql = format!("SELECT fn_{k}()");
            // A function has no table_groups: its Group bits are for nobody.
            let execute = match who {
                Who::Member => table_admits(Who::Other, bits, EXECUTE),
                _ => table_admits(*who, bits, EXECUTE),
            };
            let want = if execute {
                format!("SELECT 1 [\"{k}\"]")
            } else {
                "42501".into()
            };
            note(
                &mut problems,
                user,
                &sql,
                &want,
                &outcome(&wire.run(&sql).await?),
            );
        }
    }
    assert!(
        problems.is_empty(),
        "{problems}\npgward's warnings:\n{}",
        warnings(&pgward.log())
    );
    Ok(())
}

struct Step {
    user: &'static str,
    sql: &'static str,
    /// SQLSTATE, or the tag and rows as [`outcome`] prints them; several
    /// answers separated by ` or `.
    want: &'static str,
    extended: bool,
}

const fn step(user: &'static str, sql: &'static str, want: &'static str) -> Step {
    Step {
        user,
        sql,
        want,
        extended: false,
    }
}

const DOCS_QUERY: &str = "SELECT id, owner_id, permission, title FROM docs ORDER BY id";

#[rustfmt::skip]
const DOCS_READS: &[(&str, &[&str])] = &[
    // The owner: her rows; not the NULL owner's (4) nor otto's.
    ("olive", &["1|1|12160|olive private", "2|1|44928|group peek", "3|1|12160|group read",
                "5|1|176000|group edit", "6|1|12160|group read only", "7|1|12160|policy row"]),
    // The member: the membership's bits, not the row's: GroupPeek narrows
    // row 2 to its key, GroupRead opens rows 3, 5 and 6.
    ("gary", &["2|NULL|NULL|NULL", "3|1|12160|group read", "5|1|176000|group edit",
               "6|1|12160|group read only"]),
    // otto: his own row 9 through the bits, row 7 through his role's policy
    // with that entry's columns only; his own row 8 is cut by the
    // restrictive policy.
    ("otto", &["7|NULL|NULL|policy row", "9|3|12160|otto notes"]),
    ("gus", &[]),
    // The admin group bypasses the bits: every row, the NULL owner's too.
    ("adam", &["1|1|12160|olive private", "2|1|44928|group peek", "3|1|12160|group read",
               "4|NULL|12160|nobody", "5|1|176000|group edit", "6|1|12160|group read only",
               "7|1|12160|policy row", "8|3|12160|hidden", "9|3|12160|otto notes"]),
];

#[rustfmt::skip]
const DOCS_STEPS: &[Step] = &[
    // The owner is forced, the permission defaults, the default groups are
    // joined: one statement, the client's own tag.
    step("olive", "INSERT INTO docs (id, title) VALUES (20, 'new by olive')", "INSERT 0 1 []"),
    step("olive", "INSERT INTO docs (id, title, owner_id) VALUES (21, 'forged', 2)", "42501"),
    step("olive", "INSERT INTO docs (id, title, owner_id) VALUES (22, 'own id', 1)", "INSERT 0 1 []"),
    step("olive", "INSERT INTO docs (id, title, permission) VALUES (23, 'given bits', 128)", "INSERT 0 1 []"),
    step("olive", "INSERT INTO docs (id, title) VALUES (24, 'a'), (25, 'b')", "INSERT 0 2 []"),
    step("olive", "INSERT INTO docs (id, title) VALUES (1, 'duplicate')", "23505"),
    step("olive", "INSERT INTO docs (id, title) VALUES (26, 'returning') RETURNING id, owner_id, title",
         "INSERT 0 1 [\"26|1|returning\"]"),
    Step { extended: true, ..step("olive", "INSERT INTO docs (id, title) VALUES (29, 'extended')", "INSERT 0 1 []") },
    step("olive", "BEGIN; INSERT INTO docs (id, title) VALUES (30, 'rolled back'); ROLLBACK", "ROLLBACK []"),
    step("otto", "INSERT INTO docs (id, title) VALUES (27, 'by otto')", "INSERT 0 1 []"),
    // The table has no GuestCreate.
    step("gus", "INSERT INTO docs (id, title) VALUES (28, 'by gus')", "42501"),
    step("gus", "UPDATE docs SET title = 'x'", "42501"),
    // gary may update row 5 (his membership has GroupUpdate) but not its
    // owner or permission; row 6's membership has no Update.
    step("gary", "UPDATE docs SET title = 'edited by gary' WHERE id = 5", "UPDATE 1 []"),
    step("gary", "UPDATE docs SET permission = 0 WHERE id = 5", "42501"),
    step("gary", "UPDATE docs SET owner_id = 2 WHERE id = 5", "42501"),
    step("gary", "UPDATE docs SET title = 'x' WHERE id = 6", "UPDATE 0 []"),
    step("gary", "DELETE FROM docs WHERE id = 5", "DELETE 0 []"),
    // The owner changes the bits: row 6 becomes GuestRead too.
    step("olive", "UPDATE docs SET permission = 12162 WHERE id = 6", "UPDATE 1 []"),
    step("gus", "SELECT id, title FROM docs", "SELECT 1 [\"6|group read only\"]"),
    // Memberships: writes need the Update bit of the row they belong to.
    step("gary", "INSERT INTO doc_groups (doc_id, group_id, permission) VALUES (6, 11, 32768)", "42501"),
    step("gary", "DELETE FROM doc_groups WHERE doc_id = 6", "42501 or DELETE 0 []"),
    step("gary", "UPDATE doc_groups SET permission = 2097151 WHERE doc_id = 6", "42501 or UPDATE 0 []"),
    step("gary", "INSERT INTO doc_groups (doc_id, group_id, permission) VALUES (5, 11, 32768)", "INSERT 0 1 []"),
    step("gary", "DELETE FROM doc_groups WHERE doc_id = 5 AND group_id = 10", "DELETE 1 []"),
    step("otto", "INSERT INTO doc_groups (doc_id, group_id, permission) VALUES (1, 11, 32768)", "42501"),
    step("olive", "INSERT INTO doc_groups (doc_id, group_id, permission) VALUES (6, 11, 32768)", "INSERT 0 1 []"),
    // The admin group writes every row, the NULL owner's too.
    step("adam", "UPDATE docs SET title = 'seen by admin' WHERE id = 4", "UPDATE 1 []"),
    step("adam", "DELETE FROM docs WHERE id = 8", "DELETE 1 []"),
    // otto's role may only read; his own rows he may write.
    step("otto", "DELETE FROM docs WHERE id = 7", "DELETE 0 []"),
    step("otto", "UPDATE docs SET title = 'otto edit' WHERE id = 9", "UPDATE 1 []"),
    step("olive", "UPDATE docs SET title = 'x' WHERE id = 4", "UPDATE 0 []"),
];

#[rustfmt::skip]
const DOCS_AFTER: &[&str] = &[
    "1|1|12160|olive private", "2|1|44928|group peek", "3|1|12160|group read",
    "4|NULL|12160|seen by admin", "5|1|176000|edited by gary", "6|1|12162|group read only",
    "7|1|12160|policy row", "9|3|12160|otto edit", "20|1|44928|new by olive",
    "22|1|44928|own id", "23|1|128|given bits", "24|1|44928|a", "25|1|44928|b",
    "26|1|44928|returning", "27|3|44928|by otto", "29|1|44928|extended",
];

#[rustfmt::skip]
const MEMBERS_AFTER: &[&str] = &[
    "2|10", "3|10", "5|11", "6|10", "6|11", "20|10", "20|11", "22|10", "22|11", "23|10", "23|11",
    "24|10", "24|11", "25|10", "25|11", "26|10", "26|11", "27|10", "27|11", "29|10", "29|11",
];

#[tokio::test]
async fn owners_defaults_groups_and_policies() -> anyhow::Result<()> {
    let (db, su, pgward) = bits_db("bits_docs").await?;
    let mut wires = Vec::new();
    for user in ["olive", "gary", "otto", "gus", "adam"] {
        wires.push((
            user,
            Wire::login(pgward.port(), user, user, db.name()).await?,
        ));
    }
    let mut problems = String::new();

    for (user, rows) in DOCS_READS {
        let wire = &mut wires.iter_mut().find(|(u, _)| u == user).expect("user").1;
        let reply = wire.run(DOCS_QUERY).await?;
        let want = format!("SELECT {} {rows:?}", rows.len());
        note(&mut problems, user, DOCS_QUERY, &want, &outcome(&reply));
    }

    let tables = ["docs", "doc_groups"];
    for s in DOCS_STEPS {
        let wire = &mut wires
            .iter_mut()
            .find(|(u, _)| *u == s.user)
            .expect("user")
            .1;
        let (before, _) = fingerprint(&su, &tables).await?;
        let reply = if s.extended {
            wire.run_extended(s.sql).await?
        } else {
            wire.run(s.sql).await?
        };
        let got = outcome(&reply);
        if !s.want.split(" or ").any(|w| w == got) {
            note(&mut problems, s.user, s.sql, s.want, &got);
        }
        // An error inside BEGIN leaves the session's transaction aborted.
        if reply.code().is_some() {
            wire.run("ROLLBACK").await?;
        }
        // A refusal writes nothing, the default memberships included.
        if reply.code().is_some() {
            let (after, rows) = fingerprint(&su, &tables).await?;
            if after != before {
                let _ = writeln!(
                    problems,
                    "{}: {}: refused, but wrote:\n{rows}",
                    s.user, s.sql
                );
            }
        }
    }

    let docs = strings(
        &su,
        "SELECT format('%s|%s|%s|%s', id, coalesce(owner_id::text, 'NULL'), permission, title) \
         FROM docs ORDER BY id",
    )
    .await?;
    note(
        &mut problems,
        "superuser",
        "docs afterwards",
        &format!("{DOCS_AFTER:?}"),
        &format!("{docs:?}"),
    );
    let members = strings(
        &su,
        "SELECT format('%s|%s', doc_id, group_id) FROM doc_groups ORDER BY doc_id, group_id",
    )
    .await?;
    note(
        &mut problems,
        "superuser",
        "doc_groups afterwards",
        &format!("{MEMBERS_AFTER:?}"),
        &format!("{members:?}"),
    );
    assert!(
        problems.is_empty(),
        "{problems}\npgward's warnings:\n{}",
        warnings(&pgward.log())
    );
    Ok(())
}

/// One write of `conflicts_with_queries_and_set_operations`: superuser SQL
/// run first, the client's statement, its outcome, and the docs whose
/// default memberships (groups 10 and 11) it adds — no other membership
/// may appear or go.
struct JoinStep {
    before: &'static str,
    user: &'static str,
    sql: &'static str,
    want: &'static str,
    joined: &'static [i32],
}

const fn join_step(
    user: &'static str,
    sql: &'static str,
    want: &'static str,
    joined: &'static [i32],
) -> JoinStep {
    JoinStep {
        before: "",
        user,
        sql,
        want,
        joined,
    }
}

#[rustfmt::skip]
const JOIN_STEPS: &[JoinStep] = &[
    // DO NOTHING: the inserted rows join, a conflict writes nothing.
    join_step("olive", "INSERT INTO docs (id, title) VALUES (100, 'a') ON CONFLICT DO NOTHING", "INSERT 0 1 []", &[100]),
    join_step("olive", "INSERT INTO docs (id, title) VALUES (100, 'b') ON CONFLICT DO NOTHING", "INSERT 0 0 []", &[]),
    join_step("olive", "INSERT INTO docs (id, title) VALUES (100, 'c'), (101, 'd') ON CONFLICT (id) DO NOTHING", "INSERT 0 1 []", &[101]),
    join_step("olive", "INSERT INTO docs (id, title) VALUES (101, 'x'), (102, 'e') ON CONFLICT DO NOTHING RETURNING id, title", "INSERT 0 1 [\"102|e\"]", &[102]),
    // DO UPDATE: the tag counts inserted and updated rows; the updated row
    // (its memberships removed first) joins no group.
    JoinStep { before: "DELETE FROM doc_groups WHERE doc_id = 100",
        ..join_step("olive", "INSERT INTO docs (id, title) VALUES (100, 'f'), (103, 'g') ON CONFLICT (id) DO UPDATE SET title = excluded.title", "INSERT 0 2 []", &[103]) },
    join_step("olive", "INSERT INTO docs (id, title) VALUES (101, 'h'), (104, 'i') ON CONFLICT (id) DO UPDATE SET title = excluded.title RETURNING id, title", "INSERT 0 2 [\"101|h\", \"104|i\"]", &[104]),
    join_step("olive", "INSERT INTO docs (id, title) VALUES (104, 'j') ON CONFLICT (id) DO UPDATE SET title = 'j' WHERE false", "INSERT 0 0 []", &[]),
    // A row olive may not update (otto's) and a forged owner: nothing written.
    join_step("olive", "INSERT INTO docs (id, title) VALUES (9, 'k'), (105, 'k') ON CONFLICT (id) DO UPDATE SET title = 'k'", "42501", &[]),
    join_step("olive", "INSERT INTO docs (id, title, owner_id) VALUES (105, 'l', 2) ON CONFLICT DO NOTHING", "42501", &[]),
    // gary updates row 5 through his membership's GroupUpdate: its one
    // membership stays as it was.
    join_step("gary", "INSERT INTO docs (id, title) VALUES (5, 'upserted by gary') ON CONFLICT (id) DO UPDATE SET title = excluded.title", "INSERT 0 1 []", &[]),
    // INSERT inside WITH, read or not, under a SELECT or a write.
    join_step("olive", "WITH n AS (INSERT INTO docs (id, title) VALUES (106, 'm') RETURNING id) SELECT id FROM n", "SELECT 1 [\"106\"]", &[106]),
    join_step("olive", "WITH n AS (INSERT INTO docs (id, title) VALUES (107, 'n')) SELECT 1", "SELECT 1 [\"1\"]", &[107]),
    JoinStep { before: "DELETE FROM doc_groups WHERE doc_id = 107",
        ..join_step("olive", "WITH n AS (INSERT INTO docs (id, title) VALUES (107, 'o'), (108, 'p') ON CONFLICT (id) DO UPDATE SET title = excluded.title RETURNING id) SELECT count(*) FROM n", "SELECT 1 [\"2\"]", &[108]) },
    join_step("olive", "WITH n AS (INSERT INTO docs (id, title) VALUES (109, 'q') RETURNING id) INSERT INTO docs (id, title) SELECT id + 1, 'r' FROM n", "INSERT 0 1 []", &[109, 110]),
    join_step("olive", "WITH n AS (INSERT INTO docs (id, title, owner_id) VALUES (111, 's', 2) RETURNING id) SELECT id FROM n", "42501", &[]),
    // The admin group: no check applies, RETURNING and the memberships
    // still work.
    join_step("adam", "INSERT INTO docs (id, title) VALUES (120, 'by admin') RETURNING id, title", "INSERT 0 1 [\"120|by admin\"]", &[120]),
    join_step("adam", "INSERT INTO docs (id, title) VALUES (121, 'by admin')", "INSERT 0 1 []", &[121]),
    // A set operation as the source.
    join_step("olive", "INSERT INTO docs (id, title) SELECT 112, 't' UNION SELECT 113, 'u'", "INSERT 0 2 []", &[112, 113]),
    join_step("olive", "INSERT INTO docs SELECT 114 UNION ALL SELECT 115 RETURNING id, owner_id, permission", "23502", &[]),
    join_step("olive", "INSERT INTO docs (title, id) SELECT 'v', 114 UNION ALL SELECT 'w', 115 ORDER BY 2 RETURNING id, owner_id, permission", "INSERT 0 2 [\"114|1|44928\", \"115|1|44928\"]", &[114, 115]),
];

/// Memberships of the docs, `doc|group`, sorted.
async fn memberships(su: &Client) -> anyhow::Result<Vec<String>> {
    strings(
        su,
        "SELECT format('%s|%s', doc_id, group_id) FROM doc_groups ORDER BY doc_id, group_id",
    )
    .await
}

#[tokio::test]
async fn conflicts_with_queries_and_set_operations_join_default_groups() -> anyhow::Result<()> {
    let mut problems = String::new();
    // Each step through the simple and the extended protocol, on a fresh
    // copy of the docs.
    for extended in [false, true] {
        let label = if extended {
            "bits_join_ext"
        } else {
            "bits_join"
        };
        let (db, su, pgward) = bits_db(label).await?;
        let mut wires = Vec::new();
        for user in ["olive", "gary", "adam"] {
            wires.push((
                user,
                Wire::login(pgward.port(), user, user, db.name()).await?,
            ));
        }
        for s in JOIN_STEPS {
            if !s.before.is_empty() {
                su.batch_execute(s.before).await?;
            }
            let wire = &mut wires
                .iter_mut()
                .find(|(u, _)| *u == s.user)
                .expect("user")
                .1;
            let before = memberships(&su).await?;
            let (docs_before, _) = fingerprint(&su, &["docs"]).await?;
            let reply = if extended {
                wire.run_extended(s.sql).await?
            } else {
                wire.run(s.sql).await?
            };
            let got = outcome(&reply);
            let who = format!("{} ({label})", s.user);
            note(&mut problems, &who, s.sql, s.want, &got);
            let mut want: Vec<String> = before.clone();
            for id in s.joined {
                want.push(format!("{id}|10"));
                want.push(format!("{id}|11"));
            }
            want.sort_by_key(|m| {
                let (d, g) = m.split_once('|').unwrap_or_default();
                (d.parse::<i32>().unwrap_or(0), g.parse::<i32>().unwrap_or(0))
            });
            let after = memberships(&su).await?;
            note(
                &mut problems,
                &who,
                &format!("memberships after {}", s.sql),
                &format!("{want:?}"),
                &format!("{after:?}"),
            );
            if reply.code().is_some() {
                let (docs_after, _) = fingerprint(&su, &["docs"]).await?;
                if docs_after != docs_before {
                    let _ = writeln!(problems, "{who}: {}: refused, but wrote docs", s.sql);
                }
            }
        }
        let docs = strings(
            &su,
            "SELECT format('%s|%s|%s|%s', id, coalesce(owner_id::text, 'NULL'), permission, title) \
             FROM docs WHERE id >= 100 OR id = 5 ORDER BY id",
        )
        .await?;
        #[rustfmt::skip]
        let want = [
            "5|1|176000|upserted by gary", "100|1|44928|f", "101|1|44928|h", "102|1|44928|e",
            "103|1|44928|g", "104|1|44928|i", "106|1|44928|m", "107|1|44928|o", "108|1|44928|p",
            "109|1|44928|q", "110|1|44928|r", "112|1|44928|t", "113|1|44928|u",
            "114|1|44928|v", "115|1|44928|w", "120|4|44928|by admin", "121|4|44928|by admin",
        ];
        note(
            &mut problems,
            label,
            "docs afterwards",
            &format!("{want:?}"),
            &format!("{docs:?}"),
        );
        if !problems.is_empty() {
            let _ = writeln!(problems, "pgward's warnings:\n{}", warnings(&pgward.log()));
        }
    }
    assert!(problems.is_empty(), "{problems}");
    Ok(())
}
