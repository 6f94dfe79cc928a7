//! Two PostgreSQL read forms that sqlparser 0.63 cannot read, brought into
//! a form it can, on its token stream (never on the SQL text):
//!
//! - `TABLE t` starting a query (top level, in parentheses, after a set
//!   operator, after `EXPLAIN`, `PREPARE … AS`, `DECLARE … FOR`) is
//!   `SELECT * FROM t` in PostgreSQL's grammar (`simple_select`), and is
//!   parsed as such.
//! - `ONLY t` / `ONLY (t)` at a FROM-item position (after FROM, JOIN or a
//!   comma) loses its `ONLY` token — sqlparser would read a table called
//!   ONLY — and the position of the name is remembered, so that the
//!   securer prints `ONLY` inside the secured subquery.
//!
//! Must never: let a remembered ONLY go unused (the caller refuses the text
//! when a mark does not land on a plain table reference) or accept a `TABLE`
//! form PostgreSQL would read differently (anything after the name other
//! than the end of the query is refused).

use std::collections::BTreeSet;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use sqlparser::ast::Statement;

use crate::error::{PgError, code};

/// The statements of a client text and the positions of the relation names
/// that followed `ONLY`.
pub struct Parsed {
    pub statements: Vec<Statement>,
    pub only: BTreeSet<Location>,
}

/// Parses a client text as sqlparser's `parse_sql` does, after the two
/// token rewrites of this module.
pub fn parse(sql: &str) -> Result<Parsed, PgError> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| crate::statement::parse_error(e.into()))?;
    let tokens = expand_table(tokens)?;
    let (tokens, only) = strip_only(tokens);
    let statements = Parser::new(&dialect)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(crate::statement::parse_error)?;
    Ok(Parsed { statements, only })
}

fn significant(t: &TokenWithSpan) -> bool {
    !matches!(t.token, Token::Whitespace(_))
}

fn keyword(t: &Token) -> Option<Keyword> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    }
}

fn is_keyword(t: Option<&Token>, k: Keyword) -> bool {
    t.and_then(keyword) == Some(k)
}

/// The length, in significant tokens from `at`, of a relation name: `name`
/// or `schema.name`, not followed by another `.` or a `(`.
fn name_len(sig: &[&Token], at: usize) -> Option<usize> {
    let word = |i: usize| matches!(sig.get(i), Some(Token::Word(_)));
    if !word(at) {
        return None;
    }
    let len = if sig.get(at + 1) == Some(&&Token::Period) && word(at + 2) {
        3
    } else {
        1
    };
    match sig.get(at + len) {
        Some(Token::Period) | Some(Token::LParen) => None,
        _ => Some(len),
    }
}

/// The length of a relation expression: `[ONLY] name` or `ONLY (name)`.
fn relation_len(sig: &[&Token], at: usize) -> Option<usize> {
    if is_keyword(sig.get(at).copied(), Keyword::ONLY) {
        if sig.get(at + 1) == Some(&&Token::LParen) {
            let n = name_len(sig, at + 2)?;
            return (sig.get(at + 2 + n) == Some(&&Token::RParen)).then_some(n + 3);
        }
        return name_len(sig, at + 1).map(|n| n + 1);
    }
    name_len(sig, at)
}

