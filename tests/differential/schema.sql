-- Differential test data set (tests/integration/differential.rs): run as
-- the service role, which therefore owns every table and function here and
-- is not subject to the native row-level security that native.sql enables
-- (an owner bypasses RLS unless FORCE is set).
--
-- Every value is derived from generate_series, so the data set is the same
-- on every run. Some cells are NULL on purpose (NULL handling in joins,
-- aggregates, NOT IN and policy filters).

CREATE TABLE departments (
    id int PRIMARY KEY,
    name text NOT NULL,
    region text NOT NULL,
    budget int,
    secret_code text
);
INSERT INTO departments
SELECT i,
       'dept_' || i,
       (ARRAY['emea', 'amer', 'apac'])[1 + i % 3],
       CASE WHEN i % 4 = 0 THEN NULL ELSE 1000 * (i * 37 % 50) END,
       'code-' || i
  FROM generate_series(1, 9) i;

CREATE TABLE employees (
    id int PRIMARY KEY,
    name text NOT NULL,
    dept_id int,
    manager_id int,
    salary int,
    hired date,
    grade int,
    ssn text
);
INSERT INTO employees
SELECT i,
       'emp_' || lpad(i::text, 3, '0'),
       CASE WHEN i % 23 = 0 THEN NULL ELSE 1 + i % 9 END,
       CASE WHEN i <= 6 THEN NULL ELSE 1 + (i * 7) % (i - 1) END,
       CASE WHEN i % 17 = 0 THEN NULL ELSE 30000 + (i * 7919) % 90000 END,
       DATE '2018-01-01' + (i * 53) % 2900,
       CASE WHEN i % 19 = 0 THEN NULL ELSE 1 + i % 6 END,
       'ssn-' || i
  FROM generate_series(1, 120) i;

CREATE TABLE products (
    id int PRIMARY KEY,
    name text NOT NULL,
    category text,
    price numeric(10, 2),
    cost numeric(10, 2)
);
INSERT INTO products
SELECT i,
       'prod_' || i,
       CASE WHEN i % 11 = 0 THEN NULL
            ELSE (ARRAY['tools', 'food', 'books', 'toys'])[1 + i % 4] END,
       ((i * 313) % 9000) / 100.0 + 1,
       ((i * 211) % 5000) / 100.0
  FROM generate_series(1, 40) i;

CREATE TABLE orders (
    id int PRIMARY KEY,
    emp_id int,
    dept_id int,
    product_id int,
    customer text,
    amount numeric(10, 2),
    status text,
    region text,
    created date,
    note text,
    margin numeric(10, 2)
);
INSERT INTO orders
SELECT i,
       CASE WHEN i % 29 = 0 THEN NULL ELSE 1 + (i * 13) % 125 END,
       CASE WHEN i % 31 = 0 THEN NULL ELSE 1 + (i * 7) % 10 END,
       CASE WHEN i % 37 = 0 THEN NULL ELSE 1 + (i * 3) % 42 END,
       'cust_' || (i * 17) % 40,
       CASE WHEN i % 43 = 0 THEN NULL ELSE ((i * 7919) % 50000) / 100.0 END,
       CASE WHEN i % 41 = 0 THEN NULL
            ELSE (ARRAY['open', 'closed', 'draft', 'archived', 'shipped'])[1 + (i * 3) % 5] END,
       CASE WHEN i % 47 = 0 THEN NULL
            ELSE (ARRAY['emea', 'amer', 'apac'])[1 + (i * 11) % 3] END,
       DATE '2022-01-01' + (i * 17) % 1100,
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || (i % 13) END,
       ((i * 31) % 1000) / 10.0
  FROM generate_series(1, 600) i;

-- Where the globals come from: pgward reads these on its service connection
-- (policies.sql, CREATE GLOBAL); native policies read the same rows through
-- the SECURITY DEFINER functions below, keyed on the login. Inside a SECURITY
-- DEFINER function current_user is the function's owner, so they read
-- session_user: the role the test connected as. The logins have no grant on
-- either table.
CREATE TABLE user_attrs (login text PRIMARY KEY, dept_id int NOT NULL, max_grade int);
INSERT INTO user_attrs VALUES ('dt_ann', 2, NULL), ('dt_bob', 3, 3), ('dt_cy', 1, 5);
CREATE TABLE user_regions (login text NOT NULL, region text NOT NULL);
INSERT INTO user_regions VALUES ('dt_ann', 'apac'), ('dt_bob', 'amer'), ('dt_bob', 'emea');

CREATE FUNCTION dt_global_dept() RETURNS int
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT dept_id FROM public.user_attrs WHERE login = session_user $$;
CREATE FUNCTION dt_global_grade() RETURNS int
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT max_grade FROM public.user_attrs WHERE login = session_user $$;
CREATE FUNCTION dt_global_regions() RETURNS text[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT array_agg(region) FROM public.user_regions WHERE login = session_user $$;

ANALYZE;
