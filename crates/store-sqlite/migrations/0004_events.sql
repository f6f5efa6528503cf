-- Events: every state change, written in the same transaction as the change
-- (the transactional outbox the queue relays from). `sequence` orders the
-- events of one object.
CREATE TABLE events (
    id BLOB PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id BLOB NOT NULL,
    sequence INTEGER NOT NULL,
    data TEXT NOT NULL,
    request_id TEXT,
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX events_type_id ON events (type, id);
CREATE INDEX events_object_id ON events (object_id, id);
