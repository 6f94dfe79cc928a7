//! The worked examples of `policies/examples/` end to end through `psql`
//! (README, "Permission bits"): each example's schema and data from its
//! `setup/` folder, its policy file as pgward's only policy file, and what
//! each user sees and may write, read back on a superuser connection.

use std::path::PathBuf;

use tokio_postgres::Client;

use crate::harness::{Pgward, PgwardOptions, SERVICE_ROLE, TestDb};

fn example_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("policies/examples")
        .join(name)
}

fn example_policies(name: &str) -> anyhow::Result<String> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("policies/examples")
        .join(format!("{name}.sql"));
    Ok(std::fs::read_to_string(file)?)
}

/// A database with the example's schema and rows, the service role allowed
/// on its tables, and pgward in front of it with the example's policies.
async fn example(name: &str, extra_toml: &str) -> anyhow::Result<(TestDb, Pgward, Client)> {
    let db = TestDb::new(&format!("example_{name}")).await?;
    let su = db.superuser().await?;
    pgward::demo::load_setup(&su, &example_dir(name)).await?;
    su.batch_execute(&format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {SERVICE_ROLE};
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {SERVICE_ROLE};"
    ))
    .await?;
    let pgward = db
        .start_pgward(PgwardOptions {
            extra_toml: extra_toml.into(),
            ..PgwardOptions::with_policies(&example_policies(name)?)
        })
        .await?;
    Ok((db, pgward, su))
}

/// What psql answers to one statement: its output (unaligned, `|` between
/// cells, NULL as empty, the command tag of a write), or `ERROR <SQLSTATE>`.
async fn ask(pgward: &Pgward, db: &TestDb, user: &str, sql: &str) -> anyhow::Result<String> {
    let conn = pgward.conn_string(user, user, db.name());
    let out = tokio::process::Command::new("psql")
        .arg(&conn)
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            "VERBOSITY=verbose",
        ])
        .args(["-c", sql])
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(rest) = stderr
        .lines()
        .find_map(|l| l.strip_prefix("ERROR:  ").or(l.strip_prefix("FATAL:  ")))
    {
        let code = rest.split(':').next().unwrap_or(rest);
        return Ok(format!("ERROR {code}"));
    }
    anyhow::ensure!(out.status.success(), "psql as {user}: {sql}: {stderr}");
    Ok(stdout)
}

/// Runs each (user, SQL, answer) through psql; returns every mismatch.
async fn expect_all(
    pgward: &Pgward,
    db: &TestDb,
    lines: &[(&str, &str, &str)],
) -> anyhow::Result<String> {
    let mut problems = String::new();
    for (user, sql, want) in lines {
        let got = ask(pgward, db, user, sql).await?;
        if got != *want {
            problems.push_str(&format!(
                "{user}: {sql}\n  wanted {want:?}\n  got    {got:?}\n"
            ));
        }
    }
    Ok(problems)
}

/// One column of rows as text, on a superuser connection.
async fn column(su: &Client, sql: &str) -> anyhow::Result<Vec<String>> {
    Ok(su
        .query(sql, &[])
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect())
}

const GUEST: &str = "[auth.guest]\nenabled = true\nuser = \"guest\"\n";

