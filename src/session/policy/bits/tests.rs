//! Entries of permission bits, as SQL.

use std::path::Path;
use std::sync::Arc;

use crate::catalog::{Catalog, CatalogHandle, CatalogParts, Column, ForeignKey, RelKind, Relation};
use crate::globals::{GlobalValue, GlobalValues};
use crate::policy::PolicySet;
use crate::rewrite::{Access, Columns, Command, TableAccess};
use crate::session::policy::SessionPolicy;

const BITS: &str = "CREATE ROLE r; CREATE USER u PASSWORD 'u' IN ROLE r;
CREATE PERMISSION BITS ON documents (
  owner = owner_id, permission = permission,
  groups = document_groups (document_id, group_id, permission),
  table_permission = 'GuestPeek | UserCRUD | GroupCRUD',
  table_groups = (1, 2), default_groups = (1), admin_group = 99);
CREATE PERMISSION BITS ON FUNCTION public.publish(int) (table_permission = 'UserExecute');
";

fn column(name: &str, attnum: i16, type_oid: u32, type_name: &str) -> Column {
    Column {
        name: name.into(),
        attnum,
        type_oid,
        type_name: type_name.into(),
        not_null: false,
    }
}

fn relation(oid: u32, name: &str, columns: Vec<Column>, key: &[&str]) -> Relation {
    Relation {
        oid,
        schema: "public".into(),
        name: name.into(),
        kind: RelKind::Table,
        columns,
        primary_key: key.iter().map(|k| k.to_string()).collect(),
        parent: None,
        is_partition: false,
    }
}

fn documents() -> Relation {
    relation(
        1,
        "documents",
        vec![
            column("id", 1, 23, "integer"),
            column("owner_id", 2, 20, "bigint"),
            column("permission", 3, 20, "bigint"),
            column("title", 4, 25, "text"),
        ],
        &["id"],
    )
}

fn document_groups() -> Relation {
    relation(
        2,
        "document_groups",
        vec![
            column("document_id", 1, 23, "integer"),
            column("group_id", 2, 23, "integer"),
            column("permission", 3, 20, "bigint"),
        ],
        &["document_id", "group_id"],
    )
}

fn comments() -> Relation {
    relation(
        3,
        "comments",
        vec![
            column("id", 1, 23, "integer"),
            column("document_id", 2, 23, "integer"),
        ],
        &["id"],
    )
}

fn catalog() -> Arc<CatalogHandle> {
    let catalog = Catalog::from_parts(CatalogParts {
        schemas: vec!["public".into()],
        relations: vec![documents(), document_groups(), comments()],
        ..CatalogParts::default()
    })
    .with_foreign_keys(vec![ForeignKey {
        relation: 3,
        columns: vec!["document_id".into()],
        referenced: 1,
        referenced_columns: vec!["id".into()],
    }]);
    Arc::new(CatalogHandle::new(catalog))
}

/// User `u` with this user id (None: a guest) and groups.
fn session(extra: &str, user_id: Option<&str>, groups: &[&str]) -> SessionPolicy {
    session_of(&format!("{BITS}{extra}"), user_id, groups)
}

fn session_of(text: &str, user_id: Option<&str>, groups: &[&str]) -> SessionPolicy {
    let set = PolicySet::parse_str(Path::new("t.sql"), text, 4096).unwrap();
    let roles = vec!["u".to_string(), "r".to_string(), "public".to_string()];
    let mut values = GlobalValues::builtins("u", &roles, None);
    if let Some(id) = user_id {
        values.insert(
            "user_id",
            GlobalValue {
                columns: vec![("value".into(), "int8".into())],
                rows: vec![vec![Some(id.into())]],
            },
        );
    }
    values.insert(
        "groups",
        GlobalValue {
            columns: vec![("group".into(), "text".into())],
            rows: groups.iter().map(|g| vec![Some(g.to_string())]).collect(),
        },
    );
    SessionPolicy::new("u", roles, values, Arc::new(set)).with_catalog(catalog())
}

