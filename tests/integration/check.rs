//! `pgward check` as a user runs it: the real binary, a configuration
//! pointing at a test database with the demo schema, policy files in a
//! temporary folder; diagnostics read from stderr, exit status checked.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{SERVICE_ROLE, TestDb};
use crate::policy_reads::demo_dir;

/// A database with the demo schema and rows, readable by the service role,
/// and a second `orders` table in schema `other`.
async fn demo_db(label: &str) -> anyhow::Result<TestDb> {
    let db = TestDb::new(label).await?;
    let su = db.superuser().await?;
    pgward::demo::load_setup(&su, &demo_dir()).await?;
    su.batch_execute(&format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {SERVICE_ROLE};
         CREATE SCHEMA other;
         CREATE TABLE other.orders (id int PRIMARY KEY, amount numeric(10,2));
         CREATE FUNCTION public.order_total(int) RETURNS numeric LANGUAGE sql
           AS 'SELECT 0::numeric';
         GRANT USAGE ON SCHEMA other TO {SERVICE_ROLE};
         GRANT SELECT ON other.orders TO {SERVICE_ROLE};"
    ))
    .await?;
    Ok(db)
}

struct Outcome {
    code: Option<i32>,
    stderr: String,
}

impl Outcome {
    /// Asserts a `file:line:column: <severity>: …` line naming `needle`.
    fn has(&self, file: &Path, line: u64, severity: &str, needle: &str) {
        let prefix = format!("{}:{line}:", file.display());
        let found = self.stderr.lines().any(|l| {
            l.starts_with(&prefix) && l.contains(&format!(": {severity}: ")) && l.contains(needle)
        });
        assert!(
            found,
            "no {severity} at {prefix} naming {needle:?} in:\n{}",
            self.stderr
        );
    }
}

/// Runs `pgward check` with the given policy files (name, text) against
/// `db`; returns the exit status and stderr, and the folder of the files.
fn check(db: &TestDb, files: &[(&str, &str)]) -> anyhow::Result<(Outcome, tempfile::TempDir)> {
    let dir = tempfile::Builder::new().prefix("pgward-check-").tempdir()?;
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text)?;
    }
    let pattern = dir.path().join("*.sql");
    let config = dir.path().join("pgward.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\nurl = {}\n\n[policies]\npaths = [{}]\n",
            toml_string(&db.service_url()),
            toml_string(&pattern.to_string_lossy())
        ),
    )?;
    Ok((run(&config)?, dir))
}

fn run(config: &Path) -> anyhow::Result<Outcome> {
    let out = Command::new(env!("CARGO_BIN_EXE_pgward"))
        .args(["check", "--config"])
        .arg(config)
        .env("PGWARD_LOG", "warn")
        .output()?;
    Ok(Outcome {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn demo_files() -> anyhow::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(demo_dir())? {
        let path: PathBuf = entry?.path();
        if path.extension().is_some_and(|x| x == "sql") {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            files.push((name.unwrap_or_default(), std::fs::read_to_string(&path)?));
        }
    }
    assert!(files.len() >= 2, "{files:?}");
    Ok(files)
}

const ROLES: &str = "\
CREATE ROLE employee;
CREATE ROLE sales_rep IN ROLE employee;
CREATE USER alice PASSWORD 'alice' IN ROLE sales_rep;
";

#[tokio::test]
async fn demo_policies_pass_and_config_problems_fail() -> anyhow::Result<()> {
    let db = demo_db("check_demo").await?;
    let files = demo_files()?;
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let (out, _dir) = check(&db, &refs)?;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("check passed"), "{}", out.stderr);
    assert!(!out.stderr.contains("error:"), "{}", out.stderr);

    // No configuration file.
    let missing = run(Path::new("/nonexistent/pgward.toml"))?;
    assert_eq!(missing.code, Some(1), "{}", missing.stderr);
    assert!(
        missing.stderr.contains("cannot read configuration"),
        "{}",
        missing.stderr
    );
    assert!(!missing.stderr.contains("panicked"), "{}", missing.stderr);

    // An upstream nobody listens on.
    let dir = tempfile::tempdir()?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.path().join("pgward.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\nurl = \"postgres://x:y@127.0.0.1:{closed}/db\"\nconnect_timeout_ms = 2000\n\
             [policies]\npaths = [{}]\n",
            toml_string(&demo_dir().join("*.sql").to_string_lossy())
        ),
    )?;
    let refused = run(&config)?;
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("cannot connect to the upstream"),
        "{}",
        refused.stderr
    );
    Ok(())
}

