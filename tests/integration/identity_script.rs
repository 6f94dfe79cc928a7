//! Script globals and the script authenticator against a real PostgreSQL:
//! `sql()` with parameters on the service connection, only reading, inside
//! a transaction that leaves nothing behind; and, through pgward, a row
//! filter that depends on a script global.

use std::time::Duration;

use pgward::auth::script::{ScriptAuthOutcome, ScriptAuthSettings, ScriptIdentity, authenticate};
use pgward::globals::script::{ScriptError, ScriptInput, ScriptLimits, evaluate};
use tokio_postgres::Client;

use crate::harness::{PgwardOptions, TestDb};

const SETUP: &str = "
    CREATE TABLE employees (login text PRIMARY KEY, department_id int NOT NULL, salary numeric);
    INSERT INTO employees VALUES ('alice', 1, 100.5), ('bob', 2, 200), ('carol', 1, 300);
    CREATE TABLE rep_regions (login text, region text);
    INSERT INTO rep_regions VALUES ('alice', 'west'), ('alice', 'east'), ('bob', 'north');
    CREATE SEQUENCE tickets;
    CREATE TABLE app_users (login text PRIMARY KEY, password text, id int, roles text[]);
    INSERT INTO app_users VALUES ('dora', 'dora-pw', 7, '{employee,auditor}');
";

async fn setup(label: &str) -> anyhow::Result<(TestDb, Client)> {
    let db = TestDb::new(label).await?;
    let client = db.service().await?;
    client.batch_execute(SETUP).await?;
    Ok((db, client))
}

fn input(login: &str) -> ScriptInput {
    ScriptInput {
        login: login.into(),
        roles: vec!["employee".into()],
        ..ScriptInput::default()
    }
}

fn limits() -> ScriptLimits {
    ScriptLimits {
        timeout: Duration::from_millis(1500),
        memory_limit: 16 * 1024 * 1024,
    }
}

fn pg(name: &str, t: &str) -> (String, String) {
    (name.into(), format!("pg_catalog.{t}"))
}

fn some(s: &str) -> Option<String> {
    Some(s.into())
}

/// Whether the connection is back where it was: no open transaction (a
/// script's read-only one would show as transaction_read_only = on), the
/// default search_path, nothing written.
async fn untouched(client: &Client) -> anyhow::Result<()> {
    let row = client
        .query_one(
            "SELECT current_setting('search_path'), current_setting('transaction_read_only'), \
             (SELECT count(*) FROM employees)",
            &[],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "\"$user\", public");
    assert_eq!(row.get::<_, String>(1), "off");
    assert_eq!(row.get::<_, i64>(2), 3);
    Ok(())
}

#[tokio::test]
async fn script_globals_query_with_parameters() -> anyhow::Result<()> {
    let (_db, client) = setup("script_sql_params").await?;

    // One row as an object.
    let v = evaluate(
        "const rows = sql('SELECT department_id AS dept, salary FROM employees WHERE login = $1', login);
         return rows[0];",
        &input("alice"),
        &client,
        &limits(),
    )
    .await?;
    assert_eq!(v.columns, [pg("dept", "int8"), pg("salary", "numeric")]);
    assert_eq!(v.rows, [[some("1"), some("100.5")]]);

    // A list.
    let v = evaluate(
        "return sql('SELECT region FROM rep_regions WHERE login = $1 ORDER BY region', login)
                .map(r => r.region);",
        &input("alice"),
        &client,
        &limits(),
    )
    .await?;
    assert_eq!(v.columns, [pg("value", "text")]);
    assert_eq!(v.rows, [[some("east")], [some("west")]]);

    // Typed parameters: integers, arrays, booleans, NULL.
    let v = evaluate(
        "const a = sql('SELECT $1::int + $2::int8 AS n', 40, 2)[0].n;
         const b = sql('SELECT count(*) AS n FROM employees WHERE login = ANY($1)', ['alice', 'bob'])[0].n;
         const c = sql('SELECT count(*) AS n FROM employees WHERE department_id = ANY($1)', [1])[0].n;
         const d = sql('SELECT $1::bool AND true AS t, $2::text IS NULL AS n', true, null)[0];
         return {a, b, c, t: d.t, n: d.n};",
        &input("alice"),
        &client,
        &limits(),
    )
    .await?;
    assert_eq!(
        v.rows,
        [[some("42"), some("2"), some("2"), some("true"), some("true")]]
    );

    // A value is a parameter, never SQL text.
    let v = evaluate(
        "return sql('SELECT login FROM employees WHERE login = $1', login).length;",
        &input("x' OR '1'='1"),
        &client,
        &limits(),
    )
    .await?;
    assert_eq!(v.rows, [[some("0")]]);

    // A failing query is an exception the script may catch...
    let v = evaluate(
        "try { sql('SELECT nope FROM employees'); return 'ran'; } catch (e) { return e.message; }",
        &input("alice"),
        &client,
        &limits(),
    )
    .await?;
    let message = v.rows[0][0].clone().unwrap_or_default();
    assert!(
        message.contains("column \"nope\" does not exist"),
        "{message}"
    );
    // ...and query again after it.
    let v = evaluate(
        "try { sql('SELECT 1/0 AS x'); } catch (e) {}
         return sql('SELECT count(*) AS n FROM employees')[0].n;",
        &input("alice"),
        &client,
        &limits(),
    )
    .await?;
    assert_eq!(v.rows, [[some("3")]]);
    // ...or that fails the global; a wrong parameter count too.
    for bad in [
        "return sql('SELECT nope FROM employees')",
        "return sql('SELECT $1::int AS x')",
        "return sql('SELECT $1::numeric AS x', 1)",
    ] {
        let err = evaluate(bad, &input("alice"), &client, &limits())
            .await
            .expect_err(bad);
        assert!(matches!(err, ScriptError::Thrown(_)), "{bad}: {err}");
    }
    untouched(&client).await
}

