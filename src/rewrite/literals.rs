//! String literals printed so that PostgreSQL reads them as pgward does.
//!
//! sqlparser prints a plain string whose value holds `\'` without doubling
//! the quote (`'a\''b'` comes out as `'a\'b'`), which PostgreSQL, with
//! standard_conforming_strings on, reads as a shorter string followed by
//! more SQL. Such values are printed dollar-quoted instead: no escapes at
//! all, with a tag that does not occur in the value.

use std::ops::ControlFlow;

use sqlparser::ast::{DollarQuotedString, Value, ValueWithSpan, VisitMut, VisitorMut};

use crate::error::{PgError, code};

struct Protect;

impl VisitorMut for Protect {
    type Break = PgError;

    fn pre_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<PgError> {
        match &v.value {
            Value::SingleQuotedString(s) if s.contains('\\') => {
                v.value = Value::DollarQuotedString(DollarQuotedString {
                    tag: Some(free_tag(s)),
                    value: s.clone(),
                });
            }
            Value::NationalStringLiteral(s) if s.contains('\\') => {
                return ControlFlow::Break(PgError::error(
                    code::FEATURE_NOT_SUPPORTED,
                    "pgward does not support backslashes in N'…' literals",
                ));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// A dollar-quote tag whose delimiter does not occur in `s`.
fn free_tag(s: &str) -> String {
    let mut n = 0u32;
    loop {
        let tag = if n == 0 {
            "pgw".to_string()
        } else {
            format!("pgw{n}")
        };
        if !s.contains(&format!("${tag}$")) {
            return tag;
        }
        n += 1;
    }
}

/// Rewrites the string literals of a tree (a statement, an expression, a
/// query) that sqlparser would print ambiguously.
pub fn protect<T: VisitMut>(node: &mut T) -> Result<(), PgError> {
    match node.visit(&mut Protect) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn printed(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        protect(&mut s).unwrap();
        s.to_string()
    }

    #[test]
    fn backslash_quote_values_print_dollar_quoted() {
        let out = printed(r"SELECT 'a\''b', 'plain', 'x$pgw$y\'");
        assert_eq!(out, r"SELECT $pgw$a\'b$pgw$, 'plain', $pgw1$x$pgw$y\$pgw1$");
        // PostgreSQL reads the same three values.
        let tree = format!("{:?}", pg_query::parse(&out).unwrap().protobuf);
        assert!(tree.contains(r#"sval: "a\\'b""#), "{tree}");
    }

    #[test]
    fn injection_through_the_printer_is_closed() {
        // PostgreSQL reads the client's text as one string literal; so does
        // PostgreSQL reading pgward's print of it.
        let sql = r"SELECT 'x\'' UNION SELECT ssn FROM employees --' FROM orders";
        let out = printed(sql);
        let tables = pg_query::parse(&out).unwrap().tables();
        assert!(!tables.iter().any(|t| t == "employees"), "{out}");
    }
}
