-- cathy is the contact of Acme (customer); sam sells in the east, vic in
-- the west and also audits; ada audits. README, "Permission bits".

INSERT INTO customers (id, name, region, balance, credit_limit) VALUES
    (1, 'Acme', 'east', 1200.00, 5000.00),
    (2, 'Globex', 'east', 300.00, 2000.00),
    (3, 'Initech', 'west', 0.00, 1000.00),
    (4, 'Umbrella', 'west', 4500.00, 10000.00);

INSERT INTO orders (id, customer_id, amount, discount, notes) VALUES
    (1, 1, 100.00, 0, 'first order'),
    (2, 1, 250.00, 5, 'repeat'),
    (3, 2, 75.00, 0, NULL),
    (4, 3, 400.00, 10, 'bulk'),
    (5, 4, 1200.00, 15, 'priority');

INSERT INTO user_roles (login, role_name) VALUES
    ('cathy', 'customer'),
    ('sam', 'sales'),
    ('vic', 'sales'),
    ('vic', 'auditor'),
    ('ada', 'auditor');

INSERT INTO customer_contacts (login, customer_id) VALUES ('cathy', 1);

INSERT INTO sales_reps (login, region, max_discount) VALUES
    ('sam', 'east', 10),
    ('vic', 'west', 20);
