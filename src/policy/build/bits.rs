//! Permission-bit declarations into the set: each table and each function
//! signature declared once (an unqualified name means schema `public`, as
//! everywhere in policy files).

use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::model::bits::{FunctionBits, TableBits};
use crate::policy::model::{PolicySet, QualifiedName};

fn in_public(name: &QualifiedName) -> (String, String) {
    (
        name.schema.clone().unwrap_or_else(|| "public".to_string()),
        name.name.clone(),
    )
}

pub fn add(
    set: &mut PolicySet,
    tables: Vec<TableBits>,
    functions: Vec<FunctionBits>,
    errors: &mut Vec<PolicyError>,
) {
    for bits in tables {
        if let Some(first) = set
            .table_bits
            .iter()
            .find(|b| in_public(&b.table) == in_public(&bits.table))
        {
            errors.push(PolicyError::at(
                bits.location.clone(),
                PolicyErrorKind::Duplicate,
                format!(
                    "permission bits on table \"{}\" are already declared at {}",
                    bits.table.name, first.location
                ),
            ));
            continue;
        }
        set.table_bits.push(bits);
    }
    for bits in functions {
        let same = |b: &&FunctionBits| {
            in_public(&b.name) == in_public(&bits.name)
                && b.args
                    .as_ref()
                    .map(|a| a.iter().map(ToString::to_string).collect::<Vec<_>>())
                    == bits
                        .args
                        .as_ref()
                        .map(|a| a.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        if let Some(first) = set.function_bits.iter().find(same) {
            errors.push(PolicyError::at(
                bits.location.clone(),
                PolicyErrorKind::Duplicate,
                format!(
                    "permission bits on function \"{}\" are already declared at {}",
                    bits.name.name, first.location
                ),
            ));
            continue;
        }
        set.function_bits.push(bits);
    }
}
