//! pgward's side of the upstream connection, as the service identity sees it:
//! a service role that could bypass row security (SUPERUSER, BYPASSRLS) is
//! refused at start unless `upstream.allow_superuser` says otherwise;
//! configuration errors stop the start and name the key; pgward
//! authenticates with whatever method pg_hba.conf asks for (trust, password,
//! md5, scram-sha-256) and speaks TLS to a `hostssl`-only server, checking the
//! certificate and the host name with `verify-full`.
//!
//! The authentication and TLS tests rewrite pg_hba.conf, so each runs on a
//! cluster of its own.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pgward::cluster::{TempCluster, quote_ident, quote_literal, random_secret};
use tokio_postgres::Client;

use crate::harness::{DEFAULT_POLICIES, TestDb};
use crate::pool::{Proxy, eventually};

/// A pgward that refuses to start must have exited by then.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// How a `pgward serve` that was expected to refuse ended.
struct Refused {
    status: ExitStatus,
    stderr: String,
}

impl Refused {
    /// Asserts a failed start (exit code 1, not a crash) whose message
    /// mentions each of `words`.
    fn assert_mentions(&self, words: &[&str]) {
        assert_eq!(
            self.status.code(),
            Some(1),
            "pgward should exit with 1 ({}); stderr:\n{}",
            self.status,
            self.stderr
        );
        for w in words {
            assert!(
                self.stderr.contains(w),
                "pgward's refusal does not mention {w:?}:\n{}",
                self.stderr
            );
        }
    }
}

/// A full configuration: `server` lines (a free `listen` is added unless
/// they set one; client TLS is off), the upstream `url` and more `upstream`
/// lines, and the default policy file, which [`serve_to_exit`] writes next
/// to the configuration.
fn config(server: &str, url: &str, upstream: &str) -> anyhow::Result<String> {
    let listen = if server.lines().any(|l| l.trim_start().starts_with("listen")) {
        String::new()
    } else {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        format!("listen = \"127.0.0.1:{port}\"\n")
    };
    Ok(format!(
        "[server]\n{listen}tls = \"disable\"\n{server}\n\n\
         [upstream]\nurl = {}\n{upstream}\n\n\
         [policies]\npaths = [\"policies.sql\"]\n",
        toml_string(url)
    ))
}

