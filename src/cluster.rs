//! A throwaway PostgreSQL cluster for `pgward demo` and the integration tests.
//!
//! It owns a temporary folder holding the data directory, the unix socket and
//! the server log, and a superuser `postgres` with a random password. It must
//! never touch a cluster it did not create.
//!
//! The server is not tied to any tokio runtime, so tests with one runtime each
//! can share it. Next to it runs a small `sh` watchdog whose stdin is a pipe
//! from this process: a line on the pipe disarms it; end of file (this process
//! exited, even by SIGKILL, or a `static` cluster that is never dropped) makes
//! it stop the server at once and remove the folder. So a cluster never
//! outlives the process that started it.
//!
//! As root, initdb, the server and the watchdog run as the `postgres` OS user
//! through `runuser`, since PostgreSQL refuses to run as root.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

/// The OS user that runs PostgreSQL when pgward runs as root.
const OS_USER: &str = "postgres";
/// The cluster's superuser.
const SUPERUSER: &str = "postgres";
/// Environment variable naming the folder with `postgres` and `initdb`,
/// consulted before any other way of finding them.
pub const BIN_DIR_ENV: &str = "PGWARD_PG_BINDIR";

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at finding a free port: another process may take the port between
/// our probe and the server's bind.
const PORT_ATTEMPTS: usize = 5;

/// The watchdog; `$1` is the cluster folder. A line on stdin disarms it; end
/// of file stops the server (immediate shutdown) and removes the folder.
const WATCHDOG: &str = r#"if read -r _; then exit 0; fi
if read -r pid _ < "$1/data/postmaster.pid" 2>/dev/null && kill -QUIT "$pid" 2>/dev/null; then
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
fi
rm -rf "$1"
"#;

/// A running PostgreSQL server in a temporary folder; dropping it stops the
/// server (immediate shutdown) and removes the folder.
#[derive(Debug)]
pub struct TempCluster {
    dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    password: String,
    as_root: bool,
    /// `runuser` (or `postgres` itself when not root); exits with the server.
    server: Option<Child>,
    watchdog: Option<Child>,
}