fn rows(access: &TableAccess) -> Vec<String> {
    access
        .entries
        .iter()
        .map(|e| e.rows.as_ref().map_or("ALL".into(), ToString::to_string))
        .collect()
}

const ROW: &str = "\"pgward bits row\"";
const MEMBER: &str = "\"pgward bits member\"";

fn owner_arm(bit: u32) -> String {
    format!(
        "SELECT {ROW}.\"id\" FROM \"public\".\"documents\" AS {ROW} WHERE {ROW}.\"owner_id\" = '7'::BIGINT AND ({ROW}.\"permission\" & {bit}) <> 0"
    )
}

fn member_arm(bit: u32) -> String {
    format!(
        "SELECT {MEMBER}.\"document_id\" FROM \"public\".\"document_groups\" AS {MEMBER} WHERE {MEMBER}.\"group_id\" = ANY('{{\"1\",\"5\"}}') AND ({MEMBER}.\"permission\" & {bit}) <> 0"
    )
}

fn guest_arm(bit: u32) -> String {
    format!(
        "SELECT {ROW}.\"id\" FROM \"public\".\"documents\" AS {ROW} WHERE ({ROW}.\"permission\" & {bit}) <> 0"
    )
}

#[test]
fn a_user_reads_through_owner_membership_and_guest_arms() {
    let s = session("", Some("7"), &["1", "5"]);
    let access = s.table(&documents(), Command::Select).unwrap();
    let read = format!(
        "\"id\" IN ({} UNION ALL {} UNION ALL {})",
        owner_arm(256),
        member_arm(32768),
        guest_arm(2)
    );
    let peek = format!(
        "\"id\" IN ({} UNION ALL {} UNION ALL {})",
        owner_arm(128),
        member_arm(16384),
        guest_arm(1)
    );
    assert_eq!(rows(&access), [read, peek]);
    assert_eq!(access.entries[0].columns, Columns::All);
    assert_eq!(
        access.entries[1].columns,
        Columns::Some(["id".to_string()].into_iter().collect())
    );
    assert!(
        access
            .predicate_relations
            .iter()
            .any(|r| r.contains("document_groups"))
    );
    assert!(
        access
            .predicate_relations
            .iter()
            .any(|r| r.contains("documents"))
    );
}

#[test]
fn a_guest_has_only_the_guest_arm_and_no_table_create() {
    let s = session("", None, &[]);
    let access = s.table(&documents(), Command::Select).unwrap();
    assert_eq!(
        rows(&access),
        [
            format!("\"id\" IN ({})", guest_arm(2)),
            format!("\"id\" IN ({})", guest_arm(1))
        ]
    );
    // Table level: GuestPeek only, so no writes.
    assert!(s.table(&documents(), Command::Insert).is_none());
    assert!(s.table(&documents(), Command::Update).is_none());
    assert!(s.table(&documents(), Command::Delete).is_none());
}

#[test]
fn table_group_bits_need_a_table_group() {
    let text = BITS.replace(
        "'GuestPeek | UserCRUD | GroupCRUD'",
        "'GroupRead | GroupPeek'",
    );
    assert!(
        session_of(&text, Some("7"), &["5"])
            .table(&documents(), Command::Select)
            .is_none()
    );
    assert!(
        session_of(&text, Some("7"), &["2"])
            .table(&documents(), Command::Select)
            .is_some()
    );
    assert!(
        session_of(&text, None, &["1"])
            .table(&documents(), Command::Select)
            .is_some()
    );
    // User bits are for signed-in users, whatever their groups.
    let text = BITS.replace("'GuestPeek | UserCRUD | GroupCRUD'", "'UserPeek'");
    assert!(
        session_of(&text, Some("7"), &[])
            .table(&documents(), Command::Select)
            .is_some()
    );
    assert!(
        session_of(&text, None, &["2"])
            .table(&documents(), Command::Select)
            .is_none()
    );
}

#[test]
fn insert_forces_the_owner_and_needs_table_create() {
    let s = session("", Some("7"), &[]);
    let access = s.table(&documents(), Command::Insert).unwrap();
    assert_eq!(access.entries.len(), 1);
    assert_eq!(access.entries[0].columns, Columns::All);
    assert_eq!(
        access.entries[0].check.as_ref().unwrap().to_string(),
        "\"owner_id\" = '7'::BIGINT"
    );
}

