//! SQL embedded in policy statements: the `USING` and `WITH CHECK`
//! expressions of `CREATE POLICY` and the query of `CREATE GLOBAL`, with
//! their `@{global}` references.
//!
//! Owns the reference syntax and the hand-off to sqlparser: each reference
//! becomes a placeholder value in the token stream (see [`references`]), the
//! tokens are parsed into a `sqlparser` tree, and the references are kept
//! beside the tree. Never evaluates a global and never puts a value into the
//! tree: whoever fills a placeholder in does so with a typed literal, later.

mod query;
mod references;
mod sqlparse;

use std::collections::BTreeSet;
use std::path::Path;

use sqlparser::ast::{DataType, Expr, Query, Value};
use sqlparser::tokenizer::TokenWithSpan;

use super::error::{Location, PolicyError};

pub use query::output_columns;

/// One `@{name}` or `@{name.attr}` as written in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalRef {
    /// The global's name, folded like an identifier (`@{Current_Employee}`
    /// names `current_employee`).
    pub name: String,
    /// The attribute after the dot: a column of a one-row global, or a claim
    /// of `@{claims.…}`.
    pub attr: Option<String>,
    /// Where the `@` is.
    pub location: Location,
    /// The text of the placeholder value that stands for this reference in
    /// the tree: `Value::Placeholder("@{current_employee.id}")`. Equal
    /// references share one text; no token a user can write produces it.
    pub placeholder: String,
}

/// A parsed piece of SQL and the global references inside it, in the order
/// they were written.
#[derive(Debug, Clone, PartialEq)]
pub struct WithGlobals<T> {
    pub sql: T,
    pub globals: Vec<GlobalRef>,
}

impl<T> WithGlobals<T> {
    /// The reference a placeholder value of the tree stands for, or None
    /// for a value that is not one of this tree's placeholders.
    pub fn reference(&self, value: &Value) -> Option<&GlobalRef> {
        let Value::Placeholder(text) = value else {
            return None;
        };
        self.globals.iter().find(|r| &r.placeholder == text)
    }

    /// The names of the globals referenced, each once.
    pub fn global_names(&self) -> BTreeSet<&str> {
        self.globals.iter().map(|r| r.name.as_str()).collect()
    }
}

/// Parses a boolean expression such as the inside of `USING (…)`. `what`
/// names it in messages ("the USING expression"); `end` is where the tokens
/// stop (the closing parenthesis) and `end_found` how to describe it.
pub fn parse_expr(
    file: &Path,
    tokens: &[TokenWithSpan],
    what: &str,
    end: &Location,
    end_found: &str,
) -> Result<WithGlobals<Expr>, PolicyError> {
    let (tokens, globals) = references::substitute(file, tokens)?;
    let context = sqlparse::Context {
        file,
        what,
        end,
        end_found,
    };
    let sql = sqlparse::expr(&context, tokens)?;
    Ok(WithGlobals { sql, globals })
}

/// Parses a query that only reads: the body of a SQL global. Arguments as
/// for [`parse_expr`].
pub fn parse_query(
    file: &Path,
    tokens: &[TokenWithSpan],
    what: &str,
    end: &Location,
    end_found: &str,
) -> Result<WithGlobals<Box<Query>>, PolicyError> {
    let start = match tokens.first() {
        Some(token) => Location::from_sql(file, token.span.start),
        None => end.clone(),
    };
    let (tokens, globals) = references::substitute(file, tokens)?;
    let context = sqlparse::Context {
        file,
        what,
        end,
        end_found,
    };
    let sql = sqlparse::query(&context, tokens)?;
    query::check_read_only(file, &sql, &start, what)?;
    Ok(WithGlobals { sql, globals })
}

/// Parses a type name such as an argument type of a routine signature
/// (`int`, `double precision`, `text[]`). No global references here.
pub fn parse_data_type(
    file: &Path,
    tokens: &[TokenWithSpan],
    what: &str,
    end: &Location,
    end_found: &str,
) -> Result<DataType, PolicyError> {
    let context = sqlparse::Context {
        file,
        what,
        end,
        end_found,
    };
    sqlparse::data_type(&context, tokens.to_vec())
}
