-- A tamper-evident audit log (see app/src/server/audit_chain.rs). Each event is
-- linked into its chain (one per Organization; events of none form their own,
-- chain '') by its place (chain_seq) and a SHA-256 hash over its content and the
-- hash before it (chain_hash). The head of each chain is kept here so that two
-- events recorded at once take consecutive places (its row is locked until the
-- recording transaction ends).
ALTER TABLE audit_events ADD COLUMN chain_seq BIGINT;
ALTER TABLE audit_events ADD COLUMN chain_hash TEXT;
CREATE UNIQUE INDEX audit_events_chain ON audit_events (COALESCE(org_id, ''), chain_seq);

CREATE TABLE audit_chain_heads (
    chain TEXT PRIMARY KEY,
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);

-- Checkpoints: a chain's head signed with the operator's Ed25519 key, so that
-- rewriting a chain whole, hashes recomputed, shows too. Append-only.
CREATE TABLE audit_checkpoints (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain      TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    head_hash  TEXT NOT NULL,
    signed_at  BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_chain ON audit_checkpoints (chain, seq);

-- Events recorded before this migration are linked once, by the first start
-- after it, in the order they were recorded: the only update the log ever
-- allows, and only to those events, only once.
CREATE TABLE audit_chain_backfill (up_to_id BIGINT NOT NULL);
INSERT INTO audit_chain_backfill (up_to_id) SELECT COALESCE(MAX(id), 0) FROM audit_events;

CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.chain_hash IS NULL AND NEW.chain_hash IS NOT NULL AND NEW.chain_seq IS NOT NULL
           AND OLD.id <= COALESCE((SELECT MAX(up_to_id) FROM audit_chain_backfill), 0)
           AND (NEW.id, NEW.org_id, NEW.actor_type, NEW.actor_id, NEW.actor_label, NEW.action,
                NEW.target_type, NEW.target_id, NEW.details, NEW.ip, NEW.created_at)
               IS NOT DISTINCT FROM
               (OLD.id, OLD.org_id, OLD.actor_type, OLD.actor_id, OLD.actor_label, OLD.action,
                OLD.target_type, OLD.target_id, OLD.details, OLD.ip, OLD.created_at) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
-- Row triggers do not see TRUNCATE: it is refused on its own.
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
