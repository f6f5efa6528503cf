-- The commit stream: every event gets a position in one gap-free sequence
-- in commit order, the cursor a resumable reader (a stream, a cache
-- invalidator, a worker) follows.
--
-- Transactions take their event ids (UUIDv7) when they write, and commit
-- in another order, so neither the id nor a sequence taken at insert time
-- orders commits. The position is taken at COMMIT instead: a deferred
-- constraint trigger runs as the transaction commits, takes the one
-- counter row (`event_positions`, locked until the commit is complete),
-- numbers the transaction's events after it, and the lock passes to the
-- next committing transaction only once this one is visible. So positions
-- follow commit order exactly, a reader that sees position N sees every
-- event before it, and a transaction that fails to commit gives its
-- numbers back (no gaps). The counter is the last lock any transaction
-- takes and its holder waits for nothing, so it cannot deadlock.
--
-- The same trigger sends the commit notification: one `pg_notify` per
-- transaction at most (identical notifications of one transaction are
-- delivered once), delivered by PostgreSQL only after the commit.
ALTER TABLE events ADD COLUMN position BIGINT;

-- Events written before this migration keep their id order.
UPDATE events SET position = ranked.n
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM events) AS ranked
WHERE events.id = ranked.id;

CREATE UNIQUE INDEX events_position ON events (position);

CREATE TABLE event_positions (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO event_positions (id, last) SELECT 1, COALESCE(MAX(position), 0) FROM events;

-- Runs once per event, at commit; the first run numbers all of the
-- transaction's events (the only ones without a position it can see: every
-- committed event has one), so the counter moves once per transaction and
-- the later runs find nothing left. Within a transaction, ids follow
-- insertion order.
CREATE FUNCTION events_position() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mine BIGINT;
    first BIGINT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM events WHERE id = NEW.id AND position IS NULL) THEN
        RETURN NULL;
    END IF;
    SELECT COUNT(*) INTO mine FROM events WHERE position IS NULL;
    UPDATE event_positions SET last = last + mine WHERE id = 1 RETURNING last - mine INTO first;
    UPDATE events SET position = first + numbered.n
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM events WHERE position IS NULL) AS numbered
    WHERE events.id = numbered.id;
    PERFORM pg_notify('settle_commits', '');
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER events_position AFTER INSERT ON events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION events_position();

-- Jobs inserted without an event (webhook deliveries, replays, replayed
-- dead letters) wake other processes' workers too; queued like the one
-- above, so a transaction still sends a single notification.
CREATE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_jobs) THEN
        PERFORM pg_notify('settle_commits', '');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_notify AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify();
