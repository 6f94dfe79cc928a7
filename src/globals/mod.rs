//! Globals resolved once per session, right after authentication, on the
//! service connection (PRODUCT.md §3 "Globals"), and filled into policy
//! expressions as typed literals.
//!
//! A global's value is kept as rows of text with the PostgreSQL type of each
//! column. Where a policy uses it decides its shape: as the right-hand side
//! of `= ANY(…)`/`ALL(…)` it becomes an array literal of every row; anywhere
//! else it is the single row's value (`@{g}` for one column, `@{g.attr}` for
//! a column of a one-row global), NULL without a row.
//!
//! Identity built-ins: `@{user_id}` (the source's value and type),
//! `@{groups}` (a text list) and `@{claims.<path>}` (a token's claims: a
//! string is text, an integer int8, another number numeric, a boolean bool,
//! an array of one of these a list usable with `= ANY(…)`, anything else
//! jsonb). A path with dots is read as nested claims (`realm_access.roles`)
//! unless a claim has that very name.
//!
//! Order at login (PRODUCT.md §3): the identity source's roles, groups and
//! user id; then the dynamic identity globals a policy file declares, each
//! with the built-ins so far — `user_id` (replaces the source's),
//! `groups` and `roles` (added to the source's, roles closed over IN ROLE
//! again) — which may reference built-ins only; then every other global,
//! in dependency order, with the final roles.
//!
//! Must never: splice a value into SQL as raw text. Every value becomes a
//! quoted literal with an explicit cast to its column's type.

pub mod script;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Value, VisitMut, VisitorMut};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::auth::Identity;
use crate::auth::identity::claim;
use crate::error::{PgError, code};
use crate::policy::PolicySet;
use crate::policy::model::{GlobalBody, GlobalRef, WithGlobals};

/// One global's value: its columns (name, type) and rows of text.
#[derive(Debug, Clone)]
pub struct GlobalValue {
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl GlobalValue {
    fn scalar(type_name: &str, value: Option<String>) -> GlobalValue {
        GlobalValue {
            columns: vec![("value".into(), type_name.into())],
            rows: vec![vec![value]],
        }
    }
}

/// A session's globals.
#[derive(Debug, Clone, Default)]
pub struct GlobalValues {
    values: BTreeMap<String, GlobalValue>,
    /// The identity's claims (`@{claims.…}`); Null without a token.
    claims: serde_json::Value,
}

/// The globals that extend the identity at login, in evaluation order.
pub const IDENTITY_GLOBALS: [&str; 3] = ["user_id", "groups", "roles"];

/// Quotes text as a SQL string literal (standard_conforming_strings is
/// pinned on, so only quotes need doubling).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn literal(value: Option<&str>, type_name: &str) -> String {
    match value {
        Some(v) => format!("{}::{type_name}", quote_literal(v)),
        None => format!("NULL::{type_name}"),
    }
}

fn array_literal(items: &[(String, &str)], type_name: &str) -> String {
    if items.is_empty() {
        return format!("'{{}}'::{type_name}[]");
    }
    let items: Vec<String> = items
        .iter()
        .map(|(v, _)| literal(Some(v), type_name))
        .collect();
    format!("ARRAY[{}]::{type_name}[]", items.join(", "))
}

fn jsonb(items: &[serde_json::Value]) -> Result<Expr, PgError> {
    let text = serde_json::Value::Array(items.to_vec()).to_string();
    parse_expr(&literal(Some(&text), "pg_catalog.jsonb"))
}

fn parse_expr(sql: &str) -> Result<Expr, PgError> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| {
            tracing::error!("a global's literal does not parse: {e}");
            PgError::error(
                code::FEATURE_NOT_SUPPORTED,
                "pgward could not use a global's value",
            )
        })
}

