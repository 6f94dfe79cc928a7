//! `GRANT privileges ON target TO grantees`.
//!
//! Follows PostgreSQL's grammar for the privileges and targets pgward gives a
//! meaning to: SELECT, INSERT, UPDATE, DELETE (with column lists where
//! PostgreSQL allows them) and ALL on tables, EXECUTE on functions and
//! procedures. Other privileges and targets, and WITH GRANT OPTION, are
//! refused by name rather than ignored: pgward refuses those statements
//! anyway, and a DBA who writes them expects them to do something.

use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::cursor::Cursor;
use super::names::{expect_column_list, expect_grantees, expect_object_name, expect_object_names};
use crate::policy::ast::{Grant, GrantTarget, Name, Privilege, PrivilegeKind, RoutineSignature};
use crate::policy::embedded;
use crate::policy::error::{Location, PolicyError, PolicyErrorKind};
use crate::policy::model::RoutineKind;

/// PostgreSQL privileges that pgward does not grant.
const OTHER_PRIVILEGES: &[&str] = &[
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
    "USAGE",
    "CREATE",
    "CONNECT",
    "TEMPORARY",
    "TEMP",
    "MAINTAIN",
    "SET",
    "ALTER",
];

/// PostgreSQL grant targets other than tables and routines.
const OTHER_TARGETS: &[&str] = &[
    "SEQUENCE",
    "DATABASE",
    "DOMAIN",
    "FOREIGN",
    "LANGUAGE",
    "LARGE",
    "PARAMETER",
    "SCHEMA",
    "TABLESPACE",
    "TYPE",
];

/// After `GRANT`.
pub fn parse_grant(cursor: &mut Cursor<'_>) -> Result<Grant, PolicyError> {
    let privileges = parse_privileges(cursor)?;
    cursor.expect_keyword("ON")?;
    let target = parse_target(cursor)?;
    check_privileges(&privileges, &target)?;
    cursor.expect_keyword("TO")?;
    let grantees = expect_grantees(cursor)?;
    if cursor.peek_keyword("WITH") || cursor.peek_keyword("GRANTED") {
        return Err(PolicyError::at(
            cursor.location(),
            PolicyErrorKind::Unsupported,
            "WITH GRANT OPTION and GRANTED BY have no meaning in a policy file: only the \
             policy files grant",
        ));
    }
    cursor.expect_end("\",\" or end of statement")?;
    Ok(Grant {
        privileges,
        target,
        grantees,
    })
}

/// `ALL [PRIVILEGES] [(cols)]`, or `priv [(cols)] [, …]`.
fn parse_privileges(cursor: &mut Cursor<'_>) -> Result<Vec<Privilege>, PolicyError> {
    let location = cursor.location();
    if cursor.eat_keyword("ALL") {
        cursor.eat_keyword("PRIVILEGES");
        let columns = optional_columns(cursor)?;
        return Ok(vec![Privilege {
            kind: PrivilegeKind::All,
            columns,
            location,
        }]);
    }
    let mut privileges = Vec::new();
    loop {
        let location = cursor.location();
        let kind = [
            ("SELECT", PrivilegeKind::Select),
            ("INSERT", PrivilegeKind::Insert),
            ("UPDATE", PrivilegeKind::Update),
            ("DELETE", PrivilegeKind::Delete),
            ("EXECUTE", PrivilegeKind::Execute),
        ]
        .into_iter()
        .find(|(keyword, _)| cursor.peek_keyword(keyword));
        let Some((keyword, kind)) = kind else {
            if let Some(other) = OTHER_PRIVILEGES.iter().find(|k| cursor.peek_keyword(k)) {
                return Err(PolicyError::at(
                    location,
                    PolicyErrorKind::Unsupported,
                    format!(
                        "privilege {other} is not supported: policy files grant SELECT, \
                         INSERT, UPDATE, DELETE and EXECUTE"
                    ),
                ));
            }
            return Err(
                cursor.expected("a privilege (SELECT, INSERT, UPDATE, DELETE, EXECUTE or ALL)")
            );
        };
        cursor.expect_keyword(keyword)?;
        let columns = optional_columns(cursor)?;
        if columns.is_some() && matches!(kind, PrivilegeKind::Delete | PrivilegeKind::Execute) {
            return Err(PolicyError::at(
                location,
                PolicyErrorKind::Syntax,
                format!("invalid privilege type {keyword} for column"),
            ));
        }
        privileges.push(Privilege {
            kind,
            columns,
            location,
        });
        if !cursor.eat_token(&Token::Comma) {
            return Ok(privileges);
        }
    }
}