#[tokio::test]
async fn daptin_users_see_their_own_their_groups_and_public_documents() -> anyhow::Result<()> {
    let (db, pgward, su) = example("daptin", GUEST).await?;
    let q = "SELECT id, title FROM document ORDER BY id";
    #[rustfmt::skip]
    let reads = [
        // alice owns 1, 3 and 4, reads 2 through the editors' membership.
        ("alice", q, "1|Alice draft\n2|Team plan\n3|Release notes\n4|Roadmap teaser"),
        // bob owns 2; 3 is GuestRead, 4 GuestPeek (the key only); 5 through
        // the readers' membership, whose bits override the row's GroupPeek.
        ("bob", q, "2|Team plan\n3|Release notes\n4|\n5|Board minutes"),
        // carol is in the administrators group.
        ("carol", q, "1|Alice draft\n2|Team plan\n3|Release notes\n4|Roadmap teaser\n5|Board minutes"),
        ("guest", q, "3|Release notes\n4|"),
        ("bob", "SELECT id, title, body, user_account_id, permission FROM document WHERE id = 4", "4||||"),
        ("guest", "SELECT count(*) FROM document", "2"),
    ];
    let mut problems = expect_all(&pgward, &db, &reads).await?;

    #[rustfmt::skip]
    let writes = [
        // Not hers to write: editors only read document 2.
        ("alice", "UPDATE document SET body = 'x' WHERE id = 2", "UPDATE 0"),
        ("alice", "DELETE FROM document WHERE id = 2", "DELETE 0"),
        // The readers' membership grants GroupUpdate on document 5 …
        ("bob", "UPDATE document SET body = 'edited by bob' WHERE id = 5", "UPDATE 1"),
        // … but only the owner may change the permission.
        ("bob", "UPDATE document SET permission = 0 WHERE id = 5", "ERROR 42501"),
        ("bob", "UPDATE document SET body = 'x' WHERE id = 3", "UPDATE 0"),
        // A new document belongs to whoever writes it, with the default bits
        // and the default group, in one statement.
        ("alice", "INSERT INTO document (title, body) VALUES ('Alice memo', 'new')", "INSERT 0 1"),
        ("alice", "INSERT INTO document (title, user_account_id) VALUES ('forged', 2)", "ERROR 42501"),
        ("guest", "INSERT INTO document (title) VALUES ('spam')", "ERROR 42501"),
        // Sharing needs the Update bit of the document.
        ("alice", "INSERT INTO document_document_id_has_usergroup_usergroup_id VALUES (2, 2, 32768)", "ERROR 42501"),
        ("bob", "INSERT INTO document_document_id_has_usergroup_usergroup_id VALUES (5, 1, 16384)", "INSERT 0 1"),
        ("carol", "DELETE FROM document WHERE id = 1", "DELETE 1"),
    ];
    problems += &expect_all(&pgward, &db, &writes).await?;

    let rows = column(
        &su,
        "SELECT format('%s|%s|%s|%s', id, title, coalesce(user_account_id::text, 'NULL'), permission) \
         FROM document ORDER BY id",
    )
    .await?;
    let want = [
        "2|Team plan|2|44928",
        "3|Release notes|1|12162",
        "4|Roadmap teaser|1|12161",
        "5|Board minutes|3|28544",
        "6|Alice memo|1|44928",
    ];
    if rows != want {
        problems += &format!("documents afterwards: {rows:?}\n  wanted {want:?}\n");
    }
    let bodies = column(
        &su,
        "SELECT coalesce(body, '') FROM document WHERE id IN (2, 5) ORDER BY id",
    )
    .await?;
    if bodies != ["editors read it", "edited by bob"] {
        problems += &format!("bodies of 2 and 5 afterwards: {bodies:?}\n");
    }
    let members = column(
        &su,
        "SELECT format('%s|%s', document_id, usergroup_id) \
         FROM document_document_id_has_usergroup_usergroup_id ORDER BY 1",
    )
    .await?;
    let want = ["2|1", "5|1", "5|2", "6|1"];
    if members != want {
        problems += &format!("memberships afterwards: {members:?}\n  wanted {want:?}\n");
    }
    // alice now reads her memo; bob does not (editors only).
    problems += &expect_all(
        &pgward,
        &db,
        &[
            (
                "alice",
                "SELECT title FROM document WHERE id = 6",
                "Alice memo",
            ),
            ("bob", "SELECT count(*) FROM document WHERE id = 6", "0"),
        ],
    )
    .await?;
    assert!(
        problems.is_empty(),
        "{problems}\npgward's log:\n{}",
        tail(&pgward.log())
    );
    Ok(())
}

#[tokio::test]
async fn apiomat_objects_follow_their_read_and_write_role_lists() -> anyhow::Result<()> {
    let (db, pgward, su) = example("apiomat_acl", "").await?;
    let q = "SELECT id, title FROM notes ORDER BY id";
    #[rustfmt::skip]
    let lines = [
        ("ann", q, "1|Q3 pipeline\n2|Ann private\n3|Ticket 4711\n6|Company picnic"),
        ("ben", q, "3|Ticket 4711\n4|Escalations\n6|Company picnic"),
        ("cid", q, "4|Escalations\n5|Budget\n6|Company picnic"),
        // Writers change title and payload; owners everything.
        ("ann", "UPDATE notes SET payload = payload || '+'", "UPDATE 2"),
        ("ben", "UPDATE notes SET payload = 'x' WHERE id = 1", "UPDATE 0"),
        ("cid", "UPDATE notes SET title = 'Company picnic (moved)' WHERE id = 6", "UPDATE 1"),
        // ben may write ticket 3 as its owner, cid may not even see it.
        ("cid", "UPDATE notes SET payload = 'x' WHERE id = 3", "UPDATE 0"),
        // Only the owner changes the ACL: ann is a writer of 1 but owns it too,
        // she only reads 3.
        ("ann", "UPDATE notes SET allowed_read_roles = '{sales,support}' WHERE id = 1", "UPDATE 1"),
        ("ann", "UPDATE notes SET allowed_write_roles = '{sales}' WHERE id = 3", "UPDATE 0"),
        // An owner cannot give a row away.
        ("ben", "UPDATE notes SET owner = 'ann' WHERE id = 4", "ERROR 42501"),
        ("ann", "INSERT INTO notes (id, title, owner, allowed_read_roles) VALUES (7, 'Lead list', 'ann', '{sales}')", "INSERT 0 1"),
        ("ann", "INSERT INTO notes (id, title, owner) VALUES (8, 'forged', 'ben')", "ERROR 42501"),
        ("ben", "DELETE FROM notes WHERE id = 6", "DELETE 0"),
        ("cid", "DELETE FROM notes WHERE id = 5", "DELETE 1"),
        ("ben", q, "1|Q3 pipeline\n3|Ticket 4711\n4|Escalations\n6|Company picnic (moved)"),
    ];
    let mut problems = expect_all(&pgward, &db, &lines).await?;
    let rows = column(
        &su,
        "SELECT format('%s|%s|%s|%s|%s|%s', id, title, payload, owner, allowed_read_roles, allowed_write_roles) \
         FROM notes ORDER BY id",
    )
    .await?;
    let want = [
        "1|Q3 pipeline|six deals+|ann|{sales,support}|{sales}",
        "2|Ann private|call mum+|ann|{}|{}",
        "3|Ticket 4711|printer on fire|ben|{support,sales}|{support}",
        "4|Escalations|two open|ben|{management}|{}",
        "6|Company picnic (moved)|Friday|cid|{sales,support,management}|{management}",
        "7|Lead list||ann|{sales}|{}",
    ];
    if rows != want {
        problems += &format!("notes afterwards: {rows:#?}\n  wanted {want:#?}\n");
    }
    assert!(
        problems.is_empty(),
        "{problems}\npgward's log:\n{}",
        tail(&pgward.log())
    );
    Ok(())
}

