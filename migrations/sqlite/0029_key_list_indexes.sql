-- Keys are listed newest first, a page at a time past the last key shown
-- (keyset on created_at then id), across the Organization or in one
-- workspace. These indexes answer both orders as range scans however many keys
-- there are; they replace the single-column ones, whose lookups they also serve.
CREATE INDEX workspace_api_keys_org_recent ON workspace_api_keys (org_id, created_at, id);
CREATE INDEX workspace_api_keys_workspace_recent ON workspace_api_keys (workspace_id, created_at, id);
DROP INDEX workspace_api_keys_org;
DROP INDEX workspace_api_keys_workspace;
