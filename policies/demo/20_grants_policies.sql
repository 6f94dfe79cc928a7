-- Demo grants, row policies and globals (PRODUCT.md §5). Tests and the
-- README rely on exactly these; keep them in step with §5.

-- The login's own employees row: id and department of whoever signed in.
-- Required: a sales_rep or manager without an employees row (eve) cannot
-- log in.
CREATE GLOBAL current_employee FOR ROLE employee REQUIRED
  AS SELECT id, department_id FROM employees WHERE login = @{login_id};

-- Every employee sees the names of all employees, but not salary or ssn.
GRANT SELECT (id, login, name, department_id) ON employees TO employee;
CREATE POLICY all_names ON employees FOR SELECT TO employee
  USING (true);

-- Sales reps work on their own orders and never see margin.
GRANT SELECT (id, customer_id, salesrep_id, amount, notes, status),
      UPDATE (amount, notes, status),
      INSERT ON orders TO sales_rep;
CREATE POLICY own_orders ON orders FOR ALL TO sales_rep
  USING (salesrep_id = @{current_employee.id});
CREATE POLICY no_archived ON orders AS RESTRICTIVE FOR SELECT TO sales_rep
  USING (status <> 'archived');

-- Customers are not policed: sales reps see every row, without credit_limit.
GRANT SELECT (id, name, region) ON customers TO sales_rep;

-- Managers see the orders of their department's sales reps, archived ones
-- included, with every column.
GRANT SELECT ON orders TO manager;
CREATE POLICY department_orders ON orders FOR SELECT TO manager
  USING (salesrep_id IN (SELECT id FROM employees
                         WHERE department_id = @{current_employee.department_id}));

-- Managers see salaries, but only in their own department; through
-- all_names they still see the names of everyone.
GRANT SELECT (id, name, salary) ON employees TO manager;
CREATE POLICY department_salaries ON employees FOR SELECT TO manager
  USING (department_id = @{current_employee.department_id});
