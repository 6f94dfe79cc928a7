//! Permission bits on rows (PRODUCT.md §6): the bit arithmetic and the
//! declarations `CREATE PERMISSION BITS ON table (…)` and `… ON FUNCTION`.
//!
//! Owns what a bit is worth and how a bit expression reads
//! (`'UserCRUD | GroupRead | 3'`). Never decides what a session may do:
//! the session's entries are built from these declarations in
//! `session::policy`, and column names are checked against the catalog by
//! `pgward check`.

use std::fmt;

use sqlparser::ast::DataType;

use super::QualifiedName;
use crate::policy::error::Location;

/// Who a bit is for, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Sessions without a user id.
    Guest,
    /// The row's owner (at table level: any signed-in user).
    User,
    /// Members of the row's groups (at table level: of `table_groups`).
    Group,
}

/// What a bit allows, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Peek,
    Read,
    Create,
    Update,
    Delete,
    Execute,
    Refer,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Guest, Class::User, Class::Group];

    fn index(self) -> u32 {
        match self {
            Class::Guest => 0,
            Class::User => 1,
            Class::Group => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Guest => "Guest",
            Class::User => "User",
            Class::Group => "Group",
        }
    }
}

impl Op {
    pub const ALL: [Op; 7] = [
        Op::Peek,
        Op::Read,
        Op::Create,
        Op::Update,
        Op::Delete,
        Op::Execute,
        Op::Refer,
    ];

    fn index(self) -> u32 {
        match self {
            Op::Peek => 0,
            Op::Read => 1,
            Op::Create => 2,
            Op::Update => 3,
            Op::Delete => 4,
            Op::Execute => 5,
            Op::Refer => 6,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Peek => "Peek",
            Op::Read => "Read",
            Op::Create => "Create",
            Op::Update => "Update",
            Op::Delete => "Delete",
            Op::Execute => "Execute",
            Op::Refer => "Refer",
        }
    }
}

/// A set of the 21 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Bits(pub u32);

impl Bits {
    /// Every bit: `ALLOW_ALL`.
    pub const ALL: Bits = Bits((1 << 21) - 1);

    /// The one bit of `op` for `class`: GuestPeek = 1 … GroupRefer = 2^20.
    pub fn bit(class: Class, op: Op) -> u32 {
        1 << (class.index() * 7 + op.index())
    }

    /// `XCRUD` of a class: Peek, Read, Create, Update, Delete and Refer.
    pub fn crud(class: Class) -> u32 {
        [
            Op::Peek,
            Op::Read,
            Op::Create,
            Op::Update,
            Op::Delete,
            Op::Refer,
        ]
        .iter()
        .map(|&op| Bits::bit(class, op))
        .sum()
    }

    pub fn has(self, class: Class, op: Op) -> bool {
        self.0 & Bits::bit(class, op) != 0
    }

    /// The value of one name of a bit expression (ASCII case ignored):
    /// `GuestPeek` … `GroupRefer`, `GuestCRUD` … `GroupCRUD`, `ALLOW_ALL`.
    pub fn named(name: &str) -> Option<u32> {
        if name.eq_ignore_ascii_case("ALLOW_ALL") {
            return Some(Bits::ALL.0);
        }
        let lower = name.to_ascii_lowercase();
        for class in Class::ALL {
            let Some(rest) = lower.strip_prefix(&class.name().to_ascii_lowercase()) else {
                continue;
            };
            if rest == "crud" {
                return Some(Bits::crud(class));
            }
            return Op::ALL
                .iter()
                .find(|op| op.name().eq_ignore_ascii_case(rest))
                .map(|&op| Bits::bit(class, op));
        }
        None
    }

    /// Parses `name | number | …`. An error gives the byte offset in
    /// `text` where the problem starts, and the message.
    pub fn parse(text: &str) -> Result<Bits, (usize, String)> {
        let mut value = 0u32;
        let mut offset = 0usize;
        for part in text.split('|') {
            let start = offset + (part.len() - part.trim_start().len());
            let term = part.trim();
            offset += part.len() + 1;
            if term.is_empty() {
                let what = if text.trim().is_empty() {
                    "a bit expression is empty"
                } else {
                    "expected a bit name or a number around \"|\""
                };
                return Err((start.min(text.len()), what.to_string()));
            }
            if term.bytes().all(|b| b.is_ascii_digit()) {
                match term.parse::<u64>() {
                    Ok(n) if n <= u64::from(Bits::ALL.0) => value |= n as u32,
                    _ => {
                        return Err((
                            start,
                            format!(
                                "{term} is not a set of permission bits (at most {})",
                                Bits::ALL.0
                            ),
                        ));
                    }
                }
                continue;
            }
            match Bits::named(term) {
                Some(bits) => value |= bits,
                None => {
                    return Err((
                        start,
                        format!(
                            "unknown permission bit \"{term}\" (GuestPeek … GroupRefer, \
                             GuestCRUD, UserCRUD, GroupCRUD, ALLOW_ALL or a number)"
                        ),
                    ));
                }
            }
        }
        Ok(Bits(value))
    }
}