#[test]
fn only_the_owner_may_change_owner_and_permission() {
    let s = session("", Some("7"), &[]);
    let access = s.table(&documents(), Command::Update).unwrap();
    assert_eq!(access.entries.len(), 2);
    assert_eq!(
        access.entries[0].columns,
        Columns::Some(["id", "title"].iter().map(|c| c.to_string()).collect())
    );
    let update = format!("\"id\" IN ({} UNION ALL {})", owner_arm(1024), guest_arm(8));
    assert_eq!(rows(&access)[0], update);
    assert_eq!(access.entries[1].columns, Columns::All);
    assert_eq!(rows(&access)[1], update);
    assert!(access.entries[0].check.is_none());
    assert_eq!(
        access.entries[1].check.as_ref().unwrap().to_string(),
        format!(
            "\"id\" IN (SELECT {ROW}.\"id\" FROM \"public\".\"documents\" AS {ROW} WHERE {ROW}.\"owner_id\" = '7'::BIGINT)"
        )
    );
    let delete = s.table(&documents(), Command::Delete).unwrap();
    assert_eq!(
        rows(&delete),
        [format!(
            "\"id\" IN ({} UNION ALL {})",
            owner_arm(2048),
            guest_arm(16)
        )]
    );
}

#[test]
fn the_admin_group_bypasses_the_bits() {
    let s = session("", Some("7"), &["99"]);
    for command in [
        Command::Select,
        Command::Insert,
        Command::Update,
        Command::Delete,
    ] {
        let access = s.table(&documents(), command).unwrap();
        assert_eq!(rows(&access), ["ALL"], "{command:?}");
        assert!(access.entries[0].check.is_none());
    }
}

#[test]
fn bits_add_to_grant_and_policy_entries() {
    let s = session(
        "GRANT SELECT (id, title) ON documents TO r;\n\
         CREATE POLICY mine ON documents FOR SELECT TO r USING (title = 'x');\n\
         CREATE POLICY not_secret ON documents AS RESTRICTIVE FOR SELECT TO r USING (title <> 'secret');",
        Some("7"),
        &[],
    );
    let access = s.table(&documents(), Command::Select).unwrap();
    assert_eq!(access.entries.len(), 3);
    assert_eq!(rows(&access)[0], "title = 'x'");
    assert_eq!(access.restrictive.len(), 1);
}

#[test]
fn foreign_keys_into_bit_tables_need_refer() {
    let s = session(
        "GRANT INSERT, UPDATE, SELECT ON comments TO r;",
        Some("7"),
        &[],
    );
    for command in [Command::Insert, Command::Update] {
        let access = s.table(&comments(), command).unwrap();
        assert_eq!(
            access
                .restrictive_checks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [format!(
                "\"document_id\" IS NULL OR (\"document_id\") IN ({} UNION ALL {})",
                owner_arm(8192),
                guest_arm(64)
            )]
        );
    }
    assert!(
        s.table(&comments(), Command::Select)
            .unwrap()
            .restrictive_checks
            .is_empty()
    );
}

#[test]
fn membership_writes_need_update_on_the_row() {
    let s = session(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON document_groups TO r;",
        Some("7"),
        &[],
    );
    let guard = format!(
        "\"document_id\" IN ({} UNION ALL {})",
        owner_arm(1024),
        guest_arm(8)
    );
    let insert = s.table(&document_groups(), Command::Insert).unwrap();
    assert_eq!(insert.restrictive_checks[0].to_string(), guard);
    assert!(insert.restrictive.is_empty());
    let delete = s.table(&document_groups(), Command::Delete).unwrap();
    assert_eq!(delete.restrictive[0].to_string(), guard);
    let update = s.table(&document_groups(), Command::Update).unwrap();
    assert_eq!(update.restrictive[0].to_string(), guard);
    assert_eq!(update.restrictive_checks[0].to_string(), guard);
    assert!(
        s.table(&document_groups(), Command::Select)
            .unwrap()
            .restrictive
            .is_empty()
    );
}