/// Runs `pgward serve` with `toml` and waits for it to exit on its own; a
/// pgward still running after [`EXIT_WITHIN`] is killed and is an error.
async fn serve_to_exit(toml: &str) -> anyhow::Result<Refused> {
    let dir = tempfile::Builder::new()
        .prefix("pgward-upstream-")
        .tempdir()?;
    std::fs::write(dir.path().join("policies.sql"), DEFAULT_POLICIES)?;
    let config_file = dir.path().join("pgward.toml");
    std::fs::write(&config_file, toml)?;
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgward"))
        .arg("serve")
        .arg("--config")
        .arg(&config_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start pgward")?;
    let started = Instant::now();
    match tokio::time::timeout(EXIT_WITHIN, child.wait_with_output()).await {
        Ok(out) => {
            let out = out?;
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            eprintln!(
                "pgward exited after {:?} ({}): {}",
                started.elapsed(),
                out.status,
                stderr.lines().last().unwrap_or_default()
            );
            Ok(Refused {
                status: out.status,
                stderr,
            })
        }
        // Dropping the future killed it (kill_on_drop).
        Err(_) => bail!(
            "pgward was still running {}s after its start with:\n{toml}",
            EXIT_WITHIN.as_secs()
        ),
    }
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("a non-UTF-8 temporary path")
}

/// Logs in through `proxy` as alice and returns `sql`'s single text value
/// (the statement is forwarded as sent: alice bypasses policies).
async fn value_through(proxy: &Proxy, sql: &str) -> anyhow::Result<String> {
    let alice = proxy.connect_as("alice", "alice").await?;
    let row = alice
        .query_one(sql, &[])
        .await
        .with_context(|| format!("{sql}; pgward's log:\n{}", proxy.log()))?;
    Ok(row.get(0))
}

#[tokio::test]
async fn a_superuser_service_role_is_refused_unless_allowed() -> anyhow::Result<()> {
    let db = TestDb::new("upstream_superuser").await?;
    let url = db.cluster().superuser_url(db.name());

    serve_to_exit(&config("", &url, "")?)
        .await?
        .assert_mentions(&["superuser", "allow_superuser", "upstream.url"]);
    serve_to_exit(&config("", &url, "allow_superuser = false")?)
        .await?
        .assert_mentions(&["superuser", "allow_superuser"]);

    let proxy = Proxy::start_for(&url, db.name(), "", "allow_superuser = true").await?;
    let superuser = value_through(&proxy, "SELECT current_setting('is_superuser')").await?;
    assert_eq!(
        superuser, "on",
        "the upstream session is not the superuser's"
    );
    Ok(())
}

#[tokio::test]
async fn a_bypassrls_service_role_is_refused_unless_allowed() -> anyhow::Result<()> {
    let db = TestDb::new("upstream_bypassrls").await?;
    let role = format!("svc_bypassrls_{}", db.name());
    let password = random_secret();
    let superuser = db.superuser().await?;
    superuser
        .batch_execute(&format!(
            "CREATE ROLE {} LOGIN NOSUPERUSER BYPASSRLS PASSWORD {}",
            quote_ident(&role),
            quote_literal(&password)
        ))
        .await?;
    let url = format!(
        "postgres://{role}:{password}@127.0.0.1:{}/{}",
        db.cluster().port(),
        db.name()
    );

    let outcome = async {
        serve_to_exit(&config("", &url, "")?)
            .await?
            .assert_mentions(&["BYPASSRLS", "allow_superuser", &role]);

        let proxy = Proxy::start_for(&url, db.name(), "", "allow_superuser = true").await?;
        let bypass = value_through(
            &proxy,
            "SELECT rolbypassrls::text FROM pg_catalog.pg_roles WHERE rolname = current_user",
        )
        .await?;
        assert_eq!(bypass, "true", "the upstream session is not {role}'s");
        drop(proxy);
        anyhow::Ok(())
    }
    .await;
    // The role belongs to the shared cluster: remove it whatever happened.
    let dropped = superuser
        .batch_execute(&format!("DROP ROLE {}", quote_ident(&role)))
        .await;
    outcome?;
    dropped.with_context(|| format!("cannot drop {role}"))?;
    Ok(())
}

#[tokio::test]
async fn configuration_errors_stop_the_start_and_name_the_key() -> anyhow::Result<()> {
    // A working upstream: nothing but the configuration can be the reason.
    let db = TestDb::new("upstream_config_errors").await?;
    let url = db.service_url();

    serve_to_exit(&config("", &url, "pool_sise = 3")?)
        .await?
        .assert_mentions(&["unknown field `pool_sise`"]);
    serve_to_exit(&config("max_conections = 3", &url, "")?)
        .await?
        .assert_mentions(&["unknown field `max_conections`"]);
    let misspelt_section = config("", &url, "")?.replace("[server]", "[servr]");
    serve_to_exit(&misspelt_section)
        .await?
        .assert_mentions(&["unknown field `servr`"]);
    for listen in [
        "localhost",
        "127.0.0.1",
        "127.0.0.1:99999",
        "300.0.0.1:6432",
    ] {
        let refused = serve_to_exit(&config(&format!("listen = \"{listen}\""), &url, "")?).await?;
        refused.assert_mentions(&["server.listen", listen]);
    }
    Ok(())
}

/// As root the cluster's files belong to the `postgres` OS user, which runs
/// the server; otherwise the server runs as we do.
fn give_to_server(cluster: &TempCluster, path: &Path) -> anyhow::Result<()> {
    let owner = std::fs::metadata(cluster.dir().join("data"))?;
    std::os::unix::fs::chown(
        path,
        Some(std::os::unix::fs::MetadataExt::uid(&owner)),
        Some(std::os::unix::fs::MetadataExt::gid(&owner)),
    )
    .with_context(|| format!("cannot hand {} to the server's user", path.display()))
}

/// Replaces pg_hba.conf and reloads the configuration.
async fn write_hba(cluster: &TempCluster, admin: &Client, hba: &str) -> anyhow::Result<()> {
    let file = cluster.dir().join("data").join("pg_hba.conf");
    std::fs::write(&file, hba)?;
    give_to_server(cluster, &file)?;
    let errors: Vec<String> = admin
        .query(
            "SELECT line_number || ': ' || error FROM pg_catalog.pg_hba_file_rules \
             WHERE error IS NOT NULL",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    anyhow::ensure!(
        errors.is_empty(),
        "the test's pg_hba.conf has errors: {errors:?}\n{hba}"
    );
    let reloaded: bool = admin
        .query_one("SELECT pg_reload_conf()", &[])
        .await?
        .get(0);
    anyhow::ensure!(reloaded, "pg_reload_conf() failed");
    Ok(())
}

async fn try_connect(conn: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

#[tokio::test]
async fn pgward_authenticates_upstream_as_pg_hba_conf_asks() -> anyhow::Result<()> {
    let cluster = TempCluster::start().await?;
    let port = cluster.port();
    let database = "methods";
    let admin = cluster.superuser_client("postgres").await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await?;
    admin
        .batch_execute(
            "CREATE ROLE svc_trust LOGIN;
             CREATE ROLE svc_password LOGIN PASSWORD 'clear-secret';
             CREATE ROLE svc_md5 LOGIN;
             CREATE ROLE svc_scram LOGIN PASSWORD 'scram-secret';
             SET password_encryption = 'md5';
             ALTER ROLE svc_md5 PASSWORD 'md5-secret';",
        )
        .await?;
    // Stored as md5, so that the md5 rule really asks for md5 (with a SCRAM
    // verifier PostgreSQL would switch to SCRAM).
    let stored: String = admin
        .query_one(
            "SELECT left(rolpassword, 3) FROM pg_catalog.pg_authid WHERE rolname = 'svc_md5'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(stored, "md5");
    // Log which method authenticated each connection.
    admin
        .batch_execute("ALTER SYSTEM SET log_connections = on")
        .await?;
    write_hba(
        &cluster,
        &admin,
        "local all all trust\n\
         host all postgres 127.0.0.1/32 scram-sha-256\n\
         host all svc_trust 127.0.0.1/32 trust\n\
         host all svc_password 127.0.0.1/32 password\n\
         host all svc_md5 127.0.0.1/32 md5\n\
         host all svc_scram 127.0.0.1/32 scram-sha-256\n",
    )
    .await?;
    // The reload is asynchronous: wait until trust lets svc_trust in.
    let trust_conn = format!("host=127.0.0.1 port={port} user=svc_trust dbname={database}");
    let effective = eventually(Duration::from_secs(10), || async {
        Ok(try_connect(&trust_conn).await.is_ok())
    })
    .await?;
    anyhow::ensure!(effective, "the new pg_hba.conf did not take effect");

    let url = |user: &str, password: Option<&str>| match password {
        Some(p) => format!("postgres://{user}:{p}@127.0.0.1:{port}/{database}"),
        None => format!("postgres://{user}@127.0.0.1:{port}/{database}"),
    };
    for (user, password) in [
        ("svc_trust", None),
        ("svc_password", Some("clear-secret")),
        ("svc_md5", Some("md5-secret")),
        ("svc_scram", Some("scram-secret")),
    ] {
        let proxy = Proxy::start_for(&url(user, password), database, "", "")
            .await
            .with_context(|| format!("pgward with upstream role {user}"))?;
        let upstream_user = value_through(&proxy, "SELECT current_user::text").await?;
        assert_eq!(upstream_user, user);
    }

    serve_to_exit(&config("", &url("svc_md5", Some("wrong")), "")?)
        .await?
        .assert_mentions(&["upstream", "password authentication failed", "svc_md5"]);
    serve_to_exit(&config("", &url("svc_md5", None), "")?)
        .await?
        .assert_mentions(&["upstream"]);

    // Both of pgward's connections (the control connection at start, the
    // pooled one for alice) used the method the rule names.
    let log = std::fs::read_to_string(cluster.dir().join("postgres.log"))?;
    for (user, method) in [
        ("svc_password", "password"),
        ("svc_md5", "md5"),
        ("svc_scram", "scram-sha-256"),
    ] {
        let line = format!("connection authenticated: identity=\"{user}\" method={method} ");
        let count = log.matches(&line).count();
        assert!(
            count >= 2,
            "expected a control and a pooled connection authenticated as {user} with \
             {method}, found {count} in the server log"
        );
    }
    drop(admin);
    cluster.stop().await
}

/// A self-signed certificate and its key, as PEM.
struct Pem {
    cert: String,
    key: String,
}

fn self_signed(names: &[&str]) -> anyhow::Result<Pem> {
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(
        names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
    )?;
    Ok(Pem {
        cert: cert.pem(),
        key: signing_key.serialize_pem(),
    })
}

/// Backend pid and whether (and which) TLS it uses, for the upstream
/// connection serving a session through `proxy`.
async fn upstream_tls_of_session(
    proxy: &Proxy,
    admin: &Client,
) -> anyhow::Result<(String, Option<String>)> {
    let alice = proxy.connect_as("alice", "alice").await?;
    let pid: i32 = alice
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let row = admin
        .query_opt(
            "SELECT a.application_name, s.ssl, s.version \
             FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_stat_ssl s USING (pid) \
             WHERE a.pid = $1 AND a.application_name LIKE 'pgward:%'",
            &[&pid],
        )
        .await?
        .with_context(|| format!("no pgward backend with pid {pid}"))?;
    let ssl: bool = row.get(1);
    Ok((row.get(0), ssl.then(|| row.get(2))))
}

#[tokio::test]
async fn pgward_encrypts_the_upstream_connection_and_verifies_it() -> anyhow::Result<()> {
    let cluster = TempCluster::start().await?;
    let port = cluster.port();
    let database = "tls";
    let password = random_secret();
    let admin = cluster.superuser_client("postgres").await?;
    admin
        .batch_execute(&format!(
            "CREATE ROLE pgward_service LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD {}",
            quote_literal(&password)
        ))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {database} OWNER pgward_service"))
        .await?;

    // The server's certificate names `localhost` only, so that verify-full
    // has a host name to get wrong (127.0.0.1).
    let served = self_signed(&["localhost"])?;
    let stranger = self_signed(&["localhost", "127.0.0.1"])?;
    let certs = tempfile::tempdir()?;
    let ca_file = certs.path().join("upstream.crt");
    let wrong_ca_file = certs.path().join("stranger.crt");
    std::fs::write(&ca_file, &served.cert)?;
    std::fs::write(&wrong_ca_file, &stranger.cert)?;
    let data = cluster.dir().join("data");
    for (name, pem) in [("server.crt", &served.cert), ("server.key", &served.key)] {
        let file = data.join(name);
        std::fs::write(&file, pem)?;
        give_to_server(&cluster, &file)?;
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    admin.batch_execute("ALTER SYSTEM SET ssl = on").await?;
    admin.batch_execute("SELECT pg_reload_conf()").await?;

    // Wait until the server takes the service role over TLS, checking its
    // certificate as verify-full would.
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut served.cert.as_bytes()) {
        roots.add(cert?)?;
    }
    let verifying = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let direct = format!(
        "host=localhost hostaddr=127.0.0.1 port={port} user=pgward_service \
         password={password} dbname={database} sslmode=require"
    );
    let tls_ready = eventually(Duration::from_secs(10), || async {
        let connector = tokio_postgres_rustls::MakeRustlsConnect::new(verifying.clone());
        Ok(match tokio_postgres::connect(&direct, connector).await {
            Ok((client, connection)) => {
                drop(client);
                let _ = connection.await;
                true
            }
            Err(_) => false,
        })
    })
    .await?;
    anyhow::ensure!(tls_ready, "the server does not accept TLS connections");

    // From now on the service role must come over TLS (a hostssl line only
    // passes once ssl is on, hence after the reload above; a fresh session
    // sees it).
    let admin = cluster.superuser_client("postgres").await?;
    write_hba(
        &cluster,
        &admin,
        "local all all trust\n\
         host all postgres 127.0.0.1/32 scram-sha-256\n\
         hostssl all pgward_service 127.0.0.1/32 scram-sha-256\n",
    )
    .await?;
    let plain_conn = direct.replace("sslmode=require", "sslmode=disable");
    let hostssl_only = eventually(Duration::from_secs(10), || async {
        Ok(try_connect(&plain_conn).await.is_err())
    })
    .await?;
    anyhow::ensure!(
        hostssl_only,
        "the hostssl-only pg_hba.conf did not take effect"
    );
    let plain = try_connect(&plain_conn).await;
    let e = plain
        .err()
        .context("the service role got in without TLS: hostssl is not in force")?;
    let message = e.as_db_error().map(|d| d.message()).unwrap_or_default();
    assert!(message.contains("no encryption"), "{e:?}");

    let url = |host: &str| format!("postgres://pgward_service:{password}@{host}:{port}/{database}");

    // require (and prefer): encrypted, the certificate unchecked (the URL's
    // host is not among its names).
    for mode in ["require", "prefer"] {
        let proxy = Proxy::start_for(
            &url("127.0.0.1"),
            database,
            "",
            &format!("tls = \"{mode}\""),
        )
        .await
        .with_context(|| format!("pgward with upstream.tls = {mode}"))?;
        let (name, tls) = upstream_tls_of_session(&proxy, &admin).await?;
        assert_eq!(name, "pgward:alice");
        let version = tls.with_context(|| {
            format!("upstream.tls = {mode}: pgward's upstream connection is not encrypted")
        })?;
        assert!(version.starts_with("TLSv1."), "{version}");
    }

    // A TLS connection opened on one session thread keeps serving sessions
    // on the others.
    let proxy = Proxy::start_for(
        &url("127.0.0.1"),
        database,
        "workers = 3",
        "tls = \"require\"\npool_size = 1",
    )
    .await
    .context("pgward with upstream.tls = require and three session threads")?;
    let pid = crate::pool::sessions_share_one_connection_across_threads(&proxy, 7).await?;
    let ssl: bool = admin
        .query_one(
            "SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = $1",
            &[&pid],
        )
        .await?
        .get(0);
    assert!(ssl, "the shared upstream connection is not encrypted");
    drop(proxy);

    // disable: the hostssl-only server turns the service role away.
    serve_to_exit(&config("", &url("127.0.0.1"), "tls = \"disable\"")?)
        .await?
        .assert_mentions(&["upstream", "no encryption"]);

    // verify-full with the right authority and a host name it names.
    let verify_full = |ca: &Path| -> anyhow::Result<String> {
        Ok(format!(
            "tls = \"verify-full\"\nca_file = {}",
            toml_string(path_str(ca)?)
        ))
    };
    let proxy = Proxy::start_for(&url("localhost"), database, "", &verify_full(&ca_file)?)
        .await
        .context("pgward with upstream.tls = verify-full")?;
    let (_, tls) = upstream_tls_of_session(&proxy, &admin).await?;
    assert!(
        tls.is_some(),
        "verify-full: the upstream connection is not encrypted"
    );
    drop(proxy);

    // verify-full with another certificate as the authority.
    serve_to_exit(&config(
        "",
        &url("localhost"),
        &verify_full(&wrong_ca_file)?,
    )?)
    .await?
    .assert_mentions(&["upstream", "invalid peer certificate"]);
    // verify-full with the right authority but a host the certificate does
    // not name.
    serve_to_exit(&config("", &url("127.0.0.1"), &verify_full(&ca_file)?)?)
        .await?
        .assert_mentions(&["upstream", "invalid peer certificate", "not valid for name"]);

    drop(admin);
    cluster.stop().await
}