impl GlobalValues {
    /// The built-ins every session has.
    pub fn builtins(login: &str, roles: &[String], client_addr: Option<&str>) -> GlobalValues {
        let mut values = BTreeMap::new();
        values.insert(
            "login_id".to_string(),
            GlobalValue::scalar("text", Some(login.to_string())),
        );
        values.insert(
            "roles".to_string(),
            GlobalValue {
                columns: vec![("role".into(), "text".into())],
                rows: roles.iter().map(|r| vec![Some(r.clone())]).collect(),
            },
        );
        values.insert(
            "client_addr".to_string(),
            GlobalValue::scalar("inet", client_addr.map(str::to_string)),
        );
        GlobalValues {
            values,
            claims: serde_json::Value::Null,
        }
    }

    /// The built-ins of an authenticated identity: those of
    /// [`GlobalValues::builtins`] plus `user_id`, `groups` and `claims`.
    pub fn for_identity(
        identity: &Identity,
        roles: &[String],
        client_addr: Option<&str>,
    ) -> GlobalValues {
        let mut values = GlobalValues::builtins(&identity.login, roles, client_addr);
        if let Some((value, type_name)) = &identity.user_id {
            values.insert(
                "user_id",
                GlobalValue::scalar(type_name, Some(value.clone())),
            );
        }
        values.insert(
            "groups",
            GlobalValue {
                columns: vec![("group".into(), "pg_catalog.text".into())],
                rows: identity
                    .groups
                    .iter()
                    .map(|g| vec![Some(g.clone())])
                    .collect(),
            },
        );
        values.claims = identity.claims.clone();
        values
    }

    /// The literal of `@{claims.path}`.
    fn claim_literal(&self, path: &str, list: bool) -> Result<Expr, PgError> {
        use serde_json::Value as J;
        fn scalar(v: &J) -> Option<(String, &'static str)> {
            match v {
                J::String(s) => Some((s.clone(), "pg_catalog.text")),
                J::Bool(b) => Some((b.to_string(), "pg_catalog.bool")),
                J::Number(n) if n.is_i64() || n.is_u64() => Some((
                    n.to_string(),
                    if n.is_i64() {
                        "pg_catalog.int8"
                    } else {
                        "pg_catalog.numeric"
                    },
                )),
                J::Number(n) => Some((n.to_string(), "pg_catalog.numeric")),
                _ => None,
            }
        }
        let sql = match claim(&self.claims, path) {
            None | Some(J::Null) => "NULL".to_string(),
            Some(J::Array(items)) => {
                let typed: Option<Vec<(String, &str)>> = items.iter().map(scalar).collect();
                match typed {
                    Some(typed) => {
                        let mut type_name = typed.first().map_or("pg_catalog.text", |(_, t)| *t);
                        if typed.iter().any(|(_, t)| *t != type_name) {
                            // Mixed integers and other numbers are numeric;
                            // anything else mixed is refused below.
                            if typed
                                .iter()
                                .all(|(_, t)| t.ends_with("int8") || t.ends_with("numeric"))
                            {
                                type_name = "pg_catalog.numeric";
                            } else {
                                return jsonb(items);
                            }
                        }
                        array_literal(&typed, type_name)
                    }
                    None => return jsonb(items),
                }
            }
            Some(v) => match scalar(v) {
                Some((text, type_name)) if list => array_literal(&[(text, type_name)], type_name),
                Some((text, type_name)) => literal(Some(&text), type_name),
                None => literal(Some(&v.to_string()), "pg_catalog.jsonb"),
            },
        };
        parse_expr(&sql)
    }

    pub fn insert(&mut self, name: &str, value: GlobalValue) {
        self.values.insert(name.to_string(), value);
    }

    pub fn get(&self, name: &str) -> Option<&GlobalValue> {
        self.values.get(name)
    }

