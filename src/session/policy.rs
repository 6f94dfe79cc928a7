//! A policy-bound session's rights: the policy set seen through the
//! session's effective roles and global values, answered relation by
//! relation as the rewriter asks (PRODUCT.md §3 semantics 1–4).
//!
//! Names in policy files are matched to catalog relations by schema and
//! name; an unqualified name in a policy file means the relation of that
//! name in schema `public`.

mod bits;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use sqlparser::ast::Expr;

use crate::catalog::{CatalogHandle, Relation};
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
    /// The session's user id and groups, for permission bits.
    who: bits::Who,
    /// Foreign keys and the tables of membership tables, for permission
    /// bits; without it a write that needs them is refused.
    catalog: Option<Arc<CatalogHandle>>,
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
            who: bits::Who::from_values(&values),
            values,
            policies,
            cache: Mutex::new(HashMap::new()),
            catalog: None,
        }
    }

    /// The catalog that foreign keys and membership tables are looked up
    /// in (permission bits).
    pub fn with_catalog(mut self, catalog: Arc<CatalogHandle>) -> SessionPolicy {
        self.catalog = Some(catalog);
        self
    }

    /// The entries of grants and policies, then those of permission bits
    /// (PRODUCT.md §6: what either allows is allowed; restrictive policies
    /// still apply), then the restrictive checks bits put on foreign keys
    /// and membership tables.
    fn compute(
        &self,
        relation: &Relation,
        command: Command,
    ) -> Result<Option<TableAccess>, crate::error::PgError> {
        let mut access = self.compute_grants(relation, command)?;
        if let Some(declared) = bits::table_bits(&self.policies, relation) {
            let entries = bits::entries(declared, relation, &self.who, command)?;
            if !entries.is_empty() {
                let access = access.get_or_insert_with(nothing);
                for entry in entries {
                    if let Some(rows) = &entry.rows {
                        access.predicate_relations.extend(relations_in(rows)?);
                    }
                    access.entries.push(entry);
                }
            }
        }
        let Some(access) = access.as_mut() else {
            return Ok(None);
        };
        if access.entries.is_empty()
            && let Some(entry) = self.no_rows_entry(relation, command)
        {
            access.entries.push(entry);
        }
        if command == Command::Select {
            return Ok(Some(access.clone()));
        }
        let is_membership = self.policies.table_bits.iter().any(|b| {
            b.groups.as_ref().is_some_and(|m| {
                m.table.name == relation.name
                    && m.table.schema.as_deref().unwrap_or("public") == relation.schema
            })
        });
        let refers = !self.policies.table_bits.is_empty();
        if !(is_membership || refers) {
            return Ok(Some(access.clone()));
        }
        let Some(catalog) = self.catalog.as_ref().map(|c| c.current()) else {
            if is_membership {
                return Err(crate::error::PgError::error(
                    crate::error::code::FEATURE_NOT_SUPPORTED,
                    "pgward could not apply permission bits",
                ));
            }
            return Ok(Some(access.clone()));
        };
        if matches!(command, Command::Insert | Command::Update) {
            let checks = bits::refer_checks(&self.policies, &catalog, relation, &self.who)?;
            access.restrictive_checks.extend(checks);
        }
        if is_membership {
            for guard in bits::membership_guard(&self.policies, &catalog, relation, &self.who)? {
                if matches!(command, Command::Update | Command::Delete) {
                    access.predicate_relations.extend(relations_in(&guard)?);
                    access.restrictive.push(guard.clone());
                }
                if matches!(command, Command::Insert | Command::Update) {
                    access.restrictive_checks.push(guard);
                }
            }
        }
        Ok(Some(access.clone()))
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

    /// A policed table on which no permissive policy for UPDATE or DELETE
    /// applies: the statement touches no rows, as in PostgreSQL (PRODUCT.md
    /// §3.3), rather than being refused. The entry admits no row and no new
    /// row; its columns are the granted ones, so a SET column that is not
    /// granted is still refused with 42501.
    fn no_rows_entry(&self, relation: &Relation, command: Command) -> Option<Entry> {
        let cmd = match command {
            Command::Update => PolicyCommand::Update,
            Command::Delete => PolicyCommand::Delete,
            Command::Select | Command::Insert => return None,
        };
        let rules = self.rules(relation);
        let my_roles: Vec<&str> = self.roles.iter().map(String::as_str).collect();
        let granted = self.granted(relation, &rules, cmd, &my_roles)?;
        Some(Entry {
            rows: Some(false_expr()),
            columns: columns(&granted),
            check: Some(false_expr()),
        })
    }

    /// The entries of grants and policies (PRODUCT.md §3).
    fn compute_grants(
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
            restrictive_checks: Vec::new(),
            predicate_relations: Vec::new(),
        };
        if policies.is_empty() {
            access.entries.push(Entry {
                rows: None,
                columns: columns(&all_granted),
                check: None,
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
            // `USING (true)` filters nothing: such an entry reads like an
            // unpoliced one, so the table keeps its plan (no fence).
            let all_rows = is_true(&rows);
            // New rows of writes: WITH CHECK, else USING (PostgreSQL's
            // rule); neither admits no new row.
            let check = match policy.new_row_check() {
                // Relations it reads are counted where a write prints it.
                Some(check) => self.values.fill(check)?,
                None => false_expr(),
            };
            let check = (!is_true(&check)).then_some(check);
            if policy.kind == PolicyKind::Restrictive
                && let Some(check) = &check
            {
                access.restrictive_checks.push(check.clone());
            }
            match policy.kind {
                PolicyKind::Restrictive if all_rows => {}
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
                        rows: (!all_rows).then_some(rows),
                        columns: cols
                            .map_or_else(|| Columns::Some(BTreeSet::new()), |c| columns(&c)),
                        check,
                    });
                }
            }
        }
        Ok(Some(access))
    }
}

