//! A cursor over the tokens of one statement, with the small vocabulary every
//! statement parser shares: keywords, identifiers, "expected …, found …".
//!
//! Owns identifier rules (PostgreSQL's case folding, reserved keywords, the
//! 63-byte limit) so that every statement reads names the same way. Never
//! quotes the contents of a string literal in an error: it may be a password.

use std::path::Path;

use sqlparser::tokenizer::{Location as SqlLocation, Token, TokenWithSpan, Word};

use crate::policy::ast::Name;
use crate::policy::error::{Location, PolicyError, PolicyErrorKind};
use crate::policy::lexer::RawStatement;

/// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1); a policy that
/// relied on truncation would name something other than what it says, so we
/// refuse instead.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// PostgreSQL 15's fully reserved keywords (Appendix C, "reserved" in the
/// PostgreSQL column, excluding those only reserved as function or type
/// names). Unquoted, these cannot be role names there either.
const RESERVED_KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];

/// The tokens between a pair of parentheses.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    pub tokens: &'a [TokenWithSpan],
    /// Where the closing `)` is: an error at the end of the group points here.
    pub close: Location,
}

pub struct Cursor<'a> {
    file: &'a Path,
    tokens: &'a [TokenWithSpan],
    pos: usize,
    end: SqlLocation,
    terminated: bool,
}

impl<'a> Cursor<'a> {
    pub fn new(file: &'a Path, statement: &'a RawStatement) -> Self {
        Cursor {
            file,
            tokens: &statement.tokens,
            pos: 0,
            end: statement.end,
            terminated: statement.terminated,
        }
    }

