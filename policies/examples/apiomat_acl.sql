-- ApiOmat-style object ACLs with plain policies (no permission bits): each
-- row names its owner and the roles that may read and write it, as
-- ApiOmat's allowedRolesRead / allowedRolesWrite do. Schema and data:
-- apiomat_acl/setup/. What each user sees: README, "Permission bits".
--
-- Every user is an acl_owner (for the rows they own) and holds one ACL
-- role. Passwords equal the logins (plain text: hashed at load).

CREATE ROLE acl_user;                      -- reads and edits by the row's ACL
CREATE ROLE acl_owner IN ROLE acl_user;    -- owners may also change the ACL
CREATE ROLE sales;
CREATE ROLE support;
CREATE ROLE management;

CREATE USER ann PASSWORD 'ann' IN ROLE acl_owner, sales;
CREATE USER ben PASSWORD 'ben' IN ROLE acl_owner, support;
CREATE USER cid PASSWORD 'cid' IN ROLE acl_owner, management;

-- A policy's columns are those granted to the roles it names (README,
-- pgward check), so acl_owner is granted every column itself.
GRANT SELECT ON notes TO acl_user;
GRANT UPDATE (title, payload) ON notes TO acl_user;
GRANT UPDATE, INSERT, DELETE ON notes TO acl_owner;

-- Read: the owner, or a role named in allowed_read_roles.
CREATE POLICY acl_read ON notes FOR SELECT TO acl_user
  USING (owner = @{login_id}
         OR EXISTS (SELECT 1 FROM unnest(allowed_read_roles) AS r(name)
                    WHERE r.name = ANY(@{roles})));

-- Write: a role named in allowed_write_roles may change title and payload
-- (the columns granted to acl_user) …
CREATE POLICY acl_write ON notes FOR UPDATE TO acl_user
  USING (EXISTS (SELECT 1 FROM unnest(allowed_write_roles) AS r(name)
                 WHERE r.name = ANY(@{roles})));

-- … the owner every column (acl_owner's grants), the ACL and the owner
-- included, as long as the row stays theirs.
CREATE POLICY owner_write ON notes FOR UPDATE TO acl_owner
  USING (owner = @{login_id});

-- New objects belong to whoever creates them; only owners delete.
CREATE POLICY owner_insert ON notes FOR INSERT TO acl_owner
  WITH CHECK (owner = @{login_id});
CREATE POLICY owner_delete ON notes FOR DELETE TO acl_owner
  USING (owner = @{login_id});
