//! Splits the text of one policy file into statements, each a list of tokens
//! with their positions.
//!
//! Owns the lexical layer only: comments, quoting (`'…'`, `E'…'`, `$tag$…$tag$`,
//! `"…"`) and statement boundaries, all as PostgreSQL's own lexer reads them
//! (through sqlparser's tokenizer). It never interprets a statement, so a
//! statement kind added to the grammar later (expressions with `@{global}`
//! references, `AS $$ script $$`) needs no change here: every token that is not
//! whitespace, a comment or a top-level `;` is kept as it came.

use std::path::Path;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Location as SqlLocation, Token, TokenWithSpan, Tokenizer};

use super::error::{Location, PolicyError, PolicyErrorKind};

/// One statement: its tokens without whitespace or comments, and where it ends.
#[derive(Debug, Clone)]
pub struct RawStatement {
    pub tokens: Vec<TokenWithSpan>,
    /// The position of the terminating `;`, or just past the last token when
    /// the file ends without one.
    pub end: SqlLocation,
    /// Whether `end` is a `;` (false: the statement ran to the end of the file).
    pub terminated: bool,
}

/// Splits `text` into statements. Empty statements (`;;`) are dropped. A
/// missing `;` after the last statement is accepted, as `psql -f` does.
pub fn split(file: &Path, text: &str) -> Result<Vec<RawStatement>, PolicyError> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| {
            PolicyError::at(
                Location::from_sql(file, e.location),
                PolicyErrorKind::Syntax,
                lower_first(&e.message),
            )
        })?;

    let mut statements = Vec::new();
    let mut current: Vec<TokenWithSpan> = Vec::new();
    for token in tokens {
        match token.token {
            Token::Whitespace(_) | Token::EOF => {}
            Token::SemiColon => {
                if !current.is_empty() {
                    statements.push(RawStatement {
                        tokens: std::mem::take(&mut current),
                        end: token.span.start,
                        terminated: true,
                    });
                }
            }
            _ => current.push(token),
        }
    }
    if let Some(last) = current.last() {
        let end = last.span.end;
        statements.push(RawStatement {
            tokens: current,
            end,
            terminated: false,
        });
    }
    Ok(statements)
}

/// sqlparser words its messages as sentences; PostgreSQL's style (which the
/// rest of our messages follow) starts them in lower case.
fn lower_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_ok(text: &str) -> Vec<RawStatement> {
        match split(Path::new("t.sql"), text) {
            Ok(statements) => statements,
            Err(e) => panic!("split failed: {e}"),
        }
    }

    /// Each statement rendered as its tokens joined by spaces, with the
    /// position of its first token.
    fn render(statements: &[RawStatement]) -> Vec<(String, u64, u64)> {
        statements
            .iter()
            .map(|s| {
                let text = s
                    .tokens
                    .iter()
                    .map(|t| t.token.to_string())
                    .collect::<Vec<_>>()
                    .join(" ");
                let start = s.tokens[0].span.start;
                (text, start.line, start.column)
            })
            .collect()
    }

    #[test]
    fn splits_on_semicolons_with_positions() {
        let statements = split_ok("CREATE ROLE a;\n  CREATE ROLE b ;\nCREATE ROLE c");
        assert_eq!(
            render(&statements),
            vec![
                ("CREATE ROLE a".to_string(), 1, 1),
                ("CREATE ROLE b".to_string(), 2, 3),
                ("CREATE ROLE c".to_string(), 3, 1),
            ]
        );
        assert!(statements[0].terminated);
        assert_eq!((statements[1].end.line, statements[1].end.column), (2, 17));
        assert!(!statements[2].terminated);
    }

    #[test]
    fn skips_comments_and_empty_statements() {
        let text = "-- leading comment; not a statement\n\
                    /* block /* nested; */ still comment; */\n\
                    ;;\n\
                    CREATE ROLE a; -- trailing; comment\n\
                    -- comment at end of file without newline";
        assert_eq!(
            render(&split_ok(text)),
            vec![("CREATE ROLE a".to_string(), 4, 1)]
        );
    }

    #[test]
    fn semicolons_inside_quotes_do_not_split() {
        let text = "CREATE USER a PASSWORD 'x;y''z';\n\
                    CREATE USER b PASSWORD E'p\\';q';\n\
                    CREATE GLOBAL g LANGUAGE javascript AS $js$ a; b; $$ $js$;\n\
                    CREATE ROLE \"we;ird\"\"name\";";
        let statements = split_ok(text);
        assert_eq!(statements.len(), 4);
        assert_eq!(
            statements[0].tokens[4].token,
            Token::SingleQuotedString("x;y'z".into())
        );
        assert_eq!(
            statements[1].tokens[4].token,
            Token::EscapedStringLiteral("p';q".into())
        );
        match &statements[2].tokens.last().map(|t| &t.token) {
            Some(Token::DollarQuotedString(s)) => {
                assert_eq!(s.value, " a; b; $$ ");
                assert_eq!(s.tag.as_deref(), Some("js"));
            }
            other => panic!("expected a dollar-quoted string, got {other:?}"),
        }
        match &statements[3].tokens[2].token {
            Token::Word(w) => {
                assert_eq!(w.value, "we;ird\"name");
                assert_eq!(w.quote_style, Some('"'));
            }
            other => panic!("expected a quoted identifier, got {other:?}"),
        }
    }

    #[test]
    fn keeps_global_references_intact() {
        let text =
            "CREATE POLICY p ON t USING (a = @{current_employee.id} AND b = ANY(@{regions}));";
        let statements = split_ok(text);
        assert_eq!(statements.len(), 1);
        let tokens: Vec<&Token> = statements[0].tokens.iter().map(|t| &t.token).collect();
        let at = tokens
            .iter()
            .position(|t| **t == Token::AtSign)
            .unwrap_or_else(|| panic!("no @ in {tokens:?}"));
        assert_eq!(tokens[at + 1], &Token::LBrace);
        assert!(matches!(tokens[at + 2], Token::Word(w) if w.value == "current_employee"));
        assert_eq!(tokens[at + 3], &Token::Period);
        assert!(matches!(tokens[at + 4], Token::Word(w) if w.value == "id"));
        assert_eq!(tokens[at + 5], &Token::RBrace);
    }

    #[test]
    fn unterminated_string_is_an_error_at_its_position() {
        let err = match split(
            Path::new("t.sql"),
            "CREATE ROLE a;\nCREATE USER b PASSWORD 'oops;\n",
        ) {
            Ok(s) => panic!("expected an error, got {s:?}"),
            Err(e) => e,
        };
        assert_eq!(err.kind, PolicyErrorKind::Syntax);
        let location = err
            .location
            .clone()
            .unwrap_or_else(|| panic!("no location"));
        assert_eq!(location.line, 2);
        assert!(err.message.starts_with("unterminated"), "{err}");
    }

    #[test]
    fn unterminated_comment_is_an_error() {
        assert!(split(Path::new("t.sql"), "CREATE ROLE a; /* never closed").is_err());
    }
}
