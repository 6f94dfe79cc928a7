//! Authentication must not tell who exists: a wrong password, an unknown
//! user and a user without a password get the same SCRAM exchange (salt
//! length, iteration count, the step where it fails) and the same error.

use anyhow::{Context, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::harness::{DEFAULT_POLICIES, Pgward, PgwardOptions, TestDb};
use crate::protocol::{Exchange, Raw};

/// The default users plus two that have no password.
fn policies() -> String {
    format!(
        "{DEFAULT_POLICIES}CREATE USER carl IN ROLE tester;\n\
         CREATE USER dora PASSWORD NULL IN ROLE tester;\n"
    )
}

/// The parts of a server-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerFirst {
    /// Attribute names in order.
    keys: Vec<String>,
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
}

fn parse_server_first(text: &str) -> anyhow::Result<ServerFirst> {
    let mut keys = Vec::new();
    let mut nonce = None;
    let mut salt = None;
    let mut iterations = None;
    for part in text.split(',') {
        let (key, value) = part
            .split_once('=')
            .with_context(|| format!("attribute without '=' in {text:?}"))?;
        keys.push(key.to_string());
        match key {
            "r" => nonce = Some(value.to_string()),
            "s" => salt = Some(STANDARD.decode(value)?),
            "i" => iterations = Some(value.parse()?),
            _ => {}
        }
    }
    Ok(ServerFirst {
        keys,
        nonce: nonce.context("no nonce")?,
        salt: salt.context("no salt")?,
        iterations: iterations.context("no iteration count")?,
    })
}

/// A whole raw login attempt.
async fn attempt(
    pgward: &Pgward,
    db: &TestDb,
    user: &str,
    password: &str,
) -> anyhow::Result<Exchange> {
    let mut raw = Raw::connect(pgward.port()).await?;
    raw.startup(user, db.name()).await?;
    let exchange = raw.scram(password).await?;
    if exchange.error.is_some() {
        let rest = raw.until_closed().await?;
        ensure!(rest.is_empty(), "messages after the refusal: {rest:?}");
    }
    Ok(exchange)
}

/// The exchange failed after client-final with the wrong-password error.
fn assert_password_failure(exchange: &Exchange, user: &str) -> anyhow::Result<ServerFirst> {
    let error = exchange
        .error
        .as_ref()
        .with_context(|| format!("{user} logged in: {exchange:?}"))?;
    assert_eq!(
        exchange.failed_after,
        Some("client-final"),
        "{user}: {exchange:?}"
    );
    assert_eq!(error.code(), "28P01", "{user}: {error:?}");
    assert_eq!(error.severity(), "FATAL", "{user}: {error:?}");
    assert_eq!(
        error.message(),
        format!("password authentication failed for user \"{user}\""),
    );
    let fields: Vec<u8> = error.0.keys().copied().collect();
    assert_eq!(fields, b"CMSV".to_vec(), "{user}: extra fields {error:?}");
    assert_eq!(exchange.mechanisms, vec!["SCRAM-SHA-256".to_string()]);
    parse_server_first(
        exchange
            .server_first
            .as_deref()
            .context("no server-first")?,
    )
}

async fn start(label: &str) -> anyhow::Result<(TestDb, Pgward)> {
    let db = TestDb::new(label).await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&policies()))
        .await?;
    Ok((db, pgward))
}

