//! The statement hook: every SQL text a client sends (Query and Parse) passes
//! through `secure` before anything reaches the upstream. It parses the text
//! with sqlparser's PostgreSQL dialect and returns SQL printed from the
//! (secured) syntax tree.
//!
//! Must never: forward the client's original text, or forward anything it
//! could not parse.

pub mod cache;
pub mod hook;

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
    let printed = printed.join(";\n");
    verify(sql, &printed, statements.len())?;
    Ok(printed)
}

/// Parses the printed SQL with PostgreSQL's own grammar (libpg_query) and
/// refuses it unless PostgreSQL reads as many statements as pgward secured,
/// with the same structure as the client's own text (libpg_query's
/// fingerprint: the tree without literal values and positions). A printer
/// quirk that turned text into a comment, split a statement or changed what
/// it names is caught here.
///
/// Until the rewriter changes statements, the printed SQL must mean what the
/// client sent; with the rewriter, the comparison becomes one against the
/// secured tree.
fn verify(original: &str, printed: &str, expected: usize) -> Result<(), PgError> {
    let refused = |why: String| {
        tracing::warn!("verification refused printed SQL: {why}");
        PgError::error(
            code::FEATURE_NOT_SUPPORTED,
            "pgward could not verify this statement",
        )
        .with_hint("pgward forwards only SQL that PostgreSQL's grammar reads as pgward does")
    };
    let parsed = pg_query::parse(printed).map_err(|e| refused(e.to_string()))?;
    let found = parsed.protobuf.stmts.len();
    if found != expected {
        return Err(refused(format!(
            "PostgreSQL reads {found} statements, pgward secured {expected}"
        )));
    }
    if expected == 0 {
        return Ok(());
    }
    let theirs = pg_query::fingerprint(original)
        .map_err(|e| PgError::error(code::SYNTAX_ERROR, e.to_string()))?;
    let ours = pg_query::fingerprint(printed).map_err(|e| refused(e.to_string()))?;
    if theirs.value != ours.value {
        return Err(refused(
            "the printed statement differs in structure from the client's".into(),
        ));
    }
    Ok(())
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
    fn printer_differential_is_refused() {
        // sqlparser prints `- -1` as `--1`, which PostgreSQL reads as the
        // start of a comment (THREATS.md, printer/parser differential).
        let sql = "SELECT - -1, '\n * FROM secret --' FROM allowed";
        match secure(sql.as_bytes(), Origin::Query) {
            Err(e) => assert_eq!(e.code, "0A000"),
            Ok(printed) => {
                let parsed = pg_query::parse(&printed).unwrap();
                assert_eq!(parsed.protobuf.stmts.len(), 1);
                assert!(!parsed.tables().iter().any(|t| t == "secret"), "{printed}");
            }
        }
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

#[cfg(test)]
mod compat {
    use super::*;

    /// The set-up and introspection SQL of real clients
    /// (`../shared/compat/`) must pass the hook and its verification.
    #[test]
    fn client_queries_pass_the_hook() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/compat");
        let mut failures = Vec::new();
        let mut count = 0;
        for file in ["client_queries.json", "client_queries_extra.json"] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let queries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
            for q in queries {
                let sql = q["sql"].as_str().unwrap();
                count += 1;
                if let Err(e) = secure(sql.as_bytes(), Origin::Query) {
                    failures.push(format!("{} / {}: {e}", q["client"], q["purpose"]));
                }
            }
        }
        assert!(count >= 129, "only {count} queries read");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
