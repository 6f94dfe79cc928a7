//! `@{…}` references inside policy expressions, end to end: what becomes a
//! placeholder in the parsed tree, and what stays user text.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Value, visit_expressions};

use super::*;
use crate::policy::model::QualifiedName;

fn using_of(set: &PolicySet, table: &str, name: &str) -> model::WithGlobals<Expr> {
    let table = QualifiedName {
        schema: None,
        name: table.to_string(),
    };
    set.tables[&table]
        .policies
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| p.using.clone())
        .unwrap_or_else(|| panic!("no USING for {name}"))
}

/// Every placeholder value in the tree, in order.
fn placeholders(expr: &Expr) -> Vec<Value> {
    let mut found = Vec::new();
    let _ = visit_expressions(expr, |e| {
        if let Expr::Value(v) = e
            && let Value::Placeholder(_) = &v.value
        {
            found.push(v.value.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

#[test]
fn references_become_placeholders_and_text_stays_text() {
    let set = parse(
        "CREATE ROLE r; GRANT SELECT ON t TO r;\n\
         CREATE GLOBAL regions AS SELECT region FROM rep_regions;\n\
         CREATE POLICY p ON t TO r USING (region = ANY(@{regions}) AND note <> '@{regions}'\n\
         -- @{not_a_global} in a comment\n\
         AND owner = @{login_id} AND /* @{nor_this} */ owner = @{LOGIN_ID}\n\
         AND tags @> ARRAY['x'] AND @ balance > 0);",
    );
    let using = using_of(&set, "t", "p");
    assert_eq!(
        using.sql.to_string(),
        "region = ANY(@{regions}) AND note <> '@{regions}' AND owner = @{login_id} \
         AND owner = @{login_id} AND tags @> ARRAY['x'] AND @balance > 0"
    );
    let refs: Vec<(&str, u64, u64)> = using
        .globals
        .iter()
        .map(|r| (r.name.as_str(), r.location.line, r.location.column))
        .collect();
    assert_eq!(
        refs,
        [("regions", 3, 47), ("login_id", 5, 13), ("login_id", 5, 55)]
    );
    assert_eq!(
        using.global_names().into_iter().collect::<Vec<_>>(),
        ["login_id", "regions"]
    );
    // Every placeholder in the tree stands for one of the references; the
    // string literal '@{regions}' is not one of them.
    let values = placeholders(&using.sql);
    assert_eq!(values.len(), 3);
    for value in &values {
        assert!(using.reference(value).is_some(), "{value:?}");
    }
    assert_eq!(
        using.reference(&values[0]).map(|r| r.name.as_str()),
        Some("regions")
    );
    assert!(
        using
            .reference(&Value::SingleQuotedString("@{regions}".into()))
            .is_none()
    );
    assert!(using.reference(&Value::Placeholder("$1".into())).is_none());
}

#[test]
fn references_work_wherever_a_value_does() {
    let set = parse(
        "CREATE ROLE r; GRANT SELECT ON t TO r;\n\
         CREATE GLOBAL current_employee AS SELECT 1 AS id, 2 AS department_id;\n\
         CREATE POLICY p ON t TO r USING (\n\
           CASE WHEN @{current_employee.id} IS NULL THEN false\n\
                ELSE salesrep_id IN (SELECT id FROM employees\n\
                                     WHERE department_id = @{current_employee.department_id})\n\
           END AND coalesce(@{claims.tenant}, '') = tenant\n\
           AND (@{current_employee.id})::int4 > 0);",
    );
    let using = using_of(&set, "t", "p");
    let refs: Vec<(&str, Option<&str>)> = using
        .globals
        .iter()
        .map(|r| (r.name.as_str(), r.attr.as_deref()))
        .collect();
    assert_eq!(
        refs,
        [
            ("current_employee", Some("id")),
            ("current_employee", Some("department_id")),
            ("claims", Some("tenant")),
            ("current_employee", Some("id")),
        ]
    );
    assert_eq!(placeholders(&using.sql).len(), 4);
}

#[test]
fn reference_errors_in_a_policy_point_at_the_reference() {
    let setup = "CREATE ROLE r; GRANT SELECT ON t TO r;\n";
    assert_eq!(
        one_error(&format!(
            "{setup}CREATE POLICY p ON t TO r\n  USING (a = @ {{login_id}});"
        )),
        "t.sql:3:14: a global reference is written without spaces, as @{name} or @{name.attr}"
    );
    assert_eq!(
        one_error(&format!(
            "{setup}CREATE POLICY p ON t TO r USING (a = @{{login_id);"
        )),
        "t.sql:2:38: unterminated global reference: expected \"}\""
    );
}
