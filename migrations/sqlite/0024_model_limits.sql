-- Mistral's workspace rate limits: requests per second, and tokens per minute
-- and per month for each model (`tokens_limits_by_model`), kept as the JSON map
-- `{"<model>": {"tokens_per_minute": n|null, "tokens_per_month": n|null}}`.
-- NULL: no limit. The gateway reads them with the rest of the workspace's limits.
ALTER TABLE workspace_limits ADD COLUMN requests_per_second BIGINT;
ALTER TABLE workspace_limits ADD COLUMN model_token_limits TEXT;
