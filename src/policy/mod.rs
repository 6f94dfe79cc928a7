//! Policy files: reading a set of `.sql` files into roles, users, grants,
//! row policies and globals (PRODUCT.md §3), parsed and checked but not yet
//! enforced.
//!
//! The pipeline, one file job each: `files` (glob, read, order) → `lexer`
//! (statements with positions) → `parser` (one statement into `ast`, with
//! `embedded` turning USING / WITH CHECK / global queries and their
//! `@{global}` references into sqlparser trees) → `build` (whole-set checks
//! into `model`, plus `warning`s). This module owns only the
//! pipeline and its public face. Loading never stops at the first problem:
//! it reports every error it can, each at `file:line:column`. A policy set
//! that has any error is never returned, not even in part.

mod ast;
mod build;
mod embedded;
pub mod error;
mod files;
mod lexer;
pub mod model;
mod parser;
mod warning;

use std::path::Path;

pub use error::{Location, PolicyError, PolicyErrorKind};
pub use model::{PUBLIC, PolicySet, PolicyWarning, PolicyWarningKind, Role, User};

impl PolicySet {
    /// Loads every file matched by `patterns`, in lexical order of path, as
    /// one set: a role may be named in IN ROLE in one file and declared in a
    /// later one. Plain-text passwords are hashed with `scram_iterations`.
    pub fn load(patterns: &[String], scram_iterations: u32) -> Result<PolicySet, Vec<PolicyError>> {
        Self::load_with(build::Builder::new(scram_iterations), patterns)
    }

    /// Like [`PolicySet::load`], with plain-text passwords salted by
    /// HMAC(`salt_key`, name), as unknown users' mock salts are.
    pub fn load_keyed(
        patterns: &[String],
        scram_iterations: u32,
        salt_key: &[u8],
    ) -> Result<PolicySet, Vec<PolicyError>> {
        Self::load_with(
            build::Builder::new(scram_iterations).with_salt_key(salt_key),
            patterns,
        )
    }

    fn load_with(
        mut builder: build::Builder,
        patterns: &[String],
    ) -> Result<PolicySet, Vec<PolicyError>> {
        let (paths, errors) = files::expand(patterns);
        for error in errors {
            builder.error(error);
        }
        for path in paths {
            match files::read(&path) {
                Ok(text) => parse_into(&mut builder, &path, &text),
                Err(error) => builder.error(error),
            }
        }
        builder.finish()
    }

    /// Parses one file's text as a whole set; `file` is only used in
    /// positions.
    pub fn parse_str(
        file: &Path,
        text: &str,
        scram_iterations: u32,
    ) -> Result<PolicySet, Vec<PolicyError>> {
        let mut builder = build::Builder::new(scram_iterations);
        parse_into(&mut builder, file, text);
        builder.finish()
    }
}

/// Adds one file's statements to the set. A statement with an error is
/// skipped and the next one still parsed, since statements are split
/// before they are parsed.
fn parse_into(builder: &mut build::Builder, file: &Path, text: &str) {
    let statements = match lexer::split(file, text) {
        Ok(statements) => statements,
        Err(error) => {
            builder.error(error);
            return;
        }
    };
    for raw in &statements {
        match parser::parse_statement(file, raw) {
            Ok(statement) => builder.add(statement),
            Err(error) => builder.error(error),
        }
    }
}

#[cfg(test)]
mod tests;