/// The database error inside a failed tokio-postgres connection.
fn db_error(e: &anyhow::Error) -> anyhow::Result<tokio_postgres::error::DbError> {
    let pg = e
        .downcast_ref::<tokio_postgres::Error>()
        .with_context(|| format!("not a PostgreSQL error: {e:#}"))?;
    pg.as_db_error()
        .cloned()
        .with_context(|| format!("no server error: {e:#}"))
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_error() -> anyhow::Result<()> {
    let (db, pgward) = start("wrong_password_unknown_user").await?;
    let wrong = pgward
        .connect_as("alice", "not-alice")
        .await
        .err()
        .context("alice logged in with a wrong password")?;
    let unknown = pgward
        .connect_as("mallory", "not-alice")
        .await
        .err()
        .context("an unknown user logged in")?;
    let wrong = db_error(&wrong)?;
    let unknown = db_error(&unknown)?;
    for (user, e) in [("alice", &wrong), ("mallory", &unknown)] {
        assert_eq!(e.code().code(), "28P01", "{user}: {e:?}");
        assert_eq!(e.severity(), "FATAL");
        assert_eq!(
            e.message(),
            format!("password authentication failed for user \"{user}\"")
        );
    }
    assert_eq!(wrong.detail(), unknown.detail());
    assert_eq!(wrong.hint(), unknown.hint());

    // And what a person sees in psql, names aside.
    let mut shown = Vec::new();
    for user in ["alice", "mallory"] {
        let out = tokio::process::Command::new("psql")
            .arg(pgward.conn_string(user, "not-alice", db.name()))
            .args(["-X", "-w", "-tAc", "SELECT 1"])
            .env("PGPASSFILE", "/dev/null")
            .output()
            .await?;
        assert!(!out.status.success(), "psql as {user} succeeded");
        shown.push(String::from_utf8_lossy(&out.stderr).replace(user, "<user>"));
    }
    assert!(
        shown[0].contains("password authentication failed for user \"<user>\""),
        "{}",
        shown[0]
    );
    assert_eq!(shown[0], shown[1]);
    Ok(())
}

#[tokio::test]
async fn unknown_users_get_the_same_scram_exchange() -> anyhow::Result<()> {
    let (db, pgward) = start("unknown_user_scram").await?;

    // The raw client works: the right password logs in, and the server's
    // signature checks out.
    let ok = attempt(&pgward, &db, "alice", "alice").await?;
    assert!(ok.error.is_none(), "{ok:?}");
    let alice_ok = parse_server_first(ok.server_first.as_deref().context("no server-first")?)?;

    let alice = assert_password_failure(&attempt(&pgward, &db, "alice", "wrong").await?, "alice")?;
    let mallory =
        assert_password_failure(&attempt(&pgward, &db, "mallory", "wrong").await?, "mallory")?;
    let mallory_again =
        assert_password_failure(&attempt(&pgward, &db, "mallory", "other").await?, "mallory")?;
    let trudy = assert_password_failure(&attempt(&pgward, &db, "trudy", "wrong").await?, "trudy")?;

    assert_eq!(alice.keys, vec!["r", "s", "i"]);
    for (name, sf) in [
        ("mallory", &mallory),
        ("mallory again", &mallory_again),
        ("trudy", &trudy),
    ] {
        assert_eq!(sf.keys, alice.keys, "{name}");
        assert_eq!(sf.iterations, alice.iterations, "{name}");
        assert_eq!(sf.salt.len(), alice.salt.len(), "{name}");
        assert_eq!(sf.nonce.len(), alice.nonce.len(), "{name}: nonce length");
    }
    assert_eq!(alice.salt.len(), 16, "PostgreSQL's salt length");
    assert_eq!(alice.salt, alice_ok.salt, "a real user's salt is stable");
    assert_eq!(
        mallory.salt, mallory_again.salt,
        "an unknown user's salt must be stable, or retrying gives it away"
    );
    assert_ne!(mallory.salt, trudy.salt, "salts differ across names");
    assert_ne!(mallory.salt, alice.salt);
    assert_ne!(mallory.nonce, mallory_again.nonce, "nonces are fresh");
    Ok(())
}

#[tokio::test]
async fn users_without_a_password_cannot_log_in() -> anyhow::Result<()> {
    let (db, pgward) = start("users_without_password").await?;
    let alice = assert_password_failure(&attempt(&pgward, &db, "alice", "wrong").await?, "alice")?;
    for user in ["carl", "dora"] {
        for password in ["", user, "alice"] {
            let exchange = attempt(&pgward, &db, user, password).await?;
            let sf = assert_password_failure(&exchange, user)
                .with_context(|| format!("{user} with password {password:?}"))?;
            assert_eq!(sf.iterations, alice.iterations);
            assert_eq!(sf.salt.len(), alice.salt.len());
        }
        let e = pgward
            .connect_as(user, user)
            .await
            .err()
            .with_context(|| format!("{user} logged in"))?;
        assert_eq!(db_error(&e)?.code().code(), "28P01");
    }
    Ok(())
}

fn with_secret(secret: &str) -> PgwardOptions {
    PgwardOptions {
        policies: policies(),
        extra_toml: format!("[auth]\nsecret = \"{secret}\"\n"),
        ..PgwardOptions::default()
    }
}

async fn failed_server_first(
    pgward: &Pgward,
    db: &TestDb,
    user: &str,
) -> anyhow::Result<ServerFirst> {
    assert_password_failure(&attempt(pgward, db, user, "wrong").await?, user)
}

#[tokio::test]
async fn unknown_users_salt_survives_a_restart_with_a_configured_secret() -> anyhow::Result<()> {
    let db = TestDb::new("unknown_salt_restart").await?;
    let first = db.start_pgward(with_secret("0123456789abcdef")).await?;
    let before = failed_server_first(&first, &db, "mallory").await?;
    drop(first);
    let second = db.start_pgward(with_secret("0123456789abcdef")).await?;
    let after = failed_server_first(&second, &db, "mallory").await?;
    assert_eq!(before.salt, after.salt);
    drop(second);
    let other = db.start_pgward(with_secret("another secret")).await?;
    let elsewhere = failed_server_first(&other, &db, "mallory").await?;
    assert_ne!(
        before.salt, elsewhere.salt,
        "the salt depends on the secret"
    );
    Ok(())
}

/// With `auth.secret` set, an unknown name keeps its salt across restarts,
/// so a real user must keep theirs too; otherwise comparing the salts
/// before and after a restart tells which names exist.
#[tokio::test]
async fn known_users_salt_survives_a_restart_like_an_unknown_users() -> anyhow::Result<()> {
    let db = TestDb::new("known_salt_restart").await?;
    let first = db.start_pgward(with_secret("0123456789abcdef")).await?;
    let alice_before = failed_server_first(&first, &db, "alice").await?;
    let mallory_before = failed_server_first(&first, &db, "mallory").await?;
    drop(first);
    let second = db.start_pgward(with_secret("0123456789abcdef")).await?;
    let alice_after = failed_server_first(&second, &db, "alice").await?;
    let mallory_after = failed_server_first(&second, &db, "mallory").await?;
    assert_eq!(mallory_before.salt, mallory_after.salt);
    assert_eq!(
        alice_before.salt, alice_after.salt,
        "alice's salt changed across a restart while an unknown user's did not"
    );
    Ok(())
}

/// As in PostgreSQL, the database name is checked only after the password,
/// so a wrong database tells nothing before authentication.
#[tokio::test]
async fn the_database_is_checked_after_the_password() -> anyhow::Result<()> {
    let (_db, pgward) = start("database_after_password").await?;
    for (user, password, expected) in [
        ("alice", "wrong", "28P01"),
        ("mallory", "alice", "28P01"),
        ("alice", "alice", "3D000"),
    ] {
        let e = pgward
            .connect(user, password, "no_such_database")
            .await
            .err()
            .with_context(|| format!("{user} reached a database that does not exist"))?;
        assert_eq!(
            db_error(&e)?.code().code(),
            expected,
            "{user}/{password}: {e:#}"
        );
    }
    Ok(())
}
