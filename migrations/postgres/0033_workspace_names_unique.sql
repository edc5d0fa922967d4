-- Two workspaces of one Organization may not be named alike, whatever the
-- case ("Staging" and "staging" showed as identical rows). Workspaces that
-- already share a name keep it for the oldest; each later one is renamed
-- with the start of its id, which no other workspace's name can share.
UPDATE workspaces SET name = name || ' (' || substr(id, 1, 8) || ')'
WHERE EXISTS (
    SELECT 1 FROM workspaces older
    WHERE older.org_id = workspaces.org_id
      AND lower(older.name) = lower(workspaces.name)
      AND (older.created_at < workspaces.created_at
           OR (older.created_at = workspaces.created_at AND older.id < workspaces.id))
);
-- The lower-cased name, written by the application (which lower-cases all of
-- Unicode); the rows above are lower-cased here.
ALTER TABLE workspaces ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE workspaces SET name_key = lower(name);
CREATE UNIQUE INDEX workspaces_name_once ON workspaces (org_id, name_key);