#[tokio::test]
async fn unknown_tables_columns_schemas_and_functions() -> anyhow::Result<()> {
    let db = demo_db("check_names").await?;
    let policies = "\
GRANT SELECT (id, nmae) ON employees TO employee;
GRANT SELECT ON nosuch_table TO employee;
GRANT SELECT ON ALL TABLES IN SCHEMA nosuch_schema TO employee;
CREATE POLICY p ON nosuch_table TO employee USING (true);
GRANT EXECUTE ON FUNCTION nosuch_fn(int) TO employee;
GRANT EXECUTE ON FUNCTION order_total(text) TO employee;
GRANT EXECUTE ON FUNCTION order_total(int) TO employee;
GRANT SELECT ON ghost.orders TO employee;
";
    let (out, dir) = check(&db, &[("10_roles.sql", ROLES), ("20_p.sql", policies)])?;
    let f = dir.path().join("20_p.sql");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    out.has(&f, 1, "error", "column \"nmae\"");
    out.has(&f, 2, "error", "nosuch_table");
    out.has(&f, 3, "error", "schema \"nosuch_schema\" does not exist");
    out.has(
        &f,
        4,
        "error",
        "policy \"p\": relation \"public.nosuch_table\"",
    );
    out.has(&f, 5, "error", "function public.nosuch_fn does not exist");
    out.has(&f, 6, "error", "order_total(TEXT) does not exist");
    out.has(&f, 8, "error", "schema \"ghost\" does not exist");
    // The existing column, function overload and roles give nothing.
    assert!(!out.stderr.contains("\"id\""), "{}", out.stderr);
    assert!(!out.stderr.contains("20_p.sql:7:"), "{}", out.stderr);
    Ok(())
}

#[tokio::test]
async fn unknown_roles_and_globals() -> anyhow::Result<()> {
    let db = demo_db("check_roles").await?;
    let policies = "\
CREATE ROLE clerk IN ROLE ghost_parent;
GRANT SELECT ON departments TO ghost_grantee;
CREATE POLICY p ON departments TO ghost_policy_role USING (true);
CREATE GLOBAL g FOR ROLE ghost_global_role AS SELECT 1 AS x;
GRANT SELECT ON departments TO employee;
CREATE POLICY q ON departments TO employee USING (id = @{no_such_global});
";
    let (out, dir) = check(&db, &[("10_roles.sql", ROLES), ("20_p.sql", policies)])?;
    let f = dir.path().join("20_p.sql");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    out.has(&f, 1, "error", "ghost_parent");
    out.has(&f, 2, "error", "ghost_grantee");
    out.has(&f, 3, "error", "ghost_policy_role");
    out.has(&f, 4, "error", "ghost_global_role");
    out.has(&f, 6, "error", "global \"no_such_global\" does not exist");

    // An attribute the global's query does not return: only PostgreSQL can
    // tell, since the query selects `*`.
    let policies = "\
CREATE GLOBAL me FOR ROLE employee AS SELECT * FROM employees WHERE login = @{login_id};
GRANT SELECT ON departments TO employee;
CREATE POLICY q ON departments TO employee
  USING (id = @{me.department});
CREATE GLOBAL broken AS SELECT nope FROM employees;
";
    let (out, dir) = check(&db, &[("10_roles.sql", ROLES), ("20_p.sql", policies)])?;
    let f = dir.path().join("20_p.sql");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    out.has(&f, 4, "error", "global \"me\" has no column \"department\"");
    out.has(&f, 5, "error", "column \"nope\" does not exist");
    Ok(())
}

