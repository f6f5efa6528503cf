-- Idempotency records: one per (API key, Idempotency-Key). A claim is an
-- in-flight row with a fresh token; the operation's own transaction turns it
-- into the stored response only while the token still matches (fencing).
CREATE TABLE idempotency_keys (
    api_key_id BYTEA NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    token BYTEA NOT NULL,
    locked_at BIGINT NOT NULL,
    response_status BIGINT,
    response_body BYTEA,
    created BIGINT NOT NULL,
    PRIMARY KEY (api_key_id, idempotency_key)
);
-- The reaper removes old records oldest first, in batches.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created);
