//! CREATE GLOBAL: forms, scripts, references, cycles, evaluation order.

use super::*;
use crate::policy::model::{GlobalBody, PolicyWarningKind, Script};

fn global<'a>(set: &'a PolicySet, name: &str) -> &'a model::Global {
    set.globals
        .get(name)
        .unwrap_or_else(|| panic!("no global {name:?} in {:?}", set.globals.keys()))
}

fn query_text(set: &PolicySet, name: &str) -> String {
    match &global(set, name).body {
        GlobalBody::Query(query) => query.sql.to_string(),
        GlobalBody::Script(script) => panic!("{name} is a script: {script:?}"),
    }
}

const ROLES: &str = "CREATE ROLE employee; CREATE ROLE manager IN ROLE employee;\n\
                     CREATE USER dave IN ROLE manager; CREATE USER guest;\n";

#[test]
fn create_global_forms() {
    let set = parse(&format!(
        "{ROLES}\
         CREATE GLOBAL current_employee FOR ROLE employee REQUIRED
           AS SELECT id, department_id FROM employees WHERE login = @{{login_id}};
         CREATE GLOBAL my_regions REQUIRED FOR ROLE manager, dave
           AS SELECT region FROM rep_regions WHERE login = @{{login_id}};
         CREATE GLOBAL everyone FOR ROLE PUBLIC AS SELECT 1 AS one;
         CREATE GLOBAL dept_name AS
           SELECT name FROM departments WHERE id = @{{current_employee.department_id}};
         CREATE GLOBAL roles AS SELECT array_agg(role) FROM user_roles WHERE login = @{{login_id}};
         CREATE GLOBAL plain LANGUAGE sql AS (SELECT now()) UNION ALL VALUES (now());"
    ));
    let current = global(&set, "current_employee");
    assert_eq!(current.roles, ["employee"]);
    assert!(current.required);
    assert!(!current.is_script());
    assert_eq!(
        query_text(&set, "current_employee"),
        "SELECT id, department_id FROM employees WHERE login = @{login_id}"
    );
    let refs: Vec<(&str, Option<&str>, u64, u64)> = current
        .references()
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.attr.as_deref(),
                r.location.line,
                r.location.column,
            )
        })
        .collect();
    assert_eq!(refs, [("login_id", None, 4, 69)]);
    assert_eq!((current.location.line, current.location.column), (3, 15));

    let regions = global(&set, "my_regions");
    assert_eq!(regions.roles, ["manager", "dave"]);
    assert!(regions.required);
    assert_eq!(global(&set, "everyone").roles, ["public"]);
    assert!(global(&set, "dept_name").roles.is_empty());
    assert!(!global(&set, "dept_name").required);
    // A built-in may be redefined.
    assert!(set.globals.contains_key("roles"));
    assert_eq!(
        query_text(&set, "plain"),
        "(SELECT now()) UNION ALL VALUES (now())"
    );

    // Evaluation order: each after the globals it references, else by name.
    let position = |name: &str| set.global_order.iter().position(|n| n == name);
    assert!(position("current_employee") < position("dept_name"));
    assert_eq!(set.global_order.len(), set.globals.len());

    // Who gets which global.
    let names = |user: &str| -> Vec<String> {
        set.globals_for(&set.effective_roles(user))
            .iter()
            .map(|g| g.name.clone())
            .collect()
    };
    assert_eq!(
        names("dave"),
        [
            "current_employee",
            "dept_name",
            "everyone",
            "my_regions",
            "plain",
            "roles"
        ]
    );
    assert_eq!(names("guest"), ["dept_name", "everyone", "plain", "roles"]);
}

#[test]
fn evaluation_order_follows_references_not_names() {
    let set = parse(
        "CREATE GLOBAL a_first AS SELECT @{m_middle} + 1;\n\
         CREATE GLOBAL m_middle AS SELECT @{z_last} * 2;\n\
         CREATE GLOBAL z_last AS SELECT 21;\n\
         CREATE GLOBAL b_alone AS SELECT 0;",
    );
    assert_eq!(
        set.global_order,
        ["z_last", "m_middle", "a_first", "b_alone"]
    );
}

