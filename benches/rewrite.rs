//! What a policy-bound statement costs pgward before it reaches the upstream:
//! the rewriter on a cache miss (parse, secure, print, verify with
//! libpg_query — `rewrite::secure_text_session`, as the statement hook calls
//! it) and the rewrite cache on a hit (the hook's key and lookup).
//!
//! The session is built the way a login builds it: a policy set parsed from
//! policy-language text (the demo's files plus a pgbench and a TPC-H-style
//! part), the user's effective roles, the built-in globals plus the values
//! its globals would have had, and `SessionPolicy` as the `Access`. The
//! catalog is a hand-built snapshot of the demo, pgbench and TPC-H-style
//! tables with PostgreSQL's type and function oids.
//!
//! The `parts` group splits the point query's miss into its steps (parse,
//! secure, print, verify, and verify's three libpg_query passes), to show
//! where a miss spends its time.
//!
//! `cargo test --all-targets` runs each case once, and the set-up checks that
//! every case is allowed, secured and cached as expected.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pgward::catalog::{Catalog, CatalogHandle};
use pgward::rewrite::{self, Access, Context};
use pgward::statement::cache::{CacheKey, CachedRewrite, RewriteCache};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

// ------------------------------------------------------------------ statements

/// `pgbench -S`: the statement pgbench prepares, sent in a Parse message.
const POINT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

/// Demo tables: three relations joined, one of them read again in a
/// correlated subquery (four secured relation instances).
const JOIN3_SUBQUERY: &str = "\
SELECT o.id, c.name AS customer, e.name AS salesrep, o.amount, o.status
  FROM orders o
  JOIN customers c ON c.id = o.customer_id
  JOIN employees e ON e.id = o.salesrep_id
 WHERE o.status = 'open'
   AND c.region = 'east'
   AND o.amount > (SELECT avg(o2.amount) FROM orders o2 WHERE o2.customer_id = o.customer_id)
 ORDER BY o.amount DESC, o.id
 LIMIT 20";

/// TPC-H Q1 (pricing summary report) over a row-policed lineitem.
const TPCH_AGGREGATION: &str = "\
SELECT l_returnflag, l_linestatus,
       sum(l_quantity) AS sum_qty,
       sum(l_extendedprice) AS sum_base_price,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       avg(l_quantity) AS avg_qty,
       avg(l_extendedprice) AS avg_price,
       avg(l_discount) AS avg_disc,
       count(*) AS count_order
  FROM lineitem
 WHERE l_shipdate <= DATE '1998-12-01' - INTERVAL '90 days'
 GROUP BY l_returnflag, l_linestatus
 ORDER BY l_returnflag, l_linestatus";

mod common;

use common::{USER, catalog, session};

// ------------------------------------------------------------------ cases

/// The client's search_path as the hook keeps it, and as it hands it to
/// the rewriter (`$user` expanded).
fn search_path() -> Vec<String> {
    vec!["$user".into(), "public".into()]
}

fn expanded(path: &[String]) -> Vec<String> {
    path.iter()
        .map(|s| {
            if s == "$user" {
                USER.to_string()
            } else {
                s.clone()
            }
        })
        .collect()
}

struct Case {
    name: &'static str,
    sql: &'static str,
    /// A Parse message (one statement) or a simple Query.
    single: bool,
    /// Text the forwarded SQL must hold: the policy was applied.
    secured_with: &'static [&'static str],
}

const CASES: [Case; 3] = [
    Case {
        name: "point",
        sql: POINT,
        single: true,
        secured_with: &[
            "FROM \"public\".\"pgbench_accounts\" WHERE",
            "bid = ANY(ARRAY['1'::pg_catalog.int4",
        ],
    },
    Case {
        name: "join3_subquery",
        sql: JOIN3_SUBQUERY,
        single: false,
        secured_with: &[
            "FROM \"public\".\"orders\" WHERE",
            "FROM \"public\".\"customers\" WHERE",
            "FROM \"public\".\"employees\" WHERE",
            "salesrep_id = '1'::pg_catalog.int4",
            "status <> 'archived'",
        ],
    },
    Case {
        name: "tpch_aggregation",
        sql: TPCH_AGGREGATION,
        single: false,
        secured_with: &[
            "FROM \"public\".\"lineitem\" WHERE",
            "s_nationkey = ANY(ARRAY['1'::pg_catalog.int4",
            "l_shipdate >= DATE '1993-01-01'",
        ],
    },
];

/// The forwarded SQL of a case, checked to carry its policy.
fn secure(case: &Case, catalog: &Catalog, access: &dyn Access) -> String {
    let path = expanded(&search_path());
    let ctx = Context {
        catalog,
        search_path: &path,
        access,
    };
    let sql = match rewrite::secure_text_session(case.sql, case.single, &ctx, &search_path()) {
        Ok(secured) => secured.sql,
        Err(e) => panic!("{}: refused with {} {}", case.name, e.code, e.message),
    };
    for part in case.secured_with {
        assert!(sql.contains(part), "{}: no {part:?} in {sql}", case.name);
    }
    assert!(!sql.contains(case.sql), "{}: forwarded as sent", case.name);
    sql
}

/// The hook's cache key for a statement text of this session.
fn cache_key(
    context: &Arc<str>,
    catalog: &CatalogHandle,
    path: &[String],
    case: &Case,
) -> CacheKey {
    CacheKey {
        context: context.clone(),
        generation: catalog.current().generation(),
        search_path: Arc::from(path.to_vec()),
        single: case.single,
        sql: case.sql.as_bytes().into(),
        parameter_types: Box::default(),
    }
}