impl fmt::Display for Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `groups = membership (row_key, group [, permission])`.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub table: QualifiedName,
    pub row_key: String,
    pub group: String,
    /// None: a membership carries the row's own Group bits.
    pub permission: Option<String>,
    pub location: Location,
}

/// `CREATE PERMISSION BITS ON table (…)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableBits {
    pub table: QualifiedName,
    pub owner: String,
    pub permission: String,
    pub groups: Option<Membership>,
    /// The permission a new row gets when its INSERT does not give one.
    pub default_permission: Option<Bits>,
    pub table_permission: Bits,
    /// Groups (as text) whose members the table-level Group bits are for.
    pub table_groups: Vec<String>,
    /// Groups (as text) a new row joins.
    pub default_groups: Vec<String>,
    pub admin_group: Option<String>,
    /// Where the table name was written.
    pub location: Location,
    /// Where each option was written, by option name, for `pgward check`.
    pub options: Vec<(String, Location)>,
}

impl TableBits {
    /// Where an option was written, else where the table name was.
    pub fn option_location(&self, option: &str) -> &Location {
        self.options
            .iter()
            .find(|(name, _)| name == option)
            .map_or(&self.location, |(_, l)| l)
    }
}

/// `CREATE PERMISSION BITS ON FUNCTION f(args) (table_permission = '…')`.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionBits {
    pub name: QualifiedName,
    /// None when no argument list was written.
    pub args: Option<Vec<DataType>>,
    pub table_permission: Bits,
    pub location: Location,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_values_are_those_of_the_contract() {
        assert_eq!(Bits::named("GuestPeek"), Some(1));
        assert_eq!(Bits::named("GuestRead"), Some(2));
        assert_eq!(Bits::named("GuestRefer"), Some(64));
        assert_eq!(Bits::named("UserPeek"), Some(128));
        assert_eq!(Bits::named("UserRefer"), Some(8192));
        assert_eq!(Bits::named("GroupPeek"), Some(16384));
        assert_eq!(Bits::named("GroupRefer"), Some(1_048_576));
        assert_eq!(Bits::named("userexecute"), Some(4096));
        assert_eq!(Bits::named("ALLOW_ALL"), Some(2_097_151));
        assert_eq!(Bits::named("GuestCRUD"), Some(1 + 2 + 4 + 8 + 16 + 64));
        assert_eq!(
            Bits::named("UserCRUD"),
            Some((1 + 2 + 4 + 8 + 16 + 64) << 7)
        );
        assert_eq!(
            Bits::named("GroupCRUD"),
            Some((1 + 2 + 4 + 8 + 16 + 64) << 14)
        );
        assert_eq!(Bits::named("OtherRead"), None);
        assert_eq!(Bits::named("User"), None);
        // Every one of the 21 named bits is a distinct power of two.
        let mut seen = 0u32;
        for class in Class::ALL {
            for op in Op::ALL {
                let name = format!("{}{}", class.name(), op.name());
                let bit = Bits::named(&name).unwrap();
                assert_eq!(bit.count_ones(), 1, "{name}");
                assert_eq!(seen & bit, 0, "{name}");
                seen |= bit;
                assert!(Bits(bit).has(class, op));
            }
        }
        assert_eq!(seen, Bits::ALL.0);
    }

    #[test]
    fn expressions_or_names_and_numbers() {
        let b = Bits::parse("UserCRUD | UserExecute | GroupRead | GuestPeek").unwrap();
        assert_eq!(b.0, Bits::crud(Class::User) | 4096 | 32768 | 1);
        assert!(b.has(Class::User, Op::Execute));
        assert!(!b.has(Class::Group, Op::Update));
        assert_eq!(Bits::parse("3|128").unwrap(), Bits(131));
        assert_eq!(Bits::parse(" 0 ").unwrap(), Bits(0));
        assert_eq!(Bits::parse("2097151").unwrap(), Bits::ALL);
    }

    #[test]
    fn bad_expressions_point_at_the_term() {
        assert_eq!(Bits::parse("UserRead | Nope").unwrap_err().0, 11);
        assert_eq!(Bits::parse("UserRead || GuestRead").unwrap_err().0, 10);
        assert_eq!(Bits::parse("2097152").unwrap_err().0, 0);
        assert!(Bits::parse("").is_err());
        assert!(Bits::parse("UserRead |").is_err());
        assert!(Bits::parse("-1").is_err());
        assert!(Bits::parse("UserRead & GuestRead").is_err());
    }
}
