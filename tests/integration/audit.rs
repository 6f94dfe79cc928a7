//! The audit trail of BYPASSPOLICY sessions: every statement they run is
//! logged with the login, through the simple and the extended protocol, with
//! terminal control characters written as escapes.

use std::time::Duration;

use crate::harness::{PgwardOptions, TestDb};
use crate::pool::eventually;

#[tokio::test]
async fn bypass_statements_are_logged_with_the_login() -> anyhow::Result<()> {
    let db = TestDb::new("audit_bypass").await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;
    let alice = pgward.connect_as("alice", "alice").await?;
    // Simple protocol, with an ESC sequence a terminal would act on.
    alice
        .simple_query("SELECT 'audit-simple \u{1b}[2J' AS x")
        .await?;
    // Extended protocol: the Parse text is logged.
    let n: i32 = alice
        .query_one("SELECT $1::int + 1 AS audit_extended", &[&41i32])
        .await?
        .get(0);
    assert_eq!(n, 42);
    let expected = [
        " INFO pgward::statement::hook: bypass statement: SELECT 'audit-simple \\x1b[2J' AS x user=alice",
        " INFO pgward::statement::hook: bypass statement: SELECT $1::int + 1 AS audit_extended user=alice",
    ];
    let logged = eventually(Duration::from_secs(5), || async {
        let log = pgward.log();
        Ok(expected.iter().all(|line| log.contains(line)))
    })
    .await?;
    let log = pgward.log();
    assert!(logged, "missing audit lines {expected:?} in:\n{log}");
    assert!(!log.contains('\u{1b}'), "a raw ESC reached the log:\n{log}");
    // Each audit line starts with its timestamp.
    for line in log.lines().filter(|l| l.contains("audit-")) {
        let stamp = line.split(' ').next().unwrap_or_default();
        assert!(
            stamp.len() == 27 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{line}"
        );
    }
    Ok(())
}
