//! The catalog snapshot against a real PostgreSQL, loaded as the
//! non-superuser service role: relations and their kinds, columns, keys and
//! parents; functions and operators with their leakproof flags; types;
//! refreshes; and how long loading takes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgward::catalog::{Catalog, CatalogHandle, RelKind, Relation};

use crate::harness::{SERVICE_ROLE, TestDb};

const SETUP: &str = "
CREATE SCHEMA sales;
CREATE SCHEMA hr;
CREATE SCHEMA hidden;
CREATE TABLE sales.orders (
    id int PRIMARY KEY,
    note text,
    amount numeric(10,2) NOT NULL,
    region varchar(20)
);
ALTER TABLE sales.orders DROP COLUMN note;
CREATE TABLE sales.lines (order_id int, line int, qty int, PRIMARY KEY (line, order_id));
CREATE TABLE sales.\"Mixed Case\" (\"Id\" int);
CREATE VIEW sales.big_orders AS SELECT id, amount FROM sales.orders WHERE amount > 100;
CREATE MATERIALIZED VIEW sales.totals AS SELECT count(*) AS n FROM sales.orders;
CREATE TABLE sales.events (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE sales.events_2024 PARTITION OF sales.events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE SEQUENCE sales.order_ids;
CREATE TABLE hr.people (id int PRIMARY KEY, name text);
CREATE TABLE hr.contractors (agency text) INHERITS (hr.people);
CREATE TABLE public.orders (x int);
CREATE TABLE hidden.secrets (s text);
CREATE TYPE sales.mood AS ENUM ('ok', 'meh');
CREATE FUNCTION sales.order_total(int) RETURNS numeric LANGUAGE sql STABLE
    AS 'SELECT amount FROM sales.orders WHERE id = $1';
CREATE FUNCTION sales.order_total(int, int) RETURNS numeric LANGUAGE sql STABLE
    AS 'SELECT sum(amount) FROM sales.orders WHERE id IN ($1, $2)';
CREATE FUNCTION sales.same(a int, b int) RETURNS boolean LANGUAGE sql IMMUTABLE LEAKPROOF
    SECURITY DEFINER AS 'SELECT a = b';
CREATE FUNCTION sales.ids() RETURNS SETOF int LANGUAGE sql AS 'SELECT id FROM sales.orders';
CREATE PROCEDURE sales.touch() LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION public.upper(int) RETURNS text LANGUAGE sql AS 'SELECT $1::text';
";

/// A database with [`SETUP`] made by the superuser, the service role
/// granted USAGE on the schemas it serves, and the snapshot it loads.
async fn loaded(label: &str) -> anyhow::Result<(TestDb, Catalog)> {
    let db = TestDb::new(label).await?;
    let su = db.superuser().await?;
    su.batch_execute(SETUP).await?;
    su.batch_execute(&format!(
        "GRANT USAGE ON SCHEMA sales, hr TO {SERVICE_ROLE}"
    ))
    .await?;
    let service = db.service().await?;
    let catalog = Catalog::load(&service).await?;
    Ok((db, catalog))
}

fn path(schemas: &[&str]) -> Vec<String> {
    schemas.iter().map(|s| s.to_string()).collect()
}

fn table<'c>(catalog: &'c Catalog, schema: &str, name: &str) -> &'c Relation {
    catalog
        .resolve_relation(Some(schema), name, &[])
        .unwrap_or_else(|| panic!("{schema}.{name} is not in the snapshot"))
}

fn columns(relation: &Relation) -> Vec<(&str, &str, bool)> {
    relation
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.type_name.as_str(), c.not_null))
        .collect()
}

