//! GRANT statements into the set: table grants per table and command,
//! schema-wide grants, routine grants, and the list of grant sites.
//!
//! Owns what a privilege means per target (`ALL` is the four commands on a
//! table, or SELECT, INSERT and UPDATE when it lists columns, as PostgreSQL's
//! column-level ALL is; EXECUTE on a routine) and that every grantee
//! exists. Never checks tables or columns: that needs the catalog.

use super::known_roles;
use crate::policy::ast::{Grant, GrantTarget, Privilege, PrivilegeKind};
use crate::policy::error::PolicyError;
use crate::policy::model::{
    ColumnSet, Command, FunctionGrant, GrantedTables, PolicySet, RoutineTarget, TableGrant,
};

pub fn add(set: &mut PolicySet, grants: Vec<Grant>, errors: &mut Vec<PolicyError>) {
    for grant in grants {
        let roles = known_roles(set, &grant.grantees, errors);
        match grant.target {
            GrantTarget::Tables(tables) => {
                for table in tables {
                    let name = table.qualified();
                    for privilege in &grant.privileges {
                        for command in commands(privilege) {
                            let columns = column_set(privilege);
                            let rules = set.tables.entry(name.clone()).or_default();
                            for role in &roles {
                                rules.grants.add(command, role, &columns);
                            }
                            set.table_grants.push(TableGrant {
                                target: GrantedTables::Table(name.clone()),
                                command,
                                columns: columns_as_written(privilege),
                                roles: roles.clone(),
                                location: table.location().clone(),
                            });
                        }
                    }
                }
            }
            GrantTarget::AllTablesInSchemas(schemas) => {
                for schema in schemas {
                    for privilege in &grant.privileges {
                        for command in commands(privilege) {
                            let grants = set.schema_grants.entry(schema.value.clone()).or_default();
                            for role in &roles {
                                grants.add(command, role, &ColumnSet::all());
                            }
                            set.table_grants.push(TableGrant {
                                target: GrantedTables::AllInSchema(schema.value.clone()),
                                command,
                                columns: None,
                                roles: roles.clone(),
                                location: schema.location.clone(),
                            });
                        }
                    }
                }
            }
            GrantTarget::Routines { kind, routines } => {
                for routine in routines {
                    set.functions.push(FunctionGrant {
                        kind,
                        target: RoutineTarget::One {
                            name: routine.name.qualified(),
                            args: routine.args,
                        },
                        roles: roles.clone(),
                        location: routine.name.location().clone(),
                    });
                }
            }
            GrantTarget::AllRoutinesInSchemas { kind, schemas } => {
                for schema in schemas {
                    set.functions.push(FunctionGrant {
                        kind,
                        target: RoutineTarget::AllInSchema(schema.value),
                        roles: roles.clone(),
                        location: schema.location,
                    });
                }
            }
        }
    }
}

/// The table commands a privilege gives.
fn commands(privilege: &Privilege) -> Vec<Command> {
    match privilege.kind {
        PrivilegeKind::Select => vec![Command::Select],
        PrivilegeKind::Insert => vec![Command::Insert],
        PrivilegeKind::Update => vec![Command::Update],
        PrivilegeKind::Delete => vec![Command::Delete],
        PrivilegeKind::All if privilege.columns.is_some() => {
            vec![Command::Select, Command::Insert, Command::Update]
        }
        PrivilegeKind::All => Command::ALL.to_vec(),
        // Refused on tables by the parser.
        PrivilegeKind::Execute => Vec::new(),
    }
}

fn column_set(privilege: &Privilege) -> ColumnSet {
    match &privilege.columns {
        Some(columns) => ColumnSet::of(columns.iter().map(|c| c.value.clone())),
        None => ColumnSet::all(),
    }
}

fn columns_as_written(
    privilege: &Privilege,
) -> Option<Vec<(String, crate::policy::error::Location)>> {
    privilege.columns.as_ref().map(|columns| {
        columns
            .iter()
            .map(|c| (c.value.clone(), c.location.clone()))
            .collect()
    })
}
