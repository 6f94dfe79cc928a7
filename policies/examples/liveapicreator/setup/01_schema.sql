-- Live API Creator-style role security (policies/examples/liveapicreator.sql):
-- roles come from a table, row filters use the user's globals, each role
-- sees its own column list. Loaded as the superuser.

CREATE TABLE customers (
    id int PRIMARY KEY,
    name text NOT NULL,
    region text NOT NULL,
    balance numeric(10,2) NOT NULL DEFAULT 0,
    credit_limit numeric(10,2) NOT NULL
);

CREATE TABLE orders (
    id int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers (id),
    amount numeric(10,2) NOT NULL,
    discount int NOT NULL DEFAULT 0,
    notes text
);

-- Who the users are, for the globals: the application's own tables.
CREATE TABLE user_roles (login text NOT NULL, role_name text NOT NULL);
CREATE TABLE customer_contacts (login text PRIMARY KEY, customer_id int NOT NULL);
CREATE TABLE sales_reps (login text PRIMARY KEY, region text NOT NULL, max_discount int NOT NULL);
