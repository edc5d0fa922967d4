-- One row per gateway request, written in batches off the request path.
CREATE TABLE usage_events (
    id            TEXT PRIMARY KEY,
    at            BIGINT NOT NULL,
    org_id        TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_id        TEXT NOT NULL,
    model         TEXT NOT NULL,
    -- the HTTP status returned to the caller (499: the caller went away mid-stream)
    status        BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_micros   BIGINT NOT NULL,
    latency_ms    BIGINT NOT NULL
);
CREATE INDEX usage_events_workspace ON usage_events (workspace_id, at);
CREATE INDEX usage_events_key ON usage_events (key_id, at);

-- Spending alerts sent, so each threshold of a month is announced once.
CREATE TABLE spend_alerts (
    -- organization or workspace id
    scope_id    TEXT NOT NULL,
    month_start BIGINT NOT NULL,
    -- 80 or 100 (percent of the limit)
    threshold   BIGINT NOT NULL,
    sent_at     BIGINT NOT NULL,
    PRIMARY KEY (scope_id, month_start, threshold)
);
