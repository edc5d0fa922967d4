-- Email addresses proven by their owners: by the link emailed at sign-up, an
-- invitation accepted through its emailed link, a password reset, or an
-- identity provider. Accounts from before count as proven.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
UPDATE users SET email_verified_at = created_at;
-- Links that prove an address, sent at sign-up: the token is in the email only.
CREATE TABLE email_verifications (
    token_sha256 TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX email_verifications_user ON email_verifications (user_id);
