-- Raw usage rows, one per gateway call, are the largest table: 383 bytes a row
-- with their indexes. Compacted to about 134: ids in 16 bytes instead of 36
-- characters of text, no Organization or workspace (the key names both, and the
-- hourly roll-ups that reports and budgets read keep them), and one index, on
-- time, for the retention sweep (nothing reads raw rows by workspace or key).
-- New ids are UUIDv7, time-ordered: rows are appended, not scattered.
CREATE TABLE usage_events_compact (
    id              BLOB PRIMARY KEY,
    at              BIGINT NOT NULL,
    key_id          BLOB NOT NULL,
    model           TEXT NOT NULL,
    status          BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    upstream_status BIGINT,
    input_tokens    BIGINT NOT NULL,
    output_tokens   BIGINT NOT NULL,
    usage_estimated BIGINT NOT NULL,
    held_micros     BIGINT NOT NULL,
    cost_micros     BIGINT NOT NULL,
    latency_ms      BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO usage_events_compact
SELECT unhex(replace(id, '-', '')), at, unhex(replace(key_id, '-', '')), model, status, outcome,
       upstream_status, input_tokens, output_tokens, usage_estimated, held_micros, cost_micros, latency_ms
FROM usage_events;
DROP TABLE usage_events;
ALTER TABLE usage_events_compact RENAME TO usage_events;
CREATE INDEX usage_events_at ON usage_events (at);
