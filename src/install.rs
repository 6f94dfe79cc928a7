//! `pgward install`: the helper schema that writes under policy need in the
//! upstream database. pgward's secured writes call `pgward."check"(ok,
//! message)` on every row they insert or change; the function raises
//! `42501` with pgward's message unless `ok` is true, so a failing check
//! aborts the statement inside PostgreSQL and writes nothing.
//!
//! Owns the one definition of the helper (`pgward check` compares the
//! catalog with [`FUNCTION_BODY`] and the attributes below, `pgward demo`
//! and the integration tests install it with [`install`]). Never drops or
//! changes anything but schema `pgward` and its `check` function.

use std::str::FromStr;

use anyhow::{Context, bail};

use crate::cluster::quote_ident;
use crate::config::{Config, UpstreamConfig};
use crate::upstream;

/// The helper schema.
pub const SCHEMA: &str = "pgward";
/// The helper function's name in [`SCHEMA`].
pub const FUNCTION: &str = "check";
/// Its argument list as `pg_get_function_identity_arguments` prints it.
pub const FUNCTION_ARGUMENTS: &str = "ok boolean, message text";
/// Its result type as `pg_get_function_result` prints it.
pub const FUNCTION_RESULT: &str = "boolean";
/// Its PL/pgSQL body (`pg_proc.prosrc`). It is not STRICT: a check that is
/// NULL fails like one that is false (`IS NOT TRUE`).
pub const FUNCTION_BODY: &str = "BEGIN IF ok IS NOT TRUE THEN RAISE EXCEPTION USING \
     ERRCODE = '42501', MESSAGE = message; END IF; RETURN true; END";

/// The SQL that creates or repairs the helper and lets `service_role` (and
/// no one else but its owner) use it; idempotent, run in one transaction.
/// `CREATE OR REPLACE` resets every attribute (strictness, SECURITY
/// DEFINER, SET clauses) to the ones written here.
pub fn install_sql(service_role: &str) -> String {
    let role = quote_ident(service_role);
    let schema = quote_ident(SCHEMA);
    let function = format!("{schema}.{}", quote_ident(FUNCTION));
    format!(
        "BEGIN;\n\
         CREATE SCHEMA IF NOT EXISTS {schema};\n\
         CREATE OR REPLACE FUNCTION {function}({FUNCTION_ARGUMENTS}) RETURNS {FUNCTION_RESULT} \
         LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER \
         AS $pgward${FUNCTION_BODY}$pgward$;\n\
         REVOKE ALL ON SCHEMA {schema} FROM PUBLIC;\n\
         REVOKE ALL ON FUNCTION {function}(boolean, text) FROM PUBLIC;\n\
         GRANT USAGE ON SCHEMA {schema} TO {role};\n\
         GRANT EXECUTE ON FUNCTION {function}(boolean, text) TO {role};\n\
         COMMIT;"
    )
}

/// Creates or repairs the helper over `client` (a role that may create the
/// schema in the current database, or own it already) for `service_role`.
pub async fn install(client: &tokio_postgres::Client, service_role: &str) -> anyhow::Result<()> {
    let sql = install_sql(service_role);
    if let Err(e) = client.batch_execute(&sql).await {
        // Leave the connection usable for the caller.
        let _ = client.batch_execute("ROLLBACK").await;
        let reason = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_string());
        bail!("cannot install the helper schema \"{SCHEMA}\": {reason}");
    }
    Ok(())
}

/// `pgward install [--admin-url URL]`: installs into the upstream database
/// of the configuration, as the service role or as the admin URL's role,
/// for the service role.
pub async fn run(config: Config, admin_url: Option<&str>) -> anyhow::Result<()> {
    let target = match admin_url {
        Some(url) => admin_upstream(&config.upstream, url)?,
        None => config.upstream.clone(),
    };
    let tls = upstream::tls::client_config(&target)?;
    let client = upstream::control::connect(&target, tls.as_ref()).await?;
    install(&client, &config.upstream.user).await?;
    crate::check::helper::verify(&client, &config.upstream.user)
        .await
        .map_err(|problem| anyhow::anyhow!("installed, but {problem}"))?;
    eprintln!(
        "pgward: installed schema \"{SCHEMA}\" and function {SCHEMA}.\"{FUNCTION}\"(boolean, text) \
         in database \"{}\" for role \"{}\"",
        config.upstream.database, config.upstream.user
    );
    Ok(())
}

