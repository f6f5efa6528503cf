-- The embedded queue. Consumers subscribe to event types; a trigger turns
-- every committed event into one job per subscribed consumer inside the
-- event's own transaction, so no event can be committed without its jobs.
CREATE TABLE queue_consumers (
    name TEXT NOT NULL,
    event_type TEXT NOT NULL,
    PRIMARY KEY (name, event_type)
);

-- A job is ready when `run_at` (Unix ms) has passed. Claiming one moves
-- `run_at` to the end of its lease and gives it a fresh token, so a job
-- whose worker died is claimable again after the lease, and only the
-- current holder (by token) can finish or reschedule it. Workers of several
-- processes claim with FOR UPDATE SKIP LOCKED.
CREATE TABLE jobs (
    consumer TEXT NOT NULL,
    message_id BYTEA NOT NULL,
    job_key TEXT,
    run_at BIGINT NOT NULL,
    deliveries BIGINT NOT NULL DEFAULT 0,
    lease_token BIGINT,
    last_error TEXT,
    created BIGINT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX jobs_ready ON jobs (consumer, run_at);

-- One call per statement (a payment's events arrive in one statement), over
-- the statement's new rows.
CREATE FUNCTION events_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO jobs (consumer, message_id, run_at, created)
    SELECT DISTINCT c.name, e.id, e.created * 1000, e.created * 1000
    FROM new_events e JOIN queue_consumers c ON c.event_type = '*' OR c.event_type = e.type;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_enqueue AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION events_enqueue();

-- Jobs that used up their deliveries, kept for an operator to inspect and replay.
CREATE TABLE dead_jobs (
    consumer TEXT NOT NULL,
    message_id BYTEA NOT NULL,
    job_key TEXT,
    deliveries BIGINT NOT NULL,
    last_error TEXT,
    created BIGINT NOT NULL,
    died BIGINT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);

-- What each consumer has done, written in the same transaction as the
-- effect, so a redelivered message has no second effect whatever the
-- broker's duplicate window.
CREATE TABLE processed_messages (
    consumer TEXT NOT NULL,
    message_id BYTEA NOT NULL,
    processed BIGINT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX processed_messages_processed ON processed_messages (processed);

-- Accounts funded by an external processor: payments from them wait for it.
ALTER TABLE accounts ADD COLUMN processor BIGINT NOT NULL DEFAULT 0 CHECK (processor IN (0, 1));