#[tokio::test]
async fn script_sql_only_reads_and_leaves_nothing_behind() -> anyhow::Result<()> {
    let (_db, client) = setup("script_sql_reads").await?;
    for (write, why) in [
        ("DELETE FROM employees", "one SELECT"),
        ("UPDATE employees SET salary = 0", "one SELECT"),
        (
            "WITH d AS (DELETE FROM employees RETURNING *) SELECT count(*) FROM d",
            "only reads",
        ),
        ("SELECT nextval('tickets')", "read-only transaction"),
        (
            "SELECT * FROM employees FOR UPDATE",
            "read-only transaction",
        ),
        ("SELECT 1 INTO t2", "INTO is not allowed"),
        ("COMMIT", "one SELECT"),
        ("SELECT 1; DELETE FROM employees", "one SELECT"),
        ("SET search_path = pg_temp", "one SELECT"),
    ] {
        let script = format!("return sql({write:?})");
        let err = evaluate(&script, &input("alice"), &client, &limits())
            .await
            .expect_err(write);
        assert!(
            matches!(&err, ScriptError::Thrown(m) if m.contains(why)),
            "{write}: {err}"
        );
    }
    // A setting changed by a function is rolled back with the transaction.
    let v = evaluate(
        "sql(\"SELECT set_config('search_path', 'pg_temp', false)\");
         return sql('SELECT current_setting($1) AS p', 'search_path')[0].p;",
        &input("alice"),
        &client,
        &limits(),
    )
    .await?;
    assert_eq!(v.rows, [[some("pg_temp")]]);
    untouched(&client).await?;

    // A query that outlives the script's time is stopped with it.
    let started = std::time::Instant::now();
    let err = evaluate(
        "return sql('SELECT pg_sleep(30)')",
        &input("alice"),
        &client,
        &limits(),
    )
    .await
    .expect_err("pg_sleep(30) must time out");
    assert_eq!(err, ScriptError::Timeout(1500));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    untouched(&client).await
}

fn auth_settings(source: &str) -> anyhow::Result<ScriptAuthSettings> {
    let mut settings = ScriptAuthSettings {
        source_file: None,
        source: Some(source.into()),
        timeout_ms: 1000,
        memory_limit: 16 * 1024 * 1024,
    };
    settings
        .validate(std::path::Path::new("/"))
        .map_err(anyhow::Error::msg)?;
    Ok(settings)
}

#[tokio::test]
async fn script_authenticator_checks_a_users_table() -> anyhow::Result<()> {
    let (_db, client) = setup("script_auth").await?;
    let settings = auth_settings(
        "if (login === 'locked') throw new Error('locked out');
         if (login === 'spin') while (true) {}
         const u = sql('SELECT password, id, roles FROM app_users WHERE login = $1', login)[0];
         if (!u) return null;
         if (u.password !== password) return false;
         return { user_id: u.id, roles: u.roles, groups: client_addr === '10.1.1.1' ? ['office'] : [] };",
    )?;
    assert_eq!(
        authenticate(&settings, "dora", "dora-pw", Some("10.1.1.1"), &client).await?,
        ScriptAuthOutcome::Accepted(ScriptIdentity {
            login: "dora".into(),
            user_id: Some("7".into()),
            roles: vec!["employee".into(), "auditor".into()],
            groups: vec!["office".into()],
        })
    );
    assert_eq!(
        authenticate(&settings, "dora", "wrong", None, &client).await?,
        ScriptAuthOutcome::Rejected
    );
    assert_eq!(
        authenticate(&settings, "nobody", "x", None, &client).await?,
        ScriptAuthOutcome::Unknown
    );
    assert_eq!(
        authenticate(&settings, "locked", "x", None, &client).await?,
        ScriptAuthOutcome::Rejected
    );
    assert_eq!(
        authenticate(&settings, "spin", "x", None, &client).await,
        Err(ScriptError::Timeout(1000))
    );
    // Anything but an object, null or false is an error, never an acceptance.
    for odd in [
        "return true",
        "return 1",
        "return 'yes'",
        "return {roles: 3}",
    ] {
        let result = authenticate(&auth_settings(odd)?, "dora", "dora-pw", None, &client).await;
        assert!(
            matches!(result, Err(ScriptError::Result(_))),
            "{odd}: {result:?}"
        );
    }
    untouched(&client).await
}

