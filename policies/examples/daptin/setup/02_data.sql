-- alice is an editor, bob a reader, carol an administrator; guests have no
-- account. README, "Permission bits". Bits: GuestPeek 1, GuestRead 2,
-- UserCRUD 12160 (UserPeek 128 | UserRead 256 | UserCreate 512 |
-- UserUpdate 1024 | UserDelete 2048 | UserRefer 8192), GroupPeek 16384,
-- GroupRead 32768, GroupUpdate 131072, GroupRefer 1048576.

INSERT INTO user_account (id, name, email) VALUES
    (1, 'Alice', 'alice'),
    (2, 'Bob', 'bob'),
    (3, 'Carol', 'carol');

INSERT INTO usergroup (id, name) VALUES
    (1, 'editors'),
    (2, 'readers'),
    (99, 'administrators');

INSERT INTO user_account_user_account_id_has_usergroup_usergroup_id (user_account_id, usergroup_id) VALUES
    (1, 1),
    (2, 2),
    (3, 99);

INSERT INTO document (id, title, body, user_account_id, permission) VALUES
    (1, 'Alice draft', 'only Alice', 1, 12160),                 -- UserCRUD
    (2, 'Team plan', 'editors read it', 2, 12160 | 32768),      -- UserCRUD | GroupRead
    (3, 'Release notes', 'for everyone', 1, 12160 | 2),         -- UserCRUD | GuestRead
    (4, 'Roadmap teaser', 'key only for others', 1, 12160 | 1), -- UserCRUD | GuestPeek
    (5, 'Board minutes', 'readers may read', 3, 12160 | 16384); -- UserCRUD | GroupPeek
SELECT setval('document_id_seq', 5);

-- Document 2 is shared with the editors for reading (GroupRead); document 5
-- with the readers, whose membership grants GroupPeek | GroupRead |
-- GroupUpdate | GroupRefer where the row's own Group bits have GroupPeek only.
INSERT INTO document_document_id_has_usergroup_usergroup_id (document_id, usergroup_id, permission) VALUES
    (2, 1, 32768),
    (5, 2, 16384 | 32768 | 131072 | 1048576);
