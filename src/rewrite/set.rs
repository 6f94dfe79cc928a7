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
        // A value pgward cannot read (`E'…'`, `U&'…'`, an expression)
        // would leave the tracked path behind the client's: refused.
        if values
            .iter()
            .any(|v| !matches!(v, Expr::Identifier(_)) && value_text(v).is_none())
        {
            return Err(PgError::error(
                crate::error::code::FEATURE_NOT_SUPPORTED,
                "pgward does not support this value for \"search_path\"",
            )
            .with_hint("write schema names as identifiers or plain string literals"));
        }
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
            Value::SingleQuotedString(s)
            | Value::DoubleQuotedString(s)
            | Value::DollarQuotedString(sqlparser::ast::DollarQuotedString { value: s, .. }) => {
                Some(s.clone())
            }
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
/// `quote_ident` would write it, separated by `", "` — the text a `SET`
/// gives the setting. A path given as text (see [`path_given_as_text`]) is
/// shown as that text.
pub fn shown_search_path(path: &[String]) -> String {
    if let [only] = path
        && let Some(text) = only.strip_prefix(GIVEN_AS_TEXT)
    {
        return text.to_string();
    }
    path.iter()
        .map(|s| quote_identifier(s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Marks a client path element that holds the path's text rather than a
/// name: NUL, which neither a startup parameter nor SQL text can hold.
const GIVEN_AS_TEXT: char = '\0';

/// The client path (as the rewriter's `client_path`, which only shows it)
/// for a search_path a client gave as text, in the startup packet:
/// PostgreSQL keeps that text as the setting's value and shows it as
/// written (`-c search_path=Public` shows `Public`).
pub fn path_given_as_text(text: &str) -> Vec<String> {
    vec![format!("{GIVEN_AS_TEXT}{text}")]
}

/// A search_path value given as text, as PostgreSQL's `check_search_path`
/// reads it: [`split_identifier_string`], or `22023` as PostgreSQL refuses
/// the setting.
pub fn parse_search_path_text(text: &str) -> Result<Vec<String>, PgError> {
    split_identifier_string(text).ok_or_else(|| {
        PgError::error(
            crate::error::code::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"search_path\": \"{text}\""),
        )
        .with_detail("List syntax is invalid.")
    })
}

/// PostgreSQL's `SplitIdentifierString` (src/backend/utils/adt/varlena.c)
/// with `,` as the separator: names separated by commas, with whitespace
/// around them; an unquoted name ends at a comma or whitespace and is
/// lower-cased (ASCII only, as `downcase_identifier` does in UTF-8); a
/// double-quoted name is kept as written, `""` standing for `"`; every name
/// is truncated to 63 bytes (NAMEDATALEN - 1). `None` when the list syntax
/// is invalid (an unterminated quote, an empty unquoted name, two names
/// without a comma).
pub fn split_identifier_string(text: &str) -> Option<Vec<String>> {
    // PostgreSQL's scanner_isspace.
    let space = |c: &char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c');
    let mut chars = text.chars().peekable();
    let mut names = Vec::new();
    while chars.next_if(space).is_some() {}
    if chars.peek().is_none() {
        return Some(names);
    }
    loop {
        let mut name = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' if chars.next_if_eq(&'"').is_some() => name.push('"'),
                    '"' => break,
                    c => name.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',' && !space(c)) {
                name.push(c.to_ascii_lowercase());
            }
            if name.is_empty() {
                return None;
            }
        }
        names.push(truncate_identifier(name));
        while chars.next_if(space).is_some() {}
        match chars.next() {
            None => return Some(names),
            Some(',') => while chars.next_if(space).is_some() {},
            Some(_) => return None,
        }
    }
}

