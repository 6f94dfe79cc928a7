//! The identity core end to end (PRODUCT.md §2 "Authentication rules", §3
//! "Globals"): every source ends in one identity whose roles, groups, user
//! id and claims drive the same row filter. Users from a table (SCRAM
//! verifiers under SCRAM, bcrypt and argon2 hashes under cleartext), guests,
//! lockout, dynamic roles, and an unknown user that looks like a known one.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::harness::{Pgward, PgwardOptions, SERVICE_ROLE, TestDb};
use crate::policy_reads::psql;

/// The row filter every identity test reads through: each row is visible
/// for one reason (a role, the login, a group, a claim, the user id).
pub(crate) const POLICIES: &str = "\
CREATE ROLE reader;
CREATE ROLE editor IN ROLE reader;
CREATE ROLE guest;
CREATE USER alice PASSWORD 'alice' IN ROLE reader;
GRANT SELECT ON docs TO reader;
GRANT SELECT ON docs TO guest;
CREATE POLICY by_identity ON docs FOR SELECT TO reader USING (
    visible_to = ANY(@{roles}) OR owner = @{login_id} OR grp = ANY(@{groups})
    OR tenant = @{claims.tenant} OR uid = @{user_id} OR grp = ANY(@{claims.teams})
    OR grp = @{claims.org.unit});
CREATE POLICY guests ON docs FOR SELECT TO guest USING (visible_to = 'guest');
";

/// A database with `docs` (and `app_users`, the users table).
pub(crate) async fn identity_db(label: &str) -> anyhow::Result<TestDb> {
    let db = TestDb::new(label).await?;
    let su = db.superuser().await?;
    su.batch_execute(&format!(
        "CREATE TABLE docs (id int PRIMARY KEY, visible_to text, owner text, grp text, \
                            tenant text, uid bigint);
         INSERT INTO docs VALUES
           (1, 'reader', NULL, NULL, NULL, NULL),
           (2, 'editor', NULL, NULL, NULL, NULL),
           (3, NULL, 'tina', NULL, NULL, NULL),
           (4, NULL, NULL, 'g1', NULL, NULL),
           (5, NULL, NULL, NULL, 'acme', NULL),
           (6, NULL, NULL, NULL, NULL, 7),
           (7, 'guest', NULL, NULL, NULL, NULL),
           (8, 'nobody', NULL, NULL, NULL, NULL);
         CREATE TABLE app_users (login text PRIMARY KEY, verifier text, user_id int,
                                 roles text[], groups text[]);
         CREATE TABLE user_roles (login text, role text);
         GRANT SELECT ON docs, app_users, user_roles TO {SERVICE_ROLE};"
    ))
    .await?;
    Ok(db)
}

pub(crate) fn options(extra_toml: &str) -> PgwardOptions {
    PgwardOptions {
        extra_toml: extra_toml.to_string(),
        ..PgwardOptions::with_policies(POLICIES)
    }
}

