//! Hidden columns named anywhere are refused with 42501 (PRODUCT.md §3
//! semantics 6), through pgward as alice on the demo data set and
//! policies; and the parameter types a Parse message declares reach the
//! rewriter's leak fencing (a `$1` declared numeric against the int4 key
//! keeps the policy filter fenced, one declared int4 does not).

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::harness::PgwardOptions;
use crate::policy_reads::{demo_db, demo_policies};

#[tokio::test]
async fn hidden_column_named_anywhere_is_42501() -> anyhow::Result<()> {
    let db = demo_db("hidden_named").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    let c = pgward.connect_as("alice", "alice").await?;

    for sql in [
        "SELECT id FROM orders ORDER BY margin",
        "SELECT id FROM orders o ORDER BY o.margin",
        "SELECT status FROM orders GROUP BY status ORDER BY max(margin)",
        "SELECT (SELECT o.margin) FROM orders o",
        "SELECT id FROM orders o WHERE EXISTS \
         (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND o.margin > 0)",
        "SELECT x.id FROM orders x JOIN LATERAL (SELECT x.margin) y ON true",
        "SELECT margin FROM orders, generate_series(1, 2) g",
        "SELECT * FROM orders JOIN orders o2 USING (margin)",
        "SELECT public.orders.margin FROM public.orders",
        "SELECT margin FROM (SELECT * FROM orders) s",
        "SELECT c.credit_limit FROM customers c",
    ] {
        let e = c
            .simple_query(sql)
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("{sql}: allowed"))?;
        let db_error = e
            .as_db_error()
            .ok_or_else(|| anyhow::anyhow!("{sql}: {e}"))?;
        assert_eq!(
            db_error.code(),
            &SqlState::INSUFFICIENT_PRIVILEGE,
            "{sql}: {db_error:?}"
        );
        assert!(
            db_error
                .message()
                .starts_with("permission denied for column "),
            "{sql}: {}",
            db_error.message()
        );
        // The session goes on after each refusal.
        let row = c.query_one("SELECT count(*) FROM orders", &[]).await?;
        assert_eq!(row.get::<_, i64>(0), 3);
    }
    let e = c
        .simple_query("SELECT id FROM orders ORDER BY margin")
        .await
        .unwrap_err();
    assert_eq!(
        e.as_db_error().map(|d| d.message()),
        Some("permission denied for column margin of table orders")
    );

    // Names that are not the hidden column still work: an output alias in
    // ORDER BY, a derived table's own column, a correlated visible column.
    let rows = c
        .query("SELECT id AS margin FROM orders ORDER BY margin DESC", &[])
        .await?;
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let rows = c
        .query(
            "SELECT (SELECT margin FROM (SELECT 7 AS margin) s) FROM orders",
            &[],
        )
        .await?;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.get::<_, i32>(0) == 7));
    let rows = c
        .query(
            "SELECT id FROM orders o WHERE EXISTS \
             (SELECT 1 FROM customers c WHERE c.id = o.customer_id) ORDER BY o.id",
            &[],
        )
        .await?;
    assert_eq!(rows.len(), 3);
    Ok(())
}

/// The SQL the upstream backend serving alice last received, once it is
/// idle again.
async fn last_forwarded(su: &tokio_postgres::Client, database: &str) -> anyhow::Result<String> {
    for _ in 0..100 {
        let rows = su
            .query(
                "SELECT query FROM pg_stat_activity \
                 WHERE datname = $1 AND application_name = 'pgward:alice' AND state = 'idle'",
                &[&database],
            )
            .await?;
        if let [row] = rows.as_slice() {
            return Ok(row.get(0));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("no idle upstream backend for alice")
}

/// The plan PostgreSQL makes for the forwarded SQL with `$1` bound to a
/// value of `type_name`, on a connection that bypasses pgward.
async fn plan(
    su: &tokio_postgres::Client,
    forwarded: &str,
    type_name: &str,
) -> anyhow::Result<String> {
    let sql = forwarded.replace("$1", &format!("'2'::{type_name}"));
    let rows = su.simple_query(&format!("EXPLAIN {sql}")).await?;
    Ok(rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

#[tokio::test]
async fn parse_declared_parameter_types_reach_the_fence() -> anyhow::Result<()> {
    let db = demo_db("hidden_parse_types").await?;
    let pgward = db
        .start_pgward(PgwardOptions::with_policies(&demo_policies()?))
        .await?;
    let su = db.superuser().await?;
    let c = pgward.connect_as("alice", "alice").await?;
    let sql = "SELECT id, amount FROM orders WHERE id = $1";

    // Undeclared, then declared int4: $1 is int4, int4 = int4 is
    // leakproof, the policy filter is pulled up with the subquery.
    for types in [&[][..], &[Type::INT4]] {
        let stmt = c.prepare_typed(sql, types).await?;
        assert_eq!(stmt.params(), [Type::INT4]);
        let forwarded = last_forwarded(&su, db.name()).await?;
        assert!(forwarded.contains("\"public\".\"orders\""), "{forwarded}");
        assert!(!forwarded.contains("OFFSET 0"), "{types:?}: {forwarded}");
        assert!(
            !plan(&su, &forwarded, "int4")
                .await?
                .contains("Subquery Scan"),
            "{forwarded}"
        );
        let rows = c.query(&stmt, &[&2i32]).await?;
        assert_eq!(rows.len(), 1);
    }

    // The same text declared numeric: PostgreSQL compares the int4 key as
    // numeric (numeric_eq, not leakproof), so the secured subquery keeps
    // its fence, and the rewrite cache does not hand back the unfenced one.
    let stmt = c.prepare_typed(sql, &[Type::NUMERIC]).await?;
    assert_eq!(stmt.params(), [Type::NUMERIC]);
    let forwarded = last_forwarded(&su, db.name()).await?;
    assert!(forwarded.contains("OFFSET 0)"), "{forwarded}");
    let numeric_plan = plan(&su, &forwarded, "numeric").await?;
    assert!(numeric_plan.contains("Subquery Scan"), "{numeric_plan}");

    // And int4 again: unfenced, from the cache or not.
    c.prepare_typed(sql, &[Type::INT4]).await?;
    let forwarded = last_forwarded(&su, db.name()).await?;
    assert!(!forwarded.contains("OFFSET 0"), "{forwarded}");
    Ok(())
}
