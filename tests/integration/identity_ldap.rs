//! The LDAP identity source against a real `slapd` (Debian's package), which
//! each test starts with its own temporary configuration and data
//! (tests/fixtures/ldap/) and stops when it ends: simple bind through a DN
//! template, search-then-bind with a service account, group → role mapping,
//! ldaps and StartTLS with a test certificate, and logins that try to
//! change the filter or the DN they are put into.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pgward::auth::ldap::{LdapIdentity, LdapOutcome, LdapSettings, authenticate};

use crate::harness::self_signed_cert;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ldap");
const SUFFIX: &str = "dc=example,dc=org";

/// A running slapd with the fixture's directory; stopped and removed when
/// dropped.
struct Slapd {
    child: Child,
    dir: tempfile::TempDir,
    ldap_port: u16,
    ldaps_port: u16,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn tool(name: &str) -> anyhow::Result<PathBuf> {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin"] {
        let path = Path::new(dir).join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!(
        "{name} is not installed: run scripts/install-deps.sh (Debian packages slapd, ldap-utils)"
    )
}

impl Slapd {
    fn start() -> anyhow::Result<Slapd> {
        let dir = tempfile::Builder::new().prefix("pgward-slapd-").tempdir()?;
        std::fs::create_dir(dir.path().join("data"))?;
        // server.crt and server.key, for 127.0.0.1 and localhost.
        self_signed_cert(dir.path())?;
        let template = std::fs::read_to_string(Path::new(FIXTURES).join("slapd.conf.in"))?;
        let conf = dir.path().join("slapd.conf");
        let dir_text = dir.path().to_str().context("temporary path is not UTF-8")?;
        std::fs::write(&conf, template.replace("@DIR@", dir_text))?;
        let loaded = Command::new(tool("slapadd")?)
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(Path::new(FIXTURES).join("data.ldif"))
            .output()?;
        if !loaded.status.success() {
            bail!(
                "slapadd failed: {}",
                String::from_utf8_lossy(&loaded.stderr)
            );
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ldap_port = free_port()?;
            let ldaps_port = free_port()?;
            let log = std::fs::File::create(dir.path().join("slapd.log"))?;
            // -d keeps slapd in the foreground, so the child is slapd itself.
            let mut child = Command::new(tool("slapd")?)
                .arg("-f")
                .arg(&conf)
                .arg("-h")
                .arg(format!(
                    "ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/"
                ))
                .arg("-d")
                .arg("0")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("cannot start slapd")?;
            let deadline = Instant::now() + Duration::from_secs(15);
            let ready = loop {
                if let Some(status) = child.try_wait()? {
                    break Err(status);
                }
                let up = |port| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok();
                if up(ldap_port) && up(ldaps_port) {
                    break Ok(());
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("slapd did not listen within 15 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            match ready {
                Ok(()) => {
                    return Ok(Slapd {
                        child,
                        dir,
                        ldap_port,
                        ldaps_port,
                    });
                }
                // A port taken between choosing and binding: try others.
                Err(status) if attempt < 3 => {
                    eprintln!("slapd exited ({status}); retrying with other ports");
                }
                Err(status) => {
                    let log =
                        std::fs::read_to_string(dir.path().join("slapd.log")).unwrap_or_default();
                    bail!("slapd exited ({status}):\n{log}");
                }
            }
        }
    }

    fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn settings(toml_text: &str) -> anyhow::Result<LdapSettings> {
    let mut settings: LdapSettings = toml::from_str(toml_text)?;
    settings.validate(Path::new("/"))?;
    Ok(settings)
}

fn template_settings(url: &str, extra: &str) -> anyhow::Result<LdapSettings> {
    settings(&format!(
        "url = \"{url}\"\n\
         bind_dn_template = \"uid={{login}},ou=people,{SUFFIX}\"\n\
         {extra}\n\
         [groups]\nbase = \"ou=groups,{SUFFIX}\"\n\
         [role_map]\nsales = \"sales_rep\"\nmanagers = [\"manager\", \"sales_rep\"]\n\
         \"cn=admins,ou=groups,{SUFFIX}\" = [\"dba\", \"employee\"]\n"
    ))
}

fn search_settings(url: &str, service_password: &str) -> anyhow::Result<LdapSettings> {
    settings(&format!(
        "url = \"{url}\"\n\
         [search]\nbase = \"{SUFFIX}\"\nfilter = \"(&(objectClass=inetOrgPerson)(uid={{login}}))\"\n\
         bind_dn = \"cn=pgward,ou=services,{SUFFIX}\"\nbind_password = \"{service_password}\"\n\
         [groups]\nbase = \"ou=groups,{SUFFIX}\"\nfilter = \"(&(objectClass=groupOfNames)(member={{dn}}))\"\n\
         [role_map]\nsales = \"sales_rep\"\nMANAGERS = \"manager\"\n"
    ))
}

fn accepted(login: &str, roles: &[&str], groups: &[&str]) -> LdapOutcome {
    LdapOutcome::Accepted(LdapIdentity {
        login: login.into(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
    })
}

#[tokio::test]
async fn ldap_bind_through_a_dn_template() -> anyhow::Result<()> {
    let slapd = Slapd::start()?;
    let s = template_settings(&slapd.ldap_url(), "")?;

    assert_eq!(
        authenticate(&s, "alice", "alice-secret").await?,
        accepted("alice", &["sales_rep"], &["sales"])
    );
    // Roles follow the map's order (keys sorted), without repeats; a group
    // named by DN maps like one named by its cn.
    assert_eq!(
        authenticate(&s, "bob", "bob-secret").await?,
        accepted("bob", &["manager", "sales_rep"], &["managers", "sales"])
    );
    assert_eq!(
        authenticate(&s, "carol", "carol-secret").await?,
        accepted("carol", &["dba", "employee"], &["admins"])
    );
    assert_eq!(
        authenticate(&s, "alice", "bob-secret").await?,
        LdapOutcome::Rejected
    );
    // With a template, LDAP cannot tell a missing entry from a wrong password.
    assert_eq!(
        authenticate(&s, "nobody", "x").await?,
        LdapOutcome::Rejected
    );
    // An empty password would be an anonymous bind, which slapd accepts.
    assert_eq!(authenticate(&s, "alice", "").await?, LdapOutcome::Rejected);
    // A login with a comma is escaped into its RDN: it binds as itself...
    assert_eq!(
        authenticate(&s, "o,brien", "obrien-secret").await?,
        accepted("o,brien", &[], &[])
    );
    // ...and cannot step into another branch of the tree.
    assert_eq!(
        authenticate(&s, "twin,ou=services", "twin-secret").await?,
        LdapOutcome::Rejected
    );
    Ok(())
}

#[tokio::test]
async fn ldap_search_then_bind() -> anyhow::Result<()> {
    let slapd = Slapd::start()?;
    let s = search_settings(&slapd.ldap_url(), "service-secret")?;

    assert_eq!(
        authenticate(&s, "alice", "alice-secret").await?,
        accepted("alice", &["sales_rep"], &["sales"])
    );
    // role_map keys match group names without regard to case.
    assert_eq!(
        authenticate(&s, "bob", "bob-secret").await?,
        accepted("bob", &["manager", "sales_rep"], &["managers", "sales"])
    );
    assert_eq!(
        authenticate(&s, "alice", "wrong").await?,
        LdapOutcome::Rejected
    );
    assert_eq!(authenticate(&s, "nobody", "x").await?, LdapOutcome::Unknown);
    assert_eq!(authenticate(&s, "alice", "").await?, LdapOutcome::Rejected);
    // Filter injection: unescaped, `al*` and `*)(uid=*` would find alice's
    // entry and bind with her password.
    for login in ["al*", "*", "*)(uid=*", "alice)(uid=*", "*)(|(uid=*"] {
        assert_eq!(
            authenticate(&s, login, "alice-secret").await?,
            LdapOutcome::Unknown,
            "{login}"
        );
    }
    // Two entries answer to `twin`: ambiguous, so refused.
    assert_eq!(
        authenticate(&s, "twin", "twin-secret").await?,
        LdapOutcome::Rejected
    );

    // A service account the directory refuses is an error, not a verdict.
    let wrong_service = search_settings(&slapd.ldap_url(), "not-the-password")?;
    let err = authenticate(&wrong_service, "alice", "alice-secret")
        .await
        .expect_err("the service bind must fail");
    assert!(err.to_string().contains("service account"), "{err}");

    // Without its service account the search is anonymous, which this
    // directory refuses (insufficientAccessRights): an error, not a verdict.
    let mut anonymous = s.clone();
    if let Some(search) = anonymous.search.as_mut() {
        search.bind_dn = None;
        search.bind_password = None;
    }
    let err = authenticate(&anonymous, "alice", "alice-secret")
        .await
        .expect_err("an anonymous search must be refused");
    assert!(
        err.to_string().contains("insufficientAccessRights"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn ldap_over_tls_and_starttls() -> anyhow::Result<()> {
    let slapd = Slapd::start()?;
    let ca = slapd.cert();
    let ca_line = format!("ca_file = \"{}\"", ca.display());

    let ldaps = template_settings(&slapd.ldaps_url(), &ca_line)?;
    assert_eq!(
        authenticate(&ldaps, "alice", "alice-secret").await?,
        accepted("alice", &["sales_rep"], &["sales"])
    );
    assert_eq!(
        authenticate(&ldaps, "alice", "nope").await?,
        LdapOutcome::Rejected
    );

    let starttls = template_settings(&slapd.ldap_url(), &format!("starttls = true\n{ca_line}"))?;
    assert_eq!(
        authenticate(&starttls, "carol", "carol-secret").await?,
        accepted("carol", &["dba", "employee"], &["admins"])
    );

    // A certificate pgward does not trust: no login, whatever the password.
    let other = tempfile::tempdir()?;
    let untrusted = self_signed_cert(other.path())?;
    let wrong_ca = format!("ca_file = \"{}\"", untrusted.cert_file.display());
    for s in [
        template_settings(&slapd.ldaps_url(), &wrong_ca)?,
        template_settings(&slapd.ldap_url(), &format!("starttls = true\n{wrong_ca}"))?,
    ] {
        let result = authenticate(&s, "alice", "alice-secret").await;
        assert!(
            result.is_err(),
            "{:?} with an untrusted certificate: {result:?}",
            s.url
        );
    }

    // A directory that is down is an error too.
    drop(slapd);
    let result = authenticate(&ldaps, "alice", "alice-secret").await;
    assert!(result.is_err(), "{result:?}");
    Ok(())
}

/// Through pgward: `auth.order = ["ldap"]`, cleartext passwords on loopback;
/// the roles and groups the directory gives drive identity_core's row
/// filter (`visible_to = ANY(@{roles}) … OR grp = ANY(@{groups})`).
#[tokio::test]
async fn ldap_identities_filter_rows_through_pgward() -> anyhow::Result<()> {
    use crate::identity_core::{identity_db, options, refusal, sees};

    let slapd = Slapd::start()?;
    let db = identity_db("identity_ldap_pgward").await?;
    db.superuser()
        .await?
        .batch_execute("INSERT INTO docs VALUES (9, NULL, NULL, 'sales', NULL, NULL)")
        .await?;
    let pgward = db
        .start_pgward(options(&format!(
            "[auth]\norder = [\"ldap\"]\nallow_cleartext_on_loopback = true\n\
             [auth.lockout]\nmax_failures = 0\n\
             [auth.ldap]\nurl = \"{}\"\n\
             [auth.ldap.search]\nbase = \"{SUFFIX}\"\nfilter = \"(uid={{login}})\"\n\
             bind_dn = \"cn=pgward,ou=services,{SUFFIX}\"\nbind_password = \"service-secret\"\n\
             [auth.ldap.groups]\nbase = \"ou=groups,{SUFFIX}\"\n\
             [auth.ldap.role_map]\nsales = \"reader\"\nmanagers = \"editor\"\n",
            slapd.ldap_url()
        )))
        .await?;
    // alice: reader (doc 1) and group sales (doc 9).
    assert_eq!(sees(&pgward, "alice", "alice-secret").await?, [1, 9]);
    // bob: editor as well (doc 2).
    assert_eq!(sees(&pgward, "bob", "bob-secret").await?, [1, 2, 9]);
    // carol's group maps to no role: she holds no grant on docs.
    let carol = pgward.connect_as("carol", "carol-secret").await?;
    let err = carol
        .query("SELECT id FROM docs", &[])
        .await
        .expect_err("carol holds no grant");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");

    let failed = |user: &str| {
        (
            "28P01".to_string(),
            format!("password authentication failed for user \"{user}\""),
            None,
        )
    };
    assert_eq!(
        refusal(&pgward, "alice", "bob-secret").await?,
        failed("alice")
    );
    assert_eq!(refusal(&pgward, "nobody", "x").await?, failed("nobody"));
    assert_eq!(
        refusal(&pgward, "al*", "alice-secret").await?,
        failed("al*")
    );
    assert_eq!(refusal(&pgward, "alice", "").await?, failed("alice"));
    Ok(())
}