/// The ids of `docs` a session sees (through tokio-postgres).
pub(crate) async fn visible(client: &tokio_postgres::Client) -> anyhow::Result<Vec<i32>> {
    let rows = client.query("SELECT id FROM docs ORDER BY id", &[]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Logs in through pgward and returns the ids the session sees.
pub(crate) async fn sees(pgward: &Pgward, user: &str, password: &str) -> anyhow::Result<Vec<i32>> {
    let client = pgward.connect_as(user, password).await?;
    visible(&client).await
}

/// The SQLSTATE, message and hint a refused login gets.
pub(crate) async fn refusal(
    pgward: &Pgward,
    user: &str,
    password: &str,
) -> anyhow::Result<(String, String, Option<String>)> {
    match pgward.connect_as(user, password).await {
        Ok(_) => anyhow::bail!("{user} logged in"),
        Err(e) => {
            let db = e
                .chain()
                .find_map(|c| c.downcast_ref::<tokio_postgres::Error>())
                .and_then(|e| e.as_db_error())
                .with_context(|| format!("no server error: {e:#}"))?;
            Ok((
                db.code().code().to_string(),
                db.message().to_string(),
                db.hint().map(str::to_string),
            ))
        }
    }
}

fn failed(user: &str) -> (String, String, Option<String>) {
    (
        "28P01".into(),
        format!("password authentication failed for user \"{user}\""),
        None,
    )
}

/// No lockout, so that a test's deliberate failures do not slow it down.
const NO_LOCKOUT: &str = "[auth.lockout]\nmax_failures = 0\n";

#[tokio::test]
async fn table_users_with_scram_verifiers_log_in_with_scram() -> anyhow::Result<()> {
    let db = identity_db("identity_table_scram").await?;
    // PostgreSQL itself makes the verifier, as for its own roles.
    let su = db.superuser().await?;
    su.batch_execute(
        "SET password_encryption = 'scram-sha-256';
         CREATE ROLE verifier_source PASSWORD 'tina-pw';
         INSERT INTO app_users
           SELECT 'tina', rolpassword, 7, ARRAY['editor'], ARRAY['g1']
             FROM pg_authid WHERE rolname = 'verifier_source';
         DROP ROLE verifier_source;
         INSERT INTO app_users VALUES ('nopw', NULL, 1, ARRAY['editor'], NULL);",
    )
    .await?;
    let pgward = db
        .start_pgward(options(&format!(
            "[auth]\norder = [\"policy\", \"table\"]\n\
             [auth.table]\nquery = \"SELECT verifier, user_id, roles, groups FROM app_users WHERE login = $1\"\n\
             {NO_LOCKOUT}"
        )))
        .await?;
    // Roles (editor → reader), login, group and user id each show a row.
    assert_eq!(sees(&pgward, "tina", "tina-pw").await?, [1, 2, 3, 4, 6]);
    // The policy-file user still logs in, with its own roles only.
    assert_eq!(sees(&pgward, "alice", "alice").await?, [1]);
    assert_eq!(refusal(&pgward, "tina", "wrong").await?, failed("tina"));
    assert_eq!(refusal(&pgward, "nopw", "").await?, failed("nopw"));
    assert_eq!(
        refusal(&pgward, "nobody", "tina-pw").await?,
        failed("nobody")
    );
    // SCRAM, so psql with a password from the environment works too.
    let (out, err) = psql(
        &pgward.conn_string("tina", "tina-pw", db.name()),
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM docs",
    )
    .await?;
    assert_eq!(out.trim(), "1,2,3,4,6", "{err}");
    Ok(())
}

#[tokio::test]
async fn table_users_with_bcrypt_and_argon2_hashes_use_cleartext() -> anyhow::Result<()> {
    let db = identity_db("identity_table_hash").await?;
    let bcrypt_hash = bcrypt::hash("tina-pw", 4)?;
    let argon2_hash = {
        use argon2::PasswordHasher;
        let salt = argon2::password_hash::SaltString::from_b64("dGVzdHNhbHR0ZXN0c2FsdA")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        argon2::Argon2::default()
            .hash_password(b"otto-pw", &salt)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .to_string()
    };
    let su = db.superuser().await?;
    su.execute(
        "INSERT INTO app_users VALUES ('tina', $1, 7, ARRAY['editor'], ARRAY['g1']), \
                                      ('otto', $2, NULL, ARRAY['reader'], NULL)",
        &[&bcrypt_hash, &argon2_hash],
    )
    .await?;
    let table = "[auth.table]\nquery = \"SELECT verifier, user_id, roles, groups FROM app_users WHERE login = $1\"\nverifiers = \"hash\"\n";
    let pgward = db
        .start_pgward(options(&format!(
            "[auth]\norder = [\"policy\", \"table\"]\nallow_cleartext_on_loopback = true\n\
             {table}{NO_LOCKOUT}"
        )))
        .await?;
    assert_eq!(sees(&pgward, "tina", "tina-pw").await?, [1, 2, 3, 4, 6]);
    assert_eq!(sees(&pgward, "otto", "otto-pw").await?, [1]);
    // Policy-file users are checked against their verifier in clear text.
    assert_eq!(sees(&pgward, "alice", "alice").await?, [1]);
    assert_eq!(refusal(&pgward, "tina", "otto-pw").await?, failed("tina"));
    assert_eq!(refusal(&pgward, "alice", "wrong").await?, failed("alice"));
    assert_eq!(refusal(&pgward, "nobody", "x").await?, failed("nobody"));
    let (out, err) = psql(
        &pgward.conn_string("otto", "otto-pw", db.name()),
        "SELECT count(*) FROM docs",
    )
    .await?;
    assert_eq!(out.trim(), "1", "{err}");

    // Without the loopback exception, cleartext needs TLS: refused for
    // every user alike, before any password is asked for.
    let strict = db
        .start_pgward(options(&format!(
            "[auth]\norder = [\"policy\", \"table\"]\n{table}"
        )))
        .await?;
    for user in ["tina", "nobody"] {
        let (code, message, hint) = refusal(&strict, user, "tina-pw").await?;
        assert_eq!(
            (code.as_str(), message.as_str(), hint.as_deref()),
            (
                "28000",
                "pgward accepts passwords only over TLS",
                Some("Connect with sslmode=require.")
            )
        );
    }
    Ok(())
}

#[tokio::test]
async fn guests_get_only_the_guest_role() -> anyhow::Result<()> {
    let db = identity_db("identity_guest").await?;
    let on = db
        .start_pgward(options(
            "[auth.guest]\nenabled = true\nuser = \"visitor\"\n",
        ))
        .await?;
    assert_eq!(sees(&on, "visitor", "").await?, [7]);
    assert_eq!(sees(&on, "visitor", "anything").await?, [7]);
    let c = on.connect_as("visitor", "").await?;
    let roles: String = c.query_one("SELECT current_user::text", &[]).await?.get(0);
    assert_eq!(roles, "visitor");
    // Other users still need their password.
    assert_eq!(sees(&on, "alice", "alice").await?, [1]);
    assert_eq!(refusal(&on, "alice", "").await?, failed("alice"));

    let off = db.start_pgward(options("")).await?;
    assert_eq!(refusal(&off, "visitor", "").await?, failed("visitor"));
    assert_eq!(refusal(&off, "guest", "").await?, failed("guest"));
    Ok(())
}

#[tokio::test]
async fn failed_logins_are_delayed_then_locked_out() -> anyhow::Result<()> {
    let db = identity_db("identity_lockout").await?;
    let pgward = db
        .start_pgward(options(
            "[auth.lockout]\nmax_failures = 100\ndelay_ms = 1500\nmax_delay_ms = 3000\n",
        ))
        .await?;
    let mut took = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(refusal(&pgward, "alice", "wrong").await?, failed("alice"));
        took.push(started.elapsed());
    }
    // The second failure waits for the delay.
    assert!(took[1] >= Duration::from_millis(1500), "{took:?}");
    // A success is never slowed (a third failure would wait 3 s), and
    // resets the name's count.
    let started = Instant::now();
    assert_eq!(sees(&pgward, "alice", "alice").await?, [1]);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // Three failures lock the name (and this address) out: the right
    // password is refused too, with the same error and a hint.
    let pgward = db
        .start_pgward(options(
            "[auth.lockout]\nmax_failures = 3\ndelay_ms = 0\nwindow_s = 60\nduration_s = 3\n",
        ))
        .await?;
    for _ in 0..3 {
        let _ = refusal(&pgward, "alice", "wrong").await?;
    }
    let (code, message, hint) = refusal(&pgward, "alice", "alice").await?;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("28P01", failed("alice").1.as_str())
    );
    assert!(hint.is_some_and(|h| h.contains("Too many failed logins")));
    // Unknown names are throttled alike: the same answer.
    let (code, message, hint) = refusal(&pgward, "nobody", "x").await?;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("28P01", failed("nobody").1.as_str())
    );
    assert!(hint.is_some_and(|h| h.contains("Too many failed logins")));
    // After the lockout, the right password works again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(sees(&pgward, "alice", "alice").await?, [1]);
    Ok(())
}

