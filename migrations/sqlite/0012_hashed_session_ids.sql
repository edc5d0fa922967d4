-- Sessions are now keyed by a SHA-256 of their id (a bearer secret kept only in
-- the cookie). Rows keyed by clear ids can no longer be found: drop them; their
-- holders sign in again.
DELETE FROM sessions;
