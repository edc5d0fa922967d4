-- Invitations to an Organization, allowed email domains, and the outbox of
-- emails (kept for the operator when no SMTP server is configured).

CREATE TABLE invitations (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    -- organization roles, comma-separated names: admin, billing, member
    roles            TEXT NOT NULL,
    -- the link's token is shown once, in the email; only its SHA-256 is kept
    token_sha256     TEXT NOT NULL UNIQUE,
    invited_by_label TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    accepted_at      BIGINT,
    accepted_by      TEXT REFERENCES users (id),
    revoked_at       BIGINT
);
CREATE INDEX invitations_org ON invitations (org_id);

CREATE TABLE org_allowed_domains (
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    PRIMARY KEY (org_id, domain)
);

CREATE TABLE outbox (
    id         TEXT PRIMARY KEY,
    to_email   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at    BIGINT
);