impl TempCluster {
    /// Finds the PostgreSQL binaries, creates a cluster in a new temporary
    /// folder and starts it on 127.0.0.1 at a free port. Returns once the
    /// server accepts connections.
    ///
    /// Binaries are looked up in `$PGWARD_PG_BINDIR`, then next to `postgres`
    /// on PATH, then in `pg_config --bindir`, then in the highest version of
    /// `/usr/lib/postgresql/*/bin`.
    pub async fn start() -> anyhow::Result<TempCluster> {
        let bin_dir = find_bin_dir()?;
        let as_root = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("pgward-cluster-")
            .tempdir()
            .context("cannot create a temporary folder for the cluster")?
            .keep();
        let mut cluster = TempCluster {
            dir,
            bin_dir,
            port: 0,
            password: random_secret(),
            as_root,
            server: None,
            watchdog: None,
        };
        // From here on, dropping `cluster` removes the folder.
        if as_root {
            chown_to_os_user(&cluster.dir)?;
        }
        cluster.start_watchdog()?;
        cluster.initdb()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            cluster.port = free_port()?;
            match cluster.launch().await {
                Ok(()) => return Ok(cluster),
                Err(e) if attempt < PORT_ATTEMPTS && cluster.log_mentions_port_in_use() => {
                    tracing::debug!("port {} was taken, retrying: {e:#}", cluster.port);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Folder holding `postgres` and `initdb` of the running server.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The cluster's temporary folder (data directory, socket, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The superuser's password.
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// `postgres://postgres:<password>@127.0.0.1:<port>/<database>`.
    pub fn superuser_url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// A new superuser connection; its connection task is spawned on the
    /// current runtime.
    pub async fn superuser_client(&self, database: &str) -> anyhow::Result<tokio_postgres::Client> {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(SUPERUSER)
            .password(&self.password)
            .dbname(database)
            .connect_timeout(Duration::from_secs(10));
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .with_context(|| format!("cannot connect to the temporary cluster ({database})"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("temporary cluster connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// `CREATE DATABASE "<name>"`.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<()> {
        let client = self.superuser_client("postgres").await?;
        client
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(name)))
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        Ok(())
    }

    /// Stops the server cleanly (fast shutdown) and removes the folder.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let server = self.server.take();
        let watchdog = self.watchdog.take();
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let stopped = match server {
                Some(server) => stop_server(server, &dir, "INT"),
                None => Ok(()),
            };
            disarm(watchdog);
            stopped?;
            remove_dir(&dir)
        })
        .await
        .context("the task stopping the temporary cluster failed")?
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    fn start_watchdog(&mut self) -> anyhow::Result<()> {
        let mut cmd = command(self.as_root, Path::new("sh"))?;
        cmd.current_dir(&self.dir)
            .args(["-c", WATCHDOG, "sh"])
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        self.watchdog = Some(cmd.spawn().context("cannot start the cluster watchdog")?);
        Ok(())
    }

    fn initdb(&self) -> anyhow::Result<()> {
        let as_root = self.as_root;
        let pwfile = self.dir.join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", self.password))
            .context("cannot write the superuser password file")?;
        if as_root {
            chown_to_os_user(&pwfile)?;
        }
        let mut cmd = command(as_root, &self.bin_dir.join("initdb"))?;
        cmd.current_dir(&self.dir)
            .arg("--pgdata")
            .arg(self.data_dir())
            .args(["--username", SUPERUSER])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .args([
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ])
            .stdin(Stdio::null());
        let output = cmd
            .output()
            .with_context(|| format!("cannot run {}", self.bin_dir.join("initdb").display()))?;
        // The password is in the cluster now; the file is not needed.
        let _ = std::fs::remove_file(&pwfile);
        if !output.status.success() {
            bail!(
                "initdb failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Starts the server on `self.port` and waits until it accepts
    /// connections. On failure the server is stopped again.
    async fn launch(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())
            .context("cannot open the server log")?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = command(self.as_root, &self.bin_dir.join("postgres"))?;
        cmd.current_dir(&self.dir)
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.dir)
            .args(SERVER_SETTINGS.iter().flat_map(|s| ["-c", s]))
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share the server log")?)
            .stderr(log)
            // Own process group: a terminal's Ctrl-C goes to pgward alone,
            // which then stops the server itself, in order.
            .process_group(0);
        let server = cmd.spawn().context("cannot start the PostgreSQL server")?;
        self.server = Some(server);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(server) = self.server.as_mut()
                && let Ok(Some(status)) = server.try_wait()
            {
                self.server = None;
                bail!(
                    "the PostgreSQL server exited during startup ({status}); log:\n{}",
                    self.log_tail(log_start)
                );
            }
            match self.superuser_client("postgres").await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    if let Some(server) = self.server.take() {
                        let dir = self.dir.clone();
                        let _ =
                            tokio::task::spawn_blocking(move || stop_server(server, &dir, "QUIT"))
                                .await;
                    }
                    bail!(
                        "the PostgreSQL server did not accept connections within {}s ({e:#}); log:\n{}",
                        START_TIMEOUT.as_secs(),
                        self.log_tail(log_start)
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn log_mentions_port_in_use(&self) -> bool {
        std::fs::read_to_string(self.log_file())
            .map(|log| log.contains("Address already in use"))
            .unwrap_or(false)
    }

    /// The last lines of the log written since `from`.
    fn log_tail(&self, from: u64) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.log_file()) {
            let _ = f.seek(SeekFrom::Start(from));
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if let Some(server) = self.server.take()
            && let Err(e) = stop_server(server, &self.dir, "QUIT")
        {
            tracing::warn!("stopping the temporary cluster: {e:#}");
        }
        disarm(self.watchdog.take());
        if let Err(e) = remove_dir(&self.dir) {
            tracing::warn!("{e:#}");
        }
    }
}

/// Settings for a disposable server: no durability, room for many test
/// connections, nothing outside the temporary folder.
const SERVER_SETTINGS: &[&str] = &[
    "listen_addresses=127.0.0.1",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
    "shared_buffers=128MB",
    "logging_collector=off",
    "log_line_prefix=%m [%p] ",
];

/// Sends `signal` (INT: fast shutdown, QUIT: immediate) to the postmaster and
/// waits for it; kills it if it does not stop in time.
fn stop_server(mut server: Child, dir: &Path, signal: &str) -> anyhow::Result<()> {
    // Through runuser, the child is not the postmaster; postmaster.pid names it.
    let pid = std::fs::read_to_string(dir.join("data").join("postmaster.pid"))
        .ok()
        .and_then(|f| f.lines().next().map(|l| l.trim().to_string()))
        .unwrap_or_else(|| server.id().to_string());
    let signal_postmaster = |signal: &str| {
        // The shell's kill: /bin/kill is not on every minimal system.
        let _ = Command::new("sh")
            .args([
                "-c",
                "kill -s \"$1\" \"$2\" 2>/dev/null",
                "sh",
                signal,
                &pid,
            ])
            .status();
    };
    if let Ok(None) = server.try_wait() {
        signal_postmaster(signal);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        match server.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => break,
            Err(e) => return Err(e).context("cannot wait for the PostgreSQL server"),
        }
    }
    signal_postmaster("KILL");
    let _ = server.kill();
    let _ = server.wait();
    bail!(
        "the PostgreSQL server did not stop within {}s and was killed",
        STOP_TIMEOUT.as_secs()
    )
}

/// Tells the watchdog that the folder is taken care of, and reaps it.
fn disarm(watchdog: Option<Child>) {
    if let Some(mut watchdog) = watchdog {
        if let Some(mut stdin) = watchdog.stdin.take() {
            let _ = writeln!(stdin);
        }
        let _ = watchdog.wait();
    }
}

fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", dir.display())),
    }
}

/// A command for `program`, run as the PostgreSQL OS user when we are root.
fn command(as_root: bool, program: &Path) -> anyhow::Result<Command> {
    if !as_root {
        return Ok(Command::new(program));
    }
    let runuser = which("runuser")
        .or_else(|| {
            ["/usr/sbin/runuser", "/sbin/runuser"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        })
        .ok_or_else(|| {
            anyhow!(
                "running as root needs `runuser` (util-linux) to start PostgreSQL as the `{OS_USER}` user"
            )
        })?;
    let mut cmd = Command::new(runuser);
    cmd.args(["-u", OS_USER, "--"]).arg(program);
    Ok(cmd)
}

fn chown_to_os_user(path: &Path) -> anyhow::Result<()> {
    let id = |flag: &str| -> anyhow::Result<u32> {
        let out = Command::new("id")
            .args([flag, OS_USER])
            .output()
            .context("cannot run `id`")?;
        if !out.status.success() {
            bail!(
                "running as root needs an OS user `{OS_USER}` to run PostgreSQL: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("unexpected output from `id`")
    };
    std::os::unix::fs::chown(path, Some(id("-u")?), Some(id("-g")?))
        .with_context(|| format!("cannot hand {} to the `{OS_USER}` user", path.display()))
}

/// Whether the effective user is root (from /proc, or `id -u`).
fn running_as_root() -> bool {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Uid:"))
    {
        // Real, effective, saved, filesystem.
        return line.split_whitespace().nth(2) == Some("0");
    }
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let has_binaries = |dir: &Path| dir.join("postgres").is_file() && dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        let dir = PathBuf::from(dir);
        if has_binaries(&dir) {
            return Ok(dir);
        }
        bail!(
            "{BIN_DIR_ENV}={} does not contain `postgres` and `initdb`",
            dir.display()
        );
    }
    // On PATH, often a symlink into the real folder (Debian's /usr/local/bin
    // links, Homebrew); the real folder has the siblings.
    if let Some(dir) = which("postgres")
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|d| has_binaries(d))
    {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_binaries(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            has_binaries(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        anyhow!(
            "no PostgreSQL installation found: looked for `postgres` and `initdb` on PATH, \
             in `pg_config --bindir` and under /usr/lib/postgresql/*/bin; \
             set {BIN_DIR_ENV} to the folder holding them"
        )
    })
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free TCP port")?;
    Ok(listener.local_addr()?.port())
}

/// 32 hex digits from the OS random source.
pub fn random_secret() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `name` as a double-quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` as a single-quoted SQL string literal (standard_conforming_strings).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}
