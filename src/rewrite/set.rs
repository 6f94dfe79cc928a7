//! SET and RESET under the session-settings allowlist (PRODUCT.md §3
//! "Session settings"): the same `crate::settings` decisions as startup
//! parameters. `client_encoding` is rewritten to UTF8; identity changes are
//! refused, except the no-op reset of session authorization that connection
//! pools send.

use sqlparser::ast::{
    Expr, Ident, ObjectName, Reset, Set, SetSessionAuthorizationParamKind, Value, ValueWithSpan,
};

use crate::error::PgError;
use crate::settings::{self, SettingDecision, SettingError};

use super::secure::fold;

pub fn check_set(set: &mut Set) -> Result<(), PgError> {
    match set {
        Set::SingleAssignment {
            variable, values, ..
        } => check_assignment(variable, values),
        Set::MultipleAssignments { assignments } => {
            for a in assignments.iter_mut() {
                let mut values = vec![a.value.clone()];
                check_assignment(&a.name, &mut values)?;
                if let Some(v) = values.pop() {
                    a.value = v;
                }
            }
            Ok(())
        }
        Set::SetTimeZone { .. } | Set::SetTransaction { .. } => Ok(()),
        Set::SetNames { charset_name, .. } => {
            settings::normalize_client_encoding(&charset_name.value).map_err(to_pg)?;
            *charset_name = Ident::with_quote('\'', "UTF8");
            Ok(())
        }
        Set::SetNamesDefault {} => Ok(()),
        Set::SetSessionAuthorization(p)
            if matches!(p.kind, SetSessionAuthorizationParamKind::Default) =>
        {
            Ok(())
        }
        _ => Err(PgError::error(
            crate::error::code::INSUFFICIENT_PRIVILEGE,
            format!("pgward does not allow \"{set}\" for this session"),
        )),
    }
}

pub fn check_reset(reset: &Reset) -> Result<(), PgError> {
    match reset {
        // The pinned settings are the upstream connection's startup
        // values, so RESET ALL brings them back.
        Reset::ALL | Reset::SessionAuthorization => Ok(()),
        Reset::ConfigurationParameter(name) => {
            settings::check_reset(&name_of(name)).map_err(to_pg)?;
            Ok(())
        }
    }
}

fn check_assignment(variable: &ObjectName, values: &mut Vec<Expr>) -> Result<(), PgError> {
    let name = name_of(variable);
    if name == "search_path" {
        // pgward tracks the client's search_path and forwards every name
        // qualified; the upstream keeps its own, so that names inside
        // policy expressions cannot be captured.
        *values = vec![Expr::Identifier(Ident::new("DEFAULT"))];
        return Ok(());
    }
    if values.len() == 1 && is_default(&values[0]) {
        settings::check_reset(&name).map_err(to_pg)?;
        return Ok(());
    }
    let value = values
        .iter()
        .map(value_text)
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| {
            PgError::error(
                crate::error::code::FEATURE_NOT_SUPPORTED,
                format!("pgward does not support this value for \"{name}\""),
            )
        })?
        .join(", ");
    if name.eq_ignore_ascii_case("client_encoding") || name.eq_ignore_ascii_case("names") {
        settings::normalize_client_encoding(&value).map_err(to_pg)?;
        for v in values.iter_mut() {
            *v = Expr::Value(ValueWithSpan::from(Value::SingleQuotedString(
                "UTF8".into(),
            )));
        }
        return Ok(());
    }
    match settings::check(&name, &value) {
        SettingDecision::Allow(_) | SettingDecision::Pinned | SettingDecision::Tracked => Ok(()),
        SettingDecision::Refuse(e) => Err(to_pg(e)),
    }
}

fn name_of(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| match p {
            sqlparser::ast::ObjectNamePart::Identifier(id) => fold(id),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn is_default(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// The text PostgreSQL would take as the setting's value.
fn value_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.to_string()),
            Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        },
        Expr::Identifier(id) => Some(fold(id)),
        Expr::UnaryOp {
            op: sqlparser::ast::UnaryOperator::Minus,
            expr,
        } => value_text(expr).map(|v| format!("-{v}")),
        _ => None,
    }
}

