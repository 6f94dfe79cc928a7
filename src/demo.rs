//! `pgward demo`: a throwaway PostgreSQL with the demo data set of
//! `policies/demo/` behind a proxy on 127.0.0.1:6432.
//!
//! The service role it creates is an ordinary role (no SUPERUSER, no
//! BYPASSRLS) with privileges on the demo tables only, as a real deployment's
//! would be; the demo never gives the proxy more than that. The helper
//! schema of `pgward install` is installed as `pgward install` does it.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cluster::{TempCluster, quote_ident, quote_literal, random_secret};
use crate::config::Config;

/// Database that holds the demo data and that clients name.
pub const DATABASE: &str = "demo";
/// The proxy's service identity in the throwaway cluster.
pub const SERVICE_ROLE: &str = "pgward_service";
/// Where the proxy listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6432";
/// The demo users (password = login) and what each shows.
pub const USERS: &[(&str, &str)] = &[
    ("alice", "sales_rep, owns orders 1-4"),
    ("bob", "sales_rep, owns orders 5-7"),
    ("carol", "sales_rep, owns orders 8-12"),
    ("dave", "manager of Sales East"),
    ("eve", "sales_rep without an employees row: her login fails"),
];

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The folder with the policy files (`*.sql`) and `setup/`; found with
    /// [`find_policies_dir`] when `None`.
    pub policies_dir: Option<PathBuf>,
    pub listen: SocketAddr,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            policies_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 6432)),
        }
    }
}

/// `pgward demo [--policies DIR]`: runs until Ctrl-C or SIGTERM, then stops
/// the proxy and removes the throwaway cluster.
pub async fn run(policies_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let options = DemoOptions {
        policies_dir,
        ..DemoOptions::default()
    };
    run_with(options, interrupted()).await
}

/// The demo with an explicit listen address and shutdown signal.
pub async fn run_with(
    options: DemoOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let policies_dir = find_policies_dir(options.policies_dir.as_deref())?;
    tracing::info!("demo policies from {}", policies_dir.display());

    let cluster = TempCluster::start()
        .await
        .context("cannot start a throwaway PostgreSQL for the demo")?;
    tracing::info!(
        "throwaway PostgreSQL from {} on 127.0.0.1:{} in {}",
        cluster.bin_dir().display(),
        cluster.port(),
        cluster.dir().display()
    );
    let served = async {
        cluster.create_database(DATABASE).await?;
        let client = cluster.superuser_client(DATABASE).await?;
        load_setup(&client, &policies_dir).await?;
        let password = random_secret();
        create_service_role(&client, SERVICE_ROLE, &password).await?;
        crate::install::install(&client, SERVICE_ROLE).await?;
        drop(client);

        let upstream_url = format!(
            "postgres://{SERVICE_ROLE}:{password}@127.0.0.1:{}/{DATABASE}",
            cluster.port()
        );
        let toml = config_toml(&options.listen, &upstream_url, &policies_dir);
        let config = Config::from_toml(&toml, &policies_dir).context("demo configuration")?;

        print_banner(&options.listen);
        crate::server::run(config, shutdown).await
    }
    .await;
    let stopped = cluster.stop().await;
    served?;
    stopped.context("cannot stop the throwaway PostgreSQL")
}

/// Finds the demo policies: `explicit` if given, else `policies/demo` under
/// the current folder, else next to the executable's checkout
/// (`target/debug/../../policies/demo`), else the source tree pgward was built
/// from.
pub fn find_policies_dir(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let is_demo_dir = |dir: &Path| dir.join("setup").is_dir();
    if let Some(dir) = explicit {
        if !dir.is_dir() {
            bail!("--policies {}: no such folder", dir.display());
        }
        return absolute(dir);
    }
    let mut candidates = vec![PathBuf::from("policies/demo")];
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/pgward, and target/<profile>/deps/ for tests.
        for up in exe.ancestors().skip(1).take(4) {
            candidates.push(up.join("policies/demo"));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/demo"));
    match candidates.iter().find(|d| is_demo_dir(d)) {
        Some(dir) => absolute(dir),
        None => bail!(
            "cannot find the demo policies (a folder policies/demo with setup/); \
             run from the pgward checkout or pass --policies DIR"
        ),
    }
}

fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))
}

/// Runs `setup/*.sql` of the demo folder, in lexical order, as one script
/// each.
pub async fn load_setup(
    client: &tokio_postgres::Client,
    policies_dir: &Path,
) -> anyhow::Result<()> {
    let setup = policies_dir.join("setup");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&setup)
        .with_context(|| format!("cannot read {}", setup.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} has no .sql files", setup.display());
    }
    for file in files {
        let sql = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        client
            .batch_execute(&sql)
            .await
            .with_context(|| format!("{} failed", file.display()))?;
    }
    Ok(())
}

/// Creates `role` as the proxy's service identity: it may log in and use the
/// tables and sequences of schema `public` of the current database (the demo
/// tables), nothing more.
pub async fn create_service_role(
    client: &tokio_postgres::Client,
    role: &str,
    password: &str,
) -> anyhow::Result<()> {
    let role = quote_ident(role);
    let sql = format!(
        "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS \
             PASSWORD {password};
         GRANT USAGE ON SCHEMA public TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};",
        password = quote_literal(password),
    );
    client
        .batch_execute(&sql)
        .await
        .context("cannot create the service role")?;
    Ok(())
}

/// The demo's configuration file, as TOML.
pub fn config_toml(listen: &SocketAddr, upstream_url: &str, policies_dir: &Path) -> String {
    let pattern = format!(
        "{}/*.sql",
        glob::Pattern::escape(&policies_dir.to_string_lossy())
    );
    format!(
        "[server]\nlisten = {}\ntls = \"disable\"\n\n\
         [upstream]\nurl = {}\n\n\
         [policies]\npaths = [{}]\n",
        toml_string(&listen.to_string()),
        toml_string(upstream_url),
        toml_string(&pattern),
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn print_banner(listen: &SocketAddr) {
    let (host, port) = (listen.ip(), listen.port());
    println!();
    println!("pgward demo: proxy on {listen}, database \"{DATABASE}\". Ctrl-C stops it and");
    println!("removes the throwaway PostgreSQL. Connect as a demo user (password = login):");
    println!();
    for (user, what) in USERS {
        let psql = format!(
            "psql \"host={host} port={port} dbname={DATABASE} user={user} password={user}\""
        );
        println!("  {psql:<72} # {what}");
    }
    println!();
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn interrupted() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if let Err(e) = r {
                tracing::warn!("cannot listen for Ctrl-C: {e}");
                std::future::pending::<()>().await
            }
        }
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_toml_is_valid_and_names_the_policies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let toml = config_toml(
            &"127.0.0.1:6432".parse().expect("address"),
            "postgres://pgward_service:pw@127.0.0.1:5555/demo",
            dir.path(),
        );
        let config = Config::from_toml(&toml, dir.path()).expect("valid demo config");
        assert_eq!(config.upstream.port, 5555);
        assert_eq!(config.upstream.user, "pgward_service");
        assert_eq!(config.upstream.database, "demo");
        assert_eq!(
            config.policies.paths,
            vec![format!("{}/*.sql", dir.path().display())]
        );
    }

    #[test]
    fn toml_strings_escape_quotes_and_backslashes() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn finds_the_checked_in_demo_policies() {
        let dir = find_policies_dir(None).expect("demo policies");
        assert!(dir.join("setup/01_schema.sql").is_file());
    }
}
