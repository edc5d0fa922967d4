-- What the gateway's in-memory snapshot is made of changes rarely; a version
-- bumped by triggers on every such change lets each replica reload only then
-- (it polls this one row every 500 ms instead of reloading whole tables).
-- Columns the snapshot does not read (a key's last use, names) do not count.
CREATE TABLE gateway_config (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO gateway_config (id, version) VALUES (1, 0);

CREATE TRIGGER workspace_api_keys_insert_bumps_gateway_config AFTER INSERT ON workspace_api_keys
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER workspace_api_keys_delete_bumps_gateway_config AFTER DELETE ON workspace_api_keys
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER workspace_api_keys_update_bumps_gateway_config AFTER UPDATE OF workspace_id, secret_sha256, allowed_models, requests_per_minute, expires_at, revoked_at ON workspace_api_keys
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER workspaces_insert_bumps_gateway_config AFTER INSERT ON workspaces
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER workspaces_delete_bumps_gateway_config AFTER DELETE ON workspaces
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER workspaces_update_bumps_gateway_config AFTER UPDATE OF org_id, archived_at ON workspaces
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER workspace_limits_insert_bumps_gateway_config AFTER INSERT ON workspace_limits
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER workspace_limits_delete_bumps_gateway_config AFTER DELETE ON workspace_limits
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER workspace_limits_update_bumps_gateway_config AFTER UPDATE ON workspace_limits
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER organizations_insert_bumps_gateway_config AFTER INSERT ON organizations
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER organizations_delete_bumps_gateway_config AFTER DELETE ON organizations
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER organizations_update_bumps_gateway_config AFTER UPDATE OF monthly_limit_micros ON organizations
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER org_billing_insert_bumps_gateway_config AFTER INSERT ON org_billing
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER org_billing_delete_bumps_gateway_config AFTER DELETE ON org_billing
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER org_billing_update_bumps_gateway_config AFTER UPDATE ON org_billing
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER models_insert_bumps_gateway_config AFTER INSERT ON models
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER models_delete_bumps_gateway_config AFTER DELETE ON models
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER models_update_bumps_gateway_config AFTER UPDATE ON models
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
END;
