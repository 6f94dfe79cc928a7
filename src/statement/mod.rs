//! The statement hook: every SQL text a client sends (Query and Parse) passes
//! through [`hook::Hook::secure`] before anything reaches the upstream.
//!
//! Must never: forward a policy-bound session's original text, or forward
//! anything it could not parse.

pub mod cache;
pub mod hook;

use sqlparser::parser::ParserError;

use crate::error::{PgError, code};

/// How the SQL text arrived: a simple Query may hold several statements, a
/// Parse message at most one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Query,
    Parse,
}

pub fn parse_error(e: ParserError) -> PgError {
    let message = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => {
            return PgError::error(
                "54001",
                "statement is nested too deeply for pgward to analyse",
            );
        }
    };
    PgError::error(
        code::SYNTAX_ERROR,
        format!("pgward cannot parse this statement: {message}"),
    )
    .with_hint("pgward forwards only SQL it can parse; statements it cannot read are refused")
}