#[tokio::test]
async fn type_errors_in_filters_come_from_postgresql() -> anyhow::Result<()> {
    let db = demo_db("check_types").await?;
    let policies = "\
CREATE GLOBAL current_employee FOR ROLE employee
  AS SELECT id, department_id FROM employees WHERE login = @{login_id};
GRANT SELECT ON employees, orders TO employee;
GRANT UPDATE ON orders TO employee;
CREATE POLICY salaries ON employees FOR SELECT TO employee
  USING (salary = 'abc');
CREATE POLICY late ON orders FOR SELECT TO employee
  USING (amount > now());
CREATE POLICY mine ON orders FOR UPDATE TO employee
  USING (salesrep_id = @{current_employee.id})
  WITH CHECK (status = @{current_employee.department_id});
CREATE POLICY fine ON orders FOR SELECT TO employee
  USING (salesrep_id = @{current_employee.id} AND status = ANY(@{roles}));
";
    let (out, dir) = check(&db, &[("10_roles.sql", ROLES), ("20_p.sql", policies)])?;
    let f = dir.path().join("20_p.sql");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    out.has(
        &f,
        6,
        "error",
        "invalid input syntax for type numeric: \"abc\"",
    );
    out.has(
        &f,
        8,
        "error",
        "operator does not exist: numeric > timestamp with time zone",
    );
    // The global's column type (int4) meets text.
    out.has(&f, 11, "error", "operator does not exist: text = integer");
    // USING of `mine` and all of `fine` plan.
    assert!(!out.stderr.contains("20_p.sql:10:"), "{}", out.stderr);
    assert!(!out.stderr.contains("20_p.sql:13:"), "{}", out.stderr);
    Ok(())
}

#[tokio::test]
async fn policies_without_a_grant_are_errors() -> anyhow::Result<()> {
    let db = demo_db("check_nogrant").await?;
    // Caught while loading: no grant at all for the role.
    let policies = "\
CREATE ROLE clerk;
GRANT SELECT ON orders TO employee;
CREATE POLICY clerk_orders ON orders FOR SELECT TO clerk USING (true);
";
    let (out, dir) = check(&db, &[("10_roles.sql", ROLES), ("20_p.sql", policies)])?;
    let f = dir.path().join("20_p.sql");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    out.has(&f, 3, "error", "policy \"clerk_orders\"");

    // Only the catalog tells: `orders` is public.orders, not other.orders;
    // and a DELETE policy for roles that hold SELECT only.
    let policies = "\
GRANT SELECT ON orders TO sales_rep;
CREATE POLICY elsewhere ON other.orders FOR SELECT TO sales_rep USING (true);
CREATE POLICY reps ON public.orders FOR SELECT TO sales_rep USING (true);
";
    let (out, dir) = check(&db, &[("10_roles.sql", ROLES), ("20_p.sql", policies)])?;
    let f = dir.path().join("20_p.sql");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    out.has(&f, 2, "error", "policy \"elsewhere\" on other.orders");
    out.has(&f, 2, "error", "can never admit a row");
    assert!(!out.stderr.contains("20_p.sql:3:"), "{}", out.stderr);
    Ok(())
}

#[tokio::test]
async fn grant_only_roles_tied_to_policed_roles_are_warnings() -> anyhow::Result<()> {
    let db = demo_db("check_warn").await?;
    let policies = "\
CREATE ROLE auditor;
CREATE ROLE clerk IN ROLE auditor;
GRANT SELECT ON departments TO auditor;
GRANT SELECT ON departments TO clerk;
CREATE POLICY clerk_departments ON departments FOR SELECT TO clerk USING (id = 1);
CREATE ROLE staff;
CREATE ROLE lead IN ROLE staff;
GRANT SELECT (id, name) ON customers TO staff;
GRANT SELECT ON customers TO lead;
CREATE POLICY staff_customers ON customers FOR SELECT TO staff USING (true);
";
    let (out, dir) = check(&db, &[("10_roles.sql", ROLES), ("20_p.sql", policies)])?;
    let f = dir.path().join("20_p.sql");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.has(
        &f,
        3,
        "warning",
        "auditor holds SELECT on public.departments",
    );
    out.has(&f, 3, "warning", "get no rows");
    out.has(&f, 9, "warning", "lead holds SELECT (every column)");
    assert!(!out.stderr.contains(": error: "), "{}", out.stderr);
    assert!(out.stderr.contains("2 warning(s)"), "{}", out.stderr);
    Ok(())
}
