//! The demo data set of `policies/demo/` (PRODUCT.md §5): it loads, has the
//! promised rows, and its password verifiers are ones PostgreSQL accepts.

use std::path::{Path, PathBuf};

use pgward::cluster::{quote_ident, quote_literal};

use crate::harness::{TestDb, connect};

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/demo")
}

#[tokio::test]
async fn demo_setup_has_the_rows_of_the_product_contract() -> anyhow::Result<()> {
    let db = TestDb::new("demo_setup_rows").await?;
    let client = db.superuser().await?;
    pgward::demo::load_setup(&client, &demo_dir()).await?;

    let count = |sql: &'static str| {
        let client = &client;
        async move { anyhow::Ok(client.query_one(sql, &[]).await?.get::<_, i64>(0)) }
    };
    assert_eq!(count("SELECT count(*) FROM departments").await?, 3);
    assert_eq!(count("SELECT count(*) FROM employees").await?, 4);
    assert_eq!(count("SELECT count(*) FROM customers").await?, 5);
    assert_eq!(count("SELECT count(*) FROM orders").await?, 12);

    let rows = client
        .query(
            "SELECT salesrep_id, array_agg(id ORDER BY id) FROM orders GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await?;
    let owners: Vec<(i32, Vec<i32>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        owners,
        vec![
            (1, vec![1, 2, 3, 4]),
            (2, vec![5, 6, 7]),
            (3, vec![8, 9, 10, 11, 12])
        ]
    );
    let archived: Vec<i32> = client
        .query(
            "SELECT id FROM orders WHERE status <> 'open' ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(archived, vec![4, 9]);
    assert_eq!(
        count("SELECT count(*) FROM orders WHERE status NOT IN ('open', 'archived')").await?,
        0
    );
    let regions: Vec<String> = client
        .query("SELECT DISTINCT region FROM customers ORDER BY 1", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(regions, vec!["east", "west"]);

    // dave manages department 1: alice, bob and himself; carol is in 2.
    let dept1: Vec<String> = client
        .query(
            "SELECT login FROM employees WHERE department_id = 1 ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(dept1, vec!["alice", "bob", "dave"]);
    assert_eq!(
        count("SELECT count(*) FROM employees WHERE login = 'eve'").await?,
        0
    );
    Ok(())
}

#[tokio::test]
async fn demo_service_role_reaches_only_the_demo_tables() -> anyhow::Result<()> {
    let db = TestDb::new("demo_service_role").await?;
    let client = db.superuser().await?;
    pgward::demo::load_setup(&client, &demo_dir()).await?;
    let role = format!("demo_service_{}", db.name());
    pgward::demo::create_service_role(&client, &role, "pw").await?;

    let service = connect(&format!(
        "host=127.0.0.1 port={} dbname={} user={role} password=pw",
        db.cluster().port(),
        db.name()
    ))
    .await?;
    let orders: i64 = service
        .query_one("SELECT count(*) FROM orders", &[])
        .await?
        .get(0);
    assert_eq!(orders, 12);
    service
        .batch_execute("UPDATE orders SET notes = notes WHERE id = 1")
        .await?;
    let err = service
        .batch_execute("CREATE TABLE public.extra (id int)")
        .await
        .expect_err("the demo service role must not create tables");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    let row = service
        .query_one(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    assert!(!row.get::<_, bool>(0) && !row.get::<_, bool>(1));
    drop(service);
    client
        .batch_execute(&format!(
            "DROP OWNED BY {r}; DROP ROLE {r}",
            r = quote_ident(&role)
        ))
        .await?;
    Ok(())
}

/// Each `CREATE USER name PASSWORD 'SCRAM-SHA-256$…'` of the demo policies
/// must let PostgreSQL itself log `name` in with password `name`. The
/// verifiers are tried on throwaway roles, since the demo names are not ours
/// to create in a shared cluster.
#[tokio::test]
async fn demo_password_verifiers_match_the_logins() -> anyhow::Result<()> {
    let db = TestDb::new("demo_verifiers").await?;
    let text = std::fs::read_to_string(demo_dir().join("10_roles.sql"))?;
    let users: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("CREATE USER "))
        .filter_map(|rest| {
            let (name, rest) = rest.split_once(" PASSWORD '")?;
            let (verifier, _) = rest.split_once('\'')?;
            Some((name, verifier))
        })
        .collect();
    let names: Vec<&str> = users.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, vec!["alice", "bob", "carol", "dave", "eve"]);

    let admin = db.superuser().await?;
    for (name, verifier) in users {
        assert!(
            verifier.starts_with("SCRAM-SHA-256$4096:"),
            "{name}: {verifier}"
        );
        let role = format!("verifier_{}_{name}", db.name());
        admin
            .batch_execute(&format!(
                "CREATE ROLE {} LOGIN PASSWORD {}",
                quote_ident(&role),
                quote_literal(verifier)
            ))
            .await?;
        let login = connect(&format!(
            "host=127.0.0.1 port={} dbname={} user={role} password={name}",
            db.cluster().port(),
            db.name()
        ))
        .await;
        let wrong = connect(&format!(
            "host=127.0.0.1 port={} dbname={} user={role} password=not-{name}",
            db.cluster().port(),
            db.name()
        ))
        .await;
        admin
            .batch_execute(&format!("DROP ROLE {}", quote_ident(&role)))
            .await?;
        login.map_err(|e| anyhow::anyhow!("{name}: password {name} refused: {e}"))?;
        assert!(wrong.is_err(), "{name}: a wrong password was accepted");
    }
    Ok(())
}
