//! psql itself through pgward: a script run non-interactively (`-f`) that
//! creates a table, loads it with `\copy … FROM`, describes it with `\d`,
//! runs transactions and errors, and writes it back with `\copy … TO`. The
//! same script also runs directly against PostgreSQL; what psql prints on
//! stdout must be the same both ways, with client_encoding UTF8 and with
//! SQL_ASCII (which pgward accepts and treats as UTF-8).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::harness::{PgwardOptions, TestDb};

const PSQL_TIMEOUT: Duration = Duration::from_secs(30);
const LOADED_ROWS: i32 = 300;

/// Every error goes to stderr; `LAST_ERROR_SQLSTATE` puts its code on stdout,
/// so stdout can be compared with a direct run even where the messages of
/// pgward and PostgreSQL differ.
const SCRIPT: &str = r"\set ON_ERROR_STOP 0
CREATE TABLE cities (id int PRIMARY KEY, name text NOT NULL, amount numeric(10,2));
\copy cities FROM 'cities_in.tsv'
SELECT count(*) AS n, sum(amount) AS total, sum(octet_length(name)) AS name_bytes FROM cities;
\d cities
BEGIN;
INSERT INTO cities VALUES (1001, 'Zürich', 1.50);
INSERT INTO cities VALUES (1002, '東京', 2.25);
UPDATE cities SET amount = amount + 1 WHERE id > 1000;
COMMIT;
SELECT 1 / 0 AS boom;
\echo first error :LAST_ERROR_SQLSTATE
SELEC 'not sql';
\echo second error :LAST_ERROR_SQLSTATE
SELECT 'after the errors' AS still_running;
BEGIN;
INSERT INTO cities VALUES (1003, 'lost', 0);
SELECT * FROM no_such_table;
\echo third error :LAST_ERROR_SQLSTATE
SELECT 'inside an aborted transaction';
\echo fourth error :LAST_ERROR_SQLSTATE
ROLLBACK;
\pset format unaligned
SELECT id, name, amount, octet_length(name) AS bytes, encode(convert_to(name, 'UTF8'), 'hex') AS hex
  FROM cities WHERE id > 1000 OR name !~ '^[ -~]*$' ORDER BY id;
\pset format aligned
\copy (SELECT id, name, amount FROM cities ORDER BY id) TO 'cities_out.tsv'
SELECT count(*) AS final FROM cities;
";

/// The rows `\copy` loads, in COPY text format; every tenth name is not
/// ASCII.
fn loaded_tsv() -> String {
    (1..=LOADED_ROWS)
        .map(|id| {
            let name = match id % 10 {
                3 => format!("Zürich {id}"),
                7 => format!("東京 {id}"),
                _ => format!("city {id}"),
            };
            format!("{id}\t{name}\t{}.{:02}\n", id * 3, id % 100)
        })
        .collect()
}

struct Run {
    stdout: String,
    stderr: String,
    /// What `\copy … TO 'cities_out.tsv'` wrote, if the script has one.
    copied_out: Option<Vec<u8>>,
}

/// Runs the script with psql in a fresh folder holding `cities_in.tsv`.
async fn run_psql(conn: &str, script: &str, client_encoding: &str) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("script.sql"), script)?;
    std::fs::write(dir.path().join("cities_in.tsv"), loaded_tsv())?;
    let started = Instant::now();
    let child = tokio::process::Command::new("psql")
        .arg(conn)
        .args(["-X", "-v", "ON_ERROR_STOP=0", "-f", "script.sql"])
        .current_dir(dir.path())
        .env("PGCLIENTENCODING", client_encoding)
        .env("LC_ALL", "C.UTF-8")
        .env_remove("PGOPTIONS")
        .env_remove("PGSSLMODE")
        .env_remove("PSQLRC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run psql")?;
    let out = tokio::time::timeout(PSQL_TIMEOUT, child.wait_with_output())
        .await
        .context("psql did not finish in time")??;
    eprintln!(
        "psql ({client_encoding}) took {:?}, {}",
        started.elapsed(),
        out.status
    );
    assert!(
        out.status.success(),
        "psql failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Run {
        stdout: String::from_utf8(out.stdout).context("psql's stdout is not UTF-8")?,
        stderr: String::from_utf8(out.stderr).context("psql's stderr is not UTF-8")?,
        copied_out: std::fs::read(dir.path().join("cities_out.tsv")).ok(),
    })
}

