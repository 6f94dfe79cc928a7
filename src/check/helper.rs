//! The helper schema of `pgward install` as the service role finds it: the
//! schema, exactly one function `pgward."check"` with the definition
//! [`crate::install`] writes (a STRICT or otherwise altered copy could let
//! a NULL check pass), and the privileges to call it.

use crate::install::{FUNCTION, FUNCTION_ARGUMENTS, FUNCTION_BODY, FUNCTION_RESULT, SCHEMA};

/// What the catalog says of one function named [`FUNCTION`] in [`SCHEMA`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub arguments: String,
    pub result: String,
    pub language: String,
    pub volatility: String,
    pub strict: bool,
    pub security_definer: bool,
    pub returns_set: bool,
    pub kind: String,
    pub body: String,
    /// `SET` clauses (`proconfig`), if any.
    pub settings: bool,
    /// The current role may EXECUTE it.
    pub executable: bool,
}

impl Found {
    /// The function as `pgward install` creates it, callable.
    pub fn installed() -> Found {
        Found {
            arguments: FUNCTION_ARGUMENTS.into(),
            result: FUNCTION_RESULT.into(),
            language: "plpgsql".into(),
            volatility: "v".into(),
            strict: false,
            security_definer: false,
            returns_set: false,
            kind: "f".into(),
            body: FUNCTION_BODY.into(),
            settings: false,
            executable: true,
        }
    }
}

/// The hint every problem carries.
pub const HINT: &str = "run `pgward install --config <file>` (with `--admin-url` for a role \
     that may create the schema when the service role may not)";

/// Why the helper is not usable, or `None`. `schema_usable`: `None` when
/// the schema does not exist, else whether the role may use it.
pub fn problem(role: &str, schema_usable: Option<bool>, functions: &[Found]) -> Option<String> {
    let name = format!("{SCHEMA}.\"{FUNCTION}\"(boolean, text)");
    let usable = match schema_usable {
        None => return Some(format!("the helper schema \"{SCHEMA}\" does not exist")),
        Some(u) => u,
    };
    if !usable {
        return Some(format!(
            "the service role \"{role}\" may not use the helper schema \"{SCHEMA}\""
        ));
    }
    let found = match functions {
        [] => return Some(format!("the helper function {name} does not exist")),
        [one] => one,
        more => {
            return Some(format!(
                "schema \"{SCHEMA}\" has {} functions named \"{FUNCTION}\"; pgward's calls must \
                 resolve to {name} alone",
                more.len()
            ));
        }
    };
    let expected = Found::installed();
    let mut differences = Vec::new();
    if found.arguments != expected.arguments || found.result != expected.result {
        differences.push(format!(
            "signature ({}) returns {}",
            found.arguments, found.result
        ));
    }
    if found.language != expected.language {
        differences.push(format!("language {}", found.language));
    }
    if found.kind != expected.kind || found.returns_set {
        differences.push("not a plain function".to_string());
    }
    if found.volatility != expected.volatility {
        differences.push("not VOLATILE".to_string());
    }
    if found.strict {
        differences.push("STRICT (a NULL check would pass)".to_string());
    }
    if found.security_definer {
        differences.push("SECURITY DEFINER".to_string());
    }
    if found.settings {
        differences.push("SET clauses".to_string());
    }
    if found.body != expected.body {
        differences.push("another body".to_string());
    }
    if !differences.is_empty() {
        return Some(format!(
            "the helper function {name} is not the one pgward installs: {}",
            differences.join(", ")
        ));
    }
    if !found.executable {
        return Some(format!(
            "the service role \"{role}\" may not execute the helper function {name}"
        ));
    }
    None
}

