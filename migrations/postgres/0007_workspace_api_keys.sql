-- Workspace API keys: what the gateway accepts. Key = chy_ws_<public_id>_<secret>;
-- only a SHA-256 of the secret is kept.
CREATE TABLE workspace_api_keys (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    public_id        TEXT NOT NULL UNIQUE,
    secret_sha256    TEXT NOT NULL,
    secret_last4     TEXT NOT NULL,
    -- model ids, comma-separated; NULL allows what the workspace allows
    allowed_models   TEXT,
    -- the person the key is for (Mistral's user_id), if any
    owner_user_id    TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_by_label TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT,
    last_used_at     BIGINT,
    revoked_at       BIGINT,
    -- set by a rotation: the key that replaces this one (which keeps working
    -- until its expires_at, the end of the grace period)
    rotated_to       TEXT
);
CREATE INDEX workspace_api_keys_workspace ON workspace_api_keys (workspace_id);
CREATE INDEX workspace_api_keys_org ON workspace_api_keys (org_id);
