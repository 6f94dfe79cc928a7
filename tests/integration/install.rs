//! `pgward install` and the helper schema as `pgward check` and the
//! database see it: the real binary against a test database created
//! without the helper.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{DEFAULT_POLICIES, PgwardOptions, SERVICE_ROLE, TestDb};

struct Outcome {
    code: Option<i32>,
    stderr: String,
}

/// A configuration for `db` (upstream as the service role) in a folder of
/// its own.
fn config(db: &TestDb) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("pgward-install-")
        .tempdir()?;
    let policies = dir.path().join("10_test.sql");
    std::fs::write(&policies, DEFAULT_POLICIES)?;
    let config = dir.path().join("pgward.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\nurl = \"{}\"\n\n[policies]\npaths = [\"{}\"]\n",
            db.service_url(),
            policies.display()
        ),
    )?;
    Ok((dir, config))
}

fn pgward(args: &[&str], config: &Path) -> anyhow::Result<Outcome> {
    let out = Command::new(env!("CARGO_BIN_EXE_pgward"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("PGWARD_LOG", "warn")
        .output()?;
    Ok(Outcome {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The SQLSTATE and message of calling the helper with `ok` as the
/// service role, or its result.
async fn call(db: &TestDb, ok: &str) -> anyhow::Result<Result<Option<bool>, (String, String)>> {
    let service = db.service().await?;
    let sql = format!("SELECT pgward.\"check\"({ok}, 'row refused by pgward')");
    Ok(match service.query_one(&sql, &[]).await {
        Ok(row) => Ok(row.get(0)),
        Err(e) => {
            let db_error = e.as_db_error().expect("a database error");
            Err((
                db_error.code().code().to_string(),
                db_error.message().to_string(),
            ))
        }
    })
}

#[tokio::test]
async fn install_is_idempotent_and_check_fails_until_it_ran() -> anyhow::Result<()> {
    let db = TestDb::without_helper("install_idempotent").await?;
    let (_dir, config) = config(&db)?;

    let before = pgward(&["check"], &config)?;
    assert_eq!(before.code, Some(1), "{}", before.stderr);
    let line = before
        .stderr
        .lines()
        .find(|l| l.starts_with("error: the helper schema \"pgward\" does not exist"))
        .unwrap_or_else(|| panic!("no helper error in:\n{}", before.stderr));
    assert!(line.contains("run `pgward install"), "{line}");

    for round in 0..2 {
        let installed = pgward(&["install"], &config)?;
        assert_eq!(
            installed.code,
            Some(0),
            "round {round}: {}",
            installed.stderr
        );
        assert!(installed.stderr.contains("installed schema \"pgward\""));
    }
    let after = pgward(&["check"], &config)?;
    assert_eq!(after.code, Some(0), "{}", after.stderr);
    assert!(!after.stderr.contains("helper"), "{}", after.stderr);

    // One function, owned by the service role (it installed it), that
    // raises 42501 with the message unless the check is true.
    let su = db.superuser().await?;
    let count: i64 = su
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n \
               ON n.oid = p.pronamespace WHERE n.nspname = 'pgward'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(count, 1);
    assert_eq!(call(&db, "true").await?, Ok(Some(true)));
    for refused in ["false", "NULL"] {
        assert_eq!(
            call(&db, refused).await?,
            Err(("42501".into(), "row refused by pgward".into())),
            "{refused}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn admin_url_installs_for_the_service_role_and_repairs_an_altered_helper()
-> anyhow::Result<()> {
    let db = TestDb::without_helper("install_admin").await?;
    let (_dir, config) = config(&db)?;
    let su = db.superuser().await?;
    su.batch_execute("CREATE ROLE someone_else LOGIN PASSWORD 'x'")
        .await
        .or_else(|e| {
            // Roles are cluster-wide; another test may have made it.
            if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT) {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    let admin = db.cluster().superuser_url(db.name());
    let installed = pgward(&["install", "--admin-url", &admin], &config)?;
    assert_eq!(installed.code, Some(0), "{}", installed.stderr);

    let owner: String = su
        .query_one(
            "SELECT pg_catalog.pg_get_userbyid(nspowner)::text FROM pg_catalog.pg_namespace \
              WHERE nspname = 'pgward'",
            &[],
        )
        .await?
        .get(0);
    assert_ne!(owner, SERVICE_ROLE, "the admin owns the schema");
    let grants = su
        .query_one(
            "SELECT pg_catalog.has_schema_privilege($1, 'pgward', 'USAGE'), \
                    pg_catalog.has_function_privilege($1, 'pgward.check(boolean, text)', 'EXECUTE'), \
                    pg_catalog.has_function_privilege('someone_else', 'pgward.check(boolean, text)', 'EXECUTE'), \
                    pg_catalog.has_schema_privilege('someone_else', 'pgward', 'USAGE')",
            &[&SERVICE_ROLE],
        )
        .await?;
    let (usage, execute): (bool, bool) = (grants.get(0), grants.get(1));
    let (other_execute, other_usage): (bool, bool) = (grants.get(2), grants.get(3));
    assert!(usage && execute, "the service role may call it");
    assert!(!other_execute && !other_usage, "PUBLIC may not");
    assert_eq!(pgward(&["check"], &config)?.code, Some(0));

    // A STRICT copy would let a NULL check pass: check refuses it, install
    // repairs it.
    su.batch_execute("ALTER FUNCTION pgward.\"check\"(boolean, text) STRICT")
        .await?;
    assert_eq!(
        call(&db, "NULL").await?,
        Ok(None),
        "NULL passes a STRICT copy"
    );
    let altered = pgward(&["check"], &config)?;
    assert_eq!(altered.code, Some(1), "{}", altered.stderr);
    assert!(
        altered
            .stderr
            .contains("is not the one pgward installs: STRICT"),
        "{}",
        altered.stderr
    );
    let repaired = pgward(&["install", "--admin-url", &admin], &config)?;
    assert_eq!(repaired.code, Some(0), "{}", repaired.stderr);
    assert_eq!(pgward(&["check"], &config)?.code, Some(0));
    assert_eq!(
        call(&db, "NULL").await?,
        Err(("42501".into(), "row refused by pgward".into()))
    );

    // An admin URL naming another database is refused.
    let elsewhere = db.cluster().superuser_url("postgres");
    let refused = pgward(&["install", "--admin-url", &elsewhere], &config)?;
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("belongs in the upstream database"),
        "{}",
        refused.stderr
    );
    Ok(())
}

#[tokio::test]
async fn serve_warns_at_start_when_the_helper_is_missing() -> anyhow::Result<()> {
    let bare = TestDb::without_helper("install_serve_warns").await?;
    let pgward = bare.start_pgward(PgwardOptions::default()).await?;
    let log = pgward.log();
    let line = log
        .lines()
        .find(|l| l.contains("the helper schema \"pgward\" does not exist"))
        .unwrap_or_else(|| panic!("no warning in:\n{log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("pgward install"), "{line}");
    // Reads still work.
    let c = pgward.connect_as("alice", "alice").await?;
    assert_eq!(c.query_one("SELECT 1", &[]).await?.get::<_, i32>(0), 1);

    let installed = TestDb::new("install_serve_quiet").await?;
    let pgward = installed.start_pgward(PgwardOptions::default()).await?;
    assert!(!pgward.log().contains("helper"), "{}", pgward.log());
    Ok(())
}
