//! The statement hook: every SQL text a client sends (Query and Parse) passes
//! through `secure` before anything reaches the upstream. It parses the text
//! with sqlparser's PostgreSQL dialect and returns SQL printed from the
//! (secured) syntax tree.
//!
//! Must never: forward the client's original text, or forward anything it
//! could not parse.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use crate::error::{PgError, code};

/// How the SQL text arrived: a simple Query may hold several statements, a
/// Parse message at most one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Query,
    Parse,
}

/// Parses `sql`, secures each statement and prints the result.
pub fn secure(sql: &[u8], origin: Origin) -> Result<String, PgError> {
    let sql = std::str::from_utf8(sql).map_err(|_| {
        PgError::error(
            "22021",
            "invalid byte sequence for encoding \"UTF8\" in statement text",
        )
    })?;
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(parse_error)?;
    if origin == Origin::Parse && statements.len() > 1 {
        return Err(PgError::error(
            code::SYNTAX_ERROR,
            "cannot insert multiple commands into a prepared statement",
        ));
    }
    let printed: Vec<String> = statements.iter().map(ToString::to_string).collect();
    Ok(printed.join(";\n"))
}

fn parse_error(e: ParserError) -> PgError {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_printed_sql() {
        assert_eq!(
            secure(b"select  1 as x", Origin::Query).unwrap(),
            "SELECT 1 AS x"
        );
    }

    #[test]
    fn empty_text_stays_empty() {
        assert_eq!(secure(b"", Origin::Query).unwrap(), "");
        assert_eq!(secure(b" ; ", Origin::Query).unwrap(), "");
    }

    #[test]
    fn unparseable_is_refused() {
        let e = secure(b"SELEC 1", Origin::Query).unwrap_err();
        assert_eq!(e.code, "42601");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let e = secure(b"SELECT '\xff'", Origin::Query).unwrap_err();
        assert_eq!(e.code, "22021");
    }

    #[test]
    fn parse_takes_one_statement() {
        let e = secure(b"SELECT 1; SELECT 2", Origin::Parse).unwrap_err();
        assert_eq!(e.code, "42601");
        assert_eq!(
            secure(b"SELECT 1; SELECT 2", Origin::Query).unwrap(),
            "SELECT 1;\nSELECT 2"
        );
    }
}
