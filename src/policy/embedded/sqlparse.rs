//! The call into sqlparser's own parser, and its errors reworded as ours.
//!
//! The tokens keep the positions they had in the policy file, so sqlparser's
//! "at Line: l, Column: c" is already a file position; an error at the end
//! of the tokens has none and is placed where the embedded SQL ends. Never
//! accepts a parse that leaves tokens over.

use std::path::Path;

use sqlparser::ast::{DataType, Expr, Query};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::policy::error::{Location, PolicyError, PolicyErrorKind};
use crate::policy::parser::describe;

/// What is being parsed, for messages and for errors at its end.
pub struct Context<'a> {
    pub file: &'a Path,
    /// "the USING expression", "the query of global g".
    pub what: &'a str,
    pub end: &'a Location,
    /// How an error says "found" at `end`.
    pub end_found: &'a str,
}

pub fn expr(context: &Context<'_>, tokens: Vec<TokenWithSpan>) -> Result<Expr, PolicyError> {
    if tokens.is_empty() {
        return Err(context.empty());
    }
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let expr = parser.parse_expr().map_err(|e| context.error(e))?;
    context.expect_end(&parser)?;
    Ok(expr)
}

pub fn query(context: &Context<'_>, tokens: Vec<TokenWithSpan>) -> Result<Box<Query>, PolicyError> {
    if tokens.is_empty() {
        return Err(context.empty());
    }
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let query = parser.parse_query().map_err(|e| context.error(e))?;
    context.expect_end(&parser)?;
    Ok(query)
}

pub fn data_type(
    context: &Context<'_>,
    tokens: Vec<TokenWithSpan>,
) -> Result<DataType, PolicyError> {
    if tokens.is_empty() {
        return Err(context.empty());
    }
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let data_type = parser.parse_data_type().map_err(|e| context.error(e))?;
    context.expect_end(&parser)?;
    Ok(data_type)
}

impl Context<'_> {
    fn empty(&self) -> PolicyError {
        PolicyError::at(
            self.end.clone(),
            PolicyErrorKind::Syntax,
            format!("{} is empty", self.what),
        )
    }

    fn expect_end(&self, parser: &Parser<'_>) -> Result<(), PolicyError> {
        let next = parser.peek_token();
        if next.token == Token::EOF {
            return Ok(());
        }
        Err(PolicyError::at(
            Location::from_sql(self.file, next.span.start),
            PolicyErrorKind::Syntax,
            format!(
                "expected the end of {}, found {}",
                self.what,
                describe(&next.token)
            ),
        ))
    }

    /// sqlparser's "Expected: X, found: Y at Line: l, Column: c" as
    /// "expected X, found Y" at that position.
    fn error(&self, error: ParserError) -> PolicyError {
        let message = match error {
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
            ParserError::RecursionLimitExceeded => {
                return PolicyError::at(
                    self.end.clone(),
                    PolicyErrorKind::Syntax,
                    format!("{} is nested too deeply", self.what),
                );
            }
        };
        let (message, location) = match split_position(&message) {
            Some((text, line, column)) => (text, Location::new(self.file, line, column)),
            None => (message.as_str(), self.end.clone()),
        };
        let message = message
            .replacen("Expected: ", "expected ", 1)
            .replacen(", found: EOF", &format!(", found {}", self.end_found), 1)
            .replacen(", found: ", ", found ", 1);
        PolicyError::at(
            location,
            PolicyErrorKind::Syntax,
            lower_first(&message).into_owned(),
        )
    }
}

/// Splits " at Line: l, Column: c" off the end of a sqlparser message.
fn split_position(message: &str) -> Option<(&str, u64, u64)> {
    let (text, position) = message.rsplit_once(" at Line: ")?;
    let (line, column) = position.split_once(", Column: ")?;
    Some((text, line.parse().ok()?, column.parse().ok()?))
}

fn lower_first(message: &str) -> std::borrow::Cow<'_, str> {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) if first.is_uppercase() => first.to_lowercase().chain(chars).collect(),
        _ => message.into(),
    }
}
