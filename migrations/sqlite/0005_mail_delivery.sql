-- SMTP delivery of the outbox: retries with back-off, and a lease so two
-- servers never send the same message at once.
ALTER TABLE outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
-- when the message may next be tried (a lease while one server sends it)
ALTER TABLE outbox ADD COLUMN next_attempt_at BIGINT;
CREATE INDEX outbox_pending ON outbox (sent_at, next_attempt_at);
