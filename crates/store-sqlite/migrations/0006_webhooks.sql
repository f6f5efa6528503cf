-- Webhook endpoints. `secret` and `previous_secret` are sealed under the
-- master key; the previous one keeps signing until `previous_secret_expires`.
CREATE TABLE webhook_endpoints (
    id BLOB PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    enabled_events TEXT NOT NULL,
    description TEXT,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    disabled_reason TEXT,
    secret BLOB NOT NULL,
    previous_secret BLOB,
    previous_secret_expires INTEGER,
    -- When the current run of failed attempts began (Unix ms); cleared by a 2xx.
    failing_since INTEGER,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;

-- One delivery per (event, endpoint), made by the fan-out in the same
-- transaction as its processed-message record.
CREATE TABLE webhook_deliveries (
    id BLOB PRIMARY KEY NOT NULL,
    endpoint_id BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL,
    next_attempt INTEGER,
    last_status INTEGER,
    -- The replay that made it, if any (its original attempts stay as they were).
    replay_id BLOB,
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhook_deliveries_endpoint_id ON webhook_deliveries (endpoint_id, id);

-- Every attempt, as the receiver answered it (or why it could not).
CREATE TABLE webhook_attempts (
    id BLOB PRIMARY KEY NOT NULL,
    delivery_id BLOB NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    duration_ms INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    response_status INTEGER,
    response_excerpt TEXT,
    error TEXT,
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhook_attempts_delivery_id ON webhook_attempts (delivery_id, id);

-- Replays: re-deliver an endpoint's matching events of a time range as new
-- deliveries. Durable and resumable: each page of events and the cursor
-- past it commit together.
CREATE TABLE webhook_replays (
    id BLOB PRIMARY KEY NOT NULL,
    endpoint_id BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    since_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    cursor BLOB,
    status TEXT NOT NULL CHECK (status IN ('running', 'done')),
    deliveries INTEGER NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhook_replays_endpoint_id ON webhook_replays (endpoint_id, id);
