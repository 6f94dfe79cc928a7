//! Finds and reads the files of a policy set.
//!
//! Owns glob expansion and the file order (lexical by path, so that a set
//! reads the same on every machine and `00_roles.sql` comes before
//! `10_grants.sql`). Never parses; never skips a pattern that matches
//! nothing, since a typo in a path must not load an empty set silently.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::error::{PolicyError, PolicyErrorKind};

/// Every file matched by some pattern, each once, in lexical order of path
/// (compared component by component). Directories that a pattern happens to
/// match are skipped. Errors are returned alongside the files found, so that
/// a load can still report the problems inside the readable ones.
pub fn expand(patterns: &[String]) -> (Vec<PathBuf>, Vec<PolicyError>) {
    let mut files = BTreeSet::new();
    let mut errors = Vec::new();
    if patterns.is_empty() {
        errors.push(PolicyError::without_location(
            PolicyErrorKind::Io,
            "no policy file patterns are configured",
        ));
    }
    for pattern in patterns {
        let paths = match glob::glob(pattern) {
            Ok(paths) => paths,
            Err(e) => {
                errors.push(PolicyError::without_location(
                    PolicyErrorKind::Io,
                    format!("invalid policy file pattern \"{pattern}\": {e}"),
                ));
                continue;
            }
        };
        let mut matched = false;
        for entry in paths {
            match entry {
                Ok(path) if path.is_dir() => {}
                Ok(path) => {
                    matched = true;
                    files.insert(path);
                }
                Err(e) => errors.push(PolicyError::without_location(
                    PolicyErrorKind::Io,
                    format!(
                        "cannot read {} while matching \"{pattern}\": {}",
                        e.path().display(),
                        e.error()
                    ),
                )),
            }
        }
        if !matched {
            errors.push(PolicyError::without_location(
                PolicyErrorKind::Io,
                format!("no policy file matches \"{pattern}\""),
            ));
        }
    }
    (files.into_iter().collect(), errors)
}

/// The text of one file, without a leading byte-order mark (which some
/// editors add and which would otherwise shift every column on line 1).
pub fn read(path: &Path) -> Result<String, PolicyError> {
    let bytes = std::fs::read(path).map_err(|e| {
        PolicyError::without_location(
            PolicyErrorKind::Io,
            format!("cannot read policy file {}: {e}", path.display()),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        PolicyError::without_location(
            PolicyErrorKind::Io,
            format!(
                "policy file {} is not valid UTF-8 (at byte {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}
