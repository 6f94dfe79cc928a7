//! The upstream pool in session mode: waiting for a free connection and
//! giving up with 53300, resetting a connection before the next session,
//! `application_name`, per-user limits and closing idle connections.
//!
//! Also home of [`Proxy`]: a pgward process with a configuration of its own,
//! for the `[server]` and `[upstream]` keys that the harness does not set.
//! The cancel, fault and shutdown tests use it too.

use std::future::Future;
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::cancel::RawSession;
use crate::harness::{DEFAULT_POLICIES, PgwardOptions, TestDb, connect};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `pgward serve` with the given `[server]` and `[upstream]` keys;
/// killed when dropped.
pub struct Proxy {
    child: Child,
    port: u16,
    database: String,
    dir: tempfile::TempDir,
}

impl Proxy {
    /// pgward in front of a test database. `server` and `upstream` are TOML
    /// lines added to those sections; without a `tls` key in `server`,
    /// client TLS is disabled.
    pub async fn start(db: &TestDb, server: &str, upstream: &str) -> anyhow::Result<Proxy> {
        Proxy::start_for(&db.service_url(), db.name(), server, upstream).await
    }

    /// pgward in front of any database reachable at `url` (the service
    /// identity), named `database`.
    pub async fn start_for(
        url: &str,
        database: &str,
        server: &str,
        upstream: &str,
    ) -> anyhow::Result<Proxy> {
        let mut dir = tempfile::Builder::new().prefix("pgward-proxy-").tempdir()?;
        let policy_file = dir.path().join("10_test.sql");
        std::fs::write(&policy_file, DEFAULT_POLICIES)?;
        let config_file = dir.path().join("pgward.toml");
        let log_file = dir.path().join("pgward.log");
        let tls_line = if server.lines().any(|l| l.trim_start().starts_with("tls")) {
            ""
        } else {
            "tls = \"disable\"\n"
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let toml = format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n{tls_line}{server}\n\n\
                 [upstream]\nurl = {}\n{upstream}\n\n\
                 [policies]\npaths = [{}]\n",
                toml_string(url),
                toml_string(&policy_file.to_string_lossy()),
            );
            std::fs::write(&config_file, toml)?;
            let child = spawn_watched(&config_file, &log_file)?;
            let mut proxy = Proxy {
                child,
                port,
                database: database.to_string(),
                dir,
            };
            match proxy.wait_ready().await {
                Ok(()) => return Ok(proxy),
                Err(e) if attempt < 3 && proxy.log().contains("in use") => {
                    eprintln!("pgward could not bind port {port}, retrying: {e:#}");
                    let _ = proxy.child.kill();
                    let _ = proxy.child.wait();
                    // Keep the folder (config and policies) for the next try.
                    let placeholder = tempfile::tempdir()?;
                    dir = std::mem::replace(&mut proxy.dir, placeholder);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
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
                    "pgward did not listen on port {} in time; its output:\n{}",
                    self.port,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything pgward wrote so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("pgward.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    pub fn conn_string(&self, user: &str, password: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={} user={user} password={password} sslmode=disable \
             connect_timeout=20",
            self.port, self.database
        )
    }

    /// A session through pgward; the error keeps its SQLSTATE.
    pub async fn try_connect(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(&self.conn_string(user, password), NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    pub async fn connect_as(&self, user: &str, password: &str) -> anyhow::Result<Client> {
        self.try_connect(user, password).await.with_context(|| {
            format!(
                "connecting through pgward as {user}; pgward's log:\n{}",
                self.log()
            )
        })
    }

    /// A raw-protocol session through pgward.
    pub async fn raw(&self, user: &str, password: &str) -> anyhow::Result<RawSession> {
        RawSession::connect(self.port, user, password, &self.database, None).await
    }

    /// Sends SIGTERM, as a service manager would.
    pub fn terminate(&self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("cannot run kill")?;
        anyhow::ensure!(status.success(), "kill -TERM failed: {status}");
        Ok(())
    }

    /// Waits up to `within` for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pgward serve --config FILE`, output to `log`, killed by a watcher shell
/// when our end of its stdin closes (so it never outlives the test binary);
/// `exec` keeps pgward's pid the one spawned.
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

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Polls `check` every 50 ms until it is true or `within` has passed;
/// returns whether it became true.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> anyhow::Result<bool>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Backends of `database` opened by pgward (application_name `pgward` or
/// `pgward:<login>`), optionally only those in `state`.
pub async fn pgward_backends(
    superuser: &Client,
    database: &str,
    state: Option<&str>,
) -> anyhow::Result<i64> {
    let row = superuser
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name LIKE 'pgward%' \
               AND application_name <> 'pgward control' \
               AND ($2::text IS NULL OR state = $2::text)",
            &[&database, &state],
        )
        .await?;
    Ok(row.get(0))
}

/// Whether a backend of `login` is running a statement containing `text`.
pub async fn is_running(
    superuser: &Client,
    database: &str,
    login: &str,
    text: &str,
) -> anyhow::Result<bool> {
    let row = superuser
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = $2 AND state = 'active' \
               AND strpos(query, $3) > 0",
            &[&database, &format!("pgward:{login}"), &text],
        )
        .await?;
    Ok(row.get::<_, i64>(0) > 0)
}

/// The SQLSTATE of a failed connection attempt or statement.
pub fn sqlstate(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.as_db_error().map(|d| d.code())
}

#[tokio::test]
async fn clients_wait_for_a_free_connection() -> anyhow::Result<()> {
    let db = TestDb::new("pool_clients_wait").await?;
    let proxy = Proxy::start(&db, "", "pool_size = 2\npool_timeout_ms = 20000").await?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let conn = proxy.conn_string(
            if i % 2 == 0 { "alice" } else { "bob" },
            if i % 2 == 0 { "alice" } else { "bob" },
        );
        tasks.push(tokio::spawn(async move {
            let client = connect(&conn).await?;
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .await?
                .get(0);
            client.simple_query("SELECT pg_sleep(0.3)").await?;
            drop(client);
            anyhow::Ok(pid)
        }));
    }
    let mut pids = Vec::new();
    for task in tasks {
        pids.push(task.await??);
    }
    pids.sort_unstable();
    pids.dedup();
    assert!(
        pids.len() <= 2,
        "pool_size = 2 but {} upstream backends served: {pids:?}",
        pids.len()
    );
    // Three rounds of two 0.3 s sessions: they really waited for each other.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "six sessions over two connections took only {:?}",
        started.elapsed()
    );
    let superuser = db.superuser().await?;
    assert!(pgward_backends(&superuser, db.name(), None).await? <= 2);
    Ok(())
}

#[tokio::test]
async fn a_client_gives_up_with_53300_after_pool_timeout() -> anyhow::Result<()> {
    let db = TestDb::new("pool_timeout").await?;
    let proxy = Proxy::start(&db, "", "pool_size = 1\npool_timeout_ms = 500").await?;
    let first = proxy.connect_as("alice", "alice").await?;
    first.simple_query("SELECT 1").await?;

    let started = Instant::now();
    let refused = proxy.try_connect("bob", "bob").await;
    let waited = started.elapsed();
    let Err(e) = refused else {
        panic!("a second session got in although the only connection is taken");
    };
    assert_eq!(sqlstate(&e), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e}");
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(5),
        "refused after {waited:?}, pool_timeout_ms = 500"
    );

