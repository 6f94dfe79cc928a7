-- Demo schema (PRODUCT.md §5), loaded by `pgward demo` into the throwaway
-- database `demo` as its superuser. Tests and the README rely on these exact
-- tables and columns; keep them in step with §5.

CREATE TABLE departments (
    id int PRIMARY KEY,
    name text
);

CREATE TABLE employees (
    id int PRIMARY KEY,
    login text UNIQUE,
    name text,
    department_id int,
    salary numeric(10,2),
    ssn text
);

CREATE TABLE customers (
    id int PRIMARY KEY,
    name text,
    region text,
    credit_limit numeric(12,2)
);

CREATE TABLE orders (
    id int PRIMARY KEY,
    customer_id int,
    salesrep_id int,
    amount numeric(10,2),
    margin numeric(5,2),
    notes text,
    status text
);
