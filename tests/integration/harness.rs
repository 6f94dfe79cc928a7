//! What every integration test needs: one throwaway PostgreSQL per test
//! binary, a fresh database per test, and pgward as a separate process.
//!
//! Each `#[tokio::test]` has its own runtime, so nothing shared may depend on
//! one: the cluster is a child process started once, and every test makes its
//! own connections.

// Not every test binary module uses every helper.
#![allow(dead_code)]

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pgward::cluster::{TempCluster, quote_ident, quote_literal, random_secret};
use tokio::sync::OnceCell;
use tokio_postgres::Client;

/// The role pgward connects upstream as: no superuser, no BYPASSRLS; it owns
/// each test database, so it may create tables there.
pub const SERVICE_ROLE: &str = "pgward_service";

/// A policy file with two plain-text users, enough to log in through pgward.
/// They bypass policies: the protocol, pool and client tests create their
/// own tables and need the database as it is. Policy-bound sessions are
/// tested with the demo policies (`policy_reads`).
pub const DEFAULT_POLICIES: &str = "\
CREATE ROLE tester WITH BYPASSPOLICY;
CREATE USER alice PASSWORD 'alice' IN ROLE tester;
CREATE USER bob PASSWORD 'bob' IN ROLE tester;
";

const PGWARD_START_TIMEOUT: Duration = Duration::from_secs(30);

struct Shared {
    cluster: TempCluster,
    service_password: String,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

async fn shared() -> anyhow::Result<&'static Shared> {
    SHARED
        .get_or_try_init(|| async {
            let cluster = TempCluster::start().await?;
            let service_password = random_secret();
            let client = cluster.superuser_client("postgres").await?;
            client
                .batch_execute(&format!(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS \
                     PASSWORD {}",
                    quote_ident(SERVICE_ROLE),
                    quote_literal(&service_password)
                ))
                .await
                .context("cannot create the service role")?;
            Ok(Shared {
                cluster,
                service_password,
            })
        })
        .await
}

/// The cluster shared by every test of this binary.
pub async fn cluster() -> anyhow::Result<&'static TempCluster> {
    Ok(&shared().await?.cluster)
}

