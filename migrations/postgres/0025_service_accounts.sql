-- Service accounts: non-human members of one workspace that own API keys, so
-- automation keeps working whoever leaves. A name is a slug, unique among the
-- workspace's live accounts; a deleted account keeps its row (deleted_at) for
-- the audit log and its keys' history.
CREATE TABLE service_accounts (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT,
    -- its workspace role: admin | member
    role         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);
CREATE UNIQUE INDEX service_accounts_live_name ON service_accounts (workspace_id, name) WHERE deleted_at IS NULL;
CREATE INDEX service_accounts_org ON service_accounts (org_id, created_at);

-- A key is for a person (owner_user_id), for a service account, or for neither.
ALTER TABLE workspace_api_keys ADD COLUMN service_account_id TEXT REFERENCES service_accounts (id);
CREATE INDEX workspace_api_keys_service_account ON workspace_api_keys (service_account_id);
