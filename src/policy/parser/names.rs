//! The name lists several statements share: schema-qualified object names,
//! column lists, and grantee lists with PUBLIC.
//!
//! Owns how these names are spelled. Never decides whether a name exists:
//! tables and columns are checked against the catalog later, roles once the
//! whole set is read.

use sqlparser::tokenizer::Token;

use super::cursor::Cursor;
use crate::policy::ast::{Name, ObjectName};
use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::model::PUBLIC;

/// `name` or `schema.name`. A third part (PostgreSQL's `database.schema.t`)
/// is refused: a policy set is for the one database pgward fronts.
pub fn expect_object_name(cursor: &mut Cursor<'_>, what: &str) -> Result<ObjectName, PolicyError> {
    let first = cursor.expect_name(what)?;
    if !cursor.eat_token(&Token::Period) {
        return Ok(ObjectName {
            schema: None,
            name: first,
        });
    }
    let name = cursor.expect_name(what)?;
    if cursor.peek().is_some_and(|t| t.token == Token::Period) {
        return Err(PolicyError::at(
            first.location,
            PolicyErrorKind::InvalidName,
            "cross-database references are not supported: write schema.name or name",
        ));
    }
    Ok(ObjectName {
        schema: Some(first),
        name,
    })
}

/// `name [, name …]` of object names.
pub fn expect_object_names(
    cursor: &mut Cursor<'_>,
    what: &str,
) -> Result<Vec<ObjectName>, PolicyError> {
    let mut names = vec![expect_object_name(cursor, what)?];
    while cursor.eat_token(&Token::Comma) {
        names.push(expect_object_name(cursor, what)?);
    }
    Ok(names)
}

/// `(a, b)`: a column list, each column once.
pub fn expect_column_list(cursor: &mut Cursor<'_>) -> Result<Vec<Name>, PolicyError> {
    if !cursor.eat_token(&Token::LParen) {
        return Err(cursor.expected("\"(\""));
    }
    let columns = cursor.expect_name_list("a column name")?;
    if !cursor.eat_token(&Token::RParen) {
        return Err(cursor.expected("\",\" or \")\""));
    }
    for (i, column) in columns.iter().enumerate() {
        if let Some(first) = columns[..i].iter().find(|c| c.value == column.value) {
            return Err(PolicyError::at(
                column.location.clone(),
                PolicyErrorKind::Duplicate,
                format!(
                    "column \"{}\" is listed twice (first at {})",
                    column.value, first.location
                ),
            ));
        }
    }
    Ok(columns)
}

/// `PUBLIC | role [, …]` after TO or FOR ROLE: roles or users, by name.
/// PUBLIC comes back as the name "public"; a quoted "public" is refused,
/// since it would name a role that cannot exist.
pub fn expect_grantees(cursor: &mut Cursor<'_>) -> Result<Vec<Name>, PolicyError> {
    let mut names = vec![expect_grantee(cursor)?];
    while cursor.eat_token(&Token::Comma) {
        names.push(expect_grantee(cursor)?);
    }
    Ok(names)
}

fn expect_grantee(cursor: &mut Cursor<'_>) -> Result<Name, PolicyError> {
    let location = cursor.location();
    if cursor.eat_keyword("PUBLIC") {
        return Ok(Name {
            value: PUBLIC.to_string(),
            location,
        });
    }
    for keyword in ["CURRENT_USER", "CURRENT_ROLE", "SESSION_USER"] {
        if cursor.peek_keyword(keyword) {
            return Err(PolicyError::at(
                location,
                PolicyErrorKind::InvalidName,
                format!("{keyword} has no meaning in a policy file: name the role or user"),
            ));
        }
    }
    let name = cursor.expect_name("a role name or PUBLIC")?;
    if name.value == PUBLIC {
        return Err(PolicyError::at(
            name.location,
            PolicyErrorKind::InvalidName,
            "role name \"public\" is reserved: write PUBLIC without quotes for every user",
        ));
    }
    Ok(name)
}
