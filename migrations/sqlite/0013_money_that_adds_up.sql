-- The most tokens one image can cost on a model: a chat request's hold counts
-- each image at this worst case. NULL: the model takes no images, and a request
-- with one is refused rather than under-held.
ALTER TABLE models ADD COLUMN image_max_tokens BIGINT;
-- Pixtral's encoders: at most 1024x1024 pixels in 16x16 patches (4,096 tokens)
-- plus one break token per row (64), the largest of Mistral's vision models.
UPDATE models SET image_max_tokens = 4160
WHERE id IN ('pixtral-large-latest', 'mistral-medium-latest', 'mistral-small-latest', 'magistral-medium-latest');

-- How each request ended, what was held for it, and whether its usage is the
-- upstream's own count or Chancery's estimate.
--   outcome: ok | client_closed | upstream_timeout | upstream_error
--   upstream_status: the provider's HTTP status, when it answered
--   usage_estimated: 1 when the provider reported no usage
ALTER TABLE usage_events ADD COLUMN held_micros BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN outcome TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE usage_events ADD COLUMN upstream_status BIGINT;
ALTER TABLE usage_events ADD COLUMN usage_estimated BIGINT NOT NULL DEFAULT 0;