fn optional_columns(cursor: &mut Cursor<'_>) -> Result<Option<Vec<Name>>, PolicyError> {
    if cursor.peek().is_some_and(|t| t.token == Token::LParen) {
        expect_column_list(cursor).map(Some)
    } else {
        Ok(None)
    }
}

/// After `ON`.
fn parse_target(cursor: &mut Cursor<'_>) -> Result<GrantTarget, PolicyError> {
    if cursor.eat_keyword("ALL") {
        let location = cursor.location();
        let kind = if cursor.eat_keyword("TABLES") {
            None
        } else if let Some(kind) = routine_kind(cursor, true) {
            Some(kind)
        } else if cursor.peek_keyword("SEQUENCES") {
            return Err(unsupported_target(location, "ALL SEQUENCES"));
        } else {
            return Err(cursor.expected("TABLES, FUNCTIONS, PROCEDURES or ROUTINES"));
        };
        cursor.expect_keyword("IN")?;
        cursor.expect_keyword("SCHEMA")?;
        let schemas = cursor.expect_name_list("a schema name")?;
        return Ok(match kind {
            None => GrantTarget::AllTablesInSchemas(schemas),
            Some(kind) => GrantTarget::AllRoutinesInSchemas { kind, schemas },
        });
    }
    if cursor.eat_keyword("TABLE") {
        return expect_object_names(cursor, "a table name").map(GrantTarget::Tables);
    }
    if let Some(kind) = routine_kind(cursor, false) {
        let mut routines = vec![parse_signature(cursor)?];
        while cursor.eat_token(&Token::Comma) {
            routines.push(parse_signature(cursor)?);
        }
        return Ok(GrantTarget::Routines { kind, routines });
    }
    // A target keyword followed by a name (`ON SEQUENCE s`); a table that
    // happens to be called `type` is still a table.
    let names_a_target = cursor
        .peek_nth(1)
        .is_some_and(|t| matches!(t.token, Token::Word(_)) && !cursor.is_keyword_at(1, "TO"));
    if names_a_target && let Some(other) = OTHER_TARGETS.iter().find(|k| cursor.peek_keyword(k)) {
        return Err(unsupported_target(cursor.location(), other));
    }
    expect_object_names(cursor, "a table name").map(GrantTarget::Tables)
}

/// Consumes FUNCTION/PROCEDURE/ROUTINE (plural after ALL).
fn routine_kind(cursor: &mut Cursor<'_>, plural: bool) -> Option<RoutineKind> {
    let kinds = if plural {
        [
            ("FUNCTIONS", RoutineKind::Function),
            ("PROCEDURES", RoutineKind::Procedure),
            ("ROUTINES", RoutineKind::Routine),
        ]
    } else {
        [
            ("FUNCTION", RoutineKind::Function),
            ("PROCEDURE", RoutineKind::Procedure),
            ("ROUTINE", RoutineKind::Routine),
        ]
    };
    let (keyword, kind) = kinds.into_iter().find(|(k, _)| cursor.peek_keyword(k))?;
    cursor.eat_keyword(keyword);
    Some(kind)
}

fn unsupported_target(location: Location, what: &str) -> PolicyError {
    PolicyError::at(
        location,
        PolicyErrorKind::Unsupported,
        format!("GRANT ON {what} is not supported: policy files grant on tables and functions"),
    )
}

