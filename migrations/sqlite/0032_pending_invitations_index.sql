-- Pending invitations are listed oldest first, a page at a time past the last
-- one shown (keyset on created_at then id). Accepted and revoked invitations
-- stay for the record and would otherwise be skipped one by one.
CREATE INDEX invitations_pending ON invitations (org_id, created_at, id)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