#[tokio::test]
async fn relations_kinds_columns_and_keys() -> anyhow::Result<()> {
    let (_db, catalog) = loaded("catalog_relations").await?;

    let orders = table(&catalog, "sales", "orders");
    assert_eq!(orders.kind, RelKind::Table);
    assert_eq!(
        columns(orders),
        [
            ("id", "integer", true),
            ("amount", "numeric(10,2)", true),
            ("region", "character varying(20)", false),
        ],
        "dropped and system columns are left out"
    );
    assert_eq!(
        orders.columns.iter().map(|c| c.attnum).collect::<Vec<_>>(),
        [1, 3, 4]
    );
    assert_eq!(orders.columns[0].type_oid, 23);
    assert_eq!(orders.columns[1].type_oid, 1700);
    assert_eq!(orders.primary_key, ["id"]);
    assert_eq!((orders.parent, orders.is_partition), (None, false));
    assert_eq!(catalog.relation_by_oid(orders.oid), Some(orders));

    assert_eq!(
        table(&catalog, "sales", "lines").primary_key,
        ["line", "order_id"],
        "key order, not column order"
    );
    let mixed = table(&catalog, "sales", "Mixed Case");
    assert_eq!(mixed.columns[0].name, "Id");
    assert!(
        catalog
            .resolve_relation(Some("sales"), "mixed case", &[])
            .is_none()
    );

    let view = table(&catalog, "sales", "big_orders");
    assert_eq!(view.kind, RelKind::View);
    assert_eq!(
        columns(view),
        [("id", "integer", false), ("amount", "numeric(10,2)", false)]
    );
    assert!(view.primary_key.is_empty());
    assert_eq!(
        table(&catalog, "sales", "totals").kind,
        RelKind::MaterializedView
    );
    assert_eq!(
        table(&catalog, "sales", "order_ids").kind,
        RelKind::Sequence
    );

    let events = table(&catalog, "sales", "events");
    let partition = table(&catalog, "sales", "events_2024");
    assert_eq!(events.kind, RelKind::PartitionedTable);
    assert_eq!(events.primary_key, ["id", "at"]);
    assert_eq!(partition.kind, RelKind::Table);
    assert_eq!(
        (partition.parent, partition.is_partition),
        (Some(events.oid), true)
    );
    assert_eq!(partition.primary_key, ["id", "at"]);

    let people = table(&catalog, "hr", "people");
    let contractors = table(&catalog, "hr", "contractors");
    assert_eq!(
        (contractors.parent, contractors.is_partition),
        (Some(people.oid), false)
    );
    assert_eq!(
        columns(contractors),
        [
            ("id", "integer", true),
            ("name", "text", false),
            ("agency", "text", false)
        ]
    );
    assert!(contractors.primary_key.is_empty(), "keys are not inherited");

    // Schemas the service role may not use are still described: the
    // upstream refuses them, not the snapshot.
    assert!(
        catalog
            .resolve_relation(Some("hidden"), "secrets", &[])
            .is_some()
    );
    Ok(())
}

#[tokio::test]
async fn catalog_schemas_are_included_toast_and_temp_are_not() -> anyhow::Result<()> {
    let db = TestDb::new("catalog_schemas").await?;
    // Another session's temporary table, alive while the snapshot is taken.
    let su = db.superuser().await?;
    su.batch_execute("CREATE TEMP TABLE scratch (x int)")
        .await?;
    let service = db.service().await?;
    let catalog = Catalog::load(&service).await?;

    let schemas: Vec<&str> = catalog.schemas().collect();
    for wanted in ["pg_catalog", "information_schema", "public"] {
        assert!(
            schemas.contains(&wanted),
            "{wanted} missing from {schemas:?}"
        );
    }
    assert!(
        schemas
            .iter()
            .all(|s| !s.starts_with("pg_toast") && !s.starts_with("pg_temp")),
        "{schemas:?}"
    );
    assert!(catalog.relations().all(|r| r.name != "scratch"));

    let pg_class = table(&catalog, "pg_catalog", "pg_class");
    assert_eq!(pg_class.kind, RelKind::Table);
    assert_eq!(pg_class.columns[0].name, "oid");
    assert_eq!(
        table(&catalog, "information_schema", "tables").kind,
        RelKind::View
    );
    assert_eq!(
        table(&catalog, "pg_catalog", "pg_stats").kind,
        RelKind::View
    );
    Ok(())
}