#[tokio::test]
async fn unknown_names_are_locked_out_like_known_ones() -> anyhow::Result<()> {
    let db = identity_db("identity_lockout_unknown").await?;
    let mut answers = Vec::new();
    for user in ["alice", "ghost"] {
        // A pgward of its own per name: the address's count starts afresh.
        let pgward = db
            .start_pgward(options(
                "[auth.lockout]\nmax_failures = 2\ndelay_ms = 0\nduration_s = 60\n",
            ))
            .await?;
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (code, message, hint) = refusal(&pgward, user, "wrong").await?;
            seen.push((code, message.replace(user, "USER"), hint));
        }
        answers.push(seen);
    }
    let hint = Some(
        "Too many failed logins for this user name or address: try again in 60 s.".to_string(),
    );
    let expected = [
        ("28P01".to_string(), failed("USER").1, None),
        ("28P01".to_string(), failed("USER").1, None),
        ("28P01".to_string(), failed("USER").1, hint),
    ];
    assert_eq!(answers[0], expected);
    assert_eq!(answers[1], expected);
    Ok(())
}

#[tokio::test]
async fn an_unknown_user_is_refused_exactly_like_a_wrong_password() -> anyhow::Result<()> {
    let db = identity_db("identity_unknown").await?;
    // Cleartext method (a table of hashes): every user is asked the same
    // way, and an unknown one fails with the same error as a wrong password.
    let bcrypt_hash = bcrypt::hash("tina-pw", 4)?;
    db.superuser()
        .await?
        .execute(
            "INSERT INTO app_users VALUES ('tina', $1, 7, ARRAY['editor'], NULL)",
            &[&bcrypt_hash],
        )
        .await?;
    let pgward = db
        .start_pgward(options(&format!(
            "[auth]\norder = [\"policy\", \"table\"]\nallow_cleartext_on_loopback = true\n\
             [auth.table]\nquery = \"SELECT verifier, user_id, roles, groups FROM app_users WHERE login = $1\"\n\
             verifiers = \"hash\"\n{NO_LOCKOUT}"
        )))
        .await?;
    for (user, password) in [("tina", "wrong"), ("alice", "wrong"), ("ghost", "wrong")] {
        let mut raw = crate::protocol::Raw::connect(pgward.port()).await?;
        raw.startup(user, db.name()).await?;
        let first = raw.recv().await?.context("closed")?;
        // AuthenticationCleartextPassword for everyone.
        assert_eq!(first.auth_code(), Some(3), "{user}");
        assert_eq!(refusal(&pgward, user, password).await?, failed(user));
    }
    Ok(())
}