#[test]
fn script_globals_are_stored_for_later() {
    let set = parse(&format!(
        "{ROLES}\
         CREATE GLOBAL scripted LANGUAGE javascript AS $js$ return claims.sub; $js$;
         CREATE GLOBAL after FOR ROLE employee AS 'return 1' LANGUAGE JavaScript;"
    ));
    let scripted = global(&set, "scripted");
    assert!(scripted.is_script());
    assert!(scripted.references().is_empty());
    match &scripted.body {
        GlobalBody::Script(Script {
            language,
            source,
            location,
        }) => {
            assert_eq!(language, "javascript");
            assert_eq!(source, " return claims.sub; ");
            assert_eq!((location.line, location.column), (3, 47));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&global(&set, "after").body, GlobalBody::Script(s) if s.source == "return 1"));
    // Any attribute of a script is accepted: its shape is known when it runs.
    parse(&format!(
        "{ROLES}GRANT SELECT ON t TO employee;\n\
         CREATE GLOBAL s LANGUAGE javascript AS $$ return {{}} $$;\n\
         CREATE POLICY p ON t TO employee USING (a = @{{s.anything}});"
    ));
}

#[test]
fn references_must_name_a_global() {
    let setup = "CREATE ROLE r; GRANT SELECT ON t TO r;\n";
    assert_eq!(
        one_error(&format!(
            "{setup}CREATE POLICY p ON t TO r\n  USING (a = @{{current_employe.id}});"
        )),
        "t.sql:3:14: global \"current_employe\" does not exist: declare it with CREATE GLOBAL, \
         or use a built-in (login_id, roles, client_addr, user_id, groups, claims.…)"
    );
    assert_eq!(
        one_error(&format!(
            "{setup}CREATE POLICY p ON t FOR INSERT TO r WITH CHECK (b = @{{nope}});"
        )),
        "t.sql:2:54: global \"nope\" does not exist: declare it with CREATE GLOBAL, or use a \
         built-in (login_id, roles, client_addr, user_id, groups, claims.…)"
    );
    assert_eq!(
        one_error("CREATE GLOBAL g AS SELECT x FROM t WHERE y = @{missing};"),
        "t.sql:1:46: global \"missing\" does not exist: declare it with CREATE GLOBAL, or use \
         a built-in (login_id, roles, client_addr, user_id, groups, claims.…)"
    );
    // Built-ins need no declaration; a declaration may come in a later file.
    parse(&format!(
        "{setup}CREATE POLICY p ON t TO r USING (a = @{{login_id}} AND @{{client_addr}} IS NOT NULL \
         AND 'r' = ANY(@{{roles}}) AND o = @{{user_id}} AND g = ANY(@{{groups}}) \
         AND s = @{{claims.sub}} AND x = @{{claims.\"https://example.com/tenant\"}} \
         AND later = @{{declared_later}});\n\
         CREATE GLOBAL declared_later AS SELECT 1;"
    ));
    match PolicySet::parse_str(
        Path::new("t.sql"),
        "CREATE GLOBAL g AS SELECT @{missing};",
        ITERATIONS,
    ) {
        Err(errors) => assert_eq!(errors[0].kind, PolicyErrorKind::UnknownGlobal),
        Ok(set) => panic!("loaded {set:?}"),
    }
}

#[test]
fn references_must_fit_the_shape_of_their_global() {
    let setup = "CREATE ROLE r; GRANT SELECT ON t TO r;\n\
                 CREATE GLOBAL pair AS SELECT id, e.department_id AS dept FROM employees e;\n\
                 CREATE GLOBAL star AS SELECT * FROM employees;\n\
                 CREATE GLOBAL mixed AS SELECT id, a + b FROM t;\n\
                 CREATE GLOBAL cast_and_call AS SELECT id::text, lower(name) FROM t;\n";
    let policy = |using: &str| format!("{setup}CREATE POLICY p ON t TO r USING ({using});");
    assert_eq!(
        one_error(&policy("a = @{pair.department_id}")),
        "t.sql:6:38: global \"pair\" has no column \"department_id\" (its query returns id, dept)"
    );
    assert_eq!(
        one_error(&policy("a = @{pair}")),
        "t.sql:6:38: global \"pair\" returns 2 columns (id, dept): name one, as @{pair.id}"
    );
    assert_eq!(
        one_error(&policy("a = @{login_id.name}")),
        "t.sql:6:38: built-in global \"login_id\" has no attribute \"name\""
    );
    assert_eq!(
        one_error(&policy("a = @{claims}")),
        "t.sql:6:38: @{claims} needs a claim name, as @{claims.sub}"
    );
    // Unknown widths or names are left to the runtime.
    parse(&policy(
        "a = @{pair.dept} AND b = @{star.whatever} AND c = @{mixed.whatever} \
         AND d = @{cast_and_call.id} AND e = @{cast_and_call.lower}",
    ));
    match PolicySet::parse_str(Path::new("t.sql"), &policy("a = @{pair}"), ITERATIONS) {
        Err(errors) => assert_eq!(errors[0].kind, PolicyErrorKind::InvalidReference),
        Ok(set) => panic!("loaded {set:?}"),
    }
}

