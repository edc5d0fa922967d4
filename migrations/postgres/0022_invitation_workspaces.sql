-- Workspaces an invitation gives besides the Default one (ids, comma-separated;
-- empty for none). Those still active when it is accepted are joined as Member.
ALTER TABLE invitations ADD COLUMN workspace_ids TEXT NOT NULL DEFAULT '';
