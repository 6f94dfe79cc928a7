//! The demo policy set of PRODUCT.md §5, as shipped in policies/demo/.

use std::path::Path;

use super::*;
use crate::policy::model::{
    ColumnSet, Command, GlobalBody, PolicyCommand, PolicyKind, QualifiedName,
};

fn demo() -> PolicySet {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/demo/*.sql");
    match PolicySet::load(&[demo.to_string_lossy().into_owned()], ITERATIONS) {
        Ok(set) => set,
        Err(errors) => panic!("{}", render(&errors)),
    }
}

fn table(name: &str) -> QualifiedName {
    QualifiedName {
        schema: None,
        name: name.to_string(),
    }
}

#[test]
fn the_demo_policy_set_loads() {
    let set = demo();
    assert_eq!(
        set.effective_roles("alice"),
        ["alice", "employee", "public", "sales_rep"]
    );
    assert_eq!(
        set.effective_roles("dave"),
        ["dave", "employee", "manager", "public"]
    );
    for name in ["alice", "bob", "carol", "dave", "eve"] {
        assert!(user(&set, name).verifier.is_some(), "{name}");
    }
    assert!(set.warnings.is_empty(), "{:#?}", set.warnings);
}

#[test]
fn demo_grants() {
    let set = demo();
    let employees = &set.tables[&table("employees")].grants;
    assert_eq!(
        employees.to_role(Command::Select, "employee"),
        Some(&ColumnSet::of(["id", "login", "name", "department_id"]))
    );
    assert_eq!(
        employees.to_role(Command::Select, "manager"),
        Some(&ColumnSet::of(["id", "name", "salary"]))
    );
    // What dave holds through manager and employee together.
    let dave = set.effective_roles("dave");
    assert_eq!(
        employees.held_by(Command::Select, dave.iter().map(String::as_str)),
        Some(ColumnSet::of([
            "id",
            "login",
            "name",
            "department_id",
            "salary"
        ]))
    );

    let orders = &set.tables[&table("orders")].grants;
    assert_eq!(
        orders.to_role(Command::Select, "sales_rep"),
        Some(&ColumnSet::of([
            "id",
            "customer_id",
            "salesrep_id",
            "amount",
            "notes",
            "status"
        ]))
    );
    assert_eq!(
        orders.to_role(Command::Update, "sales_rep"),
        Some(&ColumnSet::of(["amount", "notes", "status"]))
    );
    assert_eq!(
        orders.to_role(Command::Insert, "sales_rep"),
        Some(&ColumnSet::all())
    );
    assert_eq!(orders.to_role(Command::Delete, "sales_rep"), None);
    assert_eq!(
        orders.to_role(Command::Select, "manager"),
        Some(&ColumnSet::all())
    );
    let alice = set.effective_roles("alice");
    let alice_reads = orders.held_by(Command::Select, alice.iter().map(String::as_str));
    assert!(alice_reads.as_ref().is_some_and(|c| !c.contains("margin")));

    let customers = &set.tables[&table("customers")];
    assert_eq!(
        customers.grants.to_role(Command::Select, "sales_rep"),
        Some(&ColumnSet::of(["id", "name", "region"]))
    );
    assert!(!customers.is_policed(Command::Select));
    assert!(!set.tables.contains_key(&table("departments")));
}

#[test]
fn demo_policies() {
    let set = demo();
    let orders = &set.tables[&table("orders")];
    let summary: Vec<(&str, PolicyKind, PolicyCommand, Vec<&str>, String)> = orders
        .policies
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.kind,
                p.command,
                p.roles.iter().map(String::as_str).collect(),
                p.using
                    .as_ref()
                    .map(|u| u.sql.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "own_orders",
                PolicyKind::Permissive,
                PolicyCommand::All,
                vec!["sales_rep"],
                "salesrep_id = @{current_employee.id}".to_string()
            ),
            (
                "no_archived",
                PolicyKind::Restrictive,
                PolicyCommand::Only(Command::Select),
                vec!["sales_rep"],
                "status <> 'archived'".to_string()
            ),
            (
                "department_orders",
                PolicyKind::Permissive,
                PolicyCommand::Only(Command::Select),
                vec!["manager"],
                "salesrep_id IN (SELECT id FROM employees WHERE department_id = \
                 @{current_employee.department_id})"
                    .to_string()
            ),
        ]
    );
    assert!(orders.policies.iter().all(|p| p.check.is_none()));
    for command in Command::ALL {
        assert!(orders.is_policed(command), "{command}");
    }
    // alice: own_orders and no_archived; dave: department_orders.
    let alice = set.effective_roles("alice");
    let applying: Vec<&str> = orders
        .policies_for(Command::Select)
        .filter(|p| p.applies_to(&alice))
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(applying, ["own_orders", "no_archived"]);
    let dave = set.effective_roles("dave");
    let applying: Vec<&str> = orders
        .policies_for(Command::Select)
        .filter(|p| p.applies_to(&dave))
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(applying, ["department_orders"]);
    let own = &orders.policies[0];
    assert_eq!(
        own.new_row_check().map(|c| c.sql.to_string()).as_deref(),
        Some("salesrep_id = @{current_employee.id}")
    );
    assert_eq!(
        own.referenced_globals().into_iter().collect::<Vec<_>>(),
        ["current_employee"]
    );

    let employees = &set.tables[&table("employees")];
    let names: Vec<(&str, Vec<&str>)> = employees
        .policies
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.roles.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("all_names", vec!["employee"]),
            ("department_salaries", vec!["manager"])
        ]
    );
}

#[test]
fn demo_global() {
    let set = demo();
    assert_eq!(set.global_order, ["current_employee"]);
    let global = &set.globals["current_employee"];
    assert_eq!(global.roles, ["employee"]);
    assert!(global.required);
    let GlobalBody::Query(query) = &global.body else {
        panic!("not a query: {global:?}");
    };
    assert_eq!(
        query.sql.to_string(),
        "SELECT id, department_id FROM employees WHERE login = @{login_id}"
    );
    let references: Vec<(&str, Option<&str>)> = query
        .globals
        .iter()
        .map(|r| (r.name.as_str(), r.attr.as_deref()))
        .collect();
    assert_eq!(references, [("login_id", None)]);
    // eve is a sales_rep, so the required global applies to her.
    let eve = set.effective_roles("eve");
    let names: Vec<&str> = set
        .globals_for(&eve)
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(names, ["current_employee"]);
}
