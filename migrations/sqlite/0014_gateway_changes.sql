-- The gateway's snapshot applies changes one by one instead of reloading whole
-- tables: every change it reads is logged with the version it bumped
-- `gateway_config` to. SQLite has one writer at a time, so versions are
-- committed in order and without gaps; a replica at version V reads the rows
-- after V, and reloads whole only when some of them were pruned.
--   kind: key (entity_id is the key's public id) | workspace | org | model
CREATE TABLE gateway_changes (
    version   BIGINT PRIMARY KEY,
    kind      TEXT NOT NULL,
    entity_id TEXT NOT NULL
);

DROP TRIGGER workspace_api_keys_insert_bumps_gateway_config;
DROP TRIGGER workspace_api_keys_delete_bumps_gateway_config;
DROP TRIGGER workspace_api_keys_update_bumps_gateway_config;
DROP TRIGGER workspaces_insert_bumps_gateway_config;
DROP TRIGGER workspaces_delete_bumps_gateway_config;
DROP TRIGGER workspaces_update_bumps_gateway_config;
DROP TRIGGER workspace_limits_insert_bumps_gateway_config;
DROP TRIGGER workspace_limits_delete_bumps_gateway_config;
DROP TRIGGER workspace_limits_update_bumps_gateway_config;
DROP TRIGGER organizations_insert_bumps_gateway_config;
DROP TRIGGER organizations_delete_bumps_gateway_config;
DROP TRIGGER organizations_update_bumps_gateway_config;
DROP TRIGGER org_billing_insert_bumps_gateway_config;
DROP TRIGGER org_billing_delete_bumps_gateway_config;
DROP TRIGGER org_billing_update_bumps_gateway_config;
DROP TRIGGER models_insert_bumps_gateway_config;
DROP TRIGGER models_delete_bumps_gateway_config;
DROP TRIGGER models_update_bumps_gateway_config;

-- Columns the snapshot does not read (a key's last use, names) do not count.

CREATE TRIGGER workspace_api_keys_insert_logs_gateway_change AFTER INSERT ON workspace_api_keys
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'key', NEW.public_id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER workspace_api_keys_delete_logs_gateway_change AFTER DELETE ON workspace_api_keys
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'key', OLD.public_id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER workspace_api_keys_update_logs_gateway_change AFTER UPDATE OF workspace_id, secret_sha256, allowed_models, requests_per_minute, expires_at, revoked_at ON workspace_api_keys
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'key', NEW.public_id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER workspaces_insert_logs_gateway_change AFTER INSERT ON workspaces
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'workspace', NEW.id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER workspaces_delete_logs_gateway_change AFTER DELETE ON workspaces
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'workspace', OLD.id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER workspaces_update_logs_gateway_change AFTER UPDATE OF org_id, archived_at ON workspaces
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'workspace', NEW.id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER workspace_limits_insert_logs_gateway_change AFTER INSERT ON workspace_limits
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'workspace', NEW.workspace_id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER workspace_limits_delete_logs_gateway_change AFTER DELETE ON workspace_limits
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'workspace', OLD.workspace_id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER workspace_limits_update_logs_gateway_change AFTER UPDATE ON workspace_limits
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'workspace', NEW.workspace_id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER organizations_insert_logs_gateway_change AFTER INSERT ON organizations
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'org', NEW.id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER organizations_delete_logs_gateway_change AFTER DELETE ON organizations
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'org', OLD.id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER organizations_update_logs_gateway_change AFTER UPDATE OF monthly_limit_micros ON organizations
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'org', NEW.id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER org_billing_insert_logs_gateway_change AFTER INSERT ON org_billing
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'org', NEW.org_id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER org_billing_delete_logs_gateway_change AFTER DELETE ON org_billing
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'org', OLD.org_id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER org_billing_update_logs_gateway_change AFTER UPDATE ON org_billing
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'org', NEW.org_id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER models_insert_logs_gateway_change AFTER INSERT ON models
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'model', NEW.id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER models_delete_logs_gateway_change AFTER DELETE ON models
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'model', OLD.id FROM gateway_config WHERE id = 1;
END;

CREATE TRIGGER models_update_logs_gateway_change AFTER UPDATE ON models
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    INSERT INTO gateway_changes (version, kind, entity_id)
        SELECT version, 'model', NEW.id FROM gateway_config WHERE id = 1;
END;
