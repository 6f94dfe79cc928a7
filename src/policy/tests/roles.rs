//! CREATE ROLE and CREATE USER: forms, errors, membership, passwords.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::*;
use crate::auth::scram::ScramVerifier;

fn verifier(password: &str) -> String {
    ScramVerifier::generate(password, ITERATIONS).to_string()
}

// ---- syntax forms ----

#[test]
fn create_role_forms() {
    let set = parse(
        "CREATE ROLE employee;
         CREATE ROLE sales_rep IN ROLE employee;
         CREATE ROLE dba WITH BYPASSPOLICY;
         CREATE ROLE ops IN ROLE employee, sales_rep WITH BYPASSPOLICY;
         CREATE ROLE audit WITH BYPASSPOLICY IN ROLE employee;
         CREATE ROLE plain NOBYPASSPOLICY;
         create role lower_kw with in role employee bypasspolicy;",
    );
    let employee = role(&set, "employee");
    assert!(employee.in_roles.is_empty());
    assert!(!employee.bypass_policy);
    assert_eq!((employee.location.line, employee.location.column), (1, 13));
    assert_eq!(role(&set, "sales_rep").in_roles, ["employee"]);
    assert!(role(&set, "dba").bypass_policy);
    let ops = role(&set, "ops");
    assert_eq!(ops.in_roles, ["employee", "sales_rep"]);
    assert!(ops.bypass_policy);
    let audit = role(&set, "audit");
    assert_eq!(audit.in_roles, ["employee"]);
    assert!(audit.bypass_policy);
    assert!(!role(&set, "plain").bypass_policy);
    let lower = role(&set, "lower_kw");
    assert_eq!(lower.in_roles, ["employee"]);
    assert!(lower.bypass_policy);
    assert!(set.users.is_empty());
}

#[test]
fn create_user_forms() {
    let alice = verifier("alice");
    let text = format!(
        "CREATE ROLE sales_rep;
         CREATE USER alice PASSWORD '{alice}' IN ROLE sales_rep;
         CREATE USER bob WITH PASSWORD 'bob' IN ROLE sales_rep;
         CREATE USER carol IN ROLE sales_rep ENCRYPTED PASSWORD E'c\\'arol';
         CREATE USER dan PASSWORD $pw$d;a--n$pw$;
         CREATE USER eve PASSWORD NULL IN ROLE sales_rep;
         CREATE USER nologin;"
    );
    let set = parse(&text);
    let alice_user = user(&set, "alice");
    assert_eq!(alice_user.in_roles, ["sales_rep"]);
    assert_eq!(
        alice_user.verifier.as_ref().map(ToString::to_string),
        Some(alice)
    );
    assert_eq!(
        (alice_user.location.line, alice_user.location.column),
        (2, 22)
    );
    for name in ["bob", "carol", "dan"] {
        let u = user(&set, name);
        let v = u
            .verifier
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has no verifier"));
        assert!(v.to_string().starts_with("SCRAM-SHA-256$4096:"), "{v}");
    }
    assert_eq!(user(&set, "carol").in_roles, ["sales_rep"]);
    assert!(user(&set, "eve").verifier.is_none());
    assert!(user(&set, "nologin").verifier.is_none());
    assert!(user(&set, "nologin").in_roles.is_empty());
    // Users are not roles.
    assert!(!set.roles.contains_key("alice"));
}

#[test]
fn names_fold_to_lower_case_unless_quoted() {
    let set = parse(
        r#"CREATE ROLE Sales_Rep;
           CREATE ROLE "Sales_Rep";
           CREATE ROLE "select";
           CREATE ROLE "we ""quote""";
           CREATE ROLE Ärger;
           CREATE USER "Bob" PASSWORD NULL IN ROLE SALES_REP, "Sales_Rep", "select", "we ""quote""";"#,
    );
    let names: Vec<&str> = set.roles.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["Sales_Rep", "sales_rep", "select", "we \"quote\"", "Ärger"]
    );
    assert_eq!(
        user(&set, "Bob").in_roles,
        ["sales_rep", "Sales_Rep", "select", "we \"quote\""]
    );
    assert!(!set.users.contains_key("bob"));
}

