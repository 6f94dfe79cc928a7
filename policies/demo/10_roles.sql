-- Demo roles and users (PRODUCT.md §5). Every password equals the login.
--
-- Passwords are stored as SCRAM-SHA-256 verifiers, in PostgreSQL's own
-- format (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>), so the
-- plain-text passwords never appear in a policy file.
--
-- The grants, the policies and the global `current_employee` of §5 are in
-- 20_grants_policies.sql.

CREATE ROLE employee;
CREATE ROLE sales_rep IN ROLE employee;
CREATE ROLE manager IN ROLE employee;

CREATE USER alice PASSWORD 'SCRAM-SHA-256$4096:RtQsFojADzMXtdPwBt8XEg==$wKD3ElEd4DfW3jOGyZ8v19RPWBoqcCN0zptKMQZzsMY=:gUtvnSfx3gGVKC4ZnrRDUZElcZhzdfSUev/0oNFL+XQ=' IN ROLE sales_rep;
CREATE USER bob PASSWORD 'SCRAM-SHA-256$4096:aYvH4OdLrtpFLY3zaBBO/A==$xGV6eTzWEgFoxCAGoZ9AsliCDsqPHr+H6VTlpMncbn8=:OmYQSkq2DBj0b1lf2h7wOvpKLZSXPluX3NqFn1jiZZI=' IN ROLE sales_rep;
CREATE USER carol PASSWORD 'SCRAM-SHA-256$4096:vkZJYKE/GUjL87Sk0opNUQ==$rcSXHtjNdFUK4MFcRqZTg6vpH7WEBaosuuRuEnWT0QA=:0qCqdt8v6CC7k2ZP8Ru5To9b0nAB9qndpwWdBEYSVFk=' IN ROLE sales_rep;
CREATE USER dave PASSWORD 'SCRAM-SHA-256$4096:Dz4eYqEtBkWChcPj1ZgqLg==$NK1MBlug6AkdKlDDUq4dFSSFstlQZ8t+osJRYYcEdD4=:i5Axj/eVMro14j3aWOcL3cxDysXEfJlbyxJLhKCpaPw=' IN ROLE manager;
-- eve has no row in employees: the required global current_employee has no
-- value for her, so her login fails with 28000.
CREATE USER eve PASSWORD 'SCRAM-SHA-256$4096:2TCsR9HqJlxbYn6/lIeSAw==$CX6uxWbhVzLyWzw3SCmeTsv3Uss52Ad6jOoktGMLtdo=:Qj9iRDckRMr41IdMZ2nCXPH278BkGna5CmrD4s2ydtQ=' IN ROLE sales_rep;