/// Through pgward: a policy whose filter uses a script global. Needs the
/// globals resolution to run script globals (src/globals/mod.rs).
#[tokio::test]
async fn script_global_filters_rows_through_pgward() -> anyhow::Result<()> {
    let (db, client) = setup("script_global_pgward").await?;
    client
        .batch_execute("INSERT INTO employees VALUES ('frank', 3, 0), ('gina', 3, 0)")
        .await?;
    let policies = "
        CREATE ROLE employee;
        CREATE USER alice PASSWORD 'alice' IN ROLE employee;
        CREATE USER bob PASSWORD 'bob' IN ROLE employee;
        CREATE USER erin PASSWORD 'erin' IN ROLE employee;
        CREATE GLOBAL my_department FOR ROLE employee REQUIRED LANGUAGE javascript AS $$
            const rows = sql('SELECT department_id FROM employees WHERE login = $1', login);
            return rows.length ? { id: rows[0].department_id } : null;
        $$;
        CREATE USER frank PASSWORD 'frank' IN ROLE employee;
        CREATE USER gina PASSWORD 'gina' IN ROLE employee;
        CREATE GLOBAL my_regions FOR ROLE employee LANGUAGE javascript AS $$
            if (login === 'frank') throw new Error('no regions for ' + login);
            if (login === 'gina') while (true) {}
            return sql('SELECT region FROM rep_regions WHERE login = $1', login).map(r => r.region);
        $$;
        GRANT SELECT (login, department_id) ON employees TO employee;
        GRANT SELECT ON rep_regions TO employee;
        CREATE POLICY same_department ON employees FOR SELECT TO employee
            USING (department_id = @{my_department.id});
        CREATE POLICY own_regions ON rep_regions FOR SELECT TO employee
            USING (region = ANY(@{my_regions}));
    ";
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(policies))
        .await?;
    let logins = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    };

    let alice = pgward.connect_as("alice", "alice").await?;
    assert_eq!(
        logins(
            alice
                .query("SELECT login FROM employees ORDER BY login", &[])
                .await?
        ),
        ["alice", "carol"]
    );
    assert_eq!(
        logins(
            alice
                .query("SELECT region FROM rep_regions ORDER BY region", &[])
                .await?
        ),
        ["east", "west"]
    );
    let bob = pgward.connect_as("bob", "bob").await?;
    assert_eq!(
        logins(
            bob.query("SELECT login FROM employees ORDER BY login", &[])
                .await?
        ),
        ["bob"]
    );
    assert_eq!(
        logins(bob.query("SELECT region FROM rep_regions", &[]).await?),
        ["north"]
    );
    // erin has no employees row: the REQUIRED global fails her login, 28000
    // naming it.
    let refused = |user: &'static str| {
        let pgward = &pgward;
        async move {
            let err = pgward
                .connect_as(user, user)
                .await
                .expect_err("the login must fail");
            err.chain()
                .find_map(|e| e.downcast_ref::<tokio_postgres::Error>())
                .and_then(|e| e.as_db_error())
                .map(|e| (e.code().code().to_string(), e.message().to_string()))
        }
    };
    assert_eq!(
        refused("erin").await,
        Some((
            "28000".into(),
            "required global \"my_department\" has no value for this login".into()
        ))
    );
    // A script that throws, or runs past its time: 28000 naming the global.
    for user in ["frank", "gina"] {
        assert_eq!(
            refused(user).await,
            Some((
                "28000".into(),
                "global \"my_regions\" could not be evaluated".into()
            )),
            "{user}"
        );
    }
    assert!(
        pgward.log().contains("no regions for frank"),
        "{}",
        pgward.log()
    );
    Ok(())
}

/// Dynamic roles by script: `CREATE GLOBAL roles LANGUAGE javascript`
/// extends the session's roles at login.
#[tokio::test]
async fn a_script_roles_global_adds_roles_at_login() -> anyhow::Result<()> {
    let (db, _client) = setup("script_dynamic_roles").await?;
    let policies = "
        CREATE ROLE employee;
        CREATE ROLE auditor;
        CREATE USER alice PASSWORD 'alice' IN ROLE employee;
        CREATE USER bob PASSWORD 'bob' IN ROLE employee;
        CREATE GLOBAL roles LANGUAGE javascript AS $$
            const rich = sql('SELECT 1 AS x FROM employees WHERE login = $1 AND salary > 150', login);
            return rich.length ? ['auditor'] : [];
        $$;
        GRANT SELECT (login, department_id) ON employees TO employee;
        GRANT SELECT ON employees TO auditor;
        CREATE POLICY everyone ON employees FOR SELECT TO employee, auditor USING (true);
    ";
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(policies))
        .await?;
    let bob = pgward.connect_as("bob", "bob").await?;
    let row = bob
        .query_one("SELECT sum(salary)::text FROM employees", &[])
        .await?;
    assert_eq!(row.get::<_, String>(0), "600.5");
    let alice = pgward.connect_as("alice", "alice").await?;
    let err = alice
        .query("SELECT sum(salary) FROM employees", &[])
        .await
        .expect_err("alice is no auditor");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    Ok(())
}