#[test]
fn functions_with_bits_need_table_execute() {
    let publish = |arg| crate::catalog::Function {
        oid: 9,
        schema: "public".into(),
        name: "publish".into(),
        arg_types: vec![arg],
        return_type: 16,
        kind: 'f',
        volatility: 'v',
        leakproof: false,
        security_definer: false,
        returns_set: false,
    };
    assert!(session("", Some("7"), &[]).function(&publish(23)));
    assert!(!session("", Some("7"), &[]).function(&publish(25)));
    assert!(!session("", None, &[]).function(&publish(23)));
}

#[test]
fn no_primary_key_is_refused() {
    let mut t = documents();
    t.primary_key.clear();
    let s = session("", Some("7"), &[]);
    assert!(s.table(&t, Command::Select).is_none());
}

/// The SQL pgward forwards for `sql` in this session.
fn forwarded(s: &SessionPolicy, sql: &str) -> Result<String, crate::error::PgError> {
    let handle = catalog();
    let catalog = handle.current();
    let search_path = vec!["public".to_string()];
    let ctx = crate::rewrite::Context {
        catalog: &catalog,
        search_path: &search_path,
        access: s,
    };
    crate::rewrite::secure_text(sql, false, &ctx)
}

#[test]
fn insert_sets_owner_and_permission_and_joins_default_groups() {
    let text = BITS.replace(
        "table_groups = (1, 2),",
        "table_groups = (1, 2), default_permission = 'UserCRUD | GroupRead',",
    );
    let s = session_of(&text, Some("7"), &[]);
    let sql = forwarded(
        &s,
        "INSERT INTO documents (id, title) VALUES (1, 'a'), (2, 'b')",
    )
    .unwrap();
    assert!(sql.starts_with("WITH \"pgward_w\" AS (INSERT INTO \"public\".\"documents\" (id, title, \"owner_id\", \"permission\") VALUES (1, 'a', '7'::BIGINT, 44928), (2, 'b', '7'::BIGINT, 44928) RETURNING pgward.\"check\"("), "{sql}");
    assert!(sql.ends_with("AS \"pgward_ok\", \"id\" AS \"pgward_key\", \"permission\" AS \"pgward_perm\") INSERT INTO \"public\".\"document_groups\" (\"document_id\", \"group_id\", \"permission\") SELECT \"pgward_key\", '1', \"pgward_perm\" FROM \"pgward_w\""), "{sql}");
    // An owner the client writes is checked, not replaced.
    let sql = forwarded(&s, "INSERT INTO documents (id, owner_id) VALUES (1, 8)").unwrap();
    assert!(
        sql.contains("(id, owner_id, \"permission\") VALUES (1, 8, 44928)"),
        "{sql}"
    );
    assert!(sql.contains("\"owner_id\" = '7'::BIGINT"), "{sql}");
    // With the client's RETURNING: the tagged shape gains the membership.
    let sql = forwarded(&s, "INSERT INTO documents (id) VALUES (3) RETURNING id").unwrap();
    assert!(
        sql.contains("\"pgward_g1\" AS (INSERT INTO \"public\".\"document_groups\""),
        "{sql}"
    );
    assert!(
        sql.ends_with("SELECT \"pgward_1\" AS \"id\" FROM \"pgward_w\""),
        "{sql}"
    );
    // The new row is visible from its own values (the table's predicates
    // cannot see it yet).
    assert!(
        sql.contains(
            "(\"documents\".\"owner_id\" = '7'::BIGINT AND (\"documents\".\"permission\" & 256) <> 0)"
        ),
        "{sql}"
    );
    // Without a column list, the listed width is made explicit.
    let sql = forwarded(&s, "INSERT INTO documents VALUES (4)").unwrap();
    assert!(
        sql.contains("(\"id\", \"owner_id\", \"permission\") VALUES (4, '7'::BIGINT, 44928)"),
        "{sql}"
    );
    let sql = forwarded(&s, "INSERT INTO documents DEFAULT VALUES").unwrap();
    assert!(
        sql.contains("(\"owner_id\", \"permission\") VALUES ('7'::BIGINT, 44928)"),
        "{sql}"
    );
}

