-- Billing, spending limits, workspace limits and the model catalogue.
-- Money is integer micro-USD (1 USD = 1 000 000).

-- An Organization's payment method; billing is active while a row exists.
-- Of a card only the brand, last 4 digits and expiry are kept.
CREATE TABLE org_billing (
    org_id              TEXT PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    -- card, aws or azure
    method              TEXT NOT NULL,
    card_brand          TEXT,
    card_last4          TEXT,
    card_exp_month      BIGINT,
    card_exp_year       BIGINT,
    marketplace_account TEXT,
    activated_at        BIGINT NOT NULL
);

-- The Organization's monthly spending limit; NULL means none.
ALTER TABLE organizations ADD COLUMN monthly_limit_micros BIGINT;

-- Limits of one workspace; a missing row or NULL column means no limit.
CREATE TABLE workspace_limits (
    workspace_id          TEXT PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    -- model ids, comma-separated; NULL allows every model of the catalogue
    allowed_models        TEXT,
    requests_per_minute   BIGINT,
    monthly_budget_micros BIGINT
);

-- Models the gateway serves, with prices per million tokens, set by the operator.
CREATE TABLE models (
    id                       TEXT PRIMARY KEY,
    -- chat or embedding
    kind                     TEXT NOT NULL,
    input_micros_per_mtok    BIGINT NOT NULL,
    output_micros_per_mtok   BIGINT NOT NULL,
    created_at               BIGINT NOT NULL
);

-- Defaults: Mistral's public list prices (USD per million tokens) when this was written.
INSERT INTO models (id, kind, input_micros_per_mtok, output_micros_per_mtok, created_at) VALUES
    ('mistral-large-latest',   'chat',      2000000, 6000000, 0),
    ('mistral-medium-latest',  'chat',       400000, 2000000, 0),
    ('mistral-small-latest',   'chat',       100000,  300000, 0),
    ('magistral-medium-latest','chat',      2000000, 5000000, 0),
    ('codestral-latest',       'chat',       300000,  900000, 0),
    ('ministral-8b-latest',    'chat',       100000,  100000, 0),
    ('ministral-3b-latest',    'chat',        40000,   40000, 0),
    ('open-mistral-nemo',      'chat',       150000,  150000, 0),
    ('pixtral-large-latest',   'chat',      2000000, 6000000, 0),
    ('mistral-embed',          'embedding',  100000,       0, 0);

-- Metered usage, rolled up per hour, workspace, key and model by the gateway's
-- flusher; spend this month is a sum over these rows, never over raw requests.
CREATE TABLE usage_hourly (
    hour_start     BIGINT NOT NULL,
    org_id         TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_id         TEXT NOT NULL,
    model          TEXT NOT NULL,
    requests       BIGINT NOT NULL,
    failed         BIGINT NOT NULL,
    input_tokens   BIGINT NOT NULL,
    output_tokens  BIGINT NOT NULL,
    cost_micros    BIGINT NOT NULL,
    PRIMARY KEY (hour_start, workspace_id, key_id, model)
);
CREATE INDEX usage_hourly_org ON usage_hourly (org_id, hour_start);
