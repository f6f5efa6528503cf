-- The embedded queue. Consumers subscribe to event types; a trigger turns
-- every committed event into one job per subscribed consumer inside the
-- event's own transaction, so no event can be committed without its jobs.
CREATE TABLE queue_consumers (
    name TEXT NOT NULL,
    event_type TEXT NOT NULL,
    PRIMARY KEY (name, event_type)
) WITHOUT ROWID;

-- A job is ready when `run_at` (Unix ms) has passed. Claiming one moves
-- `run_at` to the end of its lease and gives it a fresh token, so a job
-- whose worker died is claimable again after the lease, and only the
-- current holder (by token) can finish or reschedule it.
CREATE TABLE jobs (
    consumer TEXT NOT NULL,
    message_id BLOB NOT NULL,
    job_key TEXT,
    run_at INTEGER NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    lease_token INTEGER,
    last_error TEXT,
    created INTEGER NOT NULL,
    PRIMARY KEY (consumer, message_id)
) WITHOUT ROWID;
CREATE INDEX jobs_ready ON jobs (consumer, run_at);

CREATE TRIGGER events_enqueue AFTER INSERT ON events
BEGIN
    INSERT INTO jobs (consumer, message_id, run_at, created)
    SELECT DISTINCT name, NEW.id, NEW.created * 1000, NEW.created * 1000
    FROM queue_consumers WHERE event_type = '*' OR event_type = NEW.type;
END;

-- Jobs that used up their deliveries, kept for an operator to inspect and replay.
CREATE TABLE dead_jobs (
    consumer TEXT NOT NULL,
    message_id BLOB NOT NULL,
    job_key TEXT,
    deliveries INTEGER NOT NULL,
    last_error TEXT,
    created INTEGER NOT NULL,
    died INTEGER NOT NULL,
    PRIMARY KEY (consumer, message_id)
) WITHOUT ROWID;

-- What each consumer has done, written in the same transaction as the
-- effect, so a redelivered message has no second effect whatever the
-- broker's duplicate window.
CREATE TABLE processed_messages (
    consumer TEXT NOT NULL,
    message_id BLOB NOT NULL,
    processed INTEGER NOT NULL,
    PRIMARY KEY (consumer, message_id)
) WITHOUT ROWID;
CREATE INDEX processed_messages_processed ON processed_messages (processed);

-- Accounts funded by an external processor: payments from them wait for it.
ALTER TABLE accounts ADD COLUMN processor INTEGER NOT NULL DEFAULT 0 CHECK (processor IN (0, 1));