#[test]
fn comments_and_quoted_text_between_and_inside_statements() {
    let set = parse(
        "-- roles; the first file of the set\n\
         /* a block comment; with /* a nested one; */ and $$ dollars $$ */\n\
         CREATE ROLE a; -- trailing comment; CREATE ROLE ignored;\n\
         CREATE /* inside */ ROLE -- here too\n b IN ROLE a;\n\
         ;;\n\
         CREATE USER u PASSWORD $$p;w -- not a comment /* nor this$$ IN ROLE b\n\
         -- the last statement has no semicolon",
    );
    assert_eq!(set.roles.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(role(&set, "b").in_roles, ["a"]);
    assert_eq!(
        (
            role(&set, "b").location.line,
            role(&set, "b").location.column
        ),
        (5, 2)
    );
    assert_eq!(user(&set, "u").in_roles, ["b"]);
    assert!(user(&set, "u").verifier.is_some());
}

#[test]
fn empty_file_is_an_empty_set() {
    let set = parse("-- nothing here yet\n");
    assert!(set.roles.is_empty() && set.users.is_empty());
}

// ---- errors, each at its exact position ----

#[test]
fn syntax_errors_point_at_the_offending_token() {
    assert_eq!(
        one_error("CREATE ROLE a LOGIN;"),
        "t.sql:1:15: expected IN ROLE, BYPASSPOLICY or end of statement, found LOGIN"
    );
    assert_eq!(
        one_error("CREATE ROLE ;"),
        "t.sql:1:13: expected a role name, found end of statement"
    );
    assert_eq!(
        one_error("CREATE ROLE a IN ROLE"),
        "t.sql:1:22: expected a role name, found end of file"
    );
    assert_eq!(
        one_error("CREATE ROLE b;\n  CREATE ROLE a IN b;"),
        "t.sql:2:20: expected ROLE, found b"
    );
    assert_eq!(
        one_error("CREATE ROLE b;\nCREATE ROLE a IN ROLE b,;"),
        "t.sql:2:25: expected a role name, found end of statement"
    );
    assert_eq!(
        one_error("CREATE ROLE a WITH;"),
        "t.sql:1:19: expected IN ROLE or BYPASSPOLICY after WITH, found end of statement"
    );
    assert_eq!(
        one_error("CREATE ROLE 'a';"),
        "t.sql:1:13: expected a role name, found a string literal"
    );
    assert_eq!(
        one_error("CREATE ROLE a (x);"),
        "t.sql:1:15: expected IN ROLE, BYPASSPOLICY or end of statement, found \"(\""
    );
    assert_eq!(
        one_error("CREATE USER u PASSWORD 42;"),
        "t.sql:1:24: expected a password string or NULL, found 42"
    );
    assert_eq!(
        one_error("CREATE USER u WITH BYPASSPOLICY;"),
        "t.sql:1:20: BYPASSPOLICY is an option of CREATE ROLE: create a role WITH \
         BYPASSPOLICY and put the user IN ROLE it"
    );
    assert_eq!(
        one_error("CREATE ROLE \"\";"),
        "t.sql:1:13: zero-length delimited identifier"
    );
}

#[test]
fn reserved_keywords_need_quotes() {
    assert_eq!(
        one_error("CREATE ROLE Select;"),
        "t.sql:1:13: expected a role name, found reserved keyword Select \
         (write \"select\" in double quotes to use it as a name)"
    );
}

#[test]
fn overlong_names_are_refused() {
    let long = "r".repeat(64);
    assert_eq!(
        one_error(&format!("CREATE ROLE {long};")),
        format!("t.sql:1:13: identifier \"{long}\" is longer than 63 bytes")
    );
    parse(&format!("CREATE ROLE {};", "r".repeat(63)));
}

#[test]
fn errors_never_quote_a_password() {
    let error = one_error("CREATE USER u 'hunter2';");
    assert_eq!(
        error,
        "t.sql:1:15: expected PASSWORD, IN ROLE or end of statement, found a string literal"
    );
    let error = one_error("CREATE USER u PASSWORD 'hunter2' 'again';");
    assert!(
        !error.contains("hunter2") && !error.contains("again"),
        "{error}"
    );
}

#[test]
fn other_statements_are_not_supported_yet() {
    let all = errors(
        "CREATE ROLE a;\n\
         REVOKE SELECT ON t FROM a;\n\
         \tDROP PERMISSION BITS ON t;\n\
         create table t (id int);\n\
         ALTER ROLE a IN ROLE b;\n\
         SELECT 1;",
    );
    let suffix = " (this version loads CREATE ROLE, CREATE USER, GRANT, CREATE POLICY, CREATE GLOBAL and \
         CREATE PERMISSION BITS)";
    assert_eq!(
        all,
        [
            "t.sql:2:1: statement not supported yet: REVOKE",
            "t.sql:3:2: statement not supported yet: DROP PERMISSION BITS",
            "t.sql:4:1: statement not supported yet: CREATE TABLE",
            "t.sql:5:1: statement not supported yet: ALTER ROLE",
            "t.sql:6:1: statement not supported yet: SELECT",
        ]
        .map(|e| format!("{e}{suffix}"))
    );
    assert_eq!(
        one_error("(1);"),
        "t.sql:1:1: expected a statement (CREATE ROLE, CREATE USER, GRANT, CREATE POLICY, \
         CREATE GLOBAL and CREATE PERMISSION BITS), found \"(\""
    );
}

#[test]
fn unsupported_statements_are_kind_unsupported() {
    match PolicySet::parse_str(Path::new("t.sql"), "REVOKE x FROM y;", ITERATIONS) {
        Err(errors) => assert_eq!(errors[0].kind, PolicyErrorKind::Unsupported),
        Ok(set) => panic!("loaded {set:?}"),
    }
}

#[test]
fn duplicate_names_point_at_the_second_and_mention_the_first() {
    assert_eq!(
        one_error("CREATE ROLE a;\nCREATE ROLE A;"),
        "t.sql:2:13: role \"a\" is already declared as a role at t.sql:1:13"
    );
    assert_eq!(
        one_error("CREATE ROLE a;\n  CREATE USER a;"),
        "t.sql:2:15: user \"a\" is already declared as a role at t.sql:1:13"
    );
    assert_eq!(
        one_error("CREATE USER a;\nCREATE ROLE a;"),
        "t.sql:2:13: role \"a\" is already declared as a user at t.sql:1:13"
    );
    assert_eq!(
        one_error("CREATE ROLE b;\nCREATE ROLE a IN ROLE b, B;"),
        "t.sql:2:26: role \"b\" is listed twice in IN ROLE (first at t.sql:2:23)"
    );
    assert_eq!(
        one_error("CREATE ROLE b;\nCREATE ROLE a BYPASSPOLICY IN ROLE b WITH BYPASSPOLICY;"),
        "t.sql:2:43: conflicting or redundant options: BYPASSPOLICY is given twice"
    );
    assert_eq!(
        one_error("CREATE USER u PASSWORD NULL PASSWORD 'x';"),
        "t.sql:1:29: conflicting or redundant options: PASSWORD is given twice"
    );
}

#[test]
fn unknown_roles_and_users_in_in_role() {
    assert_eq!(
        one_error("CREATE ROLE a IN ROLE nope;"),
        "t.sql:1:23: role \"nope\" does not exist"
    );
    assert_eq!(
        one_error("CREATE USER bob;\nCREATE USER alice IN ROLE bob;"),
        "t.sql:2:27: \"bob\" is a user, not a role (declared at t.sql:1:13); \
         IN ROLE can only name roles"
    );
    // Roles may be declared after the statement that names them.
    let set = parse("CREATE USER u IN ROLE later;\nCREATE ROLE later;");
    assert_eq!(user(&set, "u").in_roles, ["later"]);
}

#[test]
fn membership_cycles_are_refused() {
    assert_eq!(
        one_error("CREATE ROLE a IN ROLE a;"),
        "t.sql:1:23: circular role membership: a -> a"
    );
    assert_eq!(
        one_error("CREATE ROLE a IN ROLE b;\nCREATE ROLE b IN ROLE c;\nCREATE ROLE c IN ROLE a;"),
        "t.sql:3:23: circular role membership: a -> b -> c -> a"
    );
    // A diamond is not a cycle.
    parse(
        "CREATE ROLE top;\nCREATE ROLE l IN ROLE top;\nCREATE ROLE r IN ROLE top;\n\
         CREATE ROLE bottom IN ROLE l, r;",
    );
}

#[test]
fn reserved_role_names() {
    assert_eq!(
        one_error("CREATE ROLE PUBLIC;"),
        "t.sql:1:13: role name \"public\" is reserved: every user is a member of PUBLIC"
    );
    assert_eq!(
        one_error("CREATE ROLE a IN ROLE public;"),
        "t.sql:1:23: role name \"public\" is reserved: every user is a member of PUBLIC"
    );
    assert_eq!(
        one_error("CREATE USER \"public\";"),
        "t.sql:1:13: role name \"public\" is reserved: every user is a member of PUBLIC"
    );
    assert_eq!(
        one_error("CREATE ROLE pg_monitor;"),
        "t.sql:1:13: role name \"pg_monitor\" is reserved: names starting with \"pg_\" \
         belong to PostgreSQL's predefined roles"
    );
    assert_eq!(
        one_error("CREATE ROLE none;"),
        "t.sql:1:13: role name \"none\" is reserved: PostgreSQL uses it to mean no role"
    );
    // Quoted upper case is a different name, as in PostgreSQL.
    parse("CREATE ROLE \"PUBLIC\";");
}

#[test]
fn bad_passwords() {
    let error = one_error("CREATE USER u PASSWORD 'SCRAM-SHA-256$4096:bm90$bad';");
    assert!(
        error.starts_with("t.sql:1:24: invalid SCRAM-SHA-256 verifier for user \"u\": "),
        "{error}"
    );
    assert_eq!(
        one_error("CREATE USER u PASSWORD 'md5d41d8cd98f00b204e9800998ecf8427e';"),
        "t.sql:1:24: MD5 password hashes are not supported (user \"u\"): give a \
         SCRAM-SHA-256 verifier or a plain-text password"
    );
    assert_eq!(
        one_error("CREATE USER u PASSWORD '';"),
        "t.sql:1:24: empty password for user \"u\" (write PASSWORD NULL for a user that \
         cannot log in)"
    );
}

#[test]
fn unterminated_string_is_reported() {
    let error = one_error("CREATE ROLE a;\nCREATE USER u PASSWORD 'oops;\n");
    assert!(error.starts_with("t.sql:2:"), "{error}");
    assert!(!error.contains("oops"), "{error}");
}

#[test]
fn every_error_of_a_file_is_reported() {
    let all = errors(
        "CREATE ROLE a LOGIN;\n\
         CREATE ROLE b IN ROLE missing;\n\
         REVOKE x FROM y;\n\
         CREATE ROLE b;",
    );
    assert_eq!(
        all,
        [
            "t.sql:1:15: expected IN ROLE, BYPASSPOLICY or end of statement, found LOGIN",
            "t.sql:3:1: statement not supported yet: REVOKE (this version loads CREATE ROLE, \
             CREATE USER, GRANT, CREATE POLICY, CREATE GLOBAL and CREATE PERMISSION BITS)",
            "t.sql:4:13: role \"b\" is already declared as a role at t.sql:2:13",
            "t.sql:2:23: role \"missing\" does not exist",
        ]
    );
}

// ---- membership ----

#[test]
fn effective_roles_and_bypass_policy() {
    let set = parse(
        "CREATE ROLE employee;
         CREATE ROLE sales_rep IN ROLE employee;
         CREATE ROLE manager IN ROLE employee;
         CREATE ROLE dba WITH BYPASSPOLICY;
         CREATE ROLE oncall IN ROLE dba;
         CREATE USER alice IN ROLE sales_rep;
         CREATE USER dave IN ROLE manager, sales_rep;
         CREATE USER root IN ROLE oncall, employee;
         CREATE USER nobody;",
    );
    // The user itself is one of its effective roles, so that a grant or a
    // policy can name a user, as in PostgreSQL.
    assert_eq!(
        set.effective_roles("alice"),
        ["alice", "employee", "public", "sales_rep"]
    );
    assert_eq!(
        set.effective_roles("dave"),
        ["dave", "employee", "manager", "public", "sales_rep"]
    );
    assert_eq!(
        set.effective_roles("root"),
        ["dba", "employee", "oncall", "public", "root"]
    );
    assert_eq!(set.effective_roles("nobody"), ["nobody", "public"]);
    assert!(set.effective_roles("stranger").is_empty());
    assert!(set.bypass_policy("root"));
    assert!(!set.bypass_policy("dave"));
    assert!(!set.bypass_policy("stranger"));
}

// ---- plain-text passwords ----

#[test]
fn plain_text_password_is_hashed_with_a_fresh_salt_each_load() {
    let text = "CREATE USER demo PASSWORD 'demo';";
    let first = parse(text);
    let second = parse(text);
    let a = user(&first, "demo")
        .verifier
        .as_ref()
        .map(ToString::to_string);
    let b = user(&second, "demo")
        .verifier
        .as_ref()
        .map(ToString::to_string);
    let (Some(a), Some(b)) = (a, b) else {
        panic!("no verifier");
    };
    assert_ne!(a, b, "salts must be random");
    assert!(!a.contains("demo"));
    for v in [&a, &b] {
        let parsed = ScramVerifier::parse(v).map(|p| p.to_string());
        assert_eq!(parsed.ok().as_deref(), Some(v.as_str()));
    }
}

/// A writer that collects log output for assertions.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn plain_text_password_warning_names_place_and_user_not_password() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        parse("CREATE ROLE r;\n  CREATE USER demo PASSWORD 'sw0rdfish' IN ROLE r;");
    });
    let log = captured
        .0
        .lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("t.sql:2:29"), "{log}");
    assert!(log.contains("\"demo\""), "{log}");
    assert!(!log.contains("sw0rdfish"), "{log}");
}