#[tokio::test]
async fn liveapicreator_roles_filter_rows_and_columns_and_add_up() -> anyhow::Result<()> {
    let (db, pgward, su) = example("liveapicreator", "").await?;
    let c = "SELECT * FROM customers ORDER BY id";
    let o = "SELECT * FROM orders ORDER BY id";
    #[rustfmt::skip]
    let lines = [
        // cathy (customer): her own customer row and orders, no region or limit.
        ("cathy", c, "1|Acme|1200.00"),
        ("cathy", o, "1|1|100.00\n2|1|250.00"),
        ("cathy", "SELECT credit_limit FROM customers", "ERROR 42501"),
        // sam (sales, east): his territory with region and credit limit, no balance.
        ("sam", c, "1|Acme|east|5000.00\n2|Globex|east|2000.00"),
        ("sam", o, "1|1|100.00|0|first order\n2|1|250.00|5|repeat\n3|2|75.00|0|"),
        ("sam", "SELECT balance FROM customers", "ERROR 42501"),
        // vic (sales in the west and auditor): every customer and order, the
        // sales columns only where his territory admits the row.
        ("vic", c, "1|Acme||1200.00|\n2|Globex||300.00|\n3|Initech|west|0.00|1000.00\n4|Umbrella|west|4500.00|10000.00"),
        ("vic", o, "1|1|100.00||\n2|1|250.00||\n3|2|75.00||\n4|3|400.00|10|bulk\n5|4|1200.00|15|priority"),
        // ada (auditor): balances and amounts only.
        ("ada", c, "1|Acme|1200.00\n2|Globex|300.00\n3|Initech|0.00\n4|Umbrella|4500.00"),
        ("ada", "SELECT sum(amount) FROM orders", "2025.00"),
        // Writes: sales set discounts in their territory, up to their maximum.
        ("sam", "UPDATE orders SET discount = 8 WHERE id = 3", "UPDATE 1"),
        ("sam", "UPDATE orders SET discount = 12 WHERE id = 3", "ERROR 42501"),
        ("sam", "UPDATE orders SET discount = 1 WHERE id = 4", "UPDATE 0"),
        ("vic", "UPDATE orders SET discount = 20, notes = 'approved' WHERE id = 5", "UPDATE 1"),
        ("vic", "UPDATE orders SET discount = 1", "UPDATE 2"),
        ("ada", "UPDATE orders SET discount = 0 WHERE id = 1", "ERROR 42501"),
        ("cathy", "UPDATE orders SET notes = 'x' WHERE id = 1", "ERROR 42501"),
    ];
    let mut problems = expect_all(&pgward, &db, &lines).await?;
    let rows = column(
        &su,
        "SELECT format('%s|%s|%s', id, discount, coalesce(notes, '')) FROM orders ORDER BY id",
    )
    .await?;
    let want = [
        "1|0|first order",
        "2|5|repeat",
        "3|8|",
        "4|1|bulk",
        "5|1|approved",
    ];
    if rows != want {
        problems += &format!("orders afterwards: {rows:?}\n  wanted {want:?}\n");
    }
    assert!(
        problems.is_empty(),
        "{problems}\npgward's log:\n{}",
        tail(&pgward.log())
    );
    Ok(())
}

/// The last lines of a log, for failure messages.
fn tail(log: &str) -> &str {
    let mut start = log.len().saturating_sub(6000);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}
