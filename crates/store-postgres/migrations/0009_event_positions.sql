-- The commit stream: every event gets a position in one gap-free sequence
-- in commit order, the cursor a resumable reader (a stream, a cache
-- invalidator, a worker) follows.
--
-- Transactions take their event ids (UUIDv7) when they write, and commit
-- in another order, so neither the id nor a sequence taken at insert time
-- orders commits. Positions are given after commit instead, by a
-- sequencer: `number_events` takes the one counter row
-- (`event_positions`, so sequencers of several processes take turns),
-- then numbers the committed events that have no position yet, in id
-- order, in one transaction. Each of its statements sees every commit
-- made before it started, so an event that commits while it runs is
-- simply numbered by the next run: batches follow commit order, a reader
-- that sees position N sees every position below it (a batch becomes
-- visible at once, and only after the one before it), and there are no
-- gaps. Writers never wait for the counter, so their commits keep sharing
-- WAL flushes (group commit).
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

-- Numbers up to `most` committed events that have none; returns how many.
CREATE FUNCTION number_events(most BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    first BIGINT;
    numbered BIGINT;
BEGIN
    SELECT last INTO first FROM event_positions WHERE id = 1 FOR UPDATE;
    UPDATE events SET position = first + todo.n
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM
            (SELECT id FROM events WHERE position IS NULL ORDER BY id LIMIT most) AS waiting) AS todo
    WHERE events.id = todo.id;
    GET DIAGNOSTICS numbered = ROW_COUNT;
    IF numbered > 0 THEN
        UPDATE event_positions SET last = first + numbered WHERE id = 1;
        PERFORM pg_notify('settle_commits', '');
    END IF;
    RETURN numbered;
END
$$;

-- Commit notifications for other processes. A payment's transaction sends
-- none: NOTIFY takes a database-wide lock that is held through COMMIT's WAL
-- flush, so every notifying transaction commits alone (`settle bench
-- payments` lost about a third of its rate to it). New events are announced
-- by the sequencer instead, once per batch it numbers (`number_events`
-- above): every Settle process runs one, woken by its own commits. Jobs
-- inserted on their own (webhook deliveries, replays, replayed dead
-- letters) announce themselves, one notification per statement at most;
-- the outbox's jobs, inserted by the events trigger (trigger depth 2), wait
-- for the sequencer's. PostgreSQL delivers a transaction's identical
-- notifications once, and only after it committed.
CREATE FUNCTION commits_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 AND EXISTS (SELECT 1 FROM new_rows) THEN
        PERFORM pg_notify('settle_commits', '');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_notify AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION commits_notify();
