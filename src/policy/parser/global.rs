//! `CREATE GLOBAL name [FOR ROLE a, b] [REQUIRED] AS query` and the script
//! form `CREATE GLOBAL name … LANGUAGE javascript AS $$ source $$`.
//!
//! Options before AS come in any order, each at most once, like CREATE
//! ROLE's. The query is parsed here (with its `@{…}` references) and must
//! only read; a script is stored as written after checking that it
//! compiles (it runs at login: `crate::globals::script`). Whether the
//! referenced globals exist, and whether globals reference each other in a
//! loop, is checked once the whole set is read.

use sqlparser::tokenizer::Token;

use super::cursor::Cursor;
use super::names::expect_grantees;
use super::role::set_once;
use crate::policy::ast::{CreateGlobal, Name};
use crate::policy::embedded;
use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::model::{GlobalBody, Script};

const JAVASCRIPT: &str = "javascript";
const SQL: &str = "sql";

/// After `CREATE GLOBAL`.
pub fn parse_create_global(cursor: &mut Cursor<'_>) -> Result<CreateGlobal, PolicyError> {
    let name = cursor.expect_name("a global name")?;
    let mut roles: Option<Vec<Name>> = None;
    let mut required: Option<bool> = None;
    let mut language: Option<Name> = None;
    loop {
        let location = cursor.location();
        if cursor.eat_keyword("FOR") {
            cursor.expect_keyword("ROLE")?;
            set_once(&mut roles, expect_grantees(cursor)?, "FOR ROLE", location)?;
        } else if cursor.eat_keyword("REQUIRED") {
            set_once(&mut required, true, "REQUIRED", location)?;
        } else if cursor.eat_keyword("LANGUAGE") {
            let name = cursor.expect_name("a language name")?;
            set_once(&mut language, name, "LANGUAGE", location)?;
        } else if cursor.eat_keyword("AS") {
            break;
        } else {
            return Err(cursor.expected("FOR ROLE, REQUIRED, LANGUAGE or AS"));
        }
    }
    let body = match cursor.peek().map(|t| &t.token) {
        Some(Token::SingleQuotedString(source) | Token::EscapedStringLiteral(source)) => {
            parse_script(cursor, source.clone(), language)?
        }
        Some(Token::DollarQuotedString(source)) => {
            parse_script(cursor, source.value.clone(), language)?
        }
        Some(_) => {
            if let Some(language) = language.filter(|l| l.value != SQL) {
                return Err(PolicyError::at(
                    language.location,
                    PolicyErrorKind::Syntax,
                    format!(
                        "a LANGUAGE {} global needs its source in quotes: AS $$ … $$",
                        language.value
                    ),
                ));
            }
            let what = format!("the query of global \"{}\"", name.value);
            let (end, found) = cursor.end();
            let tokens = cursor.take_rest();
            GlobalBody::Query(embedded::parse_query(
                cursor.file(),
                tokens,
                &what,
                &end,
                found,
            )?)
        }
        None => return Err(cursor.expected("a query or a quoted script after AS")),
    };
    Ok(CreateGlobal {
        name,
        roles: roles.unwrap_or_default(),
        required: required.unwrap_or(false),
        body,
    })
}

/// The quoted source at the cursor, then an optional `LANGUAGE x` (allowed
/// after the body too, as in CREATE FUNCTION).
fn parse_script(
    cursor: &mut Cursor<'_>,
    source: String,
    language: Option<Name>,
) -> Result<GlobalBody, PolicyError> {
    let location = cursor.location();
    cursor.advance();
    let mut language = language;
    let language_location = cursor.location();
    if cursor.eat_keyword("LANGUAGE") {
        let name = cursor.expect_name("a language name")?;
        set_once(&mut language, name, "LANGUAGE", language_location)?;
    }
    cursor.expect_end("LANGUAGE or end of statement")?;
    let Some(language) = language else {
        return Err(PolicyError::at(
            location,
            PolicyErrorKind::Syntax,
            "a global with a quoted body is a script: say which language, as LANGUAGE javascript",
        ));
    };
    if language.value != JAVASCRIPT {
        return Err(PolicyError::at(
            language.location,
            PolicyErrorKind::Unsupported,
            format!(
                "LANGUAGE {} is not supported for globals: write a query (AS SELECT …) or use \
                 LANGUAGE javascript",
                language.value
            ),
        ));
    }
    // Compiled (never run) now, so that a syntax error is reported with the
    // file and line at load, not at some user's login.
    if let Err(e) = crate::globals::script::check_syntax(&source) {
        return Err(PolicyError::at(
            location,
            PolicyErrorKind::Syntax,
            e.to_string(),
        ));
    }
    Ok(GlobalBody::Script(Script {
        language: language.value,
        source,
        location,
    }))
}
