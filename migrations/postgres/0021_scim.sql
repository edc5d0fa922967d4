-- SCIM 2.0 provisioning: an Organization's identity provider creates, updates
-- and deprovisions its people and groups at /scim/v2 with a bearer token.

-- Tokens: made by an Admin in Settings, shown once; only a SHA-256 of the secret is kept.
CREATE TABLE scim_tokens (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    public_id     TEXT NOT NULL UNIQUE,
    secret_sha256 TEXT NOT NULL,
    secret_last4  TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX scim_tokens_org ON scim_tokens (org_id);

-- People the identity provider knows in an Organization, with the names it
-- gave them. They are active while they are members (org_members); a
-- deprovisioned person stays here, no longer a member, until deleted.
--   user_name_key: lower-cased user_name (SCIM compares userName without case)
--   display_name: what the provider calls them (also the account's name when
--     the account is the Organization's, see account_created)
--   account_created: the account was made by this provisioning
CREATE TABLE scim_users (
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_name       TEXT NOT NULL,
    user_name_key   TEXT NOT NULL,
    external_id     TEXT,
    display_name    TEXT,
    account_created BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id),
    UNIQUE (org_id, user_name_key)
);
CREATE INDEX scim_users_external_id ON scim_users (org_id, external_id);

-- Groups the identity provider manages (scim_managed_at set): only it changes
-- their name and members; Admins still decide what they grant.
ALTER TABLE user_groups ADD COLUMN scim_managed_at BIGINT;
ALTER TABLE user_groups ADD COLUMN scim_external_id TEXT;
ALTER TABLE user_groups ADD COLUMN updated_at BIGINT;

-- The members the identity provider gave a managed group. Those who are
-- members of the Organization are in user_group_members too; a deprovisioned
-- person is taken out of it (and so loses what the group granted) and put
-- back if provisioned again.
CREATE TABLE scim_group_members (
    group_id   TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);
