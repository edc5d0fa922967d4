-- Who made an invitation (an actor's kind and id, as audit events name them),
-- so the invitations of someone who loses the right to invite end with that change.
-- Invitations made before this migration have neither and are left as they are.
ALTER TABLE invitations ADD COLUMN invited_by_type TEXT;
ALTER TABLE invitations ADD COLUMN invited_by_id TEXT;
CREATE INDEX invitations_inviter ON invitations (invited_by_type, invited_by_id);
-- The keys a person owns, revoked when they lose access to them.
CREATE INDEX workspace_api_keys_owner ON workspace_api_keys (owner_user_id);
