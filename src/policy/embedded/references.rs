//! `@{name}` and `@{name.attr}` in a token stream, replaced by placeholders.
//!
//! sqlparser cannot parse `@{`, so each reference becomes one
//! `Token::Placeholder` whose text starts with `@{`. PostgreSQL's lexer (and
//! sqlparser's, for that dialect) never produces such a placeholder from
//! user text — an `@` is always its own token before `{` — so a placeholder
//! in the parsed tree is always one of ours, and the user's own parameters
//! (`$1`) are refused here because a policy file has none to bind. Strings
//! and comments are single tokens or no tokens at all by now, so `'@{x}'`
//! is never a reference. Never looks up whether a global exists: that needs
//! the whole set.

use std::path::Path;

use sqlparser::tokenizer::{Span, Token, TokenWithSpan};

use super::GlobalRef;
use crate::policy::error::{Location, PolicyError, PolicyErrorKind};
use crate::policy::model::quote_ident;
use crate::policy::parser::{describe, fold_identifier};

const SPELLING: &str = "a global reference is written without spaces, as @{name} or @{name.attr}";

/// The tokens with every reference replaced, and the references in order.
pub fn substitute(
    file: &Path,
    tokens: &[TokenWithSpan],
) -> Result<(Vec<TokenWithSpan>, Vec<GlobalRef>), PolicyError> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut globals = Vec::new();
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        match &token.token {
            Token::AtSign if tokens.get(i + 1).is_some_and(|t| t.token == Token::LBrace) => {
                let (reference, used) = read_reference(file, &tokens[i..])?;
                let last = &tokens[i + used - 1];
                out.push(TokenWithSpan {
                    token: Token::Placeholder(reference.placeholder.clone()),
                    span: Span::new(token.span.start, last.span.end),
                });
                globals.push(reference);
                i += used;
            }
            Token::Placeholder(text) => {
                return Err(PolicyError::at(
                    Location::from_sql(file, token.span.start),
                    PolicyErrorKind::Syntax,
                    format!(
                        "parameter {text} cannot be used in a policy: there is nothing to \
                         bind it to (write @{{name}} for a per-session value)"
                    ),
                ));
            }
            _ => {
                out.push(token.clone());
                i += 1;
            }
        }
    }
    Ok((out, globals))
}

/// Reads `@ { name [. attr] }` from the start of `tokens` (which begin with
/// `@` and `{`); returns the reference and how many tokens it took.
fn read_reference(
    file: &Path,
    tokens: &[TokenWithSpan],
) -> Result<(GlobalRef, usize), PolicyError> {
    let at = Location::from_sql(file, tokens[0].span.start);
    let error = |token: &TokenWithSpan, message: String| {
        PolicyError::at(
            Location::from_sql(file, token.span.start),
            PolicyErrorKind::Syntax,
            message,
        )
    };
    // Every token of a reference starts where the one before it ends.
    let adjacent = |index: usize| -> Result<(), PolicyError> {
        match (tokens.get(index - 1), tokens.get(index)) {
            (Some(before), Some(token)) if token.span.start != before.span.end => {
                Err(error(&tokens[0], SPELLING.to_string()))
            }
            _ => Ok(()),
        }
    };
    adjacent(1)?;
    adjacent(2)?;
    let word = |index: usize, what: &str| -> Result<String, PolicyError> {
        match tokens.get(index) {
            Some(token) => match &token.token {
                Token::Word(w) => {
                    let location = Location::from_sql(file, token.span.start);
                    fold_identifier(w, location, what).map(|name| name.value)
                }
                other => Err(error(
                    token,
                    format!(
                        "expected {what} in a global reference, found {}",
                        describe(other)
                    ),
                )),
            },
            None => Err(PolicyError::at(
                at.clone(),
                PolicyErrorKind::Syntax,
                format!("unterminated global reference: expected {what} and \"}}\""),
            )),
        }
    };
    let name = word(2, "a global name")?;
    adjacent(3)?;
    // `@{claims.a.b}` reads a nested claim: a token's claims are the one
    // global whose attribute may be a dotted path.
    let mut parts = Vec::new();
    let mut close = 3;
    while let Some(Token::Period) = tokens.get(close).map(|t| &t.token) {
        if !parts.is_empty() && name != "claims" {
            return Err(error(
                &tokens[close],
                "only @{claims.…} takes a dotted path of attributes".to_string(),
            ));
        }
        adjacent(close + 1)?;
        parts.push(word(close + 1, "an attribute name")?);
        adjacent(close + 2)?;
        close += 2;
    }
    let attr = (!parts.is_empty()).then(|| parts.join("."));
    match tokens.get(close) {
        Some(token) if token.token == Token::RBrace => {}
        Some(token) => {
            let expected = if attr.is_some() {
                "\"}\""
            } else {
                "\".\" or \"}\""
            };
            return Err(error(
                token,
                format!(
                    "expected {expected} in a global reference, found {}",
                    describe(&token.token)
                ),
            ));
        }
        None => {
            return Err(PolicyError::at(
                at,
                PolicyErrorKind::Syntax,
                "unterminated global reference: expected \"}\"",
            ));
        }
    }
    let placeholder = placeholder_text(&name, attr.as_deref());
    let reference = GlobalRef {
        name,
        attr,
        location: at,
        placeholder,
    };
    Ok((reference, close + 1))
}

