//! CREATE POLICY: every form, PostgreSQL's rules, the grant behind each
//! policy, and the warnings.

use super::*;
use crate::policy::model::{
    Command, Policy, PolicyCommand, PolicyKind, PolicyWarningKind, QualifiedName,
};

fn table(schema: Option<&str>, name: &str) -> QualifiedName {
    QualifiedName {
        schema: schema.map(str::to_string),
        name: name.to_string(),
    }
}

fn policy<'a>(set: &'a PolicySet, on: &QualifiedName, name: &str) -> &'a Policy {
    set.tables
        .get(on)
        .and_then(|rules| rules.policies.iter().find(|p| p.name == name))
        .unwrap_or_else(|| panic!("no policy {name} on {on}"))
}

const SETUP: &str = "CREATE ROLE r; CREATE ROLE s IN ROLE r; CREATE USER u IN ROLE s;\n\
                     GRANT SELECT, INSERT, UPDATE, DELETE ON t TO r;\n";

#[test]
fn create_policy_forms() {
    let set = parse(&format!(
        "{SETUP}\
         CREATE POLICY p1 ON t USING (a = 1);
         CREATE POLICY sub ON t USING ((SELECT true));
         CREATE POLICY p2 ON t AS RESTRICTIVE FOR SELECT TO r, s USING (b > 0);
         CREATE POLICY p3 ON t AS PERMISSIVE FOR INSERT TO s WITH CHECK (c IS NOT NULL);
         CREATE POLICY p4 ON t FOR UPDATE TO u USING (true) WITH CHECK (d <> 'x');
         CREATE POLICY p5 ON t FOR DELETE TO PUBLIC USING (e IN (SELECT id FROM other));
         CREATE POLICY p1 ON public.t FOR ALL TO r;
         create policy \"P 1\" on t for all to r, r using ((a)) with check (lower(f) ~ '^x');"
    ));
    let t = table(None, "t");
    let p1 = policy(&set, &t, "p1");
    assert_eq!(p1.kind, PolicyKind::Permissive);
    assert_eq!(p1.command, PolicyCommand::All);
    assert_eq!(p1.roles, ["public"]);
    assert_eq!(
        p1.using.as_ref().map(|e| e.sql.to_string()).as_deref(),
        Some("a = 1")
    );
    assert!(p1.check.is_none());
    assert_eq!((p1.location.line, p1.location.column), (3, 15));

    let p2 = policy(&set, &t, "p2");
    assert_eq!(p2.kind, PolicyKind::Restrictive);
    assert_eq!(p2.command, PolicyCommand::Only(Command::Select));
    assert_eq!(p2.roles, ["r", "s"]);

    let p3 = policy(&set, &t, "p3");
    assert_eq!(p3.command, PolicyCommand::Only(Command::Insert));
    assert!(p3.using.is_none());
    assert_eq!(
        p3.new_row_check().map(|e| e.sql.to_string()).as_deref(),
        Some("c IS NOT NULL")
    );

    let p4 = policy(&set, &t, "p4");
    assert_eq!(p4.roles, ["u"]);
    assert_eq!(
        p4.new_row_check().map(|e| e.sql.to_string()).as_deref(),
        Some("d <> 'x'")
    );

    let p5 = policy(&set, &t, "p5");
    assert_eq!(p5.command, PolicyCommand::Only(Command::Delete));
    assert_eq!(
        p5.using.as_ref().map(|e| e.sql.to_string()).as_deref(),
        Some("e IN (SELECT id FROM other)")
    );

    // Same name on another table (as written): allowed. No USING: admits
    // no row, and nothing to check new rows with either.
    let other = policy(&set, &table(Some("public"), "t"), "p1");
    assert!(other.using.is_none() && other.new_row_check().is_none());

    let quoted = policy(&set, &t, "P 1");
    assert_eq!(quoted.roles, ["r"]);
    assert_eq!(
        quoted.check.as_ref().map(|e| e.sql.to_string()).as_deref(),
        Some("lower(f) ~ '^x'")
    );
}