    pub fn peek(&self) -> Option<&'a TokenWithSpan> {
        self.tokens.get(self.pos)
    }

    pub fn peek_nth(&self, n: usize) -> Option<&'a TokenWithSpan> {
        self.tokens.get(self.pos + n)
    }

    pub fn advance(&mut self) -> Option<&'a TokenWithSpan> {
        let token = self.tokens.get(self.pos)?;
        self.pos += 1;
        Some(token)
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    /// The tokens not consumed yet: what a later stage hands to sqlparser's
    /// own parser (an expression in `USING (…)`, a query after `AS`).
    pub fn rest(&self) -> &'a [TokenWithSpan] {
        self.tokens.get(self.pos..).unwrap_or(&[])
    }

    /// Consumes every token not consumed yet and returns them.
    pub fn take_rest(&mut self) -> &'a [TokenWithSpan] {
        let rest = self.rest();
        self.pos = self.tokens.len();
        rest
    }

    pub fn file(&self) -> &'a Path {
        self.file
    }

    /// Where the statement ends (its `;`, or just past its last token), and
    /// how an error says "found" there.
    pub fn end(&self) -> (Location, &'static str) {
        let found = if self.terminated {
            "end of statement"
        } else {
            "end of file"
        };
        (Location::from_sql(self.file, self.end), found)
    }

    /// `( … )`: consumes a parenthesized group and returns the tokens inside
    /// it (nested parentheses included) with where its
    /// `)` is. `what` names the group for "expected" messages.
    pub fn expect_parenthesized(&mut self, what: &str) -> Result<Group<'a>, PolicyError> {
        let Some(open) = self.peek().filter(|t| t.token == Token::LParen) else {
            return Err(self.expected(&format!("\"(\" to open {what}")));
        };
        let open_location = self.location_of(open);
        let start = self.pos + 1;
        let mut depth = 0usize;
        for (offset, token) in self.rest().iter().enumerate() {
            match token.token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        let close = self.pos + offset;
                        let group = Group {
                            tokens: &self.tokens[start..close],
                            close: self.location_of(token),
                        };
                        self.pos = close + 1;
                        return Ok(group);
                    }
                }
                _ => {}
            }
        }
        Err(PolicyError::at(
            open_location,
            PolicyErrorKind::Syntax,
            format!("unbalanced parentheses: the \"(\" that opens {what} is never closed"),
        ))
    }

    /// Where the next token starts, or where the statement ends.
    pub fn location(&self) -> Location {
        match self.peek() {
            Some(token) => self.location_of(token),
            None => Location::from_sql(self.file, self.end),
        }
    }

    pub fn location_of(&self, token: &TokenWithSpan) -> Location {
        Location::from_sql(self.file, token.span.start)
    }

    /// Whether the token `n` ahead is the (unquoted, case-insensitive) keyword.
    pub fn is_keyword_at(&self, n: usize, keyword: &str) -> bool {
        self.peek_nth(n)
            .is_some_and(|token| is_keyword(&token.token, keyword))
    }

    pub fn peek_keyword(&self, keyword: &str) -> bool {
        self.is_keyword_at(0, keyword)
    }

    pub fn eat_keyword(&mut self, keyword: &str) -> bool {
        if self.peek_keyword(keyword) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `keyword` and returns where it was, or fails with
    /// "expected KEYWORD, found …".
    pub fn expect_keyword(&mut self, keyword: &str) -> Result<Location, PolicyError> {
        let location = self.location();
        if self.eat_keyword(keyword) {
            Ok(location)
        } else {
            Err(self.expected(keyword))
        }
    }

    pub fn eat_token(&mut self, expected: &Token) -> bool {
        if self.peek().is_some_and(|t| &t.token == expected) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// "expected {what}, found {the next token}" at the next token.
    pub fn expected(&self, what: &str) -> PolicyError {
        let found = match self.peek() {
            Some(token) => describe(&token.token),
            None if self.terminated => "end of statement".to_string(),
            None => "end of file".to_string(),
        };
        PolicyError::at(
            self.location(),
            PolicyErrorKind::Syntax,
            format!("expected {what}, found {found}"),
        )
    }

    /// Fails unless every token has been consumed.
    pub fn expect_end(&self, what: &str) -> Result<(), PolicyError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    /// Reads one identifier: unquoted words fold to lower case, quoted ones
    /// are kept as written. `what` names the expected thing ("a role name").
    pub fn expect_name(&mut self, what: &str) -> Result<Name, PolicyError> {
        let Some(token) = self.peek() else {
            return Err(self.expected(what));
        };
        let Token::Word(word) = &token.token else {
            return Err(self.expected(what));
        };
        let name = fold_identifier(word, self.location_of(token), what)?;
        self.pos += 1;
        Ok(name)
    }

    /// `name [, name …]`
    pub fn expect_name_list(&mut self, what: &str) -> Result<Vec<Name>, PolicyError> {
        let mut names = vec![self.expect_name(what)?];
        while self.eat_token(&Token::Comma) {
            names.push(self.expect_name(what)?);
        }
        Ok(names)
    }
}

/// One identifier by PostgreSQL's rules: an unquoted word folds to lower
/// case and must not be a reserved keyword; a quoted one is kept as written
/// and must not be empty; neither may exceed 63 bytes.
pub fn fold_identifier(word: &Word, location: Location, what: &str) -> Result<Name, PolicyError> {
    let value = if word.quote_style.is_some() {
        if word.value.is_empty() {
            return Err(PolicyError::at(
                location,
                PolicyErrorKind::Syntax,
                "zero-length delimited identifier",
            ));
        }
        word.value.clone()
    } else {
        // PostgreSQL folds only ASCII letters in a UTF-8 database
        // (downcase_identifier), so "Ärger" stays "Ärger" unquoted too.
        let folded = word.value.to_ascii_lowercase();
        if RESERVED_KEYWORDS.contains(&folded.as_str()) {
            return Err(PolicyError::at(
                location,
                PolicyErrorKind::Syntax,
                format!(
                    "expected {what}, found reserved keyword {} \
                     (write \"{folded}\" in double quotes to use it as a name)",
                    word.value
                ),
            ));
        }
        folded
    };
    if value.len() > MAX_IDENTIFIER_BYTES {
        return Err(PolicyError::at(
            location,
            PolicyErrorKind::InvalidName,
            format!("identifier \"{value}\" is longer than {MAX_IDENTIFIER_BYTES} bytes"),
        ));
    }
    Ok(Name { value, location })
}

/// Whether `token` is `keyword`: an unquoted word, compared ignoring ASCII case.
pub fn is_keyword(token: &Token, keyword: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(keyword))
}

/// How a token is shown after "found": words as written, punctuation in
/// quotes, and string literals never by content.
pub fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => match w.quote_style {
            Some(q) => format!("{q}{}{q}", w.value.replace(q, &format!("{q}{q}"))),
            None => w.value.clone(),
        },
        Token::Number(n, _) => n.clone(),
        Token::SingleQuotedString(_)
        | Token::EscapedStringLiteral(_)
        | Token::DollarQuotedString(_)
        | Token::NationalStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::SingleQuotedByteStringLiteral(_) => "a string literal".to_string(),
        Token::EOF => "end of file".to_string(),
        other => format!("\"{other}\""),
    }
}
