//! Users from a table of the upstream database (`[auth.table]`): the
//! configured query runs on the service connection with the login as `$1`
//! and returns the verifier, the user id, the roles and the groups.
//!
//! Must never: splice the login into the query (it is a parameter), or
//! accept a row whose verifier pgward cannot read (the login fails).

use tokio_postgres::types::Type;

use super::identity::Identity;
use super::password::Stored;

/// What the table says about a login.
pub struct TableUser {
    /// `None`: the row's verifier is NULL or unreadable: the user exists but
    /// cannot log in with a password.
    pub stored: Option<Stored>,
    pub identity: Identity,
}

#[derive(Debug, thiserror::Error)]
#[error("auth.table.query failed: {0}")]
pub struct TableError(String);

impl TableError {
    pub fn label(&self) -> &'static str {
        "table_query"
    }
}

fn text_list(row: &tokio_postgres::Row, i: usize) -> Result<Vec<String>, TableError> {
    if row.len() <= i {
        return Ok(Vec::new());
    }
    let t = row.columns()[i].type_().clone();
    let bad = |e: tokio_postgres::Error| TableError(e.to_string());
    if t == Type::TEXT_ARRAY || t == Type::VARCHAR_ARRAY || t == Type::NAME_ARRAY {
        let v: Option<Vec<Option<String>>> = row.try_get(i).map_err(bad)?;
        Ok(v.unwrap_or_default().into_iter().flatten().collect())
    } else {
        let v: Option<String> = row.try_get(i).map_err(bad)?;
        Ok(
            v.map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
        )
    }
}

/// Looks the login up. `Ok(None)`: no row, the table does not know it.
pub async fn lookup(
    client: &tokio_postgres::Client,
    query: &str,
    login: &str,
) -> Result<Option<TableUser>, TableError> {
    let statement = client
        .prepare_typed(query, &[Type::TEXT])
        .await
        .map_err(|e| TableError(e.to_string()))?;
    // Every column read as text: the types of user_id are kept for the
    // global, the rest are texts or text arrays.
    let rows = client
        .query(&statement, &[&login])
        .await
        .map_err(|e| TableError(e.to_string()))?;
    let row = match rows.as_slice() {
        [] => return Ok(None),
        [row] => row,
        _ => return Err(TableError(format!("more than one row for login {login:?}"))),
    };
    if row.is_empty() {
        return Err(TableError("the query returns no column".into()));
    }
    let verifier: Option<String> = row
        .try_get(0)
        .map_err(|e| TableError(format!("the verifier column is not text: {e}")))?;
    let stored = verifier.as_deref().and_then(Stored::parse);
    if verifier.is_some() && stored.is_none() {
        tracing::warn!("auth.table: the verifier of {login:?} is neither SCRAM, bcrypt nor argon2");
    }
    let mut identity = Identity::new(login, "table");
    if row.len() > 1 {
        identity.user_id = user_id(row)?;
    }
    identity.roles = text_list(row, 2)?;
    identity.groups = text_list(row, 3)?;
    Ok(Some(TableUser { stored, identity }))
}

/// The user id column as (text, type name).
fn user_id(row: &tokio_postgres::Row) -> Result<Option<(String, String)>, TableError> {
    let t = row.columns()[1].type_();
    let name = format!("pg_catalog.{}", t.name());
    let bad = |e: tokio_postgres::Error| TableError(e.to_string());
    let value = match *t {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(1)
            .map_err(bad)?
            .map(|v| v.to_string()),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(1)
            .map_err(bad)?
            .map(|v| v.to_string()),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(1)
            .map_err(bad)?
            .map(|v| v.to_string()),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
            row.try_get::<_, Option<String>>(1).map_err(bad)?
        }
        _ => {
            return Err(TableError(format!(
                "user_id has type {}; use an integer or text column (cast it, e.g. id::text)",
                t.name()
            )));
        }
    };
    Ok(value.map(|v| (v, name)))
}