#[test]
fn which_policies_cover_and_apply() {
    let set = parse(&format!(
        "{SETUP}CREATE ROLE other IN ROLE r;\n\
         CREATE POLICY sel ON t FOR SELECT TO s USING (true);\n\
         CREATE POLICY everything ON t TO other USING (true);\n\
         CREATE POLICY ins ON t FOR INSERT WITH CHECK (true);"
    ));
    let rules = &set.tables[&table(None, "t")];
    let covering = |command| {
        rules
            .policies_for(command)
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(covering(Command::Select), ["sel", "everything"]);
    assert_eq!(covering(Command::Insert), ["everything", "ins"]);
    assert_eq!(covering(Command::Delete), ["everything"]);
    assert!(rules.is_policed(Command::Delete));
    let u = set.effective_roles("u");
    let applying: Vec<&str> = rules
        .policies
        .iter()
        .filter(|p| p.applies_to(&u))
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(applying, ["sel", "ins"]);
    let unpoliced = parse("CREATE ROLE r; GRANT SELECT ON t TO r;");
    assert!(!unpoliced.tables[&table(None, "t")].is_policed(Command::Select));
}

#[test]
fn postgresql_rules_for_clauses() {
    assert_eq!(
        one_error(&format!(
            "{SETUP}CREATE POLICY p ON t FOR INSERT TO r USING (a = 1);"
        )),
        "t.sql:3:38: only WITH CHECK expression allowed for INSERT"
    );
    assert_eq!(
        one_error(&format!(
            "{SETUP}CREATE POLICY p ON t FOR SELECT USING (true) WITH CHECK (a = 1);"
        )),
        "t.sql:3:46: WITH CHECK cannot be applied to SELECT or DELETE"
    );
    assert_eq!(
        one_error(&format!(
            "{SETUP}CREATE POLICY p ON t FOR DELETE WITH CHECK (a = 1);"
        )),
        "t.sql:3:33: WITH CHECK cannot be applied to SELECT or DELETE"
    );
}

#[test]
fn policy_names_are_unique_per_table() {
    assert_eq!(
        one_error(&format!(
            "{SETUP}CREATE POLICY p ON t USING (true);\nCREATE POLICY P ON t USING (false);"
        )),
        "t.sql:4:15: policy \"p\" for table \"t\" already exists (declared at t.sql:3:15)"
    );
}

#[test]
fn policy_syntax_errors() {
    let cases = [
        (
            "CREATE POLICY p ON t USING a = 1;",
            "t.sql:3:28: expected \"(\" to open the USING expression, found a",
        ),
        (
            "CREATE POLICY p ON t USING (a = );",
            "t.sql:3:33: expected an expression, found \")\"",
        ),
        (
            "CREATE POLICY p ON t USING (a b);",
            "t.sql:3:31: expected the end of the USING expression, found b",
        ),
        (
            "CREATE POLICY p ON t USING ();",
            "t.sql:3:29: the USING expression is empty",
        ),
        (
            "CREATE POLICY p ON t USING ((a = 1);",
            "t.sql:3:28: unbalanced parentheses: the \"(\" that opens the USING expression \
             is never closed",
        ),
        (
            "CREATE POLICY p ON t WITH CHECK (a = 1 AND);",
            "t.sql:3:43: expected an expression, found \")\"",
        ),
        (
            "CREATE POLICY p ON t FOR TRUNCATE;",
            "t.sql:3:26: expected ALL, SELECT, INSERT, UPDATE or DELETE, found TRUNCATE",
        ),
        (
            "CREATE POLICY p ON t AS LENIENT;",
            "t.sql:3:25: expected PERMISSIVE or RESTRICTIVE, found LENIENT",
        ),
        (
            "CREATE POLICY p ON t TO r FOR SELECT;",
            "t.sql:3:27: expected USING, WITH CHECK or end of statement, found FOR",
        ),
        (
            "CREATE POLICY p ON t USING (true) USING (true);",
            "t.sql:3:35: expected WITH CHECK or end of statement, found USING",
        ),
        (
            "CREATE POLICY p ON t WITH (true);",
            "t.sql:3:27: expected CHECK, found \"(\"",
        ),
        (
            "CREATE POLICY p ON t SELECT;",
            "t.sql:3:22: expected AS, FOR, TO, USING, WITH CHECK or end of statement, \
             found SELECT",
        ),
        ("CREATE POLICY p t;", "t.sql:3:17: expected ON, found t"),
        (
            "CREATE POLICY p ON t USING (SELECT true);",
            "t.sql:3:29: a subquery as the USING expression needs parentheses of its own: \
             ((SELECT …))",
        ),
        (
            "CREATE POLICY p ON t USING (a = $1);",
            "t.sql:3:33: parameter $1 cannot be used in a policy: there is nothing to bind \
             it to (write @{name} for a per-session value)",
        ),
        (
            "CREATE POLICY p ON t USING (a = 'x\n  AND b = ???);",
            "t.sql:3:33: unterminated string literal",
        ),
    ];
    for (statement, expected) in cases {
        let text = format!("{SETUP}{statement}");
        assert_eq!(one_error(&text), expected, "{statement}");
    }
}

#[test]
fn roles_in_to_must_exist() {
    assert_eq!(
        one_error(&format!(
            "{SETUP}CREATE POLICY p ON t TO r, ghost USING (true);"
        )),
        "t.sql:3:28: role \"ghost\" does not exist"
    );
}

#[test]
fn every_policy_needs_a_grant_behind_it() {
    // Through IN ROLE: s holds r's grants; a user named in TO holds its roles'.
    parse(&format!(
        "{SETUP}CREATE POLICY p ON t FOR SELECT TO s USING (true);\n\
         CREATE POLICY q ON t FOR DELETE TO u USING (true);"
    ));
    // PUBLIC needs a grant to anyone; a grant to PUBLIC backs any role.
    parse("CREATE ROLE r; GRANT SELECT ON t TO r;\nCREATE POLICY p ON t FOR SELECT USING (true);");
    parse("CREATE ROLE r; GRANT SELECT ON t TO PUBLIC;\nCREATE POLICY p ON t TO r USING (true);");
    // FOR ALL needs a grant for some command.
    parse("CREATE ROLE r; GRANT INSERT ON t TO r;\nCREATE POLICY p ON t TO r USING (true);");
    // A grant on a name that may be the same table counts, both ways.
    parse(
        "CREATE ROLE r; GRANT SELECT ON public.t TO r; GRANT SELECT ON t2 TO r;\n\
         CREATE POLICY p ON t TO r USING (true);\nCREATE POLICY p ON s.t2 TO r USING (true);",
    );
    parse(
        "CREATE ROLE r; GRANT SELECT ON ALL TABLES IN SCHEMA rep TO r;\n\
         CREATE POLICY p ON rep.t TO r USING (true);\nCREATE POLICY p ON t TO r USING (true);",
    );

    let cases = [
        (
            "CREATE ROLE r; CREATE ROLE member IN ROLE r; GRANT SELECT ON t TO member;\n\
             CREATE POLICY p ON t FOR SELECT TO r USING (true);",
            "t.sql:2:15: policy \"p\" on t is for r, but none of them holds SELECT on t \
             (directly or through IN ROLE): grant it, or the policy can never admit a row",
        ),
        (
            "CREATE ROLE r; GRANT SELECT ON t TO r;\n\
             CREATE POLICY p ON t FOR UPDATE TO r USING (true);",
            "t.sql:2:15: policy \"p\" on t is for r, but none of them holds UPDATE on t \
             (directly or through IN ROLE): grant it, or the policy can never admit a row",
        ),
        (
            "CREATE ROLE r; CREATE ROLE q; GRANT SELECT ON t TO r;\n\
             CREATE POLICY p ON other FOR ALL TO r, q USING (true);",
            "t.sql:2:15: policy \"p\" on other is for r, q, but none of them holds any \
             privilege on other (directly or through IN ROLE): grant it, or the policy can \
             never admit a row",
        ),
        (
            "CREATE ROLE r; GRANT SELECT ON ALL TABLES IN SCHEMA rep TO r;\n\
             CREATE POLICY p ON other.t AS RESTRICTIVE TO r USING (true);",
            "t.sql:2:15: policy \"p\" on other.t is for r, but none of them holds any \
             privilege on other.t (directly or through IN ROLE): grant it, or the policy can \
             never admit a row",
        ),
        (
            "CREATE ROLE r; GRANT SELECT ON t TO r;\n\
             CREATE POLICY p ON t FOR DELETE USING (true);",
            "t.sql:2:15: policy \"p\" on t is for PUBLIC, but no role holds DELETE on t: the \
             policy can never admit a row",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(one_error(text), expected, "{text}");
    }
    match PolicySet::parse_str(Path::new("t.sql"), cases[0].0, ITERATIONS) {
        Err(errors) => assert_eq!(errors[0].kind, PolicyErrorKind::NoGrant),
        Ok(set) => panic!("loaded {set:?}"),
    }
}

#[test]
fn a_grant_that_a_policed_table_makes_useless_is_a_warning() {
    let set = parse(
        "CREATE ROLE employee; CREATE ROLE sales_rep IN ROLE employee;\n\
         GRANT SELECT (id) ON orders TO employee;\n\
         GRANT SELECT (amount) ON orders TO sales_rep;\n\
         CREATE POLICY own ON orders FOR SELECT TO sales_rep USING (true);",
    );
    let warnings: Vec<String> = set.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "t.sql:2:22: employee holds SELECT on orders, but no SELECT policy there applies to \
          it: its members get no rows, and the grant only adds columns for sales_rep (IN ROLE \
          employee), which has policies there"
        ]
    );
    assert_eq!(set.warnings[0].kind, PolicyWarningKind::GrantWithoutPolicy);
    assert_eq!(set.warnings[0].kind.label(), "grant_without_policy");

    // A policy for the granted role itself, or for PUBLIC, or one it is IN:
    // its members get rows, nothing to warn about.
    for extra in [
        "CREATE POLICY mine ON orders FOR SELECT TO employee USING (true);",
        "CREATE POLICY all_rows ON orders FOR ALL USING (true);",
    ] {
        let set = parse(&format!(
            "CREATE ROLE employee; CREATE ROLE sales_rep IN ROLE employee;\n\
             GRANT SELECT ON orders TO employee, sales_rep;\n\
             CREATE POLICY own ON orders FOR SELECT TO sales_rep USING (true);\n{extra}"
        ));
        assert!(set.warnings.is_empty(), "{extra}: {:?}", set.warnings);
    }
    // Not policed for that command: the grant gives rows on its own.
    let set = parse(
        "CREATE ROLE employee; CREATE ROLE sales_rep IN ROLE employee;\n\
         GRANT SELECT, UPDATE ON orders TO employee;\n\
         CREATE POLICY own ON orders FOR UPDATE TO sales_rep USING (true);",
    );
    assert_eq!(set.warnings.len(), 1, "{:?}", set.warnings);
    assert!(
        set.warnings[0]
            .message
            .starts_with("employee holds UPDATE on orders")
    );
}
