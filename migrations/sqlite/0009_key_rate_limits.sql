-- A workspace API key's own requests-per-minute limit, under its workspace's; NULL: none.
ALTER TABLE workspace_api_keys ADD COLUMN requests_per_minute BIGINT;
