-- Idempotency records: one per (API key, Idempotency-Key). A claim is an
-- in-flight row with a fresh token; the operation's own transaction turns it
-- into the stored response only while the token still matches (fencing).
CREATE TABLE idempotency_keys (
    api_key_id BLOB NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    token BLOB NOT NULL,
    locked_at INTEGER NOT NULL,
    response_status INTEGER,
    response_body BLOB,
    created INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, idempotency_key)
) WITHOUT ROWID;
-- The reaper removes old records oldest first, in batches.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created);
