-- Live API Creator-style role security: the roles of a user come from the
-- application's user_roles table (a roles global by SQL), row filters use
-- per-user globals (@{global.attr}), each role has its own column list,
-- and a user with several roles sees the union: a row through any role, a
-- cell when a role that admits the row has the column (PRODUCT.md §3.5).
-- Schema and data: liveapicreator/setup/. What each user sees: README,
-- "Permission bits". Passwords equal the logins (plain text: hashed at load).

CREATE ROLE customer;
CREATE ROLE sales;
CREATE ROLE auditor;

-- No roles here: they come from user_roles at login.
CREATE USER cathy PASSWORD 'cathy';
CREATE USER sam PASSWORD 'sam';
CREATE USER vic PASSWORD 'vic';
CREATE USER ada PASSWORD 'ada';

CREATE GLOBAL roles AS SELECT role_name FROM user_roles WHERE login = @{login_id};

CREATE GLOBAL current_customer FOR ROLE customer REQUIRED
  AS SELECT customer_id AS id FROM customer_contacts WHERE login = @{login_id};
CREATE GLOBAL territory FOR ROLE sales REQUIRED
  AS SELECT region, max_discount FROM sales_reps WHERE login = @{login_id};
-- A list global: the ids of the customers in the territory.
CREATE GLOBAL territory_customers FOR ROLE sales
  AS SELECT c.id FROM customers c JOIN sales_reps r ON r.region = c.region
      WHERE r.login = @{login_id};

-- Customers: their own row, without region and credit limit.
GRANT SELECT (id, name, balance) ON customers TO customer;
CREATE POLICY own_customer ON customers FOR SELECT TO customer
  USING (id = @{current_customer.id});
GRANT SELECT (id, customer_id, amount) ON orders TO customer;
CREATE POLICY own_orders ON orders FOR SELECT TO customer
  USING (customer_id = @{current_customer.id});

-- Sales: the customers of their territory with region and credit limit,
-- but not the balance; their orders with discount and notes, and may set
-- a discount up to their own maximum.
GRANT SELECT (id, name, region, credit_limit) ON customers TO sales;
CREATE POLICY territory_customers ON customers FOR SELECT TO sales
  USING (region = @{territory.region});
GRANT SELECT, UPDATE (discount, notes) ON orders TO sales;
CREATE POLICY territory_orders ON orders FOR ALL TO sales
  USING (customer_id = ANY(@{territory_customers}))
  WITH CHECK (discount <= @{territory.max_discount});

-- Auditors: every customer's balance and every order's amount, read only.
GRANT SELECT (id, name, balance) ON customers TO auditor;
CREATE POLICY audit_customers ON customers FOR SELECT TO auditor USING (true);
GRANT SELECT (id, customer_id, amount) ON orders TO auditor;
CREATE POLICY audit_orders ON orders FOR SELECT TO auditor USING (true);