    /// The literal a reference stands for. `list`: the reference is the
    /// right-hand side of ANY/ALL.
    fn literal_for(&self, r: &GlobalRef, list: bool) -> Result<Expr, PgError> {
        if r.name == crate::policy::model::CLAIMS
            && !self.values.contains_key(&r.name)
            && let Some(path) = &r.attr
        {
            return self.claim_literal(path, list);
        }
        let Some(value) = self.values.get(&r.name) else {
            // A declared global that does not apply to this session (FOR
            // ROLE) or a built-in no identity source provided: NULL.
            return parse_expr("NULL");
        };
        let column = match &r.attr {
            Some(attr) => value
                .columns
                .iter()
                .position(|(n, _)| n == attr)
                .ok_or_else(|| {
                    PgError::error(
                        code::FEATURE_NOT_SUPPORTED,
                        format!("global \"{}\" has no attribute \"{attr}\"", r.name),
                    )
                })?,
            None => 0,
        };
        let type_name = value
            .columns
            .get(column)
            .map_or("text", |(_, t)| t.as_str());
        if list || (r.attr.is_none() && value.rows.len() > 1) {
            let items: Vec<String> = value
                .rows
                .iter()
                .map(|row| literal(row.get(column).and_then(|v| v.as_deref()), type_name))
                .collect();
            return parse_expr(&format!("ARRAY[{}]::{type_name}[]", items.join(", ")));
        }
        match value.rows.as_slice() {
            [] => parse_expr(&literal(None, type_name)),
            [row] => parse_expr(&literal(
                row.get(column).and_then(|v| v.as_deref()),
                type_name,
            )),
            _ => Err(PgError::error(
                code::INSUFFICIENT_PRIVILEGE,
                format!(
                    "global \"{}\" has more than one row where one value is needed",
                    r.name
                ),
            )),
        }
    }

    /// A copy of a policy tree with every `@{…}` replaced by its literal.
    pub fn fill<T: VisitMut + Clone>(&self, with: &WithGlobals<T>) -> Result<T, PgError> {
        struct Filler<'a> {
            values: &'a GlobalValues,
            refs: &'a [GlobalRef],
        }
        impl Filler<'_> {
            fn reference(&self, e: &Expr) -> Option<&GlobalRef> {
                let mut e = e;
                while let Expr::Nested(inner) = e {
                    e = inner;
                }
                match e {
                    Expr::Value(v) => match &v.value {
                        Value::Placeholder(text) => {
                            self.refs.iter().find(|r| &r.placeholder == text)
                        }
                        _ => None,
                    },
                    _ => None,
                }
            }
        }
        impl VisitorMut for Filler<'_> {
            type Break = PgError;
            fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<PgError> {
                // ANY/ALL: the reference on the right is a list.
                let list_side = match expr {
                    Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } => Some(right),
                    _ => None,
                };
                if let Some(right) = list_side
                    && let Some(r) = self.reference(right)
                {
                    match self.values.literal_for(r, true) {
                        Ok(lit) => **right = lit,
                        Err(e) => return ControlFlow::Break(e),
                    }
                }
                if let Some(r) = self.reference(expr) {
                    match self.values.literal_for(r, false) {
                        Ok(lit) => *expr = lit,
                        Err(e) => return ControlFlow::Break(e),
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut tree = with.sql.clone();
        let mut filler = Filler {
            values: self,
            refs: &with.globals,
        };
        if let ControlFlow::Break(e) = tree.visit(&mut filler) {
            return Err(e);
        }
        crate::rewrite::literals::protect(&mut tree)?;
        Ok(tree)
    }
}

/// Evaluates the globals that apply to a session, in dependency order.
/// A `REQUIRED` global without a row or with a NULL value fails the login
/// with 28000 naming it.
pub async fn resolve(
    policies: &PolicySet,
    login: &str,
    roles: &[String],
    client_addr: Option<&str>,
    client: &tokio_postgres::Client,
) -> Result<GlobalValues, PgError> {
    let values = GlobalValues::builtins(login, roles, client_addr);
    let limits = script::ScriptLimits::default();
    resolve_declared(policies, roles, values, &[], client, &limits).await
}

/// The globals of an authenticated identity whose dynamic identity
/// globals were applied ([`extend_identity`]): its built-ins, then every
/// other declared global.
pub async fn resolve_identity(
    policies: &PolicySet,
    identity: &Identity,
    roles: &[String],
    client_addr: Option<&str>,
    client: &tokio_postgres::Client,
    limits: &script::ScriptLimits,
) -> Result<GlobalValues, PgError> {
    let values = GlobalValues::for_identity(identity, roles, client_addr);
    resolve_declared(policies, roles, values, &IDENTITY_GLOBALS, client, limits).await
}