#[tokio::test]
async fn resolution_against_search_paths() -> anyhow::Result<()> {
    let (_db, catalog) = loaded("catalog_resolution").await?;
    let oid = |name: &str, p: &[&str]| {
        catalog
            .resolve_relation(None, name, &path(p))
            .map(|r| (r.schema.as_str(), r.name.as_str()))
    };
    assert_eq!(
        oid("orders", &["public", "sales"]),
        Some(("public", "orders"))
    );
    assert_eq!(
        oid("orders", &["sales", "public"]),
        Some(("sales", "orders"))
    );
    assert_eq!(oid("people", &["sales", "hr"]), Some(("hr", "people")));
    assert_eq!(oid("pg_class", &[]), Some(("pg_catalog", "pg_class")));
    assert_eq!(oid("people", &["public"]), None);

    // Overloads: the first schema that has any; pg_catalog first.
    let totals = catalog.resolve_function(None, "order_total", &path(&["sales"]));
    assert_eq!(
        totals
            .iter()
            .map(|f| f.arg_types.clone())
            .collect::<Vec<_>>(),
        [vec![23], vec![23, 23]]
    );
    assert!(totals.iter().all(|f| f.kind == 'f' && f.volatility == 's'));
    let upper = catalog.resolve_function(None, "upper", &path(&["public"]));
    assert!(upper.iter().all(|f| f.schema == "pg_catalog"), "{upper:?}");
    let upper = catalog.resolve_function(None, "upper", &path(&["public", "pg_catalog"]));
    assert_eq!(upper.len(), 1);
    assert_eq!(upper[0].schema, "public");
    let candidates = catalog.function_candidates(None, "upper", &path(&["public"]));
    assert!(candidates.iter().any(|f| f.schema == "public"));
    assert!(candidates.iter().any(|f| f.schema == "pg_catalog"));

    let same = &catalog.resolve_function(Some("sales"), "same", &[])[0];
    assert!(same.leakproof && same.security_definer && !same.returns_set);
    assert_eq!((same.volatility, same.return_type), ('i', 16));
    let ids = &catalog.resolve_function(Some("sales"), "ids", &[])[0];
    assert!(ids.returns_set && !ids.leakproof);
    assert_eq!(
        catalog.resolve_function(Some("sales"), "touch", &[])[0].kind,
        'p'
    );
    assert_eq!(catalog.resolve_function(None, "count", &[])[0].kind, 'a');
    assert_eq!(
        catalog.resolve_function(None, "row_number", &[])[0].kind,
        'w'
    );

    let mood = catalog
        .resolve_type(None, "mood", &path(&["sales"]))
        .expect("sales.mood");
    assert_eq!((mood.category, mood.element), ('E', 0));
    let mood_array = catalog.type_by_oid(mood.array_type).expect("sales._mood");
    assert_eq!(
        (
            mood_array.name.as_str(),
            mood_array.element,
            mood_array.category
        ),
        ("_mood", mood.oid, 'A')
    );
    let int4 = catalog.resolve_type(None, "int4", &[]).expect("int4");
    assert_eq!((int4.oid, int4.category, int4.element), (23, 'N', 0));
    assert_eq!(
        catalog.type_by_oid(int4.array_type).map(|t| t.element),
        Some(23)
    );
    let name = catalog.resolve_type(None, "name", &[]).expect("name");
    assert_eq!(name.element, 0, "fixed-length, not an array");
    Ok(())
}

