//! `CREATE PERMISSION BITS ON table (option = value, …)` and
//! `CREATE PERMISSION BITS ON FUNCTION f(args) (table_permission = '…')`
//! (PRODUCT.md §6).
//!
//! Owns the spelling of the options and of bit expressions inside their
//! string literals, with positions inside the literal. Never checks that
//! a column or table exists: `pgward check` does, against the catalog.

use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::cursor::{Cursor, describe};
use super::grant::parse_signature;
use super::names::expect_object_name;
use crate::policy::ast::Statement;
use crate::policy::error::{Location, PolicyError, PolicyErrorKind};
use crate::policy::model::bits::{Bits, FunctionBits, Membership, TableBits};

const TABLE_OPTIONS: &str = "owner, permission, groups, default_permission, table_permission, \
                             table_groups, default_groups or admin_group";

/// After `CREATE PERMISSION`.
pub fn parse_create_permission_bits(cursor: &mut Cursor<'_>) -> Result<Statement, PolicyError> {
    cursor.expect_keyword("BITS")?;
    cursor.expect_keyword("ON")?;
    if cursor.eat_keyword("FUNCTION") {
        return parse_function(cursor).map(Statement::FunctionBits);
    }
    parse_table(cursor).map(|bits| Statement::TableBits(Box::new(bits)))
}

fn parse_function(cursor: &mut Cursor<'_>) -> Result<FunctionBits, PolicyError> {
    let location = cursor.location();
    let signature = parse_signature(cursor)?;
    let mut table_permission = None;
    options(cursor, |cursor, option| {
        if option.value != "table_permission" {
            return Err(PolicyError::at(
                option.location.clone(),
                PolicyErrorKind::Syntax,
                format!(
                    "unknown option \"{}\" for a function: only table_permission",
                    option.value
                ),
            ));
        }
        once(&table_permission, option)?;
        table_permission = Some(expect_bits(cursor)?);
        Ok(())
    })?;
    let Some(table_permission) = table_permission else {
        return Err(PolicyError::at(
            location,
            PolicyErrorKind::Syntax,
            "permission bits on a function need table_permission = '…'",
        ));
    };
    Ok(FunctionBits {
        name: signature.name.qualified(),
        args: signature.args,
        table_permission,
        location,
    })
}

fn parse_table(cursor: &mut Cursor<'_>) -> Result<TableBits, PolicyError> {
    let table = expect_object_name(cursor, "a table name or FUNCTION")?;
    let location = table.location().clone();
    let mut bits = TableBits {
        table: table.qualified(),
        owner: String::new(),
        permission: String::new(),
        groups: None,
        default_permission: None,
        table_permission: Bits(0),
        table_groups: Vec::new(),
        default_groups: Vec::new(),
        admin_group: None,
        location: location.clone(),
        options: Vec::new(),
    };
    let mut seen: Vec<crate::policy::ast::Name> = Vec::new();
    options(cursor, |cursor, option| {
        if let Some(first) = seen.iter().find(|s| s.value == option.value) {
            return Err(PolicyError::at(
                option.location.clone(),
                PolicyErrorKind::Duplicate,
                format!(
                    "option \"{}\" is given twice (first at {})",
                    option.value, first.location
                ),
            ));
        }
        seen.push(option.clone());
        match option.value.as_str() {
            "owner" => bits.owner = cursor.expect_name("a column name")?.value,
            "permission" => bits.permission = cursor.expect_name("a column name")?.value,
            "groups" => {
                let at = cursor.location();
                let table = expect_object_name(cursor, "a membership table name")?;
                if !cursor.eat_token(&Token::LParen) {
                    return Err(cursor.expected(
                        "\"(\" and the membership's row key, group and optional permission columns",
                    ));
                }
                let columns = cursor.expect_name_list("a column name")?;
                if !cursor.eat_token(&Token::RParen) {
                    return Err(cursor.expected("\",\" or \")\""));
                }
                if !(2..=3).contains(&columns.len()) {
                    return Err(PolicyError::at(
                        at,
                        PolicyErrorKind::Syntax,
                        "groups = table (row_key, group [, permission]) names two or three columns",
                    ));
                }
                bits.groups = Some(Membership {
                    table: table.qualified(),
                    row_key: columns[0].value.clone(),
                    group: columns[1].value.clone(),
                    permission: columns.get(2).map(|c| c.value.clone()),
                    location: at,
                });
            }
            "default_permission" => bits.default_permission = Some(expect_bits(cursor)?),
            "table_permission" => bits.table_permission = expect_bits(cursor)?,
            "table_groups" => bits.table_groups = expect_values(cursor)?,
            "default_groups" => bits.default_groups = expect_values(cursor)?,
            "admin_group" => bits.admin_group = Some(expect_value(cursor)?),
            _ => {
                return Err(PolicyError::at(
                    option.location.clone(),
                    PolicyErrorKind::Syntax,
                    format!(
                        "unknown option \"{}\": expected {TABLE_OPTIONS}",
                        option.value
                    ),
                ));
            }
        }
        bits.options
            .push((option.value.clone(), option.location.clone()));
        Ok(())
    })?;
    for required in ["owner", "permission", "table_permission"] {
        if !seen.iter().any(|s| s.value == required) {
            return Err(PolicyError::at(
                location,
                PolicyErrorKind::Syntax,
                format!("permission bits on a table need the option {required}"),
            ));
        }
    }
    Ok(bits)
}