    // Once the first session ends, the connection serves the next one.
    drop(first);
    let second = proxy.connect_as("bob", "bob").await?;
    second.simple_query("SELECT 1").await?;
    Ok(())
}

/// Runs `sql` in a raw session; a refusal by pgward (42501, 0A000) is
/// accepted, since a policy may forbid the statement: then it left nothing.
async fn run_or_refused(session: &mut RawSession, sql: &str) -> anyhow::Result<bool> {
    let reply = session.query(sql).await?;
    match reply.error {
        None => Ok(true),
        Some(e) if e.code == "42501" || e.code == "0A000" => {
            eprintln!("pgward refused {sql:?} ({}): not checked", e.code);
            Ok(false)
        }
        Some(e) => bail!("{sql}: {e:?}"),
    }
}

#[tokio::test]
async fn returned_connections_are_reset_for_the_next_session() -> anyhow::Result<()> {
    let db = TestDb::new("pool_reset").await?;
    let proxy = Proxy::start(&db, "", "pool_size = 1").await?;
    let superuser = db.superuser().await?;

    // What the first session leaves behind, then how it leaves.
    let mut first = proxy.raw("alice", "alice").await?;
    let pid = first.query("SELECT pg_backend_pid()").await?.single()?;
    let default_work_mem = first.query("SHOW work_mem").await?.single()?;
    first.query("SET work_mem = '7777kB'").await?.ok()?;
    assert_eq!(first.query("SHOW work_mem").await?.single()?, "7777kB");
    first.query("PREPARE leftover AS SELECT 42").await?.ok()?;
    let temp_table = run_or_refused(&mut first, "CREATE TEMP TABLE leftover_t (x int)").await?;
    let listening = run_or_refused(&mut first, "LISTEN leftover_channel").await?;
    if listening {
        // The LISTEN took effect: a NOTIFY reaches this session.
        superuser.batch_execute("NOTIFY leftover_channel").await?;
        let reply = first.query("SELECT pg_sleep(0.2)").await?;
        let later = first.query("SELECT 1").await?;
        assert!(
            reply.notifications.len() + later.notifications.len() == 1,
            "the listening session missed its notification"
        );
    }
    first.query("BEGIN").await?.ok()?;
    let failed = first.query("SELECT 1/0").await?;
    assert_eq!(failed.error.map(|e| e.code).as_deref(), Some("22012"));
    assert_eq!(failed.status, b'E', "the transaction should be aborted");
    first.close().await?;

    // The next session, of another login, on the same backend.
    let mut next = proxy.raw("bob", "bob").await?;
    let reply = next.query("SELECT pg_backend_pid()").await?;
    assert_eq!(
        reply.status, b'I',
        "the next session is inside a transaction"
    );
    assert_eq!(reply.single()?, pid, "pool_size = 1 must reuse the backend");
    assert_eq!(
        next.query("SHOW work_mem").await?.single()?,
        default_work_mem
    );
    let executed = next.query("EXECUTE leftover").await?;
    assert_eq!(
        executed.error.as_ref().map(|e| e.code.as_str()),
        Some("26000"),
        "the prepared statement survived: {executed:?}"
    );
    assert_eq!(executed.status, b'I');
    if temp_table {
        let read = next.query("SELECT x FROM pg_temp.leftover_t").await?;
        assert_eq!(
            read.error.as_ref().map(|e| e.code.as_str()),
            Some("42P01"),
            "the temp table survived: {read:?}"
        );
    }
    if listening {
        superuser.batch_execute("NOTIFY leftover_channel").await?;
        let a = next.query("SELECT pg_sleep(0.2)").await?;
        let b = next.query("SELECT 1").await?;
        assert!(
            a.notifications.is_empty() && b.notifications.is_empty(),
            "the next session still listens to the first one's channel"
        );
    }
    let app = superuser
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1::text::int",
            &[&pid],
        )
        .await?;
    assert_eq!(app.get::<_, String>(0), "pgward:bob");
    next.close().await?;

    // A session that leaves with a transaction open (not aborted).
    let mut open = proxy.raw("alice", "alice").await?;
    open.query("BEGIN").await?.ok()?;
    open.query("SET LOCAL work_mem = '5555kB'").await?.ok()?;
    assert_eq!(open.query("SELECT 1").await?.status, b'T');
    open.close().await?;
    let mut after = proxy.raw("alice", "alice").await?;
    let reply = after.query("SHOW work_mem").await?;
    assert_eq!(reply.status, b'I');
    assert_eq!(reply.single()?, default_work_mem);
    assert_eq!(after.query("SELECT pg_backend_pid()").await?.single()?, pid);
    Ok(())
}

