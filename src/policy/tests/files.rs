//! Sets of files: order, forward references, unreadable and missing files.

use std::fs;
use std::path::Path;

use super::*;

// ---- sets of files ----

fn write(dir: &Path, name: &str, text: &str) {
    if let Err(e) = fs::write(dir.join(name), text) {
        panic!("cannot write {name}: {e}");
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

fn pattern(dir: &Path, glob: &str) -> String {
    dir.join(glob).to_string_lossy().into_owned()
}

#[test]
fn multi_file_sets_are_read_in_lexical_order_with_forward_references() {
    let dir = tempdir();
    let d = dir.path();
    write(
        d,
        "20_users.sql",
        "CREATE USER alice PASSWORD NULL IN ROLE sales_rep;\n",
    );
    write(
        d,
        "10_roles.sql",
        "CREATE ROLE sales_rep IN ROLE employee;\n",
    );
    // Declared in the last file, named by the first.
    write(d, "30_base.sql", "CREATE ROLE employee;\n");
    write(d, "notes.txt", "not a policy file");
    let set = match PolicySet::load(&[pattern(d, "*.sql")], ITERATIONS) {
        Ok(set) => set,
        Err(errors) => panic!("{}", render(&errors)),
    };
    assert_eq!(
        set.effective_roles("alice"),
        ["alice", "employee", "public", "sales_rep"]
    );
    assert_eq!(role(&set, "employee").location.file, d.join("30_base.sql"));
}

#[test]
fn duplicates_across_files_name_both_files() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "a.sql", "CREATE ROLE r;\n");
    write(d, "b.sql", "\n  CREATE ROLE R;\n");
    // Matched by two patterns: still read once.
    let patterns = [pattern(d, "*.sql"), pattern(d, "a.sql")];
    let errors = match PolicySet::load(&patterns, ITERATIONS) {
        Ok(set) => panic!("loaded {set:?}"),
        Err(errors) => errors,
    };
    assert_eq!(
        render(&errors),
        format!(
            "{}:2:15: role \"r\" is already declared as a role at {}:1:13",
            d.join("b.sql").display(),
            d.join("a.sql").display()
        )
    );
}

#[test]
fn patterns_that_match_nothing_are_errors() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "a.sql", "CREATE ROLE r IN ROLE missing;\n");
    let missing = pattern(d, "nope/*.sql");
    let errors = match PolicySet::load(&[missing.clone(), pattern(d, "a.sql")], ITERATIONS) {
        Ok(set) => panic!("loaded {set:?}"),
        Err(errors) => errors,
    };
    assert_eq!(errors.len(), 2, "{}", render(&errors));
    assert_eq!(errors[0].location, None);
    assert_eq!(errors[0].kind, PolicyErrorKind::Io);
    assert_eq!(
        errors[0].to_string(),
        format!("no policy file matches \"{missing}\"")
    );
    // The readable file is still checked.
    assert_eq!(errors[1].kind, PolicyErrorKind::UnknownRole);

    assert!(PolicySet::load(&[], ITERATIONS).is_err());
    let invalid = PolicySet::load(&["[".to_string()], ITERATIONS);
    assert!(matches!(invalid, Err(e) if e[0].message.starts_with("invalid policy file pattern")));
}

#[test]
fn unreadable_files_are_errors() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "a.sql", "CREATE ROLE r;\n");
    if let Err(e) = fs::write(d.join("b.sql"), [0xff, 0xfe, 0x00]) {
        panic!("{e}");
    }
    #[cfg(unix)]
    if let Err(e) = std::os::unix::fs::symlink(d.join("gone.sql"), d.join("c.sql")) {
        panic!("{e}");
    }
    let errors = match PolicySet::load(&[pattern(d, "*.sql")], ITERATIONS) {
        Ok(set) => panic!("loaded {set:?}"),
        Err(errors) => errors,
    };
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        messages[0].starts_with(&format!(
            "policy file {} is not valid UTF-8",
            d.join("b.sql").display()
        )),
        "{messages:#?}"
    );
    #[cfg(unix)]
    assert!(
        messages[1].starts_with(&format!(
            "cannot read policy file {}:",
            d.join("c.sql").display()
        )),
        "{messages:#?}"
    );
}

#[test]
fn a_byte_order_mark_does_not_shift_columns() {
    let dir = tempdir();
    let d = dir.path();
    write(d, "a.sql", "\u{feff}CREATE ROLE r IN ROLE missing;\n");
    let errors = match PolicySet::load(&[pattern(d, "a.sql")], ITERATIONS) {
        Ok(set) => panic!("loaded {set:?}"),
        Err(errors) => errors,
    };
    let location = errors[0].location.clone();
    assert_eq!(location.map(|l| (l.line, l.column)), Some((1, 23)));
}