#[test]
fn globals_that_depend_on_themselves_are_refused() {
    assert_eq!(
        one_error("CREATE GLOBAL a AS SELECT @{a};"),
        "t.sql:1:27: circular global reference: a -> a"
    );
    assert_eq!(
        one_error(
            "CREATE GLOBAL a AS SELECT @{b};\n\
             CREATE GLOBAL b AS SELECT x FROM t WHERE y = @{c.x};\n\
             CREATE GLOBAL c AS SELECT 1 AS x WHERE @{a} > 0;"
        ),
        "t.sql:3:40: circular global reference: a -> b -> c -> a"
    );
    // Redefining a built-in in terms of itself is a loop too.
    assert_eq!(
        one_error("CREATE GLOBAL login_id AS SELECT lower(@{login_id});"),
        "t.sql:1:40: circular global reference: login_id -> login_id"
    );
    // Sharing a dependency is not a loop.
    parse(
        "CREATE GLOBAL base AS SELECT 1;\n\
         CREATE GLOBAL l AS SELECT @{base};\nCREATE GLOBAL r AS SELECT @{base};\n\
         CREATE GLOBAL top AS SELECT @{l} + @{r};",
    );
}

#[test]
fn create_global_errors() {
    let cases = [
        (
            "CREATE GLOBAL g AS SELECT 1;\nCREATE GLOBAL G AS SELECT 2;",
            "t.sql:2:15: global \"g\" is already declared at t.sql:1:15",
        ),
        (
            "CREATE GLOBAL g FOR ROLE ghost AS SELECT 1;",
            "t.sql:1:26: role \"ghost\" does not exist",
        ),
        (
            "CREATE GLOBAL g REQUIRED REQUIRED AS SELECT 1;",
            "t.sql:1:26: conflicting or redundant options: REQUIRED is given twice",
        ),
        (
            "CREATE GLOBAL g SELECT 1;",
            "t.sql:1:17: expected FOR ROLE, REQUIRED, LANGUAGE or AS, found SELECT",
        ),
        (
            "CREATE GLOBAL g FOR employee AS SELECT 1;",
            "t.sql:1:21: expected ROLE, found employee",
        ),
        (
            "CREATE GLOBAL g AS;",
            "t.sql:1:19: expected a query or a quoted script after AS, found end of statement",
        ),
        (
            "CREATE GLOBAL g AS INSERT INTO t VALUES (1) RETURNING id;",
            "t.sql:1:20: the query of global \"g\" must only read: use SELECT, without INSERT, \
             UPDATE, DELETE, MERGE or INTO",
        ),
        (
            "CREATE GLOBAL g AS WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d;",
            "t.sql:1:31: the query of global \"g\" must only read: use SELECT, without INSERT, \
             UPDATE, DELETE, MERGE or INTO",
        ),
        (
            "CREATE GLOBAL g AS SELECT 1 INTO t;",
            "t.sql:1:20: the query of global \"g\" must only read: use SELECT, without INSERT, \
             UPDATE, DELETE, MERGE or INTO",
        ),
        (
            "CREATE GLOBAL g AS SELECT x FROM t WHERE;",
            "t.sql:1:41: expected an expression, found end of statement",
        ),
        (
            "CREATE GLOBAL g AS SELECT x FROM t WHERE",
            "t.sql:1:41: expected an expression, found end of file",
        ),
        (
            "CREATE GLOBAL g AS SELECT x y z FROM t;",
            "t.sql:1:31: expected the end of the query of global \"g\", found z",
        ),
        (
            "CREATE GLOBAL g AS x = 1;",
            "t.sql:1:20: expected SELECT, VALUES, or a subquery in the query body, found x",
        ),
        (
            "CREATE GLOBAL g AS $$ return 1 $$;",
            "t.sql:1:20: a global with a quoted body is a script: say which language, as \
             LANGUAGE javascript",
        ),
        (
            "CREATE GLOBAL g LANGUAGE plpython AS $$ return 1 $$;",
            "t.sql:1:26: LANGUAGE plpython is not supported for globals: write a query (AS \
             SELECT …) or use LANGUAGE javascript",
        ),
        (
            "CREATE GLOBAL g LANGUAGE javascript AS SELECT 1;",
            "t.sql:1:26: a LANGUAGE javascript global needs its source in quotes: AS $$ … $$",
        ),
        (
            "CREATE GLOBAL g LANGUAGE javascript AS $$ 1 $$ LANGUAGE javascript;",
            "t.sql:1:48: conflicting or redundant options: LANGUAGE is given twice",
        ),
        (
            "CREATE GLOBAL g LANGUAGE javascript AS $$ 1 $$ $$ 2 $$;",
            "t.sql:1:48: expected LANGUAGE or end of statement, found a string literal",
        ),
        (
            "CREATE GLOBAL g AS SELECT @ {login_id};",
            "t.sql:1:27: a global reference is written without spaces, as @{name} or \
             @{name.attr}",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(one_error(text), expected, "{text}");
    }
}

#[test]
fn a_global_out_of_reach_of_a_policy_is_a_warning() {
    let set = parse(
        "CREATE ROLE employee; CREATE ROLE manager IN ROLE employee; CREATE ROLE sales_rep;\n\
         GRANT SELECT ON t TO manager, sales_rep;\n\
         CREATE GLOBAL boss FOR ROLE manager AS SELECT 1 AS id;\n\
         CREATE GLOBAL staff FOR ROLE employee AS SELECT 2 AS id;\n\
         CREATE POLICY p ON t TO manager USING (a = @{boss.id} AND b = @{staff.id});\n\
         CREATE POLICY q ON t TO sales_rep, manager USING (a = @{boss.id});\n\
         CREATE GLOBAL derived AS SELECT @{staff.id};",
    );
    let warnings: Vec<String> = set.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "t.sql:6:55: policy \"q\" on t is for sales_rep, but global \"boss\" is only \
             evaluated for manager: for sessions without one of those roles it is NULL here",
            "t.sql:7:33: global \"derived\" is for PUBLIC, but global \"staff\" is only \
             evaluated for employee: for sessions without one of those roles it is NULL here",
        ]
    );
    assert!(
        set.warnings
            .iter()
            .all(|w| w.kind == PolicyWarningKind::GlobalOutOfScope)
    );
}

#[test]
fn script_globals_must_compile() {
    let message = one_error("CREATE GLOBAL g LANGUAGE javascript AS $$ return { $$;");
    assert!(
        message.starts_with("t.sql:1:40: the script does not compile: SyntaxError"),
        "{message}"
    );
    let message = one_error(
        "CREATE GLOBAL ok LANGUAGE javascript AS $$ return 1 $$;\n\
         CREATE GLOBAL g FOR ROLE PUBLIC AS 'if (' LANGUAGE javascript;",
    );
    assert!(
        message.starts_with("t.sql:2:36: the script does not compile: SyntaxError"),
        "{message}"
    );
    match PolicySet::parse_str(
        Path::new("t.sql"),
        "CREATE GLOBAL g LANGUAGE javascript AS $$ } $$;",
        ITERATIONS,
    ) {
        Err(errors) => assert_eq!(errors[0].kind, PolicyErrorKind::Syntax),
        Ok(set) => panic!("loaded {set:?}"),
    }
    // Compiling never runs the script.
    parse("CREATE GLOBAL spin LANGUAGE javascript AS $$ while (true) {} $$;");
}
