//! `CREATE ROLE` and `CREATE USER`.
//!
//! Options follow PostgreSQL's option-list style: an optional `WITH`, then
//! options in any order, each at most once. Only the options pgward gives a
//! meaning to are accepted; PostgreSQL's others (LOGIN, SUPERUSER, …) are
//! refused rather than silently ignored, because a DBA who writes them
//! expects them to do something.

use sqlparser::tokenizer::Token;

use super::cursor::Cursor;
use crate::auth::scram::ScramVerifier;
use crate::policy::ast::{CreateRole, CreateUser, Name, Password};
use crate::policy::error::{Location, PolicyError, PolicyErrorKind};

/// After `CREATE ROLE`.
pub fn parse_create_role(cursor: &mut Cursor<'_>) -> Result<CreateRole, PolicyError> {
    let name = expect_role_name(cursor)?;
    let mut in_roles: Option<Vec<Name>> = None;
    let mut bypass: Option<bool> = None;
    const EXPECTED: &str = "IN ROLE, BYPASSPOLICY or end of statement";
    loop {
        let with = cursor.eat_keyword("WITH");
        let location = cursor.location();
        if cursor.peek_keyword("IN") {
            let list = parse_in_role(cursor)?;
            set_once(&mut in_roles, list, "IN ROLE", location)?;
        } else if cursor.eat_keyword("BYPASSPOLICY") {
            set_once(&mut bypass, true, "BYPASSPOLICY", location)?;
        } else if cursor.eat_keyword("NOBYPASSPOLICY") {
            set_once(&mut bypass, false, "BYPASSPOLICY", location)?;
        } else if with {
            return Err(cursor.expected("IN ROLE or BYPASSPOLICY after WITH"));
        } else {
            cursor.expect_end(EXPECTED)?;
            break;
        }
    }
    Ok(CreateRole {
        name,
        in_roles: in_roles.unwrap_or_default(),
        bypass_policy: bypass.unwrap_or(false),
    })
}

/// After `CREATE USER`.
pub fn parse_create_user(cursor: &mut Cursor<'_>) -> Result<CreateUser, PolicyError> {
    let name = expect_role_name(cursor)?;
    let mut in_roles: Option<Vec<Name>> = None;
    let mut password: Option<Option<Password>> = None;
    const EXPECTED: &str = "PASSWORD, IN ROLE or end of statement";
    loop {
        let with = cursor.eat_keyword("WITH");
        let location = cursor.location();
        if cursor.peek_keyword("IN") {
            let list = parse_in_role(cursor)?;
            set_once(&mut in_roles, list, "IN ROLE", location)?;
        } else if cursor.peek_keyword("PASSWORD") || cursor.peek_keyword("ENCRYPTED") {
            // PostgreSQL accepts ENCRYPTED as a no-op since version 10.
            cursor.eat_keyword("ENCRYPTED");
            cursor.expect_keyword("PASSWORD")?;
            let value = parse_password(cursor, &name)?;
            set_once(&mut password, value, "PASSWORD", location)?;
        } else if cursor.peek_keyword("BYPASSPOLICY") {
            return Err(PolicyError::at(
                location,
                PolicyErrorKind::Syntax,
                "BYPASSPOLICY is an option of CREATE ROLE: create a role WITH BYPASSPOLICY \
                 and put the user IN ROLE it",
            ));
        } else if with {
            return Err(cursor.expected("PASSWORD or IN ROLE after WITH"));
        } else {
            cursor.expect_end(EXPECTED)?;
            break;
        }
    }
    Ok(CreateUser {
        name,
        password: password.flatten(),
        in_roles: in_roles.unwrap_or_default(),
    })
}

/// `IN ROLE a, b`
fn parse_in_role(cursor: &mut Cursor<'_>) -> Result<Vec<Name>, PolicyError> {
    cursor.expect_keyword("IN")?;
    cursor.expect_keyword("ROLE")?;
    let names = cursor.expect_name_list("a role name")?;
    for (i, name) in names.iter().enumerate() {
        check_reserved(name)?;
        if let Some(first) = names[..i].iter().find(|n| n.value == name.value) {
            return Err(PolicyError::at(
                name.location.clone(),
                PolicyErrorKind::Duplicate,
                format!(
                    "role \"{}\" is listed twice in IN ROLE (first at {})",
                    name.value, first.location
                ),
            ));
        }
    }
    Ok(names)
}

/// `'text'`, `E'text'`, `$$text$$` or `NULL`, after `PASSWORD`.
fn parse_password(cursor: &mut Cursor<'_>, user: &Name) -> Result<Option<Password>, PolicyError> {
    let location = cursor.location();
    if cursor.eat_keyword("NULL") {
        return Ok(None);
    }
    let text = match cursor.peek().map(|t| &t.token) {
        Some(Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s)) => s.clone(),
        Some(Token::DollarQuotedString(s)) => s.value.clone(),
        _ => return Err(cursor.expected("a password string or NULL")),
    };
    cursor.advance();
    let error =
        |message: String| PolicyError::at(location.clone(), PolicyErrorKind::Password, message);
    if text.is_empty() {
        // PostgreSQL turns '' into "no password" with a notice; in a policy
        // file it is far more likely a mistake, so say so.
        return Err(error(format!(
            "empty password for user \"{}\" (write PASSWORD NULL for a user that cannot log in)",
            user.value
        )));
    }
    if text.starts_with("SCRAM-SHA-256$") {
        return match ScramVerifier::parse(&text) {
            Ok(verifier) => Ok(Some(Password::Verifier(verifier))),
            Err(e) => Err(error(format!(
                "invalid SCRAM-SHA-256 verifier for user \"{}\": {e}",
                user.value
            ))),
        };
    }
    if is_md5_hash(&text) {
        // Hashing this as plain text would make the hash itself the password.
        return Err(error(format!(
            "MD5 password hashes are not supported (user \"{}\"): give a SCRAM-SHA-256 \
             verifier or a plain-text password",
            user.value
        )));
    }
    Ok(Some(Password::PlainText { text, location }))
}

/// PostgreSQL's stored MD5 form: "md5" followed by 32 hex digits.
fn is_md5_hash(text: &str) -> bool {
    text.len() == 35 && text.starts_with("md5") && text[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The name being declared by CREATE ROLE / CREATE USER.
fn expect_role_name(cursor: &mut Cursor<'_>) -> Result<Name, PolicyError> {
    let name = cursor.expect_name("a role name")?;
    check_reserved(&name)?;
    Ok(name)
}

/// Names PostgreSQL itself reserves for roles. PUBLIC is the group every
/// user is in; pg_ names are PostgreSQL's predefined roles.
fn check_reserved(name: &Name) -> Result<(), PolicyError> {
    let value = name.value.as_str();
    let reason = match value {
        "public" => "every user is a member of PUBLIC",
        "none" => "PostgreSQL uses it to mean no role",
        v if v.starts_with("pg_") => {
            "names starting with \"pg_\" belong to PostgreSQL's predefined roles"
        }
        _ => return Ok(()),
    };
    Err(PolicyError::at(
        name.location.clone(),
        PolicyErrorKind::InvalidName,
        format!("role name \"{value}\" is reserved: {reason}"),
    ))
}

/// Records an option, refusing it the second time as PostgreSQL does.
pub(super) fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    option: &str,
    location: Location,
) -> Result<(), PolicyError> {
    if slot.is_some() {
        return Err(PolicyError::at(
            location,
            PolicyErrorKind::Duplicate,
            format!("conflicting or redundant options: {option} is given twice"),
        ));
    }
    *slot = Some(value);
    Ok(())
}