/// Sessions opened one after another go to the session threads in turn.
/// With a single upstream connection each of them gets that connection
/// from the pool, whichever thread opened it or last served it (a plain
/// TCP connection moves to the taking thread), and it carries whole results
/// there.
pub async fn sessions_share_one_connection_across_threads(
    proxy: &Proxy,
    sessions: usize,
) -> anyhow::Result<i32> {
    let mut pids = std::collections::BTreeSet::new();
    for i in 0..sessions {
        let c = proxy.connect_as("alice", "alice").await?;
        let pid: i32 = c
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .with_context(|| format!("session {i}"))?
            .get(0);
        let rows = c
            .query(
                "SELECT g, repeat('x', 200) FROM generate_series(1, 5000) AS g",
                &[],
            )
            .await
            .with_context(|| format!("session {i}"))?;
        assert_eq!(rows.len(), 5000, "session {i}");
        assert_eq!(rows[4999].get::<_, i32>(0), 5000, "session {i}");
        pids.insert(pid);
    }
    anyhow::ensure!(
        pids.len() == 1,
        "pool_size = 1 but the sessions were served by backends {pids:?}"
    );
    Ok(pids.into_iter().next().unwrap_or_default())
}

#[tokio::test]
async fn one_upstream_connection_serves_sessions_on_every_thread() -> anyhow::Result<()> {
    let db = TestDb::new("pool_threads").await?;
    let proxy = Proxy::start(&db, "workers = 3", "pool_size = 1").await?;
    // Seven sessions in turn visit each of the three threads at least twice.
    sessions_share_one_connection_across_threads(&proxy, 7).await?;
    Ok(())
}

