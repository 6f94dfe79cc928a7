//! GRANT: every form, the model it builds, and its errors.

use super::*;
use crate::policy::model::{
    ColumnSet, Command, GrantedTables, QualifiedName, RoutineKind, RoutineTarget,
};

fn name(schema: Option<&str>, name: &str) -> QualifiedName {
    QualifiedName {
        schema: schema.map(str::to_string),
        name: name.to_string(),
    }
}

const ROLES: &str = "CREATE ROLE r; CREATE ROLE s IN ROLE r; CREATE USER alice IN ROLE s;\n";

#[test]
fn table_grants_by_command_and_role() {
    let set = parse(&format!(
        "{ROLES}\
         GRANT SELECT (a, b), UPDATE (b), INSERT ON t TO r;
         GRANT select (c) ON TABLE t TO r, s;
         GRANT DELETE ON public.t, \"Other\".\"T x\" TO alice;
         GRANT ALL ON u TO PUBLIC;
         GRANT ALL PRIVILEGES (x) ON v TO r, r;"
    ));
    let t = &set.tables[&name(None, "t")].grants;
    assert_eq!(
        t.to_role(Command::Select, "r"),
        Some(&ColumnSet::of(["a", "b", "c"]))
    );
    assert_eq!(t.to_role(Command::Select, "s"), Some(&ColumnSet::of(["c"])));
    assert_eq!(t.to_role(Command::Update, "r"), Some(&ColumnSet::of(["b"])));
    assert_eq!(t.to_role(Command::Insert, "r"), Some(&ColumnSet::all()));
    assert_eq!(t.to_role(Command::Delete, "r"), None);
    // s holds r's grants: the union, seen through its effective roles.
    let alice = set.effective_roles("alice");
    assert_eq!(
        t.held_by(Command::Select, alice.iter().map(String::as_str)),
        Some(ColumnSet::of(["a", "b", "c"]))
    );
    assert_eq!(
        t.held_by(Command::Delete, alice.iter().map(String::as_str)),
        None
    );

    // Names as written: public.t is its own key; quoted names keep case.
    let public_t = &set.tables[&name(Some("public"), "t")].grants;
    assert_eq!(
        public_t.to_role(Command::Delete, "alice"),
        Some(&ColumnSet::all())
    );
    assert!(set.tables.contains_key(&name(Some("Other"), "T x")));
    assert_eq!(name(Some("Other"), "T x").to_string(), "\"Other\".\"T x\"");

    let u = &set.tables[&name(None, "u")].grants;
    for command in Command::ALL {
        assert_eq!(u.to_role(command, "public"), Some(&ColumnSet::all()));
    }
    // Column-level ALL is SELECT, INSERT and UPDATE, as in PostgreSQL.
    let v = &set.tables[&name(None, "v")].grants;
    for command in [Command::Select, Command::Insert, Command::Update] {
        assert_eq!(v.to_role(command, "r"), Some(&ColumnSet::of(["x"])));
    }
    assert_eq!(v.to_role(Command::Delete, "r"), None);
}

#[test]
fn grant_sites_keep_positions_for_later_checks() {
    let set = parse(&format!("{ROLES}GRANT SELECT (a, b) ON s1.t TO r, s;"));
    assert_eq!(set.table_grants.len(), 1);
    let grant = &set.table_grants[0];
    assert_eq!(grant.target, GrantedTables::Table(name(Some("s1"), "t")));
    assert_eq!(grant.command, Command::Select);
    assert_eq!(grant.roles, ["r", "s"]);
    assert_eq!((grant.location.line, grant.location.column), (2, 24));
    let columns: Vec<(&str, u64)> = grant
        .columns
        .iter()
        .flatten()
        .map(|(c, l)| (c.as_str(), l.column))
        .collect();
    assert_eq!(columns, [("a", 15), ("b", 18)]);
}

