-- Password reset links: one per account at a time, for an hour, used once. The
-- link's token is in the email only; its SHA-256 is kept here.
CREATE TABLE password_resets (
    token_sha256 TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX password_resets_user ON password_resets (user_id);