/// The CPUs each of pgward's threads may run on, by thread name (the
/// session thread 0 is the process's main thread, named `pgward`).
fn cpus_by_thread(pid: u32) -> anyhow::Result<Vec<(String, String)>> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?.path();
        let name = std::fs::read_to_string(task.join("comm"))?
            .trim()
            .to_string();
        threads.push((name, cpus_allowed(&task.join("status"))?));
    }
    threads.sort();
    Ok(threads)
}

/// The CPUs in a /proc `status` file, as it lists them, e.g. `0-1`.
fn cpus_allowed(status: &Path) -> anyhow::Result<String> {
    let status = std::fs::read_to_string(status)?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .context("no Cpus_allowed_list")?
        .trim()
        .to_string())
}

/// The CPUs of the calling thread (those pgward inherits).
fn own_cpus() -> anyhow::Result<String> {
    cpus_allowed(Path::new("/proc/thread-self/status"))
}

/// The names of pgward's session threads with `workers = 2`: thread 0 is
/// the process's main thread.
const SESSION_THREADS: [&str; 2] = ["pgward", "pgward-worker-1"];

/// pgward with two session threads and `pin_threads = pin`, after a session
/// on each thread, and the CPUs of each of its threads.
async fn two_session_threads(
    db: &TestDb,
    pin: bool,
) -> anyhow::Result<(Proxy, Vec<(String, String)>)> {
    let proxy = Proxy::start(db, &format!("workers = 2\npin_threads = {pin}"), "").await?;
    // Two sessions, one on each thread: both serve after pinning.
    for _ in 0..2 {
        let c = proxy.connect_as("alice", "alice").await?;
        let one: i32 = c.query_one("SELECT 1", &[]).await?.get(0);
        assert_eq!(one, 1);
    }
    let threads = cpus_by_thread(proxy.pid())?;
    Ok((proxy, threads))
}

#[tokio::test]
async fn session_threads_are_pinned_one_to_a_cpu() -> anyhow::Result<()> {
    let db = TestDb::new("pool_pinned").await?;
    let all = own_cpus()?;
    let cpus = std::thread::available_parallelism()?.get();
    let (proxy, threads) = two_session_threads(&db, true).await?;
    let session: Vec<&String> = threads
        .iter()
        .filter(|(name, _)| SESSION_THREADS.contains(&name.as_str()))
        .map(|(_, cpus)| cpus)
        .collect();
    assert_eq!(session.len(), 2, "{threads:?}");
    if cpus < 2 {
        // One CPU: nothing to spread over, nothing pinned.
        assert!(session.iter().all(|c| **c == all), "{threads:?}");
        assert!(proxy.log().contains("not pinning"), "{}", proxy.log());
        return Ok(());
    }
    for cpus in &session {
        assert!(cpus.parse::<usize>().is_ok(), "one CPU each: {threads:?}");
    }
    assert_ne!(session[0], session[1], "{threads:?}");
    // Every other thread (log, reaper, blocking pool) runs anywhere.
    for (name, cpus) in &threads {
        if !SESSION_THREADS.contains(&name.as_str()) {
            assert_eq!(*cpus, all, "{name}: {threads:?}");
        }
    }
    assert!(
        proxy.log().contains("session threads pinned to CPUs"),
        "{}",
        proxy.log()
    );
    Ok(())
}

