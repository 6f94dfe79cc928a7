-- Who may do what with each note (README, "Permission bits", ApiOmat):
-- ann is in sales, ben in support, cid in management.

INSERT INTO notes (id, title, payload, owner, allowed_read_roles, allowed_write_roles) VALUES
    (1, 'Q3 pipeline', 'six deals', 'ann', '{sales}', '{sales}'),
    (2, 'Ann private', 'call mum', 'ann', '{}', '{}'),
    (3, 'Ticket 4711', 'printer on fire', 'ben', '{support,sales}', '{support}'),
    (4, 'Escalations', 'two open', 'ben', '{management}', '{}'),
    (5, 'Budget', 'flat', 'cid', '{management}', '{management}'),
    (6, 'Company picnic', 'Friday', 'cid', '{sales,support,management}', '{management}');
