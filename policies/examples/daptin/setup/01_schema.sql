-- Daptin's row permission model (policies/examples/daptin.sql), with
-- Daptin's own table and column names: every row has an owner
-- (user_account_id) and a permission bit mask; group membership lives in
-- "<table>_<table>_id_has_usergroup_usergroup_id" join tables that carry a
-- permission of their own. Loaded as the superuser.

CREATE TABLE user_account (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE
);

CREATE TABLE usergroup (
    id int PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE user_account_user_account_id_has_usergroup_usergroup_id (
    user_account_id bigint NOT NULL REFERENCES user_account (id),
    usergroup_id int NOT NULL REFERENCES usergroup (id),
    PRIMARY KEY (user_account_id, usergroup_id)
);

CREATE TABLE document (
    id serial PRIMARY KEY,
    title text NOT NULL,
    body text,
    user_account_id bigint REFERENCES user_account (id),   -- the owner
    permission bigint NOT NULL DEFAULT 0
);

CREATE TABLE document_document_id_has_usergroup_usergroup_id (
    document_id int NOT NULL REFERENCES document (id) ON DELETE CASCADE,
    usergroup_id int NOT NULL REFERENCES usergroup (id),
    permission bigint,
    PRIMARY KEY (document_id, usergroup_id)
);
