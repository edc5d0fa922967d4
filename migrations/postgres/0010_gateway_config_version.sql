-- What the gateway's in-memory snapshot is made of changes rarely; a version
-- bumped by triggers on every such change lets each replica reload only then
-- (it polls this one row every 500 ms instead of reloading whole tables).
-- Columns the snapshot does not read (a key's last use, names) do not count.
CREATE TABLE gateway_config (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO gateway_config (id, version) VALUES (1, 0);

CREATE FUNCTION bump_gateway_config() RETURNS trigger AS $$
BEGIN
    UPDATE gateway_config SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER workspace_api_keys_bumps_gateway_config AFTER INSERT OR DELETE OR UPDATE OF workspace_id, secret_sha256, allowed_models, requests_per_minute, expires_at, revoked_at ON workspace_api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_gateway_config();

CREATE TRIGGER workspaces_bumps_gateway_config AFTER INSERT OR DELETE OR UPDATE OF org_id, archived_at ON workspaces
    FOR EACH STATEMENT EXECUTE FUNCTION bump_gateway_config();

CREATE TRIGGER workspace_limits_bumps_gateway_config AFTER INSERT OR DELETE OR UPDATE ON workspace_limits
    FOR EACH STATEMENT EXECUTE FUNCTION bump_gateway_config();

CREATE TRIGGER organizations_bumps_gateway_config AFTER INSERT OR DELETE OR UPDATE OF monthly_limit_micros ON organizations
    FOR EACH STATEMENT EXECUTE FUNCTION bump_gateway_config();

CREATE TRIGGER org_billing_bumps_gateway_config AFTER INSERT OR DELETE OR UPDATE ON org_billing
    FOR EACH STATEMENT EXECUTE FUNCTION bump_gateway_config();

CREATE TRIGGER models_bumps_gateway_config AFTER INSERT OR DELETE OR UPDATE ON models
    FOR EACH STATEMENT EXECUTE FUNCTION bump_gateway_config();