/// Whether the policy files declare a global that extends the identity.
pub fn has_identity_globals(policies: &PolicySet) -> bool {
    IDENTITY_GLOBALS
        .iter()
        .any(|name| policies.globals.contains_key(*name))
}

/// Applies the policy files' `user_id`, `groups` and `roles` globals to the
/// identity (see the module's order); returns the new effective roles.
pub async fn extend_identity(
    policies: &PolicySet,
    identity: &mut Identity,
    roles: Vec<String>,
    client_addr: Option<&str>,
    client: &tokio_postgres::Client,
    limits: &script::ScriptLimits,
) -> Result<Vec<String>, PgError> {
    let before = roles.clone();
    let mut roles = roles;
    for name in IDENTITY_GLOBALS {
        let Some(global) = policies.globals.get(name) else {
            continue;
        };
        if !global.applies_to(&before) {
            continue;
        }
        if let Some(r) = global
            .references()
            .iter()
            .find(|r| !allowed_in_identity_global(policies, &r.name))
        {
            return Err(PgError::fatal(
                code::INVALID_AUTHORIZATION,
                format!(
                    "global \"{name}\" extends the identity and may reference built-in globals only, not \"{}\"",
                    r.name
                ),
            ));
        }
        let values = GlobalValues::for_identity(identity, &roles, client_addr);
        let value = evaluate_global(global, &values, client, limits).await?;
        let texts = || {
            value
                .rows
                .iter()
                .filter_map(|row| row.first().cloned().flatten())
                .collect::<Vec<String>>()
        };
        match name {
            "user_id" => {
                let type_name = value
                    .columns
                    .first()
                    .map_or_else(|| "pg_catalog.text".to_string(), |(_, t)| t.clone());
                identity.user_id = texts().into_iter().next().map(|v| (v, type_name));
            }
            "groups" => {
                for g in texts() {
                    if !identity.groups.contains(&g) {
                        identity.groups.push(g);
                    }
                }
            }
            _ => {
                for r in texts() {
                    if !identity.roles.contains(&r) {
                        identity.roles.push(r);
                    }
                }
                roles = identity.effective_roles(policies);
            }
        }
    }
    Ok(roles)
}

/// A dynamic identity global may use built-ins only (redefined identity
/// globals included: they are evaluated before it or are its own input).
fn allowed_in_identity_global(policies: &PolicySet, name: &str) -> bool {
    crate::policy::model::is_builtin(name)
        && (!policies.globals.contains_key(name) || IDENTITY_GLOBALS.contains(&name))
}

/// Runs one global with the values so far; checks REQUIRED.
async fn evaluate_global(
    global: &crate::policy::model::Global,
    values: &GlobalValues,
    client: &tokio_postgres::Client,
    limits: &script::ScriptLimits,
) -> Result<GlobalValue, PgError> {
    let failed = |e: &dyn std::fmt::Display| {
        tracing::warn!("global \"{}\" failed: {e}", global.name);
        PgError::fatal(
            code::INVALID_AUTHORIZATION,
            format!("global \"{}\" could not be evaluated", global.name),
        )
    };
    let value = match &global.body {
        GlobalBody::Script(s) => {
            let input = script::ScriptInput::from_values(values);
            script::evaluate(&s.source, &input, client, limits)
                .await
                .map_err(|e| failed(&e))?
        }
        GlobalBody::Query(query) => {
            let sql = values.fill(query)?.to_string();
            evaluate(client, &sql).await.map_err(|e| failed(&e))?
        }
    };
    let missing =
        value.rows.is_empty() || value.rows.iter().all(|row| row.iter().all(Option::is_none));
    if global.required && missing {
        return Err(PgError::fatal(
            code::INVALID_AUTHORIZATION,
            format!(
                "required global \"{}\" has no value for this login",
                global.name
            ),
        ));
    }
    Ok(value)
}

