//! `pgward explain --user NAME "SQL"`: the decision pgward takes for a
//! statement of that user, and the exact SQL it would forward, computed
//! against the live catalog and the user's globals as a login would.

use std::sync::Arc;

use anyhow::Context as _;

use crate::config::Config;
use crate::policy::PolicySet;
use crate::rewrite::{self, Context};
use crate::session::policy::SessionPolicy;
use crate::upstream;

/// Prints the decision for `sql` as `user` with the given extra roles.
pub async fn run(
    config: Config,
    user: &str,
    extra_roles: &[String],
    sql: &str,
) -> anyhow::Result<()> {
    let policies = PolicySet::load_keyed(
        &config.policies.paths,
        config.auth.scram_iterations,
        &config.auth.secret,
    )
    .map_err(|errors| {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the policy set has errors:\n{}", list.join("\n"))
    })?;
    if !policies.users.contains_key(user) {
        anyhow::bail!("no user \"{user}\" in the policy set");
    }
    let tls = upstream::tls::client_config(&config.upstream)?;
    let client = upstream::control::connect(&config.upstream, tls.as_ref()).await?;
    let catalog = crate::catalog::Catalog::load(&client)
        .await
        .context("cannot read the upstream catalog")?;
    if policies.bypass_policy(user) {
        println!("decision: allowed, forwarded as sent (BYPASSPOLICY)\n{sql}");
        return Ok(());
    }
    let mut roles = policies.effective_roles(user);
    roles.extend(extra_roles.iter().cloned());
    roles.sort();
    roles.dedup();
    let values = crate::globals::resolve(&policies, user, &roles, None, &client)
        .await
        .map_err(|e| anyhow::anyhow!("login would fail: {} {}", e.code, e.message))?;
    let handle = Arc::new(crate::catalog::CatalogHandle::new(catalog));
    let catalog = handle.current();
    let access =
        SessionPolicy::new(user, roles.clone(), values, Arc::new(policies)).with_catalog(handle);
    let search_path = vec![user.to_string(), "public".to_string()];
    let ctx = Context {
        catalog: &catalog,
        search_path: &search_path,
        access: &access,
    };
    println!("user: {user}\nroles: {}", roles.join(", "));
    match rewrite::secure_text(sql, false, &ctx) {
        Ok(forwarded) => println!("decision: allowed\nforwarded SQL:\n{forwarded}"),
        Err(e) => {
            println!("decision: refused\nSQLSTATE {}: {}", e.code, e.message);
            if let Some(h) = e.hint {
                println!("hint: {h}");
            }
        }
    }
    Ok(())
}