fn to_pg(e: SettingError) -> PgError {
    let mut err = PgError::error(e.sqlstate, e.message);
    err.hint = e.hint;
    err
}

/// How a statement changes the search_path pgward resolves names with:
/// `Some(Some(list))` for a new list as written, `Some(None)` for a reset.
pub fn search_path_change(statement: &sqlparser::ast::Statement) -> Option<Option<Vec<String>>> {
    use sqlparser::ast::Statement as S;
    match statement {
        S::Set(Set::SingleAssignment {
            variable, values, ..
        }) if name_of(variable) == "search_path" => {
            if values.len() == 1 && is_default(&values[0]) {
                return Some(None);
            }
            // As PostgreSQL's SET: every value, identifier or string, is
            // one schema name (`SET search_path = 'a, b'` names the schema
            // "a, b").
            let mut list = Vec::new();
            for v in values {
                match v {
                    Expr::Identifier(id) => list.push(fold(id)),
                    other => list.push(value_text(other)?),
                }
            }
            Some(Some(list))
        }
        S::Reset(r) => match &r.reset {
            Reset::ALL => Some(None),
            Reset::ConfigurationParameter(n) if name_of(n) == "search_path" => Some(None),
            _ => None,
        },
        S::Discard {
            object_type: sqlparser::ast::DiscardObject::ALL,
        } => Some(None),
        _ => None,
    }
}

/// PostgreSQL's default search_path, as written.
pub fn default_search_path() -> Vec<String> {
    vec!["$user".to_string(), "public".to_string()]
}

/// The schema names a search_path (as written) stands for: `$user` is the
/// login.
pub fn expand_search_path(path: &[String], login: &str) -> Vec<String> {
    path.iter()
        .map(|s| {
            if s == "$user" {
                login.to_string()
            } else {
                s.clone()
            }
        })
        .collect()
}

/// The search_path as PostgreSQL's `SHOW` prints it: each name as
/// `quote_ident` would write it, separated by `", "`.
pub fn shown_search_path(path: &[String]) -> String {
    path.iter()
        .map(|s| quote_identifier(s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// PostgreSQL's `quote_identifier`: plain lower-case names that are not
/// keywords (unreserved ones excepted) stay bare; others are double-quoted.
pub fn quote_identifier(name: &str) -> String {
    let mut chars = name.chars();
    let safe_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let safe = safe_start
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !is_keyword(name);
    if safe {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A keyword quote_identifier must quote (any but the unreserved ones).
fn is_keyword(name: &str) -> bool {
    use pg_query::protobuf::KeywordKind;
    match pg_query::scan(name) {
        Ok(scanned) => scanned.tokens.first().is_some_and(|t| {
            !matches!(
                KeywordKind::from_i32(t.keyword_kind),
                Some(KeywordKind::NoKeyword | KeywordKind::UnreservedKeyword)
            )
        }),
        // Quoting is never wrong.
        Err(_) => true,
    }
}

/// `SHOW search_path` answers with the client's own search_path (semantics
/// 10), not the upstream's pinned one: it becomes a SELECT of that text
/// with PostgreSQL's column name and type (one `text` column named
/// `search_path`); the forwarder gives its result the tag `SHOW`.
pub fn show_search_path(
    statement: &sqlparser::ast::Statement,
    path: &[String],
) -> Result<Option<sqlparser::ast::Statement>, PgError> {
    let sqlparser::ast::Statement::ShowVariable { variable } = statement else {
        return Ok(None);
    };
    let [name] = variable.as_slice() else {
        return Ok(None);
    };
    if fold(name) != "search_path" {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {}::pg_catalog.text AS search_path",
        quote_literal(&shown_search_path(path))
    );
    let query = super::secure::parse_select(&sql)?;
    Ok(Some(sqlparser::ast::Statement::Query(Box::new(query))))
}

/// A string literal (standard_conforming_strings is pinned on upstream).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