#[test]
fn schema_wide_grants() {
    let set = parse(&format!(
        "{ROLES}GRANT SELECT ON ALL TABLES IN SCHEMA reporting, audit TO s;\n\
         GRANT INSERT, DELETE ON ALL TABLES IN SCHEMA reporting TO r;"
    ));
    let reporting = &set.schema_grants["reporting"];
    assert_eq!(
        reporting.to_role(Command::Select, "s"),
        Some(&ColumnSet::all())
    );
    assert_eq!(
        reporting.to_role(Command::Insert, "r"),
        Some(&ColumnSet::all())
    );
    assert_eq!(
        reporting.to_role(Command::Delete, "r"),
        Some(&ColumnSet::all())
    );
    assert!(
        set.schema_grants["audit"]
            .to_role(Command::Select, "s")
            .is_some()
    );
    assert!(set.tables.is_empty());
    assert_eq!(
        set.table_grants[0].target,
        GrantedTables::AllInSchema("reporting".into())
    );
}

#[test]
fn routine_grants() {
    let set = parse(&format!(
        "{ROLES}\
         GRANT EXECUTE ON FUNCTION public.order_total(int), \
           f(x integer, OUT y text, double precision, numeric(10, 2), text[]), g TO r;
         GRANT ALL ON ALL FUNCTIONS IN SCHEMA util TO PUBLIC;
         GRANT EXECUTE ON PROCEDURE p() TO s;
         GRANT ALL PRIVILEGES ON ROUTINE q(VARIADIC int[]) TO alice;"
    ));
    let summary: Vec<(RoutineKind, String, Vec<&str>)> = set
        .functions
        .iter()
        .map(|f| {
            let target = match &f.target {
                RoutineTarget::One { name, args: None } => name.to_string(),
                RoutineTarget::One {
                    name,
                    args: Some(args),
                } => format!(
                    "{name}({})",
                    args.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                RoutineTarget::AllInSchema(schema) => format!("ALL IN {schema}"),
            };
            (f.kind, target, f.roles.iter().map(String::as_str).collect())
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                RoutineKind::Function,
                "public.order_total(INT)".to_string(),
                vec!["r"]
            ),
            (
                RoutineKind::Function,
                "f(INTEGER, DOUBLE PRECISION, NUMERIC(10,2), TEXT[])".to_string(),
                vec!["r"]
            ),
            (RoutineKind::Function, "g".to_string(), vec!["r"]),
            (
                RoutineKind::Function,
                "ALL IN util".to_string(),
                vec!["public"]
            ),
            (RoutineKind::Procedure, "p()".to_string(), vec!["s"]),
            (RoutineKind::Routine, "q(INT[])".to_string(), vec!["alice"]),
        ]
    );
    let alice = set.effective_roles("alice");
    assert!(set.functions.iter().all(|f| f.applies_to(&alice)));
    assert!(!set.functions[0].applies_to(&set.effective_roles("nobody")));
}

#[test]
fn grants_to_a_user_reach_that_user_only() {
    let set = parse(
        "CREATE USER alice; CREATE USER bob;\n\
         GRANT SELECT ON t TO alice;",
    );
    let t = &set.tables[&name(None, "t")].grants;
    let alice = set.effective_roles("alice");
    let bob = set.effective_roles("bob");
    assert!(
        t.held_by(Command::Select, alice.iter().map(String::as_str))
            .is_some()
    );
    assert!(
        t.held_by(Command::Select, bob.iter().map(String::as_str))
            .is_none()
    );
}

