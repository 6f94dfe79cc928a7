//! Recursive-descent parser for policy statements, one statement at a time.
//!
//! Owns the grammar: which statement kinds exist and how each is spelled. A
//! statement kind lives in its own file and receives a [`Cursor`] positioned
//! after its leading keywords. Never resolves names across statements or
//! files; that is the model builder's job once the whole set is read.

mod bits;
mod cursor;
mod global;
mod grant;
mod names;
mod policy;
mod role;

use std::path::Path;

use sqlparser::tokenizer::Token;

use super::ast::Statement;
use super::error::{PolicyError, PolicyErrorKind};
use super::lexer::RawStatement;

pub use cursor::{Cursor, describe, fold_identifier};

/// The statements this version loads, for messages.
const LOADED: &str =
    "CREATE ROLE, CREATE USER, GRANT, CREATE POLICY, CREATE GLOBAL and CREATE PERMISSION BITS";

/// Parses one statement that the lexer split off.
pub fn parse_statement(file: &Path, raw: &RawStatement) -> Result<Statement, PolicyError> {
    let mut cursor = Cursor::new(file, raw);
    if cursor.peek_keyword("CREATE") {
        if cursor.is_keyword_at(1, "ROLE") {
            cursor.advance();
            cursor.advance();
            return role::parse_create_role(&mut cursor).map(Statement::CreateRole);
        }
        if cursor.is_keyword_at(1, "USER") {
            cursor.advance();
            cursor.advance();
            return role::parse_create_user(&mut cursor).map(Statement::CreateUser);
        }
        if cursor.is_keyword_at(1, "POLICY") {
            cursor.advance();
            cursor.advance();
            return policy::parse_create_policy(&mut cursor)
                .map(|create| Statement::CreatePolicy(Box::new(create)));
        }
        if cursor.is_keyword_at(1, "PERMISSION") {
            cursor.advance();
            cursor.advance();
            return bits::parse_create_permission_bits(&mut cursor);
        }
        if cursor.is_keyword_at(1, "GLOBAL") {
            cursor.advance();
            cursor.advance();
            return global::parse_create_global(&mut cursor).map(Statement::CreateGlobal);
        }
    }
    if cursor.eat_keyword("GRANT") {
        return grant::parse_grant(&mut cursor).map(Statement::Grant);
    }
    Err(unsupported(&cursor))
}

/// Every statement this version does not load (REVOKE, DROP PERMISSION
/// BITS, DDL …) is refused by name at its first token, so that a policy
/// set written for a later version fails loudly instead of loading partly.
fn unsupported(cursor: &Cursor<'_>) -> PolicyError {
    let head: Vec<String> = cursor
        .rest()
        .iter()
        .take(3)
        .map_while(|t| match &t.token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        })
        .collect();
    // Show the keywords that name the statement kind: one word for GRANT,
    // two for CREATE POLICY, three for DROP PERMISSION BITS.
    let words = match head.first().map(String::as_str) {
        None => return cursor.expected(&format!("a statement ({LOADED})")),
        Some("CREATE" | "ALTER" | "DROP") if head.get(1).is_some_and(|w| w == "PERMISSION") => 3,
        Some("CREATE" | "ALTER" | "DROP" | "COMMENT") => 2,
        Some(_) => 1,
    };
    let name = head
        .iter()
        .take(words)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    PolicyError::at(
        cursor.location(),
        PolicyErrorKind::Unsupported,
        format!("statement not supported yet: {name} (this version loads {LOADED})"),
    )
}
