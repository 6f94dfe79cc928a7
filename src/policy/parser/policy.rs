//! `CREATE POLICY name ON table [AS PERMISSIVE|RESTRICTIVE] [FOR command]
//! [TO roles] [USING (expr)] [WITH CHECK (expr)]`.
//!
//! Clauses come in PostgreSQL's fixed order and follow its rules: no USING
//! for INSERT, no WITH CHECK for SELECT or DELETE, TO defaults to PUBLIC.
//! The expressions are parsed here (with their `@{…}` references); whether
//! the roles exist, the name is unique on its table and the globals exist
//! is checked once the whole set is read.

use super::cursor::{Cursor, is_keyword};
use super::names::{expect_grantees, expect_object_name};
use crate::policy::ast::{CreatePolicy, Name};
use crate::policy::embedded::{self, WithGlobals};
use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::model::{Command, PUBLIC, PolicyCommand, PolicyKind};

/// The optional clauses, in order; an error after one lists those that may
/// still follow.
const CLAUSES: [&str; 5] = ["AS", "FOR", "TO", "USING", "WITH CHECK"];

/// After `CREATE POLICY`.
pub fn parse_create_policy(cursor: &mut Cursor<'_>) -> Result<CreatePolicy, PolicyError> {
    let name = cursor.expect_name("a policy name")?;
    cursor.expect_keyword("ON")?;
    let table = expect_object_name(cursor, "a table name")?;
    // How many of CLAUSES are behind us, for the message at a stray token.
    let mut passed = 0;

    let kind = if cursor.eat_keyword("AS") {
        passed = 1;
        if cursor.eat_keyword("PERMISSIVE") {
            PolicyKind::Permissive
        } else if cursor.eat_keyword("RESTRICTIVE") {
            PolicyKind::Restrictive
        } else {
            return Err(cursor.expected("PERMISSIVE or RESTRICTIVE"));
        }
    } else {
        PolicyKind::Permissive
    };

    let command = if cursor.eat_keyword("FOR") {
        passed = 2;
        parse_command(cursor)?
    } else {
        PolicyCommand::All
    };

    let roles = if cursor.eat_keyword("TO") {
        passed = 3;
        expect_grantees(cursor)?
    } else {
        vec![Name {
            value: PUBLIC.to_string(),
            location: name.location.clone(),
        }]
    };

    let using = if cursor.peek_keyword("USING") {
        if command == PolicyCommand::Only(Command::Insert) {
            return Err(PolicyError::at(
                cursor.location(),
                PolicyErrorKind::Syntax,
                "only WITH CHECK expression allowed for INSERT",
            ));
        }
        cursor.expect_keyword("USING")?;
        passed = 4;
        Some(parse_condition(cursor, "the USING expression")?)
    } else {
        None
    };

    let check = if cursor.peek_keyword("WITH") {
        if matches!(
            command,
            PolicyCommand::Only(Command::Select | Command::Delete)
        ) {
            return Err(PolicyError::at(
                cursor.location(),
                PolicyErrorKind::Syntax,
                "WITH CHECK cannot be applied to SELECT or DELETE",
            ));
        }
        cursor.expect_keyword("WITH")?;
        cursor.expect_keyword("CHECK")?;
        passed = 5;
        Some(parse_condition(cursor, "the WITH CHECK expression")?)
    } else {
        None
    };

    if !cursor.at_end() {
        let remaining = CLAUSES[passed..].join(", ");
        let expected = if remaining.is_empty() {
            "end of statement".to_string()
        } else {
            format!("{remaining} or end of statement")
        };
        return Err(cursor.expected(&expected));
    }
    Ok(CreatePolicy {
        name,
        table,
        kind,
        command,
        roles,
        using,
        check,
    })
}

/// After `FOR`.
fn parse_command(cursor: &mut Cursor<'_>) -> Result<PolicyCommand, PolicyError> {
    if cursor.eat_keyword("ALL") {
        return Ok(PolicyCommand::All);
    }
    for command in Command::ALL {
        if cursor.eat_keyword(command.keyword()) {
            return Ok(PolicyCommand::Only(command));
        }
    }
    Err(cursor.expected("ALL, SELECT, INSERT, UPDATE or DELETE"))
}

/// `( expr )`
fn parse_condition(
    cursor: &mut Cursor<'_>,
    what: &str,
) -> Result<WithGlobals<sqlparser::ast::Expr>, PolicyError> {
    let group = cursor.expect_parenthesized(what)?;
    // PostgreSQL's grammar is USING ( a_expr ): a bare query is not one.
    if let Some(first) = group.tokens.first()
        && (is_keyword(&first.token, "SELECT") || is_keyword(&first.token, "WITH"))
    {
        return Err(PolicyError::at(
            cursor.location_of(first),
            PolicyErrorKind::Syntax,
            format!("a subquery as {what} needs parentheses of its own: ((SELECT …))"),
        ));
    }
    embedded::parse_expr(cursor.file(), group.tokens, what, &group.close, "\")\"")
}
