-- The native PostgreSQL equivalent of policies.sql, run as a superuser after
-- schema.sql. Roles are cluster-wide: created only if missing, so that the
-- fixture can be loaded into several databases of one cluster. The logins
-- are NOSUPERUSER NOBYPASSRLS and own nothing: the service role owns the
-- tables (schema.sql). Globals are read through the SECURITY DEFINER
-- functions of schema.sql, which return the same values pgward injects:
--   @{me.dept_id}    -> dt_global_dept()
--   @{me.max_grade}  -> dt_global_grade()
--   @{my_regions}    -> dt_global_regions()

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['dt_staff', 'dt_sales', 'dt_emea', 'dt_mgr', 'dt_audit',
                             'dt_ann', 'dt_bob', 'dt_cy'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
        END IF;
    END LOOP;
END
$$;
GRANT dt_staff TO dt_sales, dt_emea, dt_mgr, dt_audit;
GRANT dt_sales, dt_emea TO dt_ann;
GRANT dt_mgr TO dt_bob;
GRANT dt_audit TO dt_cy;
ALTER ROLE dt_ann LOGIN PASSWORD 'ann';
ALTER ROLE dt_bob LOGIN PASSWORD 'bob';
ALTER ROLE dt_cy LOGIN PASSWORD 'cy';

ALTER TABLE departments ENABLE ROW LEVEL SECURITY;
ALTER TABLE employees ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;

GRANT SELECT (id, name, region, budget) ON departments TO dt_staff;
CREATE POLICY dept_visible ON departments FOR SELECT TO dt_staff
  USING (region = ANY(dt_global_regions()) OR id = dt_global_dept());

GRANT SELECT (id, name, dept_id, manager_id, salary, hired, grade)
  ON employees TO dt_sales, dt_emea, dt_mgr, dt_audit;
CREATE POLICY emp_same_dept ON employees FOR SELECT TO dt_sales
  USING (dept_id = dt_global_dept());
CREATE POLICY emp_emea_seniors ON employees FOR SELECT TO dt_emea
  USING (grade >= 5);
CREATE POLICY emp_by_grade ON employees FOR SELECT TO dt_mgr
  USING (grade <= dt_global_grade() OR dept_id = dt_global_dept());
CREATE POLICY emp_all ON employees FOR SELECT TO dt_audit
  USING (true);
CREATE POLICY emp_hired_before_2025 ON employees AS RESTRICTIVE FOR SELECT
  TO dt_sales, dt_emea, dt_mgr, dt_audit
  USING (hired < DATE '2025-01-01');

GRANT SELECT (id, emp_id, dept_id, product_id, customer, amount, status, region, created, note)
  ON orders TO dt_sales, dt_emea, dt_mgr, dt_audit;
CREATE POLICY orders_region ON orders FOR SELECT TO dt_sales
  USING (region = ANY(dt_global_regions()));
CREATE POLICY orders_emea_large ON orders FOR SELECT TO dt_emea
  USING (region = 'emea' AND amount > 100);
CREATE POLICY orders_dept ON orders FOR SELECT TO dt_mgr
  USING (dept_id = dt_global_dept());
CREATE POLICY orders_audit ON orders FOR SELECT TO dt_audit
  USING (status IN ('closed', 'archived'));
CREATE POLICY orders_no_drafts ON orders AS RESTRICTIVE FOR SELECT
  USING (status <> 'draft');

GRANT SELECT (id, name, category, price) ON products TO dt_staff;
