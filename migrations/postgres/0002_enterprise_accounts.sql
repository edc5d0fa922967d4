-- Enterprise Accounts link Organizations; their members (admins of linked
-- Organizations) manage them in the Backoffice, with Admin API keys per Organization.

CREATE TABLE enterprise_accounts (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- An Organization belongs to at most one Enterprise Account.
ALTER TABLE organizations ADD COLUMN enterprise_account_id TEXT REFERENCES enterprise_accounts (id);
CREATE INDEX organizations_enterprise ON organizations (enterprise_account_id);

-- accepted_at NULL: "Invite pending" until the person accepts.
CREATE TABLE enterprise_members (
    enterprise_account_id TEXT NOT NULL REFERENCES enterprise_accounts (id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invited_by            TEXT REFERENCES users (id),
    created_at            BIGINT NOT NULL,
    accepted_at           BIGINT,
    PRIMARY KEY (enterprise_account_id, user_id)
);
CREATE INDEX enterprise_members_user ON enterprise_members (user_id);

-- The key is chy_admin_<public_id>_<secret>; only a SHA-256 of the secret is kept.
CREATE TABLE admin_api_keys (
    id                    TEXT PRIMARY KEY,
    enterprise_account_id TEXT NOT NULL REFERENCES enterprise_accounts (id) ON DELETE CASCADE,
    org_id                TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    public_id             TEXT NOT NULL UNIQUE,
    secret_sha256         TEXT NOT NULL,
    secret_last4          TEXT NOT NULL,
    created_by            TEXT REFERENCES users (id),
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT,
    last_used_at          BIGINT,
    revoked_at            BIGINT
);
CREATE INDEX admin_api_keys_enterprise ON admin_api_keys (enterprise_account_id);
