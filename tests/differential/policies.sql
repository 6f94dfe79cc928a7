-- pgward policies of the differential test (tests/integration/differential.rs).
-- native.sql states the same rules as PostgreSQL row-level security; the two
-- must stay in step, filter for filter.
--
-- Chosen so that pgward's semantics and PostgreSQL's coincide (PRODUCT.md §3,
-- semantics 5): on every table, the policies that apply to a user name roles
-- with identical column grants, so no cell of a visible row is NULLed by
-- pgward that PostgreSQL would show. Filters read globals only, never other
-- tables (a subquery in a native policy would itself be under RLS, in pgward
-- it is not: semantics 9). Hidden columns (secret_code, ssn, cost, margin)
-- are refused by both with 42501.

CREATE ROLE dt_staff;
CREATE ROLE dt_sales IN ROLE dt_staff;
CREATE ROLE dt_emea IN ROLE dt_staff;
CREATE ROLE dt_mgr IN ROLE dt_staff;
CREATE ROLE dt_audit IN ROLE dt_staff;

-- ann: two permissive order policies (sales and emea), ORed.
CREATE USER dt_ann PASSWORD 'ann' IN ROLE dt_sales, dt_emea;
CREATE USER dt_bob PASSWORD 'bob' IN ROLE dt_mgr;
CREATE USER dt_cy PASSWORD 'cy' IN ROLE dt_audit;

CREATE GLOBAL me FOR ROLE dt_staff REQUIRED
  AS SELECT dept_id, max_grade FROM user_attrs WHERE login = @{login_id};
CREATE GLOBAL my_regions FOR ROLE dt_staff
  AS SELECT region FROM user_regions WHERE login = @{login_id};

-- departments: policed, one policy for everyone.
GRANT SELECT (id, name, region, budget) ON departments TO dt_staff;
CREATE POLICY dept_visible ON departments FOR SELECT TO dt_staff
  USING (region = ANY(@{my_regions}) OR id = @{me.dept_id});

-- employees: a different filter per role, identical columns, one
-- restrictive policy for everyone.
GRANT SELECT (id, name, dept_id, manager_id, salary, hired, grade)
  ON employees TO dt_sales, dt_emea, dt_mgr, dt_audit;
CREATE POLICY emp_same_dept ON employees FOR SELECT TO dt_sales
  USING (dept_id = @{me.dept_id});
CREATE POLICY emp_emea_seniors ON employees FOR SELECT TO dt_emea
  USING (grade >= 5);
CREATE POLICY emp_by_grade ON employees FOR SELECT TO dt_mgr
  USING (grade <= @{me.max_grade} OR dept_id = @{me.dept_id});
CREATE POLICY emp_all ON employees FOR SELECT TO dt_audit
  USING (true);
CREATE POLICY emp_hired_before_2025 ON employees AS RESTRICTIVE FOR SELECT
  TO dt_sales, dt_emea, dt_mgr, dt_audit
  USING (hired < DATE '2025-01-01');

-- orders: ann sees her regions' orders and the large EMEA ones; bob his
-- department's; cy closed and archived ones. Drafts are hidden from every
-- session (a restrictive policy TO PUBLIC).
GRANT SELECT (id, emp_id, dept_id, product_id, customer, amount, status, region, created, note)
  ON orders TO dt_sales, dt_emea, dt_mgr, dt_audit;
CREATE POLICY orders_region ON orders FOR SELECT TO dt_sales
  USING (region = ANY(@{my_regions}));
CREATE POLICY orders_emea_large ON orders FOR SELECT TO dt_emea
  USING (region = 'emea' AND amount > 100);
CREATE POLICY orders_dept ON orders FOR SELECT TO dt_mgr
  USING (dept_id = @{me.dept_id});
CREATE POLICY orders_audit ON orders FOR SELECT TO dt_audit
  USING (status IN ('closed', 'archived'));
CREATE POLICY orders_no_drafts ON orders AS RESTRICTIVE FOR SELECT
  USING (status <> 'draft');

-- products: not policed; every row, without cost.
GRANT SELECT (id, name, category, price) ON products TO dt_staff;