async fn resolve_declared(
    policies: &PolicySet,
    roles: &[String],
    mut values: GlobalValues,
    skip: &[&str],
    client: &tokio_postgres::Client,
    limits: &script::ScriptLimits,
) -> Result<GlobalValues, PgError> {
    for global in policies.globals_for(roles) {
        if skip.contains(&global.name.as_str()) {
            continue;
        }
        let value = evaluate_global(global, &values, client, limits).await?;
        values.insert(&global.name, value);
    }
    Ok(values)
}

/// Runs a global's query: first prepared for its column names and types,
/// then with every column cast to text.
async fn evaluate(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<GlobalValue, tokio_postgres::Error> {
    let statement = client.prepare(sql).await?;
    let columns: Vec<(String, String)> = statement
        .columns()
        .iter()
        .map(|c| {
            let t = c.type_();
            let type_name = if t.schema() == "pg_catalog" {
                format!("pg_catalog.{}", t.name())
            } else {
                format!("\"{}\".\"{}\"", t.schema(), t.name())
            };
            (c.name().to_string(), type_name)
        })
        .collect();
    let aliases: Vec<String> = (1..=columns.len()).map(|i| format!("c{i}")).collect();
    let select: Vec<String> = aliases.iter().map(|a| format!("g.{a}::text")).collect();
    let wrapped = format!(
        "SELECT {} FROM ({sql}) AS g({})",
        select.join(", "),
        aliases.join(", ")
    );
    let rows = client.query(&wrapped, &[]).await?;
    let rows = rows
        .iter()
        .map(|row| {
            (0..columns.len())
                .map(|i| row.get::<_, Option<String>>(i))
                .collect()
        })
        .collect();
    Ok(GlobalValue { columns, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(name: &str, attr: Option<&str>, placeholder: &str) -> GlobalRef {
        GlobalRef {
            name: name.into(),
            attr: attr.map(str::to_string),
            location: crate::policy::error::Location::new(std::path::Path::new("t.sql"), 1, 1),
            placeholder: placeholder.into(),
        }
    }

    fn with(sql: &str, refs: Vec<GlobalRef>) -> WithGlobals<Expr> {
        WithGlobals {
            sql: parse_expr(sql).unwrap(),
            globals: refs,
        }
    }

    #[test]
    fn values_become_typed_literals_never_raw_text() {
        let values = GlobalValues::builtins("x' OR '1'='1", &["a".into()], None);
        let e = with("login = $1", vec![refs("login_id", None, "$1")]);
        let filled = values.fill(&e).unwrap().to_string();
        assert_eq!(filled, "login = 'x'' OR ''1''=''1'::TEXT");
        for evil in ["a\\'b", "$$x$$", "-- c", "/* c */", "Zürich 東京"] {
            let values = GlobalValues::builtins(evil, &[], None);
            let filled = values.fill(&e).unwrap().to_string();
            let parsed = pg_query::parse(&format!("SELECT {filled}")).unwrap();
            assert_eq!(parsed.protobuf.stmts.len(), 1, "{filled}");
            // PostgreSQL reads exactly the value as one string constant.
            let tree = format!("{:?}", parsed.protobuf);
            assert!(
                tree.contains(&format!("sval: {evil:?}")),
                "{filled}\n{tree}"
            );
        }
    }

    #[test]
    fn lists_in_any_and_attributes_of_rows() {
        let mut values = GlobalValues::builtins("alice", &["a".into(), "b".into()], None);
        values.insert(
            "emp",
            GlobalValue {
                columns: vec![
                    ("id".into(), "pg_catalog.int4".into()),
                    ("department_id".into(), "pg_catalog.int4".into()),
                ],
                rows: vec![vec![Some("1".into()), Some("3".into())]],
            },
        );
        let e = with(
            "r = ANY($1) AND d = $2",
            vec![
                refs("roles", None, "$1"),
                refs("emp", Some("department_id"), "$2"),
            ],
        );
        assert_eq!(
            values.fill(&e).unwrap().to_string(),
            "r = ANY(ARRAY['a'::TEXT, 'b'::TEXT]::TEXT[]) AND d = '3'::pg_catalog.int4"
        );
    }

    #[test]
    fn identity_builtins_and_claims_become_typed_literals() {
        let mut identity = Identity::new("ann", "jwt");
        identity.user_id = Some(("7".into(), "pg_catalog.int8".into()));
        identity.groups = vec!["g1".into(), "g'2".into()];
        identity.claims = serde_json::json!({
            "tenant": "acme' OR 'x'='x",
            "level": 3,
            "ratio": 0.5,
            "admin": false,
            "realm_access": {"roles": ["r1", "r2"]},
            "ids": [1, 2],
            "mixed": ["a", 1],
            "empty": [],
            "obj": {"k": "v"},
            "https://example.com/tenant": "t1",
        });
        let values = GlobalValues::for_identity(&identity, &["public".into()], None);
        let fill = |sql: &str, name: &str, attr: Option<&str>| {
            values
                .fill(&with(sql, vec![refs(name, attr, "$1")]))
                .unwrap()
                .to_string()
        };
        assert_eq!(fill("x = $1", "user_id", None), "x = '7'::pg_catalog.int8");
        assert_eq!(
            fill("x = ANY($1)", "groups", None),
            "x = ANY(ARRAY['g1'::pg_catalog.text, 'g''2'::pg_catalog.text]::pg_catalog.text[])"
        );
        assert_eq!(
            fill("x = $1", "claims", Some("tenant")),
            "x = 'acme'' OR ''x''=''x'::pg_catalog.text"
        );
        assert_eq!(
            fill("x = $1", "claims", Some("level")),
            "x = '3'::pg_catalog.int8"
        );
        assert_eq!(
            fill("x = $1", "claims", Some("ratio")),
            "x = '0.5'::pg_catalog.numeric"
        );
        assert_eq!(
            fill("x = $1", "claims", Some("admin")),
            "x = 'false'::pg_catalog.bool"
        );
        assert_eq!(
            fill("x = ANY($1)", "claims", Some("realm_access.roles")),
            "x = ANY(ARRAY['r1'::pg_catalog.text, 'r2'::pg_catalog.text]::pg_catalog.text[])"
        );
        assert_eq!(
            fill("x = ANY($1)", "claims", Some("ids")),
            "x = ANY(ARRAY['1'::pg_catalog.int8, '2'::pg_catalog.int8]::pg_catalog.int8[])"
        );
        // A scalar where a list is needed is a one-element list.
        assert_eq!(
            fill("x = ANY($1)", "claims", Some("tenant")),
            "x = ANY(ARRAY['acme'' OR ''x''=''x'::pg_catalog.text]::pg_catalog.text[])"
        );
        assert_eq!(
            fill("x = $1", "claims", Some("mixed")),
            "x = '[\"a\",1]'::pg_catalog.jsonb"
        );
        assert_eq!(
            fill("x = ANY($1)", "claims", Some("empty")),
            "x = ANY('{}'::pg_catalog.text[])"
        );
        assert_eq!(
            fill("x = $1", "claims", Some("obj")),
            "x = '{\"k\":\"v\"}'::pg_catalog.jsonb"
        );
        assert_eq!(
            fill("x = $1", "claims", Some("https://example.com/tenant")),
            "x = 't1'::pg_catalog.text"
        );
        assert_eq!(fill("x = $1", "claims", Some("nope")), "x = NULL");
        assert_eq!(
            fill("x = $1", "claims", Some("realm_access.nope")),
            "x = NULL"
        );
        // Every literal parses as PostgreSQL reads it, one statement.
        for attr in ["tenant", "realm_access.roles", "mixed", "obj", "empty"] {
            let sql = fill("x = ANY($1)", "claims", Some(attr));
            let parsed = pg_query::parse(&format!("SELECT 1 WHERE {sql}")).unwrap();
            assert_eq!(parsed.protobuf.stmts.len(), 1, "{sql}");
        }
    }

    #[test]
    fn missing_values_are_null() {
        let values = GlobalValues::builtins("alice", &[], None);
        let e = with("x = $1", vec![refs("user_id", None, "$1")]);
        assert_eq!(values.fill(&e).unwrap().to_string(), "x = NULL");
    }
}