/// Reads the helper over `client` (connected as `role`, the service role)
/// and reports what is wrong with it, without the hint.
pub async fn verify(client: &tokio_postgres::Client, role: &str) -> Result<(), String> {
    let schema = client
        .query_opt(
            "SELECT pg_catalog.has_schema_privilege(n.oid, 'USAGE') \
               FROM pg_catalog.pg_namespace n WHERE n.nspname = $1",
            &[&SCHEMA],
        )
        .await
        .map_err(|e| format!("cannot read the helper schema: {e}"))?
        .map(|row| row.get::<_, bool>(0));
    let rows = client
        .query(
            "SELECT pg_catalog.pg_get_function_identity_arguments(p.oid), \
                    pg_catalog.pg_get_function_result(p.oid), l.lanname::text, \
                    p.provolatile::text, p.proisstrict, p.prosecdef, p.proretset, \
                    p.prokind::text, p.prosrc, p.proconfig IS NOT NULL, \
                    pg_catalog.has_function_privilege(p.oid, 'EXECUTE') \
               FROM pg_catalog.pg_proc p \
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
               JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
              WHERE n.nspname = $1 AND p.proname = $2",
            &[&SCHEMA, &FUNCTION],
        )
        .await
        .map_err(|e| format!("cannot read the helper function: {e}"))?;
    let functions: Vec<Found> = rows
        .iter()
        .map(|r| Found {
            arguments: r.get(0),
            result: r.get::<_, Option<String>>(1).unwrap_or_default(),
            language: r.get(2),
            volatility: r.get(3),
            strict: r.get(4),
            security_definer: r.get(5),
            returns_set: r.get(6),
            kind: r.get(7),
            body: r.get::<_, Option<String>>(8).unwrap_or_default(),
            settings: r.get(9),
            executable: r.get(10),
        })
        .collect();
    match problem(role, schema, &functions) {
        Some(p) => Err(p),
        None => Ok(()),
    }
}

/// At `pgward serve`'s start: a warning when the helper is not usable
/// (reads work without it; policy-bound writes that need it fail).
pub async fn warn_if_unusable(client: &tokio_postgres::Client, role: &str) {
    if let Err(problem) = verify(client, role).await {
        tracing::warn!(
            "{problem}: writes of policy-bound sessions will fail until it is installed; {HINT}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installed_function_passes() {
        assert_eq!(problem("svc", Some(true), &[Found::installed()]), None);
    }

    #[test]
    fn missing_pieces_are_named() {
        let p = problem("svc", None, &[]).unwrap();
        assert!(p.contains("schema \"pgward\" does not exist"), "{p}");
        let p = problem("svc", Some(false), &[Found::installed()]).unwrap();
        assert!(p.contains("may not use the helper schema"), "{p}");
        let p = problem("svc", Some(true), &[]).unwrap();
        assert!(
            p.contains("pgward.\"check\"(boolean, text) does not exist"),
            "{p}"
        );
        let not_executable = Found {
            executable: false,
            ..Found::installed()
        };
        let p = problem("svc", Some(true), &[not_executable]).unwrap();
        assert!(p.contains("may not execute"), "{p}");
    }

    #[test]
    fn every_difference_from_the_installed_definition_is_an_error() {
        let cases: Vec<(Found, &str)> = vec![
            (
                Found {
                    arguments: "ok boolean".into(),
                    ..Found::installed()
                },
                "signature (ok boolean)",
            ),
            (
                Found {
                    result: "void".into(),
                    ..Found::installed()
                },
                "returns void",
            ),
            (
                Found {
                    strict: true,
                    ..Found::installed()
                },
                "STRICT",
            ),
            (
                Found {
                    security_definer: true,
                    ..Found::installed()
                },
                "SECURITY DEFINER",
            ),
            (
                Found {
                    body: "BEGIN RETURN true; END".into(),
                    ..Found::installed()
                },
                "another body",
            ),
            (
                Found {
                    language: "sql".into(),
                    ..Found::installed()
                },
                "language sql",
            ),
            (
                Found {
                    volatility: "i".into(),
                    ..Found::installed()
                },
                "not VOLATILE",
            ),
            (
                Found {
                    settings: true,
                    ..Found::installed()
                },
                "SET clauses",
            ),
            (
                Found {
                    kind: "p".into(),
                    ..Found::installed()
                },
                "not a plain function",
            ),
        ];
        for (found, expected) in cases {
            let p = problem("svc", Some(true), &[found]).expect(expected);
            assert!(p.contains("is not the one pgward installs"), "{p}");
            assert!(p.contains(expected), "{p}");
        }
    }

    #[test]
    fn an_overload_is_an_error() {
        let other = Found {
            arguments: "ok integer".into(),
            ..Found::installed()
        };
        let p = problem("svc", Some(true), &[Found::installed(), other]).unwrap();
        assert!(p.contains("2 functions named \"check\""), "{p}");
    }
}
