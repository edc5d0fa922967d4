-- User groups of an Organization: members, and workspace grants with a workspace
-- role. A person's access to a workspace is the union of their direct grant
-- (workspace_members) and the grants of every group they belong to.

CREATE TABLE user_groups (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- lower-cased name: two groups of one Organization cannot differ by case only
    name_key    TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    UNIQUE (org_id, name_key)
);

CREATE TABLE user_group_members (
    group_id   TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX user_group_members_user ON user_group_members (user_id);

CREATE TABLE user_group_workspaces (
    group_id     TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (group_id, workspace_id)
);
CREATE INDEX user_group_workspaces_workspace ON user_group_workspaces (workspace_id);