/// Connects with a libpq-style connection string or URL, without TLS, and
/// spawns the connection task on the current runtime.
pub async fn connect(conn: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A database of its own for one test, owned by the service role. It is
/// dropped (with FORCE) when this value is dropped.
pub struct TestDb {
    name: String,
    shared: &'static Shared,
}

impl TestDb {
    /// Creates a fresh database with the helper schema of `pgward install`
    /// (as `pgward demo` has it); `label` (usually the test's name) makes it
    /// recognisable in logs.
    pub async fn new(label: &str) -> anyhow::Result<TestDb> {
        let db = TestDb::without_helper(label).await?;
        let client = db.superuser().await?;
        pgward::install::install(&client, SERVICE_ROLE).await?;
        Ok(db)
    }

    /// [`TestDb::new`] without the helper schema of `pgward install`.
    pub async fn without_helper(label: &str) -> anyhow::Result<TestDb> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let shared = shared().await?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(50)
            .collect();
        let name = format!("t{n}_{label}");
        let client = shared.cluster.superuser_client("postgres").await?;
        client
            .batch_execute(&format!(
                "CREATE DATABASE {} OWNER {}",
                quote_ident(&name),
                quote_ident(SERVICE_ROLE)
            ))
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        Ok(TestDb { name, shared })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn cluster(&self) -> &'static TempCluster {
        &self.shared.cluster
    }

    /// A superuser connection to this database (for setup that the service
    /// role may not do, such as creating roles).
    pub async fn superuser(&self) -> anyhow::Result<Client> {
        self.shared.cluster.superuser_client(&self.name).await
    }

    /// A direct connection as the service role, bypassing pgward.
    pub async fn service(&self) -> anyhow::Result<Client> {
        connect(&self.service_url()).await
    }

    /// The URL pgward uses upstream.
    pub fn service_url(&self) -> String {
        format!(
            "postgres://{SERVICE_ROLE}:{}@127.0.0.1:{}/{}",
            self.shared.service_password,
            self.shared.cluster.port(),
            self.name
        )
    }

    /// Starts pgward in front of this database.
    pub async fn start_pgward(&self, options: PgwardOptions) -> anyhow::Result<Pgward> {
        Pgward::start(self, options).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be shutting down: a
        // thread with a runtime of its own drops the database.
        let url = self.shared.cluster.superuser_url("postgres");
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let client = connect(&url).await?;
                client.batch_execute(&sql).await?;
                Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// How to run pgward for a test.
#[derive(Debug, Clone)]
pub struct PgwardOptions {
    /// `server.tls`: "disable", "prefer" or "require".
    pub tls: String,
    /// `server.cert_file` and `server.key_file`, e.g. from [`self_signed_cert`].
    pub cert: Option<TestCert>,
    /// The text of the one policy file.
    pub policies: String,
    /// More TOML appended to the configuration (whole sections, e.g.
    /// `"[auth]\nscram_iterations = 4096\n"`).
    pub extra_toml: String,
}

impl Default for PgwardOptions {
    fn default() -> Self {
        PgwardOptions {
            tls: "disable".into(),
            cert: None,
            policies: DEFAULT_POLICIES.into(),
            extra_toml: String::new(),
        }
    }
}

impl PgwardOptions {
    pub fn with_policies(policies: &str) -> Self {
        PgwardOptions {
            policies: policies.into(),
            ..Self::default()
        }
    }
}

/// A running `pgward serve` process; killed when dropped.
pub struct Pgward {
    child: Child,
    port: u16,
    database: String,
    dir: tempfile::TempDir,
    tls_root: Option<Arc<TestCert>>,
}

impl Pgward {
    async fn start(db: &TestDb, options: PgwardOptions) -> anyhow::Result<Pgward> {
        let mut dir = tempfile::Builder::new().prefix("pgward-test-").tempdir()?;
        let policy_file = dir.path().join("10_test.sql");
        std::fs::write(&policy_file, &options.policies)?;
        let config_file = dir.path().join("pgward.toml");
        let log_file = dir.path().join("pgward.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let mut toml = format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\ntls = {}\n",
                toml_string(&options.tls)
            );
            if let Some(cert) = &options.cert {
                toml += &format!(
                    "cert_file = {}\nkey_file = {}\n",
                    toml_string(&cert.cert_file.to_string_lossy()),
                    toml_string(&cert.key_file.to_string_lossy())
                );
            }
            toml += &format!(
                "\n[upstream]\nurl = {}\n\n[policies]\npaths = [{}]\n\n{}",
                toml_string(&db.service_url()),
                toml_string(&policy_file.to_string_lossy()),
                options.extra_toml
            );
            std::fs::write(&config_file, toml)?;

            let child = spawn_watched(&config_file, &log_file)?;
            let mut pgward = Pgward {
                child,
                port,
                database: db.name.clone(),
                dir,
                tls_root: options.cert.clone().map(Arc::new),
            };
            match pgward.wait_ready().await {
                Ok(()) => return Ok(pgward),
                Err(e) if attempt < 3 && pgward.log().contains("in use") => {
                    eprintln!("pgward could not bind port {port}, retrying: {e:#}");
                    dir = std::mem::replace(&mut pgward.dir, tempfile::tempdir()?);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PGWARD_START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "pgward exited during startup ({status}); its output:\n{}",
                    self.log()
                );
            }
            if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "pgward did not listen on port {} within {}s; its output:\n{}",
                    self.port,
                    PGWARD_START_TIMEOUT.as_secs(),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pgward process id (for /proc/PID/status and the like).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The folder with the configuration, policy file and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything pgward wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("pgward.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// The resident set size of the pgward process, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .context("no VmRSS in /proc/PID/status")?
            .parse()
            .context("unexpected VmRSS")
    }

    /// A libpq connection string for `psql` and the like.
    pub fn conn_string(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={} user={} password={} sslmode=disable",
            self.port,
            libpq_value(database),
            libpq_value(user),
            libpq_value(password)
        )
    }

    /// A connection through pgward, without TLS.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        database: &str,
    ) -> anyhow::Result<Client> {
        connect(&self.conn_string(user, password, database))
            .await
            .with_context(|| format!("connecting through pgward as {user}"))
    }

    /// A connection through pgward as `user` to the test's database.
    pub async fn connect_as(&self, user: &str, password: &str) -> anyhow::Result<Client> {
        self.connect(user, password, &self.database).await
    }

    /// A connection through pgward over TLS (sslmode=require), trusting only
    /// the test certificate pgward was started with.
    pub async fn connect_tls(
        &self,
        user: &str,
        password: &str,
        database: &str,
    ) -> anyhow::Result<Client> {
        let cert = self
            .tls_root
            .as_ref()
            .context("pgward was started without a certificate")?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der.clone().into())?;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let conn = format!(
            "host=localhost hostaddr=127.0.0.1 port={} dbname={} user={} password={} sslmode=require",
            self.port,
            libpq_value(database),
            libpq_value(user),
            libpq_value(password)
        );
        let (client, connection) =
            tokio_postgres::connect(&conn, tokio_postgres_rustls::MakeRustlsConnect::new(tls))
                .await
                .with_context(|| format!("connecting through pgward over TLS as {user}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

impl Drop for Pgward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `pgward serve --config FILE` with its output in `log` (the log
/// level follows `PGWARD_LOG`, inherited from the test's environment). A watcher
/// shell kills pgward when our end of its stdin closes, so pgward never
/// outlives a test binary that was killed; `exec` keeps pgward's pid the one
/// we spawned.
fn spawn_watched(config: &Path, log: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log)?;
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        r#"exec 3<&0; { read -r _ <&3; kill -KILL $$ 2>/dev/null; } & exec "$@" 0</dev/null 3<&-"#,
        "sh",
    ])
    .arg(env!("CARGO_BIN_EXE_pgward"))
    .arg("serve")
    .arg("--config")
    .arg(config)
    .stdin(Stdio::piped())
    .stdout(log.try_clone()?)
    .stderr(log);
    cmd.spawn().context("cannot start pgward")
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM.
#[derive(Debug, Clone)]
pub struct TestCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub der: Vec<u8>,
}

pub fn self_signed_cert(dir: &Path) -> anyhow::Result<TestCert> {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let cert_file = dir.join("server.crt");
    let key_file = dir.join("server.key");
    std::fs::write(&cert_file, cert.pem())?;
    std::fs::write(&key_file, signing_key.serialize_pem())?;
    Ok(TestCert {
        cert_file,
        key_file,
        der: cert.der().to_vec(),
    })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A value in a libpq key=value connection string.
fn libpq_value(s: &str) -> String {
    if !s.is_empty() && !s.contains([' ', '\'', '\\', '=']) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}