/// `( name = value [, …] )` up to the end of the statement; `each` reads
/// one value after its `=`.
fn options(
    cursor: &mut Cursor<'_>,
    mut each: impl FnMut(&mut Cursor<'_>, &crate::policy::ast::Name) -> Result<(), PolicyError>,
) -> Result<(), PolicyError> {
    if !cursor.eat_token(&Token::LParen) {
        return Err(cursor.expected("\"(\" and the options"));
    }
    loop {
        let option = cursor.expect_name("an option name")?;
        if !cursor.eat_token(&Token::Eq) {
            return Err(cursor.expected("\"=\""));
        }
        each(cursor, &option)?;
        if cursor.eat_token(&Token::Comma) {
            continue;
        }
        if cursor.eat_token(&Token::RParen) {
            break;
        }
        return Err(cursor.expected("\",\" or \")\""));
    }
    cursor.expect_end("end of statement")
}

fn once<T>(value: &Option<T>, option: &crate::policy::ast::Name) -> Result<(), PolicyError> {
    if value.is_some() {
        return Err(PolicyError::at(
            option.location.clone(),
            PolicyErrorKind::Duplicate,
            format!("option \"{}\" is given twice", option.value),
        ));
    }
    Ok(())
}

/// `'UserRead | GroupRead'` or a plain number.
fn expect_bits(cursor: &mut Cursor<'_>) -> Result<Bits, PolicyError> {
    let Some(token) = cursor.peek() else {
        return Err(cursor.expected("a bit expression in quotes"));
    };
    let at = cursor.location_of(token);
    let (text, quoted) = match &token.token {
        Token::SingleQuotedString(s) => (s.as_str(), true),
        Token::Number(n, _) => (n.as_str(), false),
        _ => return Err(cursor.expected("a bit expression in quotes ('UserCRUD | GuestPeek')")),
    };
    cursor.advance();
    Bits::parse(text).map_err(|(offset, message)| {
        PolicyError::at(
            inside(&at, token, text, offset, quoted),
            PolicyErrorKind::Syntax,
            message,
        )
    })
}

/// The position of byte `offset` of a literal's text: exact for a literal
/// on one line without doubled quotes, else the literal's start.
fn inside(
    at: &Location,
    token: &TokenWithSpan,
    text: &str,
    offset: usize,
    quoted: bool,
) -> Location {
    let one_line = token.span.start.line == token.span.end.line;
    let written = token
        .span
        .end
        .column
        .saturating_sub(token.span.start.column);
    let plain = written as usize == text.chars().count() + if quoted { 2 } else { 0 };
    if !one_line || !plain || text.contains('\n') {
        return at.clone();
    }
    let chars = text[..offset.min(text.len())].chars().count() as u64;
    let mut location = at.clone();
    location.column += chars + u64::from(quoted);
    location
}

/// `(v, …)` of group values (numbers or strings), or one value.
fn expect_values(cursor: &mut Cursor<'_>) -> Result<Vec<String>, PolicyError> {
    if !cursor.eat_token(&Token::LParen) {
        return Ok(vec![expect_value(cursor)?]);
    }
    let mut values = Vec::new();
    if cursor.eat_token(&Token::RParen) {
        return Ok(values);
    }
    loop {
        values.push(expect_value(cursor)?);
        if cursor.eat_token(&Token::Comma) {
            continue;
        }
        if cursor.eat_token(&Token::RParen) {
            return Ok(values);
        }
        return Err(cursor.expected("\",\" or \")\""));
    }
}

/// A group: a number or a string literal, kept as text.
fn expect_value(cursor: &mut Cursor<'_>) -> Result<String, PolicyError> {
    let value = match cursor.peek().map(|t| &t.token) {
        Some(Token::Number(n, _)) => n.clone(),
        Some(Token::SingleQuotedString(s)) => s.clone(),
        Some(Token::Minus) => {
            cursor.advance();
            match cursor.peek().map(|t| &t.token) {
                Some(Token::Number(n, _)) => format!("-{n}"),
                _ => return Err(cursor.expected("a number")),
            }
        }
        Some(other) => {
            let found = describe(other);
            return Err(PolicyError::at(
                cursor.location(),
                PolicyErrorKind::Syntax,
                format!("expected a group (a number or a string), found {found}"),
            ));
        }
        None => return Err(cursor.expected("a group (a number or a string)")),
    };
    cursor.advance();
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::policy::PolicySet;
    use crate::policy::model::bits::{Bits, Class, Op};

    fn load(text: &str) -> Result<PolicySet, Vec<String>> {
        PolicySet::parse_str(Path::new("b.sql"), text, 4096)
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    const DOCUMENTS: &str = "CREATE PERMISSION BITS ON documents (
  owner = owner_id,
  permission = permission,
  groups = document_groups (document_id, group_id, permission),
  default_permission = 'UserCRUD | UserExecute | GroupRead | GuestPeek',
  table_permission   = 'GuestPeek | UserCRUD | GroupCRUD',
  table_groups       = (1, 2),
  default_groups     = (1),
  admin_group        = 99
);
CREATE PERMISSION BITS ON FUNCTION public.publish(int) (table_permission = 'UserExecute');";

    #[test]
    fn the_contract_example_loads() {
        let set = load(DOCUMENTS).unwrap();
        let [t] = set.table_bits.as_slice() else {
            panic!("{:?}", set.table_bits)
        };
        assert_eq!(t.table.name, "documents");
        assert_eq!(t.table.schema, None);
        assert_eq!(
            (t.owner.as_str(), t.permission.as_str()),
            ("owner_id", "permission")
        );
        let m = t.groups.as_ref().unwrap();
        assert_eq!(m.table.name, "document_groups");
        assert_eq!(
            (m.row_key.as_str(), m.group.as_str()),
            ("document_id", "group_id")
        );
        assert_eq!(m.permission.as_deref(), Some("permission"));
        let d = t.default_permission.unwrap();
        assert!(d.has(Class::User, Op::Execute) && d.has(Class::Guest, Op::Peek));
        assert!(!d.has(Class::Group, Op::Update));
        assert_eq!(
            t.table_permission.0,
            1 | Bits::crud(Class::User) | Bits::crud(Class::Group)
        );
        assert_eq!(t.table_groups, ["1", "2"]);
        assert_eq!(t.default_groups, ["1"]);
        assert_eq!(t.admin_group.as_deref(), Some("99"));
        assert_eq!(t.option_location("admin_group").line, 9);
        let [f] = set.function_bits.as_slice() else {
            panic!("{:?}", set.function_bits)
        };
        assert_eq!(f.name.schema.as_deref(), Some("public"));
        assert_eq!(f.name.name, "publish");
        assert_eq!(f.args.as_ref().map(Vec::len), Some(1));
        assert_eq!(f.table_permission.0, 4096);
    }

    #[test]
    fn minimal_table_bits_and_numbers() {
        let set = load(
            "CREATE PERMISSION BITS ON s.t (owner = o, permission = p, table_permission = 3);",
        )
        .unwrap();
        let t = &set.table_bits[0];
        assert_eq!(t.table.schema.as_deref(), Some("s"));
        assert_eq!(t.table_permission, Bits(3));
        assert!(t.groups.is_none() && t.default_permission.is_none());
        let set = load(
            "CREATE PERMISSION BITS ON t (owner = o, permission = p, table_permission = 'ALLOW_ALL', \
             groups = m (k, g));",
        )
        .unwrap();
        assert_eq!(set.table_bits[0].groups.as_ref().unwrap().permission, None);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let err = |text: &str| load(text).unwrap_err().join("\n");
        assert_eq!(
            err(
                "CREATE PERMISSION BITS ON t (owner = o, permission = p,\n  table_permission = 'UserRead | Bogus');"
            ),
            "b.sql:2:34: unknown permission bit \"Bogus\" (GuestPeek … GroupRefer, GuestCRUD, \
             UserCRUD, GroupCRUD, ALLOW_ALL or a number)"
        );
        assert_eq!(
            err("CREATE PERMISSION BITS ON t (owner = o, permission = p, colour = 1);"),
            "b.sql:1:57: unknown option \"colour\": expected owner, permission, groups, \
             default_permission, table_permission, table_groups, default_groups or admin_group"
        );
        assert_eq!(
            err("CREATE PERMISSION BITS ON t (owner = o, owner = p, table_permission = 1);"),
            "b.sql:1:41: option \"owner\" is given twice (first at b.sql:1:30)"
        );
        assert_eq!(
            err("CREATE PERMISSION BITS ON t (owner = o, table_permission = 1);"),
            "b.sql:1:27: permission bits on a table need the option permission"
        );
        assert_eq!(
            err("CREATE PERMISSION BITS ON t (owner = o permission = p);"),
            "b.sql:1:40: expected \",\" or \")\", found permission"
        );
        assert_eq!(
            err(
                "CREATE PERMISSION BITS ON t (owner = o, permission = p, table_permission = 1, groups = m (k));"
            ),
            "b.sql:1:88: groups = table (row_key, group [, permission]) names two or three columns"
        );
        assert_eq!(
            err("CREATE PERMISSION BITS ON FUNCTION f(int) (default_permission = 1);"),
            "b.sql:1:44: unknown option \"default_permission\" for a function: only table_permission"
        );
        assert_eq!(
            err(
                "CREATE PERMISSION BITS ON t (owner = o, permission = p, table_permission = '4194304');"
            ),
            "b.sql:1:77: 4194304 is not a set of permission bits (at most 2097151)"
        );
        assert_eq!(
            err("CREATE PERMISSION ON t ();"),
            "b.sql:1:19: expected BITS, found ON"
        );
    }

    #[test]
    fn a_table_declared_twice_is_an_error() {
        let text = "CREATE PERMISSION BITS ON t (owner = o, permission = p, table_permission = 1);\n\
                    CREATE PERMISSION BITS ON public.t (owner = o, permission = p, table_permission = 1);";
        let errors = load(text).unwrap_err();
        assert_eq!(
            errors,
            ["b.sql:2:27: permission bits on table \"t\" are already declared at b.sql:1:27"]
        );
    }
}