/// The stderr lines of one error, by the script line it came from.
fn error_at(stderr: &str, line: usize) -> String {
    let prefix = format!("psql:script.sql:{line}: ");
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect::<Vec<_>>()
        .join("\n")
}

fn script_line(needle: &str) -> usize {
    line_of(SCRIPT, needle)
}

/// The 1-based number of the first line of `script` starting with `needle`.
fn line_of(script: &str, needle: &str) -> usize {
    script
        .lines()
        .position(|l| l.starts_with(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line starting with {needle:?} in the script"))
}

/// Checks one run through pgward against one run directly against
/// PostgreSQL, and both against what the script must do.
fn check(through: &Run, direct: &Run) {
    assert_eq!(
        through.stdout, direct.stdout,
        "psql printed something else through pgward than directly\nstderr through pgward:\n{}",
        through.stderr
    );
    let out = &through.stdout;
    for expected in [
        "CREATE TABLE\n",
        "COPY 300\n",
        "BEGIN\nINSERT 0 1\nINSERT 0 1\nUPDATE 2\nCOMMIT\n",
        "first error 22012\n",
        "second error 42601\n",
        "after the errors",
        "third error 42P01\n",
        "fourth error 25P02\n",
        "ROLLBACK\n",
        "COPY 302\n",
    ] {
        assert!(out.contains(expected), "stdout lacks {expected:?}:\n{out}");
    }
    // The loaded rows: 300, their amounts, and the bytes of their names.
    let total: i64 = (1..=LOADED_ROWS)
        .map(|id| i64::from(id * 300 + id % 100))
        .sum();
    let name_bytes: usize = loaded_tsv()
        .lines()
        .map(|l| l.split('\t').nth(1).map_or(0, str::len))
        .sum();
    let summary = format!(
        " 300 | {}.{:02} | {name_bytes:>10}\n",
        total / 100,
        total % 100
    );
    assert!(out.contains(&summary), "stdout lacks {summary:?}:\n{out}");
    // \d lists every column with its type.
    for column in [
        "Table \"public.cities\"",
        " id     | integer       |           | not null | ",
        " name   | text          |           | not null | ",
        " amount | numeric(10,2) |           |          | ",
        "\"cities_pkey\" PRIMARY KEY, btree (id)",
    ] {
        assert!(out.contains(column), "\\d output lacks {column:?}:\n{out}");
    }
    // Non-ASCII text arrives and comes back byte for byte.
    for row in [
        "1001|Zürich|2.50|7|5ac3bc72696368\n",
        "1002|東京|3.25|6|e69db1e4baac\n",
        "3|Zürich 3|9.03|9|",
        "7|東京 7|21.07|8|",
    ] {
        assert!(out.contains(row), "stdout lacks {row:?}:\n{out}");
    }
    assert!(
        !out.contains("1003|lost"),
        "the rolled back row is there:\n{out}"
    );

    let err = &through.stderr;
    assert!(
        error_at(err, script_line("SELECT 1 / 0")).contains("ERROR:  division by zero"),
        "stderr:\n{err}"
    );
    assert!(
        error_at(err, script_line("SELEC ")).contains("ERROR:  "),
        "stderr:\n{err}"
    );
    assert!(
        error_at(err, script_line("SELECT * FROM no_such_table"))
            .contains("ERROR:  relation \"no_such_table\" does not exist"),
        "stderr:\n{err}"
    );
    assert!(
        error_at(err, script_line("SELECT 'inside an aborted"))
            .contains("ERROR:  current transaction is aborted"),
        "stderr:\n{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.contains("ERROR:")).count(),
        4,
        "stderr:\n{err}"
    );
    // Apart from the statement pgward itself refuses, the errors read the
    // same as PostgreSQL's.
    let others = |stderr: &str| {
        let refused = format!("psql:script.sql:{}: ", script_line("SELEC "));
        stderr
            .lines()
            .filter(|l| l.starts_with("psql:") && !l.starts_with(&refused))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(others(&through.stderr), others(&direct.stderr));

    // \copy TO wrote the loaded rows, byte for byte, and the two new ones.
    let mut expected = loaded_tsv().into_bytes();
    expected.extend_from_slice("1001\tZürich\t2.50\n1002\t東京\t3.25\n".as_bytes());
    let copied = through
        .copied_out
        .as_deref()
        .expect("psql did not write cities_out.tsv");
    assert!(
        copied == expected,
        "\\copy TO wrote something else:\n{}",
        String::from_utf8_lossy(copied)
    );
    assert!(through.copied_out == direct.copied_out);
}

/// The cities stored by a run, read on a direct connection.
async fn stored_names(db: &TestDb) -> anyhow::Result<Vec<(i32, Vec<u8>)>> {
    let rows = db
        .service()
        .await?
        .query(
            "SELECT id, convert_to(name, 'UTF8') FROM cities WHERE id > 1000 ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn through_and_direct(client_encoding: &str) -> anyhow::Result<()> {
    let label = format!("psql_{client_encoding}");
    let db = TestDb::new(&label).await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;
    let through = run_psql(
        &pgward.conn_string("alice", "alice", db.name()),
        SCRIPT,
        client_encoding,
    )
    .await
    .with_context(|| format!("pgward's log:\n{}", pgward.log()))?;

    let direct_db = TestDb::new(&format!("{label}_direct")).await?;
    let direct = run_psql(&direct_db.service_url(), SCRIPT, client_encoding).await?;

    check(&through, &direct);
    let expected = vec![
        (1001, "Zürich".as_bytes().to_vec()),
        (1002, "東京".as_bytes().to_vec()),
    ];
    assert_eq!(stored_names(&db).await?, expected);
    assert_eq!(stored_names(&direct_db).await?, expected);
    Ok(())
}

#[tokio::test]
async fn psql_script_through_pgward_matches_postgresql() -> anyhow::Result<()> {
    through_and_direct("UTF8").await
}

#[tokio::test]
async fn psql_script_with_sql_ascii_round_trips_non_ascii_text() -> anyhow::Result<()> {
    through_and_direct("SQL_ASCII").await
}

/// For a user bound by policies, every statement psql sends (its catalog
/// queries for `\d` too) is parsed, secured and printed by pgward.
const BOUND_SCRIPT: &str = r"\set ON_ERROR_STOP 0
\d cities
\dt
\dn
\pset format unaligned
SELECT 'Zürich' AS a, '東京' AS b, encode(convert_to('Zürich 東京', 'UTF8'), 'hex') AS hex, octet_length('東京') AS n;
\pset format aligned
BEGIN;
SELECT 1 / 0;
\echo first error :LAST_ERROR_SQLSTATE
SELECT 'in an aborted transaction';
\echo second error :LAST_ERROR_SQLSTATE
ROLLBACK;
SELEC 'not sql';
\echo third error :LAST_ERROR_SQLSTATE
SELECT 'done' AS last;
";

#[tokio::test]
async fn psql_as_a_policy_bound_user_matches_postgresql() -> anyhow::Result<()> {
    let db = TestDb::new("psql_bound").await?;
    db.service()
        .await?
        .batch_execute(
            "CREATE TABLE cities (id int PRIMARY KEY, name text NOT NULL, amount numeric(10,2))",
        )
        .await?;
    let policies = "CREATE ROLE bound;\nCREATE USER carol PASSWORD 'carol' IN ROLE bound;\n";
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(policies))
        .await?;
    for client_encoding in ["UTF8", "SQL_ASCII"] {
        let through = run_psql(
            &pgward.conn_string("carol", "carol", db.name()),
            BOUND_SCRIPT,
            client_encoding,
        )
        .await
        .with_context(|| format!("pgward's log:\n{}", pgward.log()))?;
        let direct = run_psql(&db.service_url(), BOUND_SCRIPT, client_encoding).await?;
        assert_eq!(
            through.stdout, direct.stdout,
            "{client_encoding}: psql printed something else through pgward than directly\n\
             stderr through pgward:\n{}",
            through.stderr
        );
        let out = &through.stdout;
        for expected in [
            " amount | numeric(10,2) |           |          | ",
            " public | cities | table | pgward_service\n",
            "Zürich|東京|5ac3bc7269636820e69db1e4baac|6\n",
            "first error 22012\n",
            "second error 25P02\n",
            "third error 42601\n",
            "done",
        ] {
            assert!(
                out.contains(expected),
                "{client_encoding}: stdout lacks {expected:?}:\n{out}"
            );
        }
        let refused = error_at(&through.stderr, line_of(BOUND_SCRIPT, "SELEC "));
        assert!(
            refused.contains("ERROR:  ") && refused.contains("pgward"),
            "{client_encoding}: the unparseable statement was not refused by pgward:\n{}",
            through.stderr
        );
    }
    Ok(())
}
