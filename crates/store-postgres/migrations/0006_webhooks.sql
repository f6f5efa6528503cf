-- Webhook endpoints. `secret` and `previous_secret` are sealed under the
-- master key; the previous one keeps signing until `previous_secret_expires`.
CREATE TABLE webhook_endpoints (
    id BYTEA PRIMARY KEY,
    url TEXT NOT NULL,
    enabled_events TEXT NOT NULL,
    description TEXT,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    disabled_reason TEXT,
    secret BYTEA NOT NULL,
    previous_secret BYTEA,
    previous_secret_expires BIGINT,
    -- When the current run of failed attempts began (Unix ms); cleared by a 2xx.
    failing_since BIGINT,
    version BIGINT NOT NULL,
    created BIGINT NOT NULL
);

-- One delivery per (event, endpoint), made by the fan-out in the same
-- transaction as its processed-message record.
CREATE TABLE webhook_deliveries (
    id BYTEA PRIMARY KEY,
    endpoint_id BYTEA NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id BYTEA NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL,
    next_attempt BIGINT,
    last_status BIGINT,
    -- The replay that made it, if any (its original attempts stay as they were).
    replay_id BYTEA,
    created BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint_id ON webhook_deliveries (endpoint_id, id);

-- Every attempt, as the receiver answered it (or why it could not).
CREATE TABLE webhook_attempts (
    id BYTEA PRIMARY KEY,
    delivery_id BYTEA NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    duration_ms BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    response_status BIGINT,
    response_excerpt TEXT,
    error TEXT,
    created BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery_id ON webhook_attempts (delivery_id, id);

-- Replays: re-deliver an endpoint's matching events of a time range as new
-- deliveries. Durable and resumable: each page of events and the cursor
-- past it commit together.
CREATE TABLE webhook_replays (
    id BYTEA PRIMARY KEY,
    endpoint_id BYTEA NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    since_ms BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    cursor BYTEA,
    status TEXT NOT NULL CHECK (status IN ('running', 'done')),
    deliveries BIGINT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX webhook_replays_endpoint_id ON webhook_replays (endpoint_id, id);