fn rewrite_benches(c: &mut Criterion) {
    let catalog = catalog();
    let (access, context) = session();
    let path = expanded(&search_path());
    let client_path = search_path();

    let mut miss = c.benchmark_group("miss");
    for case in &CASES {
        // Also warms the session's per-relation access cache, as the
        // session's earlier statements would have.
        secure(case, &catalog, access.as_ref());
        let ctx = Context {
            catalog: &catalog,
            search_path: &path,
            access: access.as_ref(),
        };
        miss.bench_function(case.name, |b| {
            b.iter(|| {
                rewrite::secure_text_session(black_box(case.sql), case.single, &ctx, &client_path)
                    .map(|s| s.sql.len())
                    .ok()
            });
        });
    }
    miss.finish();

    let point = &CASES[0];
    let forwarded = secure(point, &catalog, access.as_ref());
    // The hook reads the generation through the shared handle.
    let catalog = CatalogHandle::new(catalog);
    // A cache as full as a busy server's (10,000 is the server's bound).
    let cache = RewriteCache::new(10_000);
    let hook_path = search_path();
    for i in 0..5_000 {
        let key = CacheKey {
            sql: format!("SELECT abalance FROM pgbench_accounts WHERE aid = {i}")
                .into_bytes()
                .into(),
            ..cache_key(&context, &catalog, &hook_path, &CASES[0])
        };
        cache.insert(
            key,
            Arc::new(CachedRewrite {
                sql: Vec::new(),
                search_path: None,
                shapes: Vec::new(),
            }),
        );
    }
    cache.insert(
        cache_key(&context, &catalog, &hook_path, point),
        Arc::new(CachedRewrite {
            sql: forwarded.clone().into_bytes(),
            search_path: None,
            shapes: Vec::new(),
        }),
    );
    let found = cache
        .get(&cache_key(&context, &catalog, &hook_path, point))
        .map(|hit| hit.sql.clone());
    assert_eq!(
        found,
        Some(forwarded.into_bytes()),
        "the point query is not cached"
    );
    let other = Arc::from(format!("{context}x"));
    assert!(
        cache
            .get(&cache_key(&other, &catalog, &hook_path, point))
            .is_none(),
        "another policy context shares the entry"
    );

    let mut hit = c.benchmark_group("hit");
    hit.bench_function("point", |b| {
        // As `Hook::secure`: the UTF-8 check, the key from the session's
        // state and the statement bytes, the lookup, and the copy of the
        // cached SQL.
        b.iter(|| {
            let sql = black_box(point.sql.as_bytes());
            let text = std::str::from_utf8(sql).ok()?;
            let key = CacheKey {
                context: context.clone(),
                generation: catalog.current().generation(),
                search_path: Arc::from(hook_path.clone()),
                single: point.single,
                sql: sql.into(),
                parameter_types: Box::default(),
            };
            black_box(text);
            cache.get(&key).map(|hit| hit.sql.clone())
        });
    });
    hit.finish();
}

/// The steps of a miss for the point query, each alone.
fn part_benches(c: &mut Criterion) {
    let catalog = catalog();
    let (access, _) = session();
    let path = expanded(&search_path());
    let ctx = Context {
        catalog: &catalog,
        search_path: &path,
        access: access.as_ref(),
    };
    let point = &CASES[0];
    let forwarded = secure(point, &catalog, access.as_ref());
    let parse = || {
        let mut statements =
            Parser::parse_sql(&PostgreSqlDialect {}, point.sql).expect("the point query parses");
        assert_eq!(statements.len(), 1);
        statements.remove(0)
    };
    let statement = parse();
    let rewritten = match rewrite::rewrite(statement.clone(), &ctx) {
        Ok(r) => r,
        Err(e) => panic!("point: refused with {} {}", e.code, e.message),
    };
    let printed = rewritten.statement.to_string();
    assert_eq!(printed, forwarded, "the steps do not add up to the miss");
    let parsed = pg_query::parse(&printed).expect("libpg_query parses the printed SQL");

    let mut parts = c.benchmark_group("parts");
    parts.bench_function("point/parse", |b| b.iter(parse));
    parts.bench_function("point/secure", |b| {
        b.iter_batched(
            || statement.clone(),
            |s| rewrite::rewrite(s, &ctx).is_ok(),
            BatchSize::SmallInput,
        );
    });
    parts.bench_function("point/print", |b| {
        b.iter(|| black_box(&rewritten.statement).to_string());
    });
    parts.bench_function("point/verify", |b| {
        b.iter(|| {
            rewrite::verify::verify_statement(
                black_box(&printed),
                &rewritten.statement,
                &rewritten.expected,
                &ctx,
            )
            .is_ok()
        });
    });
    // What verify does: scan for comments, parse, and read the relation
    // references from the parse tree's Debug form.
    parts.bench_function("point/verify_scan", |b| {
        b.iter(|| {
            pg_query::scan(black_box(&printed))
                .map(|s| s.tokens.len())
                .ok()
        });
    });
    parts.bench_function("point/verify_parse", |b| {
        b.iter(|| {
            pg_query::parse(black_box(&printed))
                .map(|p| p.protobuf.stmts.len())
                .ok()
        });
    });
    parts.bench_function("point/verify_dump", |b| {
        b.iter(|| format!("{:?}", black_box(&parsed.protobuf)).len());
    });
    parts.finish();
}

criterion_group!(benches, rewrite_benches, part_benches);
criterion_main!(benches);
