-- Demo rows (PRODUCT.md §5). Tests and the README count these rows; keep them
-- in step with §5.

INSERT INTO departments (id, name) VALUES
    (1, 'Sales East'),
    (2, 'Sales West'),
    (3, 'Finance');

INSERT INTO employees (id, login, name, department_id, salary, ssn) VALUES
    (1, 'alice', 'Alice Adams', 1, 85000, '111-11-1111'),
    (2, 'bob', 'Bob Brown', 1, 72000, '222-22-2222'),
    (3, 'carol', 'Carol Chen', 2, 91000, '333-33-3333'),
    (4, 'dave', 'Dave Diaz', 1, 120000, '444-44-4444');

INSERT INTO customers (id, name, region, credit_limit) VALUES
    (1, 'Acme Corp', 'east', 50000),
    (2, 'Globex', 'east', 75000),
    (3, 'Initech', 'west', 20000),
    (4, 'Umbrella Ltd', 'west', 100000),
    (5, 'Stark Supplies', 'east', 30000);

-- salesrep 1 (alice): 1-4, salesrep 2 (bob): 5-7, salesrep 3 (carol): 8-12.
-- Every order is open except 4 and 9.
INSERT INTO orders (id, customer_id, salesrep_id, amount, margin, notes, status) VALUES
    (1, 1, 1, 1200.00, 18.50, 'Annual license renewal', 'open'),
    (2, 2, 1, 450.00, 22.00, 'Rush delivery requested', 'open'),
    (3, 5, 1, 3100.00, 15.75, 'Bulk discount applied', 'open'),
    (4, 1, 1, 980.00, 20.00, 'Closed out last quarter', 'archived'),
    (5, 2, 2, 2250.00, 12.40, 'Follow up in March', 'open'),
    (6, 5, 2, 640.00, 25.10, NULL, 'open'),
    (7, 1, 2, 1875.50, 17.30, 'Includes installation', 'open'),
    (8, 3, 3, 5200.00, 10.90, 'Multi-site rollout', 'open'),
    (9, 4, 3, 760.00, 19.60, 'Cancelled by customer', 'archived'),
    (10, 4, 3, 3325.00, 14.20, 'Net 60 terms', 'open'),
    (11, 3, 3, 410.25, 28.00, NULL, 'open'),
    (12, 4, 3, 9800.00, 9.50, 'Priority account', 'open');