#[tokio::test]
async fn dynamic_roles_extend_the_identity_at_login() -> anyhow::Result<()> {
    let db = identity_db("identity_dynamic").await?;
    db.superuser()
        .await?
        .batch_execute(
            "INSERT INTO user_roles VALUES ('alice', 'editor'), ('alice', 'nonexistent');",
        )
        .await?;
    let policies = format!(
        "{POLICIES}\
         CREATE GLOBAL roles AS SELECT role FROM user_roles WHERE login = @{{login_id}};\n\
         CREATE GLOBAL groups AS SELECT 'g1'::text WHERE @{{login_id}} = 'alice';\n\
         CREATE GLOBAL user_id AS SELECT 7::bigint WHERE @{{login_id}} = 'alice';\n\
         CREATE USER bert PASSWORD 'bert' IN ROLE reader;\n"
    );
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&policies))
        .await?;
    // editor from the table (closed over IN ROLE), g1 and user id 7 from
    // the globals, on top of alice's own reader role.
    assert_eq!(sees(&pgward, "alice", "alice").await?, [1, 2, 4, 6]);
    let c = pgward.connect_as("alice", "alice").await?;
    // bert has no extra role: only his own.
    assert_eq!(sees(&pgward, "bert", "bert").await?, [1]);
    drop(c);
    Ok(())
}

#[tokio::test]
async fn an_unknown_user_costs_what_a_known_one_does() -> anyhow::Result<()> {
    let db = identity_db("identity_unknown_timing").await?;
    let bcrypt_hash = bcrypt::hash("tina-pw", 8)?;
    db.superuser()
        .await?
        .execute(
            "INSERT INTO app_users VALUES ('tina', $1, 7, ARRAY['editor'], NULL)",
            &[&bcrypt_hash],
        )
        .await?;
    let pgward = db
        .start_pgward(options(&format!(
            "[auth]\norder = [\"table\"]\nallow_cleartext_on_loopback = true\n\
             [auth.table]\nquery = \"SELECT verifier, user_id, roles, groups FROM app_users WHERE login = $1\"\n\
             verifiers = \"hash\"\n{NO_LOCKOUT}"
        )))
        .await?;
    // Interleaved, so that load on the machine hits both alike.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..7 {
        for (user, times) in [("tina", &mut known), ("ghost", &mut unknown)] {
            let started = Instant::now();
            assert_eq!(refusal(&pgward, user, "wrong").await?, failed(user));
            times.push(started.elapsed());
        }
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[3], unknown[3]);
    // The hash check dominates either way: medians within a factor of two.
    assert!(
        u * 2 > k && k * 2 > u,
        "known {known:?}, unknown {unknown:?}"
    );
    Ok(())
}
