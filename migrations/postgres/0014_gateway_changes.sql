-- The gateway's snapshot applies changes one by one instead of reloading whole
-- tables: every change it reads is logged with the version it bumped
-- `gateway_config` to. The bump locks that one row until commit, so versions are
-- committed in order and without gaps; a replica at version V reads the rows
-- after V, and reloads whole only when some of them were pruned.
--   kind: key (entity_id is the key's public id) | workspace | org | model
CREATE TABLE gateway_changes (
    version   BIGINT PRIMARY KEY,
    kind      TEXT NOT NULL,
    entity_id TEXT NOT NULL
);

DROP TRIGGER workspace_api_keys_bumps_gateway_config ON workspace_api_keys;
DROP TRIGGER workspaces_bumps_gateway_config ON workspaces;
DROP TRIGGER workspace_limits_bumps_gateway_config ON workspace_limits;
DROP TRIGGER organizations_bumps_gateway_config ON organizations;
DROP TRIGGER org_billing_bumps_gateway_config ON org_billing;
DROP TRIGGER models_bumps_gateway_config ON models;
DROP FUNCTION bump_gateway_config();

-- Arguments: the change's kind, and the column naming the changed entity.
CREATE FUNCTION log_gateway_change() RETURNS trigger AS $$
DECLARE
    changed RECORD;
    bumped  BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
    UPDATE gateway_config SET version = version + 1 WHERE id = 1 RETURNING version INTO bumped;
    INSERT INTO gateway_changes (version, kind, entity_id)
        VALUES (bumped, TG_ARGV[0], to_jsonb(changed) ->> TG_ARGV[1]);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- Columns the snapshot does not read (a key's last use, names) do not count.
CREATE TRIGGER workspace_api_keys_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE OF workspace_id, secret_sha256, allowed_models, requests_per_minute, expires_at, revoked_at ON workspace_api_keys
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('key', 'public_id');

CREATE TRIGGER workspaces_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE OF org_id, archived_at ON workspaces
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('workspace', 'id');

CREATE TRIGGER workspace_limits_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE ON workspace_limits
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('workspace', 'workspace_id');

CREATE TRIGGER organizations_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE OF monthly_limit_micros ON organizations
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('org', 'id');

CREATE TRIGGER org_billing_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE ON org_billing
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('org', 'org_id');

CREATE TRIGGER models_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE ON models
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('model', 'id');