/// PostgreSQL's `truncate_identifier`: at most 63 bytes, whole characters.
fn truncate_identifier(mut name: String) -> String {
    const MAX: usize = 63;
    if name.len() > MAX {
        let mut end = MAX;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
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

/// `SHOW` of a setting pgward answers itself becomes a SELECT of the value
/// with PostgreSQL's column name and type (one `text` column named after the
/// setting); the forwarder gives its result the tag `SHOW`.
///
/// - `search_path`: the client's own search_path (semantics 10), not the
///   upstream's pinned one;
/// - `session_authorization`, `is_superuser`, `role` (also `SHOW SESSION
///   AUTHORIZATION`): the login, `off`, `none` (semantics 11), not the
///   service role's.
///
/// GUC names are case-insensitive, quoted or not.
pub fn answer_show(
    statement: &sqlparser::ast::Statement,
    path: &[String],
    login: &str,
) -> Result<Option<sqlparser::ast::Statement>, PgError> {
    let sqlparser::ast::Statement::ShowVariable { variable } = statement else {
        return Ok(None);
    };
    let [name] = variable.as_slice() else {
        return Ok(None);
    };
    let (column, value) = if name.value.eq_ignore_ascii_case("search_path") {
        ("search_path", shown_search_path(path))
    } else if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("authorization") {
        // `SHOW SESSION AUTHORIZATION`: sqlparser drops SESSION (a MySQL
        // modifier for it), leaving a name PostgreSQL's grammar would not
        // take alone (AUTHORIZATION is reserved).
        let setting = super::functions::IdentitySetting::SessionAuthorization;
        (setting.name(), setting.value(login))
    } else {
        match super::functions::IdentitySetting::of(&name.value) {
            Some(setting) => (setting.name(), setting.value(login)),
            None => return Ok(None),
        }
    };
    let sql = format!(
        "SELECT {}::pg_catalog.text AS {column}",
        quote_literal(&value)
    );
    let query = super::secure::parse_select(&sql)?;
    Ok(Some(sqlparser::ast::Statement::Query(Box::new(query))))
}

/// A string literal (standard_conforming_strings is pinned on upstream).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn a_search_path_given_as_text_splits_as_postgresql_splits_it() {
        assert_eq!(split_identifier_string("Public"), names(&["public"]));
        assert_eq!(
            split_identifier_string(" \"My, S\",Public ,\tx\n"),
            names(&["My, S", "public", "x"])
        );
        assert_eq!(
            split_identifier_string("\"$user\", public"),
            names(&["$user", "public"])
        );
        assert_eq!(split_identifier_string("$user"), names(&["$user"]));
        assert_eq!(split_identifier_string("\"a\"\"b\""), names(&["a\"b"]));
        // A quote inside an unquoted name is part of it.
        assert_eq!(split_identifier_string("a\"b"), names(&["a\"b"]));
        // Only ASCII letters fold, as in a UTF-8 database.
        assert_eq!(split_identifier_string("ÉCOLE"), names(&["École"]));
        assert_eq!(split_identifier_string(""), names(&[]));
        assert_eq!(split_identifier_string("  "), names(&[]));
        for bad in ["a b", "a,", ",a", "\"a", "a,,b", "\"a\"b", "a, \"b"] {
            assert_eq!(split_identifier_string(bad), None, "{bad}");
        }
        // Names are truncated to 63 bytes, on a character boundary.
        let long = "x".repeat(70);
        assert_eq!(split_identifier_string(&long), Some(vec!["x".repeat(63)]));
        let wide = format!("\"{}\"", "é".repeat(40));
        assert_eq!(split_identifier_string(&wide), Some(vec!["é".repeat(31)]));
    }

    #[test]
    fn a_malformed_startup_search_path_is_refused_as_postgresql_refuses_it() {
        let e = parse_search_path_text("a b").unwrap_err();
        assert_eq!(e.code, "22023");
        assert_eq!(
            e.message,
            "invalid value for parameter \"search_path\": \"a b\""
        );
        assert_eq!(e.detail.as_deref(), Some("List syntax is invalid."));
        assert_eq!(
            parse_search_path_text("Public, x"),
            Ok(vec!["public".to_string(), "x".to_string()])
        );
    }

    #[test]
    fn a_path_given_as_text_is_shown_as_written() {
        assert_eq!(shown_search_path(&path_given_as_text("Public")), "Public");
        assert_eq!(
            shown_search_path(&path_given_as_text("\"My, S\",Public")),
            "\"My, S\",Public"
        );
        // Names are shown as SET would have written them.
        assert_eq!(
            shown_search_path(&["My, S".to_string(), "public".to_string()]),
            "\"My, S\", public"
        );
    }
}
