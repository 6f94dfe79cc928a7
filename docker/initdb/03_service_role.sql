-- pgward's service identity for the compose demo: no SUPERUSER, no
-- BYPASSRLS, privileges on the demo tables only.
CREATE ROLE pgward_service LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'service-demo-only';
GRANT USAGE ON SCHEMA public TO pgward_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO pgward_service;
