-- ApiOmat-style object ACLs (policies/examples/apiomat_acl.sql): every
-- object carries its owner and the roles that may read and write it.
-- Loaded as the superuser; the tests and the README rely on these tables.

CREATE TABLE notes (
    id int PRIMARY KEY,
    title text NOT NULL,
    payload text,
    owner text NOT NULL,                         -- the owner's login
    allowed_read_roles text[] NOT NULL DEFAULT '{}',
    allowed_write_roles text[] NOT NULL DEFAULT '{}'
);