#[test]
fn grant_errors_point_at_their_cause() {
    let cases = [
        (
            "GRANT TRUNCATE ON t TO r;",
            "t.sql:2:7: privilege TRUNCATE is not supported: policy files grant SELECT, \
             INSERT, UPDATE, DELETE and EXECUTE",
        ),
        (
            "GRANT SELECT, DELETE (a) ON t TO r;",
            "t.sql:2:15: invalid privilege type DELETE for column",
        ),
        (
            "GRANT EXECUTE ON t TO r;",
            "t.sql:2:7: invalid privilege type EXECUTE for table",
        ),
        (
            "GRANT SELECT ON FUNCTION f() TO r;",
            "t.sql:2:7: invalid privilege type SELECT for function",
        ),
        (
            "GRANT EXECUTE (a) ON FUNCTION f() TO r;",
            "t.sql:2:7: invalid privilege type EXECUTE for column",
        ),
        (
            "GRANT ALL (a) ON PROCEDURE f() TO r;",
            "t.sql:2:7: invalid privilege type ALL for column",
        ),
        (
            "GRANT SELECT ON SEQUENCE s TO r;",
            "t.sql:2:17: GRANT ON SEQUENCE is not supported: policy files grant on tables \
             and functions",
        ),
        (
            "GRANT SELECT ON ALL SEQUENCES IN SCHEMA s TO r;",
            "t.sql:2:21: GRANT ON ALL SEQUENCES is not supported: policy files grant on \
             tables and functions",
        ),
        (
            "GRANT SELECT ON t TO r WITH GRANT OPTION;",
            "t.sql:2:24: WITH GRANT OPTION and GRANTED BY have no meaning in a policy file: \
             only the policy files grant",
        ),
        (
            "GRANT SELECT ON t TO r, nobody;",
            "t.sql:2:25: role \"nobody\" does not exist",
        ),
        (
            "GRANT SELECT ON db.s.t TO r;",
            "t.sql:2:17: cross-database references are not supported: write schema.name or name",
        ),
        (
            "GRANT SELECT (a, A) ON t TO r;",
            "t.sql:2:18: column \"a\" is listed twice (first at t.sql:2:15)",
        ),
        (
            "GRANT SELECT (a) ON ALL TABLES IN SCHEMA s TO r;",
            "t.sql:2:7: column privileges cannot be granted ON ALL TABLES IN SCHEMA: grant \
             the columns table by table",
        ),
        (
            "GRANT SELECT ON t TO \"public\";",
            "t.sql:2:22: role name \"public\" is reserved: write PUBLIC without quotes for \
             every user",
        ),
        (
            "GRANT SELECT ON t TO CURRENT_USER;",
            "t.sql:2:22: CURRENT_USER has no meaning in a policy file: name the role or user",
        ),
        (
            "GRANT SELECT ON t;",
            "t.sql:2:18: expected TO, found end of statement",
        ),
        (
            "GRANT SELECT, ON t TO r;",
            "t.sql:2:15: expected a privilege (SELECT, INSERT, UPDATE, DELETE, EXECUTE or \
             ALL), found ON",
        ),
        (
            "GRANT ALL, SELECT ON t TO r;",
            "t.sql:2:10: expected ON, found \",\"",
        ),
        (
            "GRANT SELECT (a ON t TO r;",
            "t.sql:2:17: expected \",\" or \")\", found ON",
        ),
        (
            "GRANT SELECT ON ALL VIEWS IN SCHEMA s TO r;",
            "t.sql:2:21: expected TABLES, FUNCTIONS, PROCEDURES or ROUTINES, found VIEWS",
        ),
        (
            "GRANT EXECUTE ON FUNCTION f(int,) TO r;",
            "t.sql:2:33: expected an argument type, found \")\"",
        ),
        (
            "GRANT EXECUTE ON FUNCTION f(1) TO r;",
            "t.sql:2:29: expected a data type name, found 1",
        ),
        (
            "GRANT EXECUTE ON FUNCTION f(int TO r;",
            "t.sql:2:28: unbalanced parentheses: the \"(\" that opens the argument list is \
             never closed",
        ),
        (
            "GRANT SELECT ON t TO r s;",
            "t.sql:2:24: expected \",\" or end of statement, found s",
        ),
    ];
    for (statement, expected) in cases {
        let text = format!("CREATE ROLE r;\n{statement}");
        assert_eq!(one_error(&text), expected, "{statement}");
    }
}

#[test]
fn a_table_called_like_a_target_keyword_is_still_a_table() {
    let set =
        parse("CREATE ROLE r;\nGRANT SELECT ON type TO r;\nGRANT SELECT ON schema, sequence TO r;");
    assert!(set.tables.contains_key(&name(None, "type")));
    assert!(set.tables.contains_key(&name(None, "schema")));
    assert!(set.tables.contains_key(&name(None, "sequence")));
}