/// An access with no entry yet.
fn nothing() -> TableAccess {
    TableAccess {
        entries: Vec::new(),
        restrictive: Vec::new(),
        restrictive_checks: Vec::new(),
        predicate_relations: Vec::new(),
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

    fn own_row_entries(&self, relation: &Relation) -> Vec<Entry> {
        let Some(declared) = bits::table_bits(&self.policies, relation) else {
            return Vec::new();
        };
        bits::own_row_entries(declared, relation, &self.who).unwrap_or_else(|e| {
            // Fail closed: the entries alone decide.
            tracing::warn!("permission bits on {} not applied: {e}", relation.name);
            Vec::new()
        })
    }

    fn insert_defaults(&self, relation: &Relation) -> Option<crate::rewrite::InsertDefaults> {
        let declared = bits::table_bits(&self.policies, relation)?;
        match bits::insert_defaults(declared, relation, &self.who) {
            Ok(defaults) => Some(defaults),
            Err(e) => {
                // Fail closed: without its defaults the INSERT's owner
                // check refuses the row.
                tracing::warn!("permission bits on {} not applied: {e}", relation.name);
                None
            }
        }
    }

    /// GRANT EXECUTE, or permission bits on the function whose
    /// table-level Execute bit the session has (PRODUCT.md §6; what either
    /// allows is allowed).
    fn function(&self, function: &crate::catalog::Function) -> bool {
        use crate::policy::model::RoutineTarget;
        let granted = self
            .policies
            .functions
            .iter()
            .filter(|g| g.applies_to(&self.roles))
            .any(|g| match &g.target {
                RoutineTarget::AllInSchema(schema) => *schema == function.schema,
                RoutineTarget::One { name, args } => signature_matches(name, args, function),
            });
        granted
            || self.policies.function_bits.iter().any(|b| {
                signature_matches(&b.name, &b.args, function)
                    && self.who.table_allows(
                        b.table_permission,
                        &[],
                        crate::policy::model::bits::Op::Execute,
                    )
            })
    }
}

/// Whether a signature as written in a policy file (no argument list:
/// every overload) names `function`.
fn signature_matches(
    name: &QualifiedName,
    args: &Option<Vec<sqlparser::ast::DataType>>,
    function: &crate::catalog::Function,
) -> bool {
    name.schema.as_deref().unwrap_or("public") == function.schema
        && name.name == function.name
        && args.as_ref().is_none_or(|a| {
            a.len() == function.arg_types.len()
                && a.iter()
                    .zip(&function.arg_types)
                    .all(|(t, &oid)| builtin_type_oid(t) == Some(oid))
        })
}

/// A condition that is the literal `true` (in any parentheses).
fn is_true(e: &Expr) -> bool {
    match e {
        Expr::Nested(inner) => is_true(inner),
        Expr::Value(v) => v.value == sqlparser::ast::Value::Boolean(true),
        _ => false,
    }
}

/// The oid of a built-in type written in a GRANT EXECUTE argument list
/// (`int`, `character varying(10)`, `text[]`, `pg_catalog.int8`). Built-in
/// type oids are fixed across PostgreSQL versions. Any other type is not
/// known here, so a grant naming it matches no function (fail closed).
fn builtin_type_oid(t: &sqlparser::ast::DataType) -> Option<u32> {
    let written = t.to_string().to_ascii_lowercase();
    let (base, array) = match written.strip_suffix("[]") {
        Some(b) => (b.trim_end().to_string(), true),
        None => (written, false),
    };
    // Type modifiers do not take part in function signatures.
    let base = match base.find('(') {
        Some(i) => {
            let close = base.rfind(')')?;
            format!("{}{}", &base[..i], &base[close + 1..])
        }
        None => base,
    };
    let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    let base = base.strip_prefix("pg_catalog.").unwrap_or(&base);
    let (elem, arr) = match base {
        "bool" | "boolean" => (16, 1000),
        "bytea" => (17, 1001),
        "\"char\"" => (18, 1002),
        "name" => (19, 1003),
        "int8" | "bigint" => (20, 1016),
        "int2" | "smallint" => (21, 1005),
        "int4" | "int" | "integer" => (23, 1007),
        "text" => (25, 1009),
        "oid" => (26, 1028),
        "json" => (114, 199),
        "xml" => (142, 143),
        "float4" | "real" => (700, 1021),
        "float8" | "double precision" => (701, 1022),
        "bpchar" | "char" | "character" => (1042, 1014),
        "varchar" | "character varying" => (1043, 1015),
        "date" => (1082, 1182),
        "time" | "time without time zone" => (1083, 1183),
        "timestamp" | "timestamp without time zone" => (1114, 1115),
        "timestamptz" | "timestamp with time zone" => (1184, 1185),
        "interval" => (1186, 1187),
        "timetz" | "time with time zone" => (1266, 1270),
        "numeric" | "decimal" => (1700, 1231),
        "uuid" => (2950, 2951),
        "jsonb" => (3802, 3807),
        "regclass" => (2205, 2210),
        "inet" => (869, 1041),
        "cidr" => (650, 651),
        _ => return None,
    };
    Some(if array { arr } else { elem })
}

#[cfg(test)]
mod tests {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    use super::{SessionPolicy, builtin_type_oid};
    use crate::catalog::Function;
    use crate::globals::GlobalValues;
    use crate::policy::PolicySet;
    use crate::rewrite::Access;

    fn oid(sql_type: &str) -> Option<u32> {
        let t = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql_type)
            .unwrap()
            .parse_data_type()
            .unwrap();
        builtin_type_oid(&t)
    }

    #[test]
    fn grant_argument_types_are_matched_by_oid() {
        assert_eq!(oid("int"), Some(23));
        assert_eq!(oid("INTEGER"), Some(23));
        assert_eq!(oid("int4"), Some(23));
        assert_eq!(oid("bigint"), Some(20));
        assert_eq!(oid("text"), Some(25));
        assert_eq!(oid("character varying(10)"), Some(1043));
        assert_eq!(oid("varchar"), Some(1043));
        assert_eq!(oid("numeric(10, 2)"), Some(1700));
        assert_eq!(oid("timestamp with time zone"), Some(1184));
        assert_eq!(oid("text[]"), Some(1009));
        assert_eq!(oid("int[]"), Some(1007));
        assert_eq!(oid("double precision"), Some(701));
        assert_eq!(oid("my_domain"), None);
        assert_eq!(oid("public.text"), None);
    }

    /// A session of user `u`, in role `r`, under these extra statements.
    fn user_u_in_r(statements: &str) -> SessionPolicy {
        let text = format!("CREATE ROLE r; CREATE USER u PASSWORD 'u' IN ROLE r;\n{statements}");
        let set = PolicySet::parse_str(std::path::Path::new("t.sql"), &text, 4096).unwrap();
        let roles = vec!["u".to_string(), "r".to_string(), "public".to_string()];
        SessionPolicy::new(
            "u",
            roles.clone(),
            GlobalValues::builtins("u", &roles, None),
            std::sync::Arc::new(set),
        )
    }

    fn order_total(oid: u32, arg: u32) -> Function {
        Function {
            oid,
            schema: "public".into(),
            name: "order_total".into(),
            arg_types: vec![arg],
            return_type: 1700,
            kind: 'f',
            volatility: 's',
            leakproof: false,
            security_definer: false,
            returns_set: false,
        }
    }

    #[test]
    fn an_execute_grant_covers_only_the_overload_it_names() {
        let session = user_u_in_r("GRANT EXECUTE ON FUNCTION public.order_total(text) TO r;");
        assert!(session.function(&order_total(1, 25)));
        assert!(!session.function(&order_total(2, 23)));
    }

    #[test]
    fn a_using_true_entry_admits_every_row_without_a_condition() {
        use crate::catalog::{Column, RelKind, Relation};
        use crate::rewrite::Command;
        let session = user_u_in_r(
            "GRANT SELECT ON t TO r;\n\
             CREATE POLICY all_rows ON t FOR SELECT TO r USING ((true));\n\
             CREATE POLICY some_rows ON t FOR SELECT TO r USING (id > 5);",
        );
        let t = Relation {
            oid: 1,
            schema: "public".into(),
            name: "t".into(),
            kind: RelKind::Table,
            columns: vec![Column {
                name: "id".into(),
                attnum: 1,
                type_oid: 23,
                type_name: "integer".into(),
                not_null: true,
            }],
            primary_key: vec!["id".into()],
            parent: None,
            is_partition: false,
        };
        let access = session.table(&t, Command::Select).unwrap();
        assert_eq!(access.entries.len(), 2);
        assert!(access.entries.iter().any(|e| e.rows.is_none()));
        assert!(access.entries.iter().any(|e| e.rows.is_some()));
    }
}
