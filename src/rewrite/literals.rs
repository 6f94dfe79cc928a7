//! String literals printed so that PostgreSQL reads them as pgward does.
//!
//! sqlparser prints a plain string whose value holds `\'` without doubling
//! the quote (`'a\''b'` comes out as `'a\'b'`), which PostgreSQL, with
//! standard_conforming_strings on, reads as a shorter string followed by
//! more SQL. Such values are printed dollar-quoted instead: no escapes at
//! all, with a tag that does not occur in the value.

use std::ops::ControlFlow;

use sqlparser::ast::{
    DollarQuotedString, Expr, UnaryOperator, Value, ValueWithSpan, VisitMut, VisitorMut,
};

use crate::error::{PgError, code};

struct Protect;

impl VisitorMut for Protect {
    type Break = PgError;

    // sqlparser prints a unary operator right against its operand, so
    // `- -1` would come out as `--1`, a comment: keep the operand apart.
    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<PgError> {
        if let Expr::UnaryOp { expr, .. } = e {
            let starts_with_sign = match expr.as_ref() {
                Expr::UnaryOp { op, .. } => {
                    matches!(op, UnaryOperator::Minus | UnaryOperator::Plus)
                }
                Expr::Value(v) => {
                    matches!(&v.value, Value::Number(n, _) if n.starts_with(['-', '+']))
                }
                _ => false,
            };
            if starts_with_sign {
                let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
                **expr = Expr::Nested(Box::new(inner));
            }
        }
        ControlFlow::Continue(())
    }

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
    fn double_minus_keeps_its_meaning() {
        let out = printed("SELECT - -1, '\n * FROM secret --' FROM allowed");
        assert!(out.starts_with("SELECT -(-1)"), "{out}");
        let tables = pg_query::parse(&out).unwrap().tables();
        assert_eq!(tables, ["allowed"]);
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
