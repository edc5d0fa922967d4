-- A tamper-evident audit log (see app/src/server/audit_chain.rs). Each event is
-- linked into its chain (one per Organization; events of none form their own,
-- chain '') by its place (chain_seq) and a SHA-256 hash over its content and the
-- hash before it (chain_hash). The head of each chain is kept here so that two
-- events recorded at once take consecutive places.
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
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    chain      TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    head_hash  TEXT NOT NULL,
    signed_at  BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_chain ON audit_checkpoints (chain, seq);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;

-- Events recorded before this migration are linked once, by the first start
-- after it (SQLite cannot hash), in the order they were recorded: the only
-- update the log ever allows, and only to those events, only once.
CREATE TABLE audit_chain_backfill (up_to_id BIGINT NOT NULL);
INSERT INTO audit_chain_backfill (up_to_id) SELECT COALESCE(MAX(id), 0) FROM audit_events;

DROP TRIGGER audit_events_no_update;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NOT (
    OLD.chain_hash IS NULL AND NEW.chain_hash IS NOT NULL AND NEW.chain_seq IS NOT NULL
    AND OLD.id <= COALESCE((SELECT MAX(up_to_id) FROM audit_chain_backfill), 0)
    AND NEW.id = OLD.id AND NEW.org_id IS OLD.org_id AND NEW.actor_type IS OLD.actor_type
    AND NEW.actor_id IS OLD.actor_id AND NEW.actor_label IS OLD.actor_label AND NEW.action IS OLD.action
    AND NEW.target_type IS OLD.target_type AND NEW.target_id IS OLD.target_id
    AND NEW.details IS OLD.details AND NEW.ip IS OLD.ip AND NEW.created_at IS OLD.created_at
)
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