#[tokio::test]
async fn session_threads_run_anywhere_unpinned() -> anyhow::Result<()> {
    let db = TestDb::new("pool_unpinned").await?;
    let all = own_cpus()?;
    let (_proxy, threads) = two_session_threads(&db, false).await?;
    assert!(threads.len() >= 4, "{threads:?}");
    for (name, cpus) in &threads {
        assert_eq!(*cpus, all, "{name}: {threads:?}");
    }
    Ok(())
}

#[tokio::test]
async fn upstream_application_name_names_the_login() -> anyhow::Result<()> {
    let db = TestDb::new("pool_application_name").await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;
    let superuser = db.superuser().await?;
    let alice = pgward.connect_as("alice", "alice").await?;
    let bob = pgward.connect_as("bob", "bob").await?;
    let alice_pid: i32 = alice
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let bob_pid: i32 = bob.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
    let rows = superuser
        .query(
            "SELECT pid, application_name FROM pg_stat_activity \
             WHERE datname = $1 AND pid IN ($2, $3) ORDER BY application_name",
            &[&db.name(), &alice_pid, &bob_pid],
        )
        .await?;
    let seen: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        seen,
        vec![
            (alice_pid, "pgward:alice".to_string()),
            (bob_pid, "pgward:bob".to_string())
        ]
    );
    Ok(())
}

#[tokio::test]
async fn max_connections_per_user_limits_one_login_only() -> anyhow::Result<()> {
    let db = TestDb::new("pool_per_user").await?;
    let proxy = Proxy::start(&db, "max_connections_per_user = 1", "").await?;
    let alice = proxy.connect_as("alice", "alice").await?;
    alice.simple_query("SELECT 1").await?;

    let Err(e) = proxy.try_connect("alice", "alice").await else {
        panic!("a second session of alice got in with max_connections_per_user = 1");
    };
    assert_eq!(sqlstate(&e), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e}");

    let bob = proxy.connect_as("bob", "bob").await?;
    bob.simple_query("SELECT 1").await?;
    alice.simple_query("SELECT 1").await?;

    // The slot frees when the session ends.
    drop(alice);
    let deadline = Instant::now() + Duration::from_secs(5);
    let got_in = loop {
        match proxy.try_connect("alice", "alice").await {
            Ok(client) => break client.simple_query("SELECT 1").await.is_ok(),
            Err(e) if sqlstate(&e) == Some(&SqlState::TOO_MANY_CONNECTIONS) => {
                if Instant::now() >= deadline {
                    break false;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    assert!(got_in, "alice stayed locked out after her session ended");
    Ok(())
}

#[tokio::test]
async fn idle_upstream_connections_are_closed_after_idle_timeout() -> anyhow::Result<()> {
    let db = TestDb::new("pool_idle_timeout").await?;
    let proxy = Proxy::start(&db, "", "idle_timeout_ms = 1000").await?;
    let superuser = db.superuser().await?;
    let client = proxy.connect_as("alice", "alice").await?;
    client.simple_query("SELECT 1").await?;
    drop(client);

    // The connection goes back to the pool (reset in the background) …
    let pooled = eventually(Duration::from_secs(2), || async {
        Ok(pgward_backends(&superuser, db.name(), Some("idle")).await? == 1)
    })
    .await?;
    assert!(pooled, "the returned connection was not kept in the pool");
    let returned = Instant::now();

    // … and is closed once it has been idle for a second.
    let closed = eventually(Duration::from_secs(4), || async {
        Ok(pgward_backends(&superuser, db.name(), None).await? == 0)
    })
    .await?;
    assert!(
        closed,
        "an idle upstream connection outlived idle_timeout_ms = 1000 by 3 s"
    );
    assert!(
        returned.elapsed() >= Duration::from_millis(700),
        "closed after {:?}, before the idle timeout",
        returned.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn max_connections_turns_further_clients_away() -> anyhow::Result<()> {
    let db = TestDb::new("pool_max_connections").await?;
    let proxy = Proxy::start(&db, "max_connections = 1", "").await?;
    let alice = proxy.connect_as("alice", "alice").await?;
    alice.simple_query("SELECT 1").await?;
    let Err(e) = proxy.try_connect("bob", "bob").await else {
        panic!("a second client got in with max_connections = 1");
    };
    assert_eq!(sqlstate(&e), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e}");
    alice.simple_query("SELECT 1").await?;
    Ok(())
}
