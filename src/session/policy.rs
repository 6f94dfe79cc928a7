//! A policy-bound session's rights: the policy set seen through the
//! session's effective roles and global values, answered relation by
//! relation as the rewriter asks (PRODUCT.md §3 semantics 1–4).
//!
//! Names in policy files are matched to catalog relations by schema and
//! name; an unqualified name in a policy file means the relation of that
//! name in schema `public`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use sqlparser::ast::Expr;

use crate::catalog::Relation;
use crate::globals::GlobalValues;
use crate::policy::PolicySet;
use crate::policy::model::{
    ColumnSet, Command as PolicyCommand, Policy, PolicyKind, QualifiedName, TableRules,
};
use crate::rewrite::{Access, Columns, Command, Entry, TableAccess};

pub struct SessionPolicy {
    login: String,
    roles: Vec<String>,
    values: GlobalValues,
    policies: std::sync::Arc<PolicySet>,
    cache: Mutex<HashMap<(u32, Command), Option<TableAccess>>>,
}

impl SessionPolicy {
    pub fn new(
        login: &str,
        roles: Vec<String>,
        values: GlobalValues,
        policies: std::sync::Arc<PolicySet>,
    ) -> SessionPolicy {
        SessionPolicy {
            login: login.to_string(),
            roles,
            values,
            policies,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn rules<'a>(&'a self, relation: &Relation) -> Vec<&'a TableRules> {
        let mut keys = vec![QualifiedName {
            schema: Some(relation.schema.clone()),
            name: relation.name.clone(),
        }];
        if relation.schema == "public" {
            keys.push(QualifiedName {
                schema: None,
                name: relation.name.clone(),
            });
        }
        keys.iter().filter_map(|k| self.policies.table(k)).collect()
    }

    /// Columns the session holds for a command through grants to these
    /// roles (on the table or on all tables of its schema).
    fn granted(
        &self,
        relation: &Relation,
        rules: &[&TableRules],
        command: PolicyCommand,
        roles: &[&str],
    ) -> Option<ColumnSet> {
        let mut held: Option<ColumnSet> = None;
        let mut add = |c: ColumnSet| match &mut held {
            Some(h) => h.union_with(&c),
            None => held = Some(c),
        };
        for r in rules {
            if let Some(c) = r.grants.held_by(command, roles.iter().copied()) {
                add(c);
            }
        }
        if let Some(g) = self.policies.schema_grants.get(&relation.schema)
            && let Some(c) = g.held_by(command, roles.iter().copied())
        {
            add(c);
        }
        held
    }

    fn compute(
        &self,
        relation: &Relation,
        command: Command,
    ) -> Result<Option<TableAccess>, crate::error::PgError> {
        let cmd = match command {
            Command::Select => PolicyCommand::Select,
            Command::Insert => PolicyCommand::Insert,
            Command::Update => PolicyCommand::Update,
            Command::Delete => PolicyCommand::Delete,
        };
        let rules = self.rules(relation);
        let my_roles: Vec<&str> = self.roles.iter().map(String::as_str).collect();
        let Some(all_granted) = self.granted(relation, &rules, cmd, &my_roles) else {
            return Ok(None);
        };
        let policies: Vec<&Policy> = rules.iter().flat_map(|r| r.policies_for(cmd)).collect();
        let mut access = TableAccess {
            entries: Vec::new(),
            restrictive: Vec::new(),
            predicate_relations: Vec::new(),
        };
        if policies.is_empty() {
            access.entries.push(Entry {
                rows: None,
                columns: columns(&all_granted),
            });
            return Ok(Some(access));
        }
        for policy in policies.iter().filter(|p| p.applies_to(&self.roles)) {
            let rows = match &policy.using {
                Some(using) => {
                    let filled = self.values.fill(using)?;
                    access.predicate_relations.extend(relations_in(&filled)?);
                    filled
                }
                None => false_expr(),
            };
            match policy.kind {
                PolicyKind::Restrictive => access.restrictive.push(rows),
                PolicyKind::Permissive => {
                    let cols = if policy.names_public() {
                        Some(all_granted.clone())
                    } else {
                        let named: Vec<&str> = policy
                            .roles
                            .iter()
                            .filter(|r| self.roles.contains(r))
                            .map(String::as_str)
                            .collect();
                        self.granted(relation, &rules, cmd, &named)
                    };
                    access.entries.push(Entry {
                        rows: Some(rows),
                        columns: cols
                            .map_or_else(|| Columns::Some(BTreeSet::new()), |c| columns(&c)),
                    });
                }
            }
        }
        Ok(Some(access))
    }
}

fn columns(set: &ColumnSet) -> Columns {
    match set.columns() {
        None => Columns::All,
        Some(c) => Columns::Some(c.clone()),
    }
}

fn false_expr() -> Expr {
    Expr::Value(sqlparser::ast::ValueWithSpan::from(
        sqlparser::ast::Value::Boolean(false),
    ))
}

/// Relations a (trusted) policy expression reads, as PostgreSQL will name
/// them in the printed statement.
fn relations_in(expr: &Expr) -> Result<Vec<String>, crate::error::PgError> {
    let parsed = pg_query::parse(&format!("SELECT 1 WHERE {expr}")).map_err(|e| {
        tracing::error!("a policy expression does not parse: {e}");
        crate::error::PgError::error(
            crate::error::code::FEATURE_NOT_SUPPORTED,
            "pgward could not apply a policy",
        )
    })?;
    crate::rewrite::verify::relations(&parsed)
}

impl Access for SessionPolicy {
    fn table(&self, relation: &Relation, command: Command) -> Option<TableAccess> {
        let key = (relation.oid, command);
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return hit.clone();
        }
        let computed = match self.compute(relation, command) {
            Ok(a) => a,
            Err(e) => {
                // Fail closed: a policy that cannot be applied denies.
                tracing::warn!("policy on {} not applied: {e}", relation.name);
                None
            }
        };
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, computed.clone());
        computed
    }

    fn login(&self) -> &str {
        &self.login
    }

    fn function(&self, function: &crate::catalog::Function) -> bool {
        use crate::policy::model::RoutineTarget;
        self.policies
            .functions
            .iter()
            .filter(|g| g.applies_to(&self.roles))
            .any(|g| match &g.target {
                RoutineTarget::AllInSchema(schema) => *schema == function.schema,
                RoutineTarget::One { name, args } => {
                    name.schema.as_deref().unwrap_or("public") == function.schema
                        && name.name == function.name
                        && args
                            .as_ref()
                            .is_none_or(|a| a.len() == function.arg_types.len())
                }
            })
    }
}
