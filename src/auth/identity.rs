//! The one shape every identity source ends in, and the effective roles it
//! gives a session.

use std::collections::BTreeSet;
use std::time::SystemTime;

use crate::policy::PolicySet;
use crate::policy::model::PUBLIC;

/// An authenticated client.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The name the session runs as (`@{login_id}`).
    pub login: String,
    /// `@{user_id}`: the value as text and its PostgreSQL type name.
    pub user_id: Option<(String, String)>,
    /// Roles the source grants, besides those of a policy-file user of the
    /// same login.
    pub roles: Vec<String>,
    /// `@{groups}`.
    pub groups: Vec<String>,
    /// `@{claims.…}`: a token's claims (an empty object otherwise).
    pub claims: serde_json::Value,
    /// When the credentials stop being valid (a token's `exp`): the session
    /// ends then.
    pub expires: Option<SystemTime>,
    /// Whether the login's own policy-file entry (`CREATE USER … IN ROLE`)
    /// counts: the source vouched for that login, so its policy-file roles
    /// apply whatever the source (a policy file may give roles to users an
    /// identity provider signs in). False for a guest only.
    pub policy_user: bool,
    /// Which source decided (for logs).
    pub source: &'static str,
}

impl Identity {
    /// An identity with no roles, groups or claims of its own; the login's
    /// policy-file roles, if it has any, apply.
    pub fn new(login: &str, source: &'static str) -> Identity {
        Identity {
            login: login.to_string(),
            user_id: None,
            roles: Vec::new(),
            groups: Vec::new(),
            claims: serde_json::Value::Object(serde_json::Map::new()),
            expires: None,
            policy_user: true,
            source,
        }
    }

    /// The session's effective roles: the policy-file roles of the login
    /// (when it is a policy-file user and not a guest), every role
    /// the identity names, each closed over IN ROLE, and PUBLIC; sorted and
    /// deduplicated.
    pub fn effective_roles(&self, policies: &PolicySet) -> Vec<String> {
        let mut roles: BTreeSet<String> = BTreeSet::new();
        if self.policy_user && policies.users.contains_key(&self.login) {
            roles.extend(policies.held_roles(&self.login));
        }
        for role in &self.roles {
            // A role named by a source is held as that role only: a source
            // naming "alice" does not make the session alice.
            if policies.users.contains_key(role) && !policies.roles.contains_key(role) {
                continue;
            }
            roles.extend(policies.held_roles(role));
        }
        roles.insert(PUBLIC.to_string());
        roles.into_iter().collect()
    }

    /// Whether some effective role has BYPASSPOLICY.
    pub fn bypasses_policies(&self, policies: &PolicySet, effective_roles: &[String]) -> bool {
        effective_roles.iter().any(|name| {
            policies
                .roles
                .get(name)
                .is_some_and(|role| role.bypass_policy)
        })
    }
}

/// Reads the claim at a dotted path (`realm_access.roles`). A claim whose
/// own name contains dots (`https://example.com/tenant`) is found first.
pub fn claim<'a>(claims: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut current = claims;
    for part in path.split('.') {
        current = current.get(part)?;
    }
    Some(current)
}

/// A claim as a list of names: an array of strings, or one string of names
/// separated by spaces (as OAuth2's `scope`). Anything else is no names.
pub fn claim_names(claims: &serde_json::Value, path: &str) -> Vec<String> {
    match claim(claims, path) {
        Some(serde_json::Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// A claim as `@{user_id}`: a string is text, an integer int8.
pub fn claim_user_id(claims: &serde_json::Value, path: &str) -> Option<(String, String)> {
    match claim(claims, path)? {
        serde_json::Value::String(s) => Some((s.clone(), "pg_catalog.text".into())),
        serde_json::Value::Number(n) if n.is_i64() => {
            Some((n.to_string(), "pg_catalog.int8".into()))
        }
        serde_json::Value::Number(n) => Some((n.to_string(), "pg_catalog.numeric".into())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_and_names() {
        let c = json!({
            "realm_access": {"roles": ["a", "b", 3]},
            "scope": "read write",
            "https://example.com/tenant": "t1",
            "id": 42,
        });
        assert_eq!(claim_names(&c, "realm_access.roles"), ["a", "b"]);
        assert_eq!(claim_names(&c, "scope"), ["read", "write"]);
        assert_eq!(claim(&c, "https://example.com/tenant"), Some(&json!("t1")));
        assert!(claim(&c, "realm_access.nope").is_none());
        assert_eq!(
            claim_user_id(&c, "id"),
            Some(("42".to_string(), "pg_catalog.int8".to_string()))
        );
    }

    #[test]
    fn source_roles_do_not_borrow_a_users_grants() {
        let set = PolicySet::parse_str(
            std::path::Path::new("t.sql"),
            "CREATE ROLE employee;\nCREATE ROLE manager IN ROLE employee;\n\
             CREATE USER alice PASSWORD 'x' IN ROLE manager;\n",
            4096,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        // A token's user that is a policy-file user holds its roles.
        let mut id = Identity::new("alice", "jwt");
        assert_eq!(
            id.effective_roles(&set),
            ["alice", "employee", "manager", "public"]
        );
        // A role named by a source is held as that role, never as a user.
        let mut ann = Identity::new("ann", "jwt");
        ann.roles = vec!["manager".into(), "alice".into(), "unknown".into()];
        assert_eq!(
            ann.effective_roles(&set),
            ["employee", "manager", "public", "unknown"]
        );
        // A guest named alice holds nothing of alice's.
        id.policy_user = false;
        id.roles = vec!["employee".into()];
        assert_eq!(id.effective_roles(&set), ["employee", "public"]);
    }
}
