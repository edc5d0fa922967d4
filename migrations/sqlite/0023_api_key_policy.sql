-- The longest a workspace API key may live, in days: the Organization's, and a
-- stricter one per workspace. NULL: no maximum. Keys made beyond it are clamped.
ALTER TABLE organizations ADD COLUMN api_key_max_days BIGINT;
ALTER TABLE workspace_limits ADD COLUMN api_key_max_days BIGINT;