/// The upstream settings with the connection of `--admin-url`: its user,
/// password, host and port; its database must be the upstream's (the
/// helper belongs in the database pgward serves).
fn admin_upstream(upstream: &UpstreamConfig, url: &str) -> anyhow::Result<UpstreamConfig> {
    let pg = tokio_postgres::Config::from_str(url)
        .context("--admin-url: not a PostgreSQL connection URL")?;
    let mut target = upstream.clone();
    match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => target.host = h.clone(),
        Some(_) => bail!("--admin-url: unix-socket hosts are not supported"),
        None => {}
    }
    if let Some(port) = pg.get_ports().first() {
        target.port = *port;
    }
    target.user = pg
        .get_user()
        .context("--admin-url: the URL names no user")?
        .to_string();
    target.password = pg
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    if let Some(db) = pg.get_dbname()
        && db != upstream.database
    {
        bail!(
            "--admin-url: names database \"{db}\"; the helper schema belongs in the upstream \
             database \"{}\"",
            upstream.database
        );
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_sql_is_one_transaction_for_the_service_role() {
        let sql = install_sql("pgward_service");
        assert!(sql.starts_with("BEGIN;\n") && sql.ends_with("COMMIT;"));
        assert!(sql.contains("CREATE SCHEMA IF NOT EXISTS \"pgward\";"));
        assert!(sql.contains(
            "CREATE OR REPLACE FUNCTION \"pgward\".\"check\"(ok boolean, message text) \
             RETURNS boolean LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER"
        ));
        assert!(sql.contains(&format!("AS $pgward${FUNCTION_BODY}$pgward$;")));
        assert!(
            sql.contains("REVOKE ALL ON FUNCTION \"pgward\".\"check\"(boolean, text) FROM PUBLIC;")
        );
        assert!(sql.contains("GRANT USAGE ON SCHEMA \"pgward\" TO \"pgward_service\";"));
        assert!(sql.contains(
            "GRANT EXECUTE ON FUNCTION \"pgward\".\"check\"(boolean, text) TO \"pgward_service\";"
        ));
        // Revoked from PUBLIC before granted to the role.
        assert!(sql.find("FROM PUBLIC").unwrap() < sql.find("GRANT USAGE").unwrap());
    }

    #[test]
    fn the_body_raises_42501_unless_the_check_is_true() {
        assert!(FUNCTION_BODY.contains("IF ok IS NOT TRUE THEN RAISE EXCEPTION"));
        assert!(FUNCTION_BODY.contains("ERRCODE = '42501', MESSAGE = message"));
        assert!(
            !FUNCTION_BODY.contains("$pgward$"),
            "the quote tag cannot end the body"
        );
    }

    #[test]
    fn role_names_are_quoted() {
        let sql = install_sql("svc\"; DROP TABLE t; --");
        assert!(sql.contains("TO \"svc\"\"; DROP TABLE t; --\";"));
        assert!(!sql.contains("TO svc"));
    }

    fn upstream() -> UpstreamConfig {
        let dir = std::env::temp_dir();
        Config::from_toml(
            "[upstream]\nurl = \"postgres://svc:pw@db.example:5433/app\"\n",
            &dir,
        )
        .unwrap()
        .upstream
    }

    #[test]
    fn admin_url_replaces_the_login_and_keeps_the_database() {
        let target = admin_upstream(&upstream(), "postgres://admin:secret@db.example/app").unwrap();
        assert_eq!(target.user, "admin");
        assert_eq!(target.password.as_deref(), Some("secret"));
        assert_eq!(target.host, "db.example");
        assert_eq!(target.database, "app");
        let no_db = admin_upstream(&upstream(), "postgres://admin@other:6000").unwrap();
        assert_eq!((no_db.host.as_str(), no_db.port), ("other", 6000));
        assert_eq!(no_db.password, None);
        let other = admin_upstream(&upstream(), "postgres://admin@db.example/postgres");
        assert!(
            other
                .unwrap_err()
                .to_string()
                .contains("upstream database \"app\"")
        );
    }
}