/// The placeholder text for a reference: the reference as it would be
/// written, with a part in double quotes when it is not a plain lower-case
/// identifier. Distinct references always get distinct texts.
fn placeholder_text(name: &str, attr: Option<&str>) -> String {
    match attr {
        Some(attr) => format!("@{{{}.{}}}", quote_ident(name), quote_ident(attr)),
        None => format!("@{{{}}}", quote_ident(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::Tokenizer;

    fn tokens(text: &str) -> Vec<TokenWithSpan> {
        let dialect = PostgreSqlDialect {};
        match Tokenizer::new(&dialect, text).tokenize_with_location() {
            Ok(tokens) => tokens
                .into_iter()
                .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
                .collect(),
            Err(e) => panic!("{e}"),
        }
    }

    fn substituted(text: &str) -> (Vec<Token>, Vec<GlobalRef>) {
        match substitute(Path::new("t.sql"), &tokens(text)) {
            Ok((tokens, refs)) => (tokens.into_iter().map(|t| t.token).collect(), refs),
            Err(e) => panic!("{e}"),
        }
    }

    fn error(text: &str) -> String {
        match substitute(Path::new("t.sql"), &tokens(text)) {
            Ok((tokens, _)) => panic!("expected an error, got {tokens:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn references_become_placeholders_with_their_span() {
        let text = "a = @{current_employee.id} AND\n  b = ANY(@{regions})";
        let (out, refs) = match substitute(Path::new("t.sql"), &tokens(text)) {
            Ok(result) => result,
            Err(e) => panic!("{e}"),
        };
        let rendered: Vec<String> = out.iter().map(|t| t.token.to_string()).collect();
        assert_eq!(
            rendered,
            [
                "a",
                "=",
                "@{current_employee.id}",
                "AND",
                "b",
                "=",
                "ANY",
                "(",
                "@{regions}",
                ")"
            ]
        );
        assert_eq!(
            out[2].token,
            Token::Placeholder("@{current_employee.id}".into())
        );
        let span = out[2].span;
        assert_eq!(
            (span.start.line, span.start.column, span.end.column),
            (1, 5, 27)
        );
        let summary: Vec<(&str, Option<&str>, u64, u64)> = refs
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.attr.as_deref(),
                    r.location.line,
                    r.location.column,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("current_employee", Some("id"), 1, 5),
                ("regions", None, 2, 11)
            ]
        );
    }

    #[test]
    fn names_fold_and_quoted_names_keep_their_case() {
        let (out, refs) = substituted(r#"@{Current_Employee.ID} = @{"Weird ""Name"""."Col"}"#);
        assert_eq!(refs[0].name, "current_employee");
        assert_eq!(refs[0].attr.as_deref(), Some("id"));
        assert_eq!(refs[0].placeholder, "@{current_employee.id}");
        assert_eq!(refs[1].name, "Weird \"Name\"");
        assert_eq!(refs[1].attr.as_deref(), Some("Col"));
        assert_eq!(refs[1].placeholder, r#"@{"Weird ""Name"""."Col"}"#);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn equal_references_share_a_placeholder() {
        let (_, refs) = substituted("@{g.a} + @{G.a} + @{g}");
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[0].placeholder, refs[1].placeholder);
        assert_ne!(refs[0].placeholder, refs[2].placeholder);
        assert_ne!((refs[0].location.column), refs[1].location.column);
    }

    #[test]
    fn strings_and_comments_hold_no_references() {
        let (out, refs) = substituted(
            "a = '@{x}' AND b = $$@{y}$$ AND c = E'@{z}' -- @{w}\n /* @{v} */ AND \"@{u}\" = 1",
        );
        assert!(refs.is_empty(), "{refs:?}");
        assert!(!out.iter().any(|t| matches!(t, Token::Placeholder(_))));
    }

    #[test]
    fn other_uses_of_at_are_left_alone() {
        let (out, refs) = substituted("tags @> ARRAY['a'] AND @ x > 1");
        assert!(refs.is_empty());
        assert!(out.contains(&Token::AtArrow));
        assert!(out.contains(&Token::AtSign));
    }

    #[test]
    fn spaces_inside_a_reference_are_errors_at_the_at_sign() {
        let spelled = "a global reference is written without spaces, as @{name} or @{name.attr}";
        assert_eq!(error("a = @ {x}"), format!("t.sql:1:5: {spelled}"));
        assert_eq!(error("a = @{ x}"), format!("t.sql:1:5: {spelled}"));
        assert_eq!(error("a = @{x }"), format!("t.sql:1:5: {spelled}"));
        assert_eq!(error("a = @{x. y}"), format!("t.sql:1:5: {spelled}"));
        assert_eq!(error("a =\n @{x /* c */}"), format!("t.sql:2:2: {spelled}"));
    }

    #[test]
    fn claims_take_a_dotted_path() {
        let (_, refs) = substituted("a = ANY(@{claims.realm_access.roles})");
        assert_eq!(refs[0].name, "claims");
        assert_eq!(refs[0].attr.as_deref(), Some("realm_access.roles"));
        // The quoted spelling names the same claim.
        let (_, quoted) = substituted("a = ANY(@{claims.\"realm_access.roles\"})");
        assert_eq!(quoted[0].placeholder, refs[0].placeholder);
    }

    #[test]
    fn malformed_references() {
        assert_eq!(
            error("a = @{1}"),
            "t.sql:1:7: expected a global name in a global reference, found 1"
        );
        assert_eq!(
            error("a = @{x.y.z}"),
            "t.sql:1:10: only @{claims.…} takes a dotted path of attributes"
        );
        assert_eq!(
            error("a = @{x+}"),
            "t.sql:1:8: expected \".\" or \"}\" in a global reference, found \"+\""
        );
        assert_eq!(
            error("a = @{x"),
            "t.sql:1:5: unterminated global reference: expected \"}\""
        );
        assert_eq!(
            error("a = @{"),
            "t.sql:1:5: unterminated global reference: expected a global name and \"}\""
        );
        assert_eq!(
            error("a = @{select}"),
            "t.sql:1:7: expected a global name, found reserved keyword select \
             (write \"select\" in double quotes to use it as a name)"
        );
    }

    #[test]
    fn parameters_are_refused() {
        assert_eq!(
            error("a = $1"),
            "t.sql:1:5: parameter $1 cannot be used in a policy: there is nothing to bind it \
             to (write @{name} for a per-session value)"
        );
    }
}