#[test]
fn insert_on_conflict_joins_groups_for_inserted_rows_only() {
    let text = BITS.replace(
        "table_groups = (1, 2),",
        "table_groups = (1, 2), default_permission = 'UserCRUD | GroupRead',",
    );
    let s = session_of(&text, Some("7"), &[]);
    // DO NOTHING returns only inserted rows: the last INSERT's tag is the
    // client's.
    let sql = forwarded(
        &s,
        "INSERT INTO documents (id) VALUES (5) ON CONFLICT DO NOTHING",
    )
    .unwrap();
    assert!(sql.contains("ON CONFLICT DO NOTHING RETURNING"), "{sql}");
    assert!(
        sql.ends_with("SELECT \"pgward_key\", '1', \"pgward_perm\" FROM \"pgward_w\""),
        "{sql}"
    );
    assert!(!sql.contains("xmax"), "{sql}");
    // DO UPDATE: memberships for rows with xmax = 0 only, and every
    // written row counted by the SELECT.
    let sql = forwarded(
        &s,
        "INSERT INTO documents (id, title) VALUES (5, 'x') ON CONFLICT (id) DO UPDATE SET title = excluded.title",
    )
    .unwrap();
    assert!(sql.contains("\"xmax\" = 0 AS \"pgward_new\")"), "{sql}");
    assert!(
        sql.contains(
            "SELECT \"pgward_key\", '1', \"pgward_perm\" FROM \"pgward_w\" WHERE \"pgward_new\")"
        ),
        "{sql}"
    );
    assert!(sql.ends_with(" SELECT 1 FROM \"pgward_w\""), "{sql}");
    // With the client's RETURNING: the tagged SELECT, memberships filtered.
    let sql = forwarded(
        &s,
        "INSERT INTO documents (id) VALUES (5) ON CONFLICT (id) DO UPDATE SET title = 'y' RETURNING id",
    )
    .unwrap();
    assert!(sql.contains("WHERE \"pgward_new\")"), "{sql}");
    assert!(
        sql.ends_with("SELECT \"pgward_1\" AS \"id\" FROM \"pgward_w\""),
        "{sql}"
    );
    for sql in [
        "INSERT INTO documents (id) VALUES (5) ON CONFLICT DO NOTHING",
        "INSERT INTO documents (id) VALUES (5) ON CONFLICT (id) DO UPDATE SET title = 'y'",
    ] {
        let printed = forwarded(&s, sql).unwrap();
        assert_eq!(pg_query::parse(&printed).unwrap().protobuf.stmts.len(), 1);
    }
}

#[test]
fn insert_inside_with_joins_groups_in_the_same_statement() {
    let s = session("", Some("7"), &[]);
    let sql = forwarded(
        &s,
        "WITH n AS (INSERT INTO documents (id) VALUES (6) RETURNING id) SELECT id FROM n",
    )
    .unwrap();
    assert!(sql.contains("\"id\" AS \"pgward_key\""), "{sql}");
    assert!(
        sql.contains("\"pgward_n_g1\" AS (INSERT INTO \"public\".\"document_groups\" (\"document_id\", \"group_id\", \"permission\") SELECT \"pgward_key\", '1', \"pgward_perm\" FROM \"pgward_n\")"),
        "{sql}"
    );
    // Without RETURNING, and with ON CONFLICT DO UPDATE: new rows only.
    let sql = forwarded(
        &s,
        "WITH n AS (INSERT INTO documents (id) VALUES (6) ON CONFLICT (id) DO UPDATE SET title = 'z') SELECT 1",
    )
    .unwrap();
    assert!(
        sql.contains("FROM \"pgward_n\" WHERE \"pgward_new\")"),
        "{sql}"
    );
    assert!(sql.ends_with("SELECT 1"), "{sql}");
    // Below a write.
    let sql = forwarded(
        &s,
        "WITH n AS (INSERT INTO documents (id) VALUES (6) RETURNING id) INSERT INTO documents (id) SELECT id + 100 FROM n",
    )
    .unwrap();
    assert!(sql.contains("\"pgward_n_g1\" AS (INSERT"), "{sql}");
    assert!(sql.contains("FROM \"pgward_w\""), "{sql}");
    assert_eq!(pg_query::parse(&sql).unwrap().protobuf.stmts.len(), 1);
}

