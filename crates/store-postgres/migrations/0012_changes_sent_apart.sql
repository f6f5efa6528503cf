-- Migration 0011 sent a notification from every transaction that changed
-- an account, customer or payment, which put NOTIFY's database-wide commit
-- lock back into every money write (the lock `number_events` exists to
-- keep out of them, see 0009): payment creates ran 5-7% slower with the
-- cache on. Changed ids now wait in a table instead, written by the same
-- triggers in the writer's transaction, and go out from each process's
-- change sender (`send_changes` below, in a transaction of its own): the
-- writer's own process runs it right after the commit (woken by the
-- commit), and every process runs it at least once per poll interval, so
-- the ids of a process that died between its commit and its send still go
-- out.
--
-- Unlogged: the rows matter only to processes listening now. A database
-- crash empties the table, but it also drops every listener's connection,
-- and a listener that reconnects flushes what it holds. And a transaction
-- that touches only unlogged rows writes no WAL, so `send_changes` commits
-- without waiting for a flush to disk: a change reaches other processes
-- in about a round trip after its commit.
CREATE UNLOGGED TABLE cache_changes (
    -- The writing store's name (its connections' `settle.origin`), so its
    -- own listener can skip what it already dropped; '' when unnamed (SQL
    -- run by hand).
    origin TEXT NOT NULL,
    -- 'ids' in hex, comma-separated, or '*' for "more than a payload can name".
    ids TEXT NOT NULL
);

CREATE OR REPLACE FUNCTION changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n INT;
    named TEXT;
BEGIN
    SELECT count(*), string_agg(encode(id, 'hex'), ',') INTO n, named FROM old_rows;
    IF n > 0 THEN
        INSERT INTO cache_changes (origin, ids)
        VALUES (coalesce(current_setting('settle.origin', true), ''), CASE WHEN n > 200 THEN '*' ELSE named END);
    END IF;
    RETURN NULL;
END
$$;

-- Webhook endpoints change rarely, and every process must hear at once
-- (they keep decrypted secrets): their triggers keep notifying directly.
CREATE FUNCTION endpoint_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named TEXT;
BEGIN
    SELECT string_agg(encode(id, 'hex'), ',') INTO named FROM old_rows;
    IF named IS NOT NULL THEN
        IF length(named) > 7000 THEN
            PERFORM pg_notify('settle_commits', 'c*');
        ELSE
            PERFORM pg_notify('settle_commits', 'c' || named);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER webhook_endpoints_changed ON webhook_endpoints;
DROP TRIGGER webhook_endpoints_removed ON webhook_endpoints;
CREATE TRIGGER webhook_endpoints_changed AFTER UPDATE ON webhook_endpoints
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION endpoint_changes_notify();
CREATE TRIGGER webhook_endpoints_removed AFTER DELETE ON webhook_endpoints
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION endpoint_changes_notify();

-- Sends the waiting ids, as few notifications as fit PostgreSQL's payload
-- limit (8000 bytes), each 'c', the origin and '/' (when there is one),
-- then the ids, or '*' when a statement changed too many rows to name.
-- Several processes may run it at once: each sends the rows it deleted,
-- and a row one of them deleted the others skip. Returns how many rows it
-- sent.
CREATE FUNCTION send_changes() RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    r RECORD;
    sender TEXT := NULL;
    batch TEXT := '';
    sent BIGINT := 0;
BEGIN
    FOR r IN WITH gone AS (DELETE FROM cache_changes RETURNING cache_changes.origin, ids)
             SELECT gone.origin, ids FROM gone ORDER BY gone.origin LOOP
        sent := sent + 1;
        IF batch <> '' AND (r.origin <> sender OR length(batch) + length(r.ids) > 7000) THEN
            PERFORM pg_notify('settle_commits', 'c' || CASE WHEN sender = '' THEN '' ELSE sender || '/' END || batch);
            batch := '';
        END IF;
        sender := r.origin;
        IF r.ids = '*' THEN
            PERFORM pg_notify('settle_commits', 'c' || CASE WHEN sender = '' THEN '' ELSE sender || '/' END || '*');
        ELSE
            batch := CASE WHEN batch = '' THEN r.ids ELSE batch || ',' || r.ids END;
        END IF;
    END LOOP;
    IF batch <> '' THEN
        PERFORM pg_notify('settle_commits', 'c' || CASE WHEN sender = '' THEN '' ELSE sender || '/' END || batch);
    END IF;
    RETURN sent;
END
$$;

-- A reader of the commit stream in another process must not see an event
-- before it hears of the change the event reports (it would read the old
-- state from its cache). The change sender usually sends first, but it
-- runs apart and may lag; so the sequencer sends whatever is still waiting
-- in the same transaction, after numbering (its second statement sees
-- every change of every event the first one numbered) and before the
-- positions notification. PostgreSQL delivers one transaction's
-- notifications in the order they were sent.
CREATE OR REPLACE FUNCTION number_events(most BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
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
        PERFORM send_changes();
        PERFORM pg_notify('settle_commits', '');
    END IF;
    RETURN numbered;
END
$$;