/// `name [(argtype, …)]`. An argument may carry a mode and a name, as in
/// PostgreSQL (`IN x int`); OUT arguments are left out, since PostgreSQL
/// ignores them when it looks a routine up for GRANT.
pub(super) fn parse_signature(cursor: &mut Cursor<'_>) -> Result<RoutineSignature, PolicyError> {
    let name = expect_object_name(cursor, "a function name")?;
    if cursor.peek().is_none_or(|t| t.token != Token::LParen) {
        return Ok(RoutineSignature { name, args: None });
    }
    let group = cursor.expect_parenthesized("the argument list")?;
    let mut args = Vec::new();
    if group.tokens.is_empty() {
        return Ok(RoutineSignature {
            name,
            args: Some(args),
        });
    }
    let mut segments = split_top_level_commas(group.tokens);
    let last = segments.len() - 1;
    for (i, segment) in segments.drain(..).enumerate() {
        // Where an error at the end of this argument points: its comma, or
        // the closing parenthesis.
        let end = match group.tokens.get(segment.end) {
            Some(comma) if i < last => cursor.location_of(comma),
            _ => group.close.clone(),
        };
        let found = if i < last { "\",\"" } else { "\")\"" };
        let mut tokens = &group.tokens[segment];
        if tokens.is_empty() {
            return Err(PolicyError::at(
                end,
                PolicyErrorKind::Syntax,
                format!("expected an argument type, found {found}"),
            ));
        }
        if tokens.len() > 1 && is_word(&tokens[0], "OUT") {
            continue;
        }
        if tokens.len() > 1
            && ["IN", "INOUT", "VARIADIC"]
                .iter()
                .any(|m| is_word(&tokens[0], m))
        {
            tokens = &tokens[1..];
        }
        let file = cursor.file();
        let parsed = embedded::parse_data_type(file, tokens, "an argument type", &end, found);
        let data_type = match parsed {
            Ok(data_type) => data_type,
            // `name type`: try again without the argument's name.
            Err(_) if tokens.len() > 1 && matches!(tokens[0].token, Token::Word(_)) => {
                embedded::parse_data_type(file, &tokens[1..], "an argument type", &end, found)?
            }
            Err(error) => return Err(error),
        };
        args.push(data_type);
    }
    Ok(RoutineSignature {
        name,
        args: Some(args),
    })
}

/// The index ranges between commas that are not inside parentheses or
/// brackets (`numeric(10, 2)` is one argument).
fn split_top_level_commas(tokens: &[TokenWithSpan]) -> Vec<std::ops::Range<usize>> {
    let mut segments = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        match token.token {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => {
                segments.push(start..i);
                start = i + 1;
            }
            _ => {}
        }
    }
    segments.push(start..tokens.len());
    segments
}

fn is_word(token: &TokenWithSpan, keyword: &str) -> bool {
    super::cursor::is_keyword(&token.token, keyword)
}

/// PostgreSQL's "invalid privilege type X for Y": each privilege must make
/// sense for the target it is granted on.
fn check_privileges(privileges: &[Privilege], target: &GrantTarget) -> Result<(), PolicyError> {
    for privilege in privileges {
        let keyword = match privilege.kind {
            PrivilegeKind::Select => "SELECT",
            PrivilegeKind::Insert => "INSERT",
            PrivilegeKind::Update => "UPDATE",
            PrivilegeKind::Delete => "DELETE",
            PrivilegeKind::Execute => "EXECUTE",
            PrivilegeKind::All => "ALL",
        };
        let error = |message: String| {
            Err(PolicyError::at(
                privilege.location.clone(),
                PolicyErrorKind::Syntax,
                message,
            ))
        };
        match target {
            GrantTarget::Tables(_) | GrantTarget::AllTablesInSchemas(_) => {
                if privilege.kind == PrivilegeKind::Execute {
                    return error("invalid privilege type EXECUTE for table".to_string());
                }
                if privilege.columns.is_some()
                    && matches!(target, GrantTarget::AllTablesInSchemas(_))
                {
                    return error(
                        "column privileges cannot be granted ON ALL TABLES IN SCHEMA: grant \
                         the columns table by table"
                            .to_string(),
                    );
                }
            }
            GrantTarget::Routines { kind, .. } | GrantTarget::AllRoutinesInSchemas { kind, .. } => {
                let what = match kind {
                    RoutineKind::Function => "function",
                    RoutineKind::Procedure => "procedure",
                    RoutineKind::Routine => "routine",
                };
                if !matches!(privilege.kind, PrivilegeKind::Execute | PrivilegeKind::All) {
                    return error(format!("invalid privilege type {keyword} for {what}"));
                }
                if privilege.columns.is_some() {
                    return error(format!("invalid privilege type {keyword} for column"));
                }
            }
        }
    }
    Ok(())
}
