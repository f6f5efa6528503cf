-- Events: every state change, written in the same transaction as the change
-- (the transactional outbox the queue relays from). `sequence` orders the
-- events of one object.
CREATE TABLE events (
    id BYTEA PRIMARY KEY,
    type TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id BYTEA NOT NULL,
    sequence BIGINT NOT NULL,
    data TEXT NOT NULL,
    request_id TEXT,
    created BIGINT NOT NULL
);
CREATE INDEX events_type_id ON events (type, id);
CREATE INDEX events_object_id ON events (object_id, id);