#[test]
fn insert_from_a_set_operation_gets_the_defaults_after_its_columns() {
    let s = session("", Some("7"), &[]);
    let sql = forwarded(&s, "INSERT INTO documents (id) SELECT 1 UNION SELECT 2").unwrap();
    assert!(
        sql.contains("(id, \"owner_id\") SELECT \"pgward_s\".*, '7'::BIGINT FROM"),
        "{sql}"
    );
    assert!(
        sql.contains("FROM (SELECT 1 UNION SELECT 2) AS \"pgward_s\""),
        "{sql}"
    );
    // Without a column list: the first branch's width.
    let sql = forwarded(&s, "INSERT INTO documents SELECT 1 UNION ALL SELECT 2").unwrap();
    assert!(
        sql.contains("(\"id\", \"owner_id\") SELECT \"pgward_s\".*, '7'::BIGINT FROM (SELECT 1 UNION ALL SELECT 2)"),
        "{sql}"
    );
    // A first branch whose width cannot be counted stays refused.
    let err = forwarded(
        &s,
        "INSERT INTO documents SELECT * FROM documents UNION SELECT * FROM documents",
    )
    .unwrap_err();
    assert_eq!(err.code, "0A000");
}

#[test]
fn a_membership_without_permission_uses_the_rows_own_group_bits() {
    let text = BITS.replace(
        "document_groups (document_id, group_id, permission)",
        "document_groups (document_id, group_id)",
    );
    let s = session_of(&text, Some("7"), &["1"]);
    let access = s.table(&documents(), Command::Select).unwrap();
    let arm = format!(
        "SELECT {MEMBER}.\"document_id\" FROM \"public\".\"document_groups\" AS {MEMBER} JOIN \"public\".\"documents\" AS {ROW} ON {ROW}.\"id\" = {MEMBER}.\"document_id\" WHERE {MEMBER}.\"group_id\" = ANY('{{\"1\"}}') AND ({ROW}.\"permission\" & 32768) <> 0"
    );
    assert_eq!(
        rows(&access)[0],
        format!(
            "\"id\" IN ({} UNION ALL {arm} UNION ALL {})",
            owner_arm(256),
            guest_arm(2)
        )
    );
    // A group value is quoted inside the array literal (dollar-quoted,
    // since it holds a backslash).
    let s = session_of(&text, Some("7"), &["a\"b'c"]);
    let access = s.table(&documents(), Command::Select).unwrap();
    assert!(
        rows(&access)[0].contains(r#"= ANY($pgw${"a\"b'c"}$pgw$)"#),
        "{}",
        rows(&access)[0]
    );
}

#[test]
fn default_groups_are_printed_as_postgresql_reads_them() {
    let text = BITS.replace("default_groups = (1)", r"default_groups = ('x\''y', 2)");
    let s = session_of(&text, Some("7"), &[]);
    let sql = forwarded(&s, "INSERT INTO documents (id) VALUES (1)").unwrap();
    // A backslash before a quote would end sqlparser's printed literal
    // early: the value is dollar-quoted instead.
    assert!(
        sql.contains(r#"SELECT "pgward_key", $pgw$x\'y$pgw$, "pgward_perm""#),
        "{sql}"
    );
    assert!(sql.contains(r#""pgward_g2" AS (INSERT"#), "{sql}");
    assert!(
        sql.ends_with(r#"SELECT "pgward_key", $pgw$x\'y$pgw$, "pgward_perm" FROM "pgward_w""#),
        "{sql}"
    );
    let parsed = pg_query::parse(&sql).unwrap();
    assert_eq!(parsed.protobuf.stmts.len(), 1);
}