#[tokio::test]
async fn leakproof_functions_and_operators() -> anyhow::Result<()> {
    let (_db, catalog) = loaded("catalog_leakproof").await?;
    let single = |name: &str| {
        let found = catalog.resolve_function(None, name, &[]);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found[0].clone()
    };
    let int4eq = single("int4eq");
    assert!(int4eq.leakproof);
    assert_eq!(int4eq.arg_types, [23, 23]);
    assert!(!single("numeric_eq").leakproof);
    assert!(!single("numeric_lt").leakproof);
    assert!(single("int4lt").leakproof);
    assert!(!single("int4pl").leakproof, "addition can overflow");

    let eq = catalog.operator("=", 23, 23).expect("int4 = int4");
    assert_eq!(
        (eq.result, eq.function, eq.leakproof),
        (16, int4eq.oid, true)
    );
    for op in ["=", "<>", "<", "<=", ">", ">="] {
        let numeric = catalog.operator(op, 1700, 1700).expect("numeric operator");
        assert!(!numeric.leakproof, "numeric {op} is not leakproof");
        let int = catalog.operator(op, 23, 23).expect("int4 operator");
        assert!(int.leakproof, "int4 {op} is leakproof");
    }
    assert!(catalog.operator("=", 23, 20).is_some(), "int4 = int8");
    let negate = catalog.operator("-", 0, 23).expect("prefix minus");
    assert_eq!(negate.result, 23);
    assert!(
        catalog.operator("=", 23, 1700).is_none(),
        "exact types only"
    );

    // The functions allowlist walks every function: all of pg_proc is here.
    let kinds = catalog
        .functions()
        .filter(|f| f.schema == "pg_catalog")
        .count();
    assert!(kinds > 2000, "only {kinds} pg_catalog functions");
    assert!(catalog.functions().all(|f| "fpaw".contains(f.kind)));
    assert!(catalog.functions().all(|f| "isv".contains(f.volatility)));
    Ok(())
}

#[tokio::test]
async fn refresh_swaps_in_a_new_generation() -> anyhow::Result<()> {
    let db = TestDb::new("catalog_refresh").await?;
    let su = db.superuser().await?;
    let service = db.service().await?;
    let handle = CatalogHandle::load(&service).await?;
    let first = handle.current();
    assert_eq!(first.generation(), 1);

    su.batch_execute("CREATE TABLE public.fresh (id int PRIMARY KEY)")
        .await?;
    // Within the minimum interval of the first load: nothing is loaded.
    let again = handle.refresh(&service).await?;
    assert!(Arc::ptr_eq(&first, &again));
    assert!(
        again
            .resolve_relation(None, "fresh", &path(&["public"]))
            .is_none()
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = handle.refresh(&service).await?;
    assert_eq!(second.generation(), 2);
    assert!(Arc::ptr_eq(&second, &handle.current()));
    let fresh = second
        .resolve_relation(None, "fresh", &path(&["public"]))
        .expect("the new table");
    assert_eq!(fresh.primary_key, ["id"]);
    // Readers holding the old snapshot keep it unchanged.
    assert!(
        first
            .resolve_relation(None, "fresh", &path(&["public"]))
            .is_none()
    );

    // Concurrent callers share one load.
    su.batch_execute("CREATE TABLE public.fresher (id int)")
        .await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (a, b, c) = tokio::try_join!(
        handle.refresh(&service),
        handle.refresh(&service),
        handle.refresh(&service)
    )?;
    assert_eq!(a.generation(), 3);
    assert!(Arc::ptr_eq(&a, &b) && Arc::ptr_eq(&b, &c));
    assert!(
        a.resolve_relation(None, "fresher", &path(&["public"]))
            .is_some()
    );
    Ok(())
}

#[tokio::test]
async fn load_time_of_the_default_catalog() -> anyhow::Result<()> {
    let db = TestDb::new("catalog_load_time").await?;
    let service = db.service().await?;
    Catalog::load(&service).await?; // warm the server's caches
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let started = Instant::now();
        let catalog = Catalog::load(&service).await?;
        times.push(started.elapsed());
        last = Some(catalog);
    }
    times.sort();
    let catalog = last.expect("loaded");
    eprintln!(
        "catalog load: median {:?}, min {:?}, max {:?} ({} relations, {} functions, {} operators, {} types)",
        times[2],
        times[0],
        times[4],
        catalog.relations().count(),
        catalog.functions().count(),
        catalog.operators().count(),
        catalog.types().count(),
    );
    assert!(
        times[2] < Duration::from_secs(2),
        "median load time {:?}",
        times[2]
    );
    Ok(())
}
