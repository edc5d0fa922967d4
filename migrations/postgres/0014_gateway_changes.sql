-- The gateway's snapshot applies changes one by one instead of reloading whole
-- tables: every change it reads is logged with a version of its own, and
-- `gateway_config.version` is the last one. A replica at version V reads the
-- rows after V, and reloads whole only when some of them were pruned.
--   kind: key (entity_id is the key's public id) | workspace | org | model
--
-- Rows are logged unnumbered as they change, and numbered once per statement
-- (updating the one `gateway_config` row per row would slow a bulk change down
-- quadratically: each update of one row in a transaction walks all its earlier
-- versions). The number is taken under that row's lock, held until commit, so
-- versions are committed in order and without gaps.
CREATE TABLE gateway_changes (
    id        BIGSERIAL PRIMARY KEY,
    version   BIGINT UNIQUE,
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

-- Row by row. Arguments: the change's kind, and the column naming the changed entity.
CREATE FUNCTION log_gateway_change() RETURNS trigger AS $$
DECLARE
    changed RECORD;
BEGIN
    IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
    INSERT INTO gateway_changes (kind, entity_id) VALUES (TG_ARGV[0], to_jsonb(changed) ->> TG_ARGV[1]);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- Once per statement: numbers this transaction's unnumbered changes (other
-- transactions' are not visible to it) after the last version.
CREATE FUNCTION number_gateway_changes() RETURNS trigger AS $$
DECLARE
    pending BIGINT;
    last    BIGINT;
BEGIN
    SELECT count(*) INTO pending FROM gateway_changes WHERE version IS NULL;
    IF pending > 0 THEN
        UPDATE gateway_config SET version = version + pending WHERE id = 1 RETURNING version INTO last;
        UPDATE gateway_changes c SET version = last - pending + numbered.n
        FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM gateway_changes WHERE version IS NULL) numbered
        WHERE c.id = numbered.id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- Columns the snapshot does not read (a key's last use, names) do not count.
CREATE TRIGGER workspace_api_keys_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE OF workspace_id, secret_sha256, allowed_models, requests_per_minute, expires_at, revoked_at ON workspace_api_keys
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('key', 'public_id');
CREATE TRIGGER workspace_api_keys_numbers_gateway_changes AFTER INSERT OR DELETE OR UPDATE OF workspace_id, secret_sha256, allowed_models, requests_per_minute, expires_at, revoked_at ON workspace_api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION number_gateway_changes();

CREATE TRIGGER workspaces_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE OF org_id, archived_at ON workspaces
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('workspace', 'id');
CREATE TRIGGER workspaces_numbers_gateway_changes AFTER INSERT OR DELETE OR UPDATE OF org_id, archived_at ON workspaces
    FOR EACH STATEMENT EXECUTE FUNCTION number_gateway_changes();

CREATE TRIGGER workspace_limits_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE ON workspace_limits
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('workspace', 'workspace_id');
CREATE TRIGGER workspace_limits_numbers_gateway_changes AFTER INSERT OR DELETE OR UPDATE ON workspace_limits
    FOR EACH STATEMENT EXECUTE FUNCTION number_gateway_changes();

CREATE TRIGGER organizations_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE OF monthly_limit_micros ON organizations
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('org', 'id');
CREATE TRIGGER organizations_numbers_gateway_changes AFTER INSERT OR DELETE OR UPDATE OF monthly_limit_micros ON organizations
    FOR EACH STATEMENT EXECUTE FUNCTION number_gateway_changes();

CREATE TRIGGER org_billing_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE ON org_billing
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('org', 'org_id');
CREATE TRIGGER org_billing_numbers_gateway_changes AFTER INSERT OR DELETE OR UPDATE ON org_billing
    FOR EACH STATEMENT EXECUTE FUNCTION number_gateway_changes();

CREATE TRIGGER models_logs_gateway_change AFTER INSERT OR DELETE OR UPDATE ON models
    FOR EACH ROW EXECUTE FUNCTION log_gateway_change('model', 'id');
CREATE TRIGGER models_numbers_gateway_changes AFTER INSERT OR DELETE OR UPDATE ON models
    FOR EACH STATEMENT EXECUTE FUNCTION number_gateway_changes();