/// `TABLE t` where a query may start becomes `SELECT * FROM t`.
fn expand_table(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, PgError> {
    let positions: Vec<usize> = (0..tokens.len())
        .filter(|&i| significant(&tokens[i]))
        .collect();
    let sig: Vec<&Token> = positions.iter().map(|&i| &tokens[i].token).collect();
    let mut expand = Vec::new();
    // The first keyword of the current statement, and how many of the AS
    // (of PREPARE) or FOR (of DECLARE) that introduce its query were seen:
    // only the first one does.
    let mut first: Option<Keyword> = None;
    let mut introducers = 0;
    for k in 0..sig.len() {
        let prev = k.checked_sub(1).map(|p| sig[p]);
        if prev.is_none() || prev == Some(&Token::SemiColon) {
            first = keyword(sig[k]);
            introducers = 0;
        }
        match (first, keyword(sig[k])) {
            (Some(Keyword::PREPARE), Some(Keyword::AS))
            | (Some(Keyword::DECLARE), Some(Keyword::FOR)) => introducers += 1,
            _ => {}
        }
        if !is_keyword(Some(sig[k]), Keyword::TABLE) {
            continue;
        }
        let before_prev = k.checked_sub(2).map(|p| sig[p]);
        let set_operator = |t: Option<&Token>| {
            matches!(
                t.and_then(keyword),
                Some(Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT)
            )
        };
        let starts_query = match prev {
            None | Some(Token::SemiColon | Token::LParen | Token::RParen) => true,
            Some(p) if set_operator(Some(p)) => true,
            Some(p) => match keyword(p) {
                Some(Keyword::ALL | Keyword::DISTINCT) => set_operator(before_prev),
                Some(Keyword::EXPLAIN | Keyword::VERBOSE | Keyword::ANALYZE) => {
                    first == Some(Keyword::EXPLAIN)
                }
                Some(Keyword::AS) => first == Some(Keyword::PREPARE) && introducers == 1,
                Some(Keyword::FOR) => first == Some(Keyword::DECLARE) && introducers == 1,
                _ => false,
            },
        };
        if !starts_query {
            continue;
        }
        let n = relation_len(&sig, k + 1).ok_or_else(|| table_syntax(k, &sig))?;
        let next = sig.get(k + 1 + n).copied();
        let ends_query = match next {
            None | Some(Token::EOF | Token::SemiColon | Token::RParen) => true,
            Some(t) => matches!(
                keyword(t),
                Some(
                    Keyword::UNION
                        | Keyword::INTERSECT
                        | Keyword::EXCEPT
                        | Keyword::ORDER
                        | Keyword::LIMIT
                        | Keyword::OFFSET
                        | Keyword::FETCH
                        | Keyword::FOR
                )
            ),
        };
        if !ends_query {
            return Err(table_syntax(k, &sig));
        }
        expand.push(positions[k]);
    }
    let mut out = Vec::with_capacity(tokens.len() + 2 * expand.len());
    for (i, t) in tokens.into_iter().enumerate() {
        if expand.contains(&i) {
            for word in [
                Token::make_keyword("SELECT"),
                Token::Mul,
                Token::make_keyword("FROM"),
            ] {
                out.push(TokenWithSpan {
                    token: word,
                    span: t.span,
                });
            }
        } else {
            out.push(t);
        }
    }
    Ok(out)
}

fn table_syntax(k: usize, sig: &[&Token]) -> PgError {
    let near = sig
        .get(k + 1)
        .map_or_else(|| "end of input".to_string(), |t| t.to_string());
    PgError::error(
        code::SYNTAX_ERROR,
        format!("pgward cannot parse this statement: TABLE must be followed by a table name and end the query, near {near}"),
    )
    .with_hint("write SELECT * FROM t instead")
}

/// Drops `ONLY` (and the parentheses of `ONLY (t)`) at FROM-item positions
/// and remembers where each such name starts.
fn strip_only(tokens: Vec<TokenWithSpan>) -> (Vec<TokenWithSpan>, BTreeSet<Location>) {
    let positions: Vec<usize> = (0..tokens.len())
        .filter(|&i| significant(&tokens[i]))
        .collect();
    let sig: Vec<&Token> = positions.iter().map(|&i| &tokens[i].token).collect();
    let mut drop = BTreeSet::new();
    let mut only = BTreeSet::new();
    for k in 1..sig.len() {
        if !is_keyword(Some(sig[k]), Keyword::ONLY) {
            continue;
        }
        let from_item = sig[k - 1] == &Token::Comma
            || matches!(keyword(sig[k - 1]), Some(Keyword::FROM | Keyword::JOIN));
        if !from_item {
            continue;
        }
        let Some(len) = relation_len(&sig, k) else {
            continue;
        };
        drop.insert(positions[k]);
        let name_at = if sig[k + 1] == &Token::LParen {
            drop.insert(positions[k + 1]);
            drop.insert(positions[k + len - 1]);
            k + 2
        } else {
            k + 1
        };
        only.insert(tokens[positions[name_at]].span.start);
    }
    let kept = tokens
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, t)| t)
        .collect();
    (kept, only)
}
