-- Enforced single sign-on: while sso_enforced_at is set, members whose email is
-- in one of the Organization's verified domains log in only through its identity
-- provider (never with a password).
ALTER TABLE organizations ADD COLUMN sso_enforced_at BIGINT;
-- How each session was signed in: password | oidc | saml. Requiring single
-- sign-on ends the password ones; NULL (sessions from before) counts as password.
ALTER TABLE sessions ADD COLUMN via TEXT;
