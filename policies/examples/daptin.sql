-- Daptin's row permissions with CREATE PERMISSION BITS (PRODUCT.md §6):
-- the owner's User bits, the Group bits of a row's memberships (the
-- membership's own permission), the Guest bits for everyone, and the
-- administrators group, which bypasses the bits. Schema and data:
-- daptin/setup/. What each user sees: README, "Permission bits".
-- Passwords equal the logins (plain text: hashed at load); guests sign in
-- through [auth.guest] and have no user id.

CREATE ROLE guest;
CREATE USER alice PASSWORD 'alice';
CREATE USER bob PASSWORD 'bob';
CREATE USER carol PASSWORD 'carol';

-- The identity, from Daptin's own tables: the user id and the groups.
CREATE GLOBAL user_id AS SELECT id FROM user_account WHERE email = @{login_id};
CREATE GLOBAL groups AS
  SELECT m.usergroup_id
    FROM user_account_user_account_id_has_usergroup_usergroup_id m
    JOIN user_account u ON u.id = m.user_account_id
   WHERE u.email = @{login_id};

CREATE PERMISSION BITS ON document (
  owner = user_account_id,
  permission = permission,
  groups = document_document_id_has_usergroup_usergroup_id (document_id, usergroup_id, permission),
  default_permission = 'UserCRUD | GroupRead',
  table_permission = 'GuestPeek | UserCRUD | GroupCRUD',
  table_groups = (1, 2),
  default_groups = (1),
  admin_group = 99
);

-- Sharing: anyone may add or remove a document's memberships, but only of
-- documents whose Update bit they hold (pgward guards the join table).
GRANT SELECT, INSERT, DELETE ON document_document_id_has_usergroup_usergroup_id TO PUBLIC;
