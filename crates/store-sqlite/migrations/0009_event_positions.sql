-- The commit stream: every event gets a position in one gap-free sequence
-- in commit order, the cursor a resumable reader (a stream, a cache
-- invalidator, a worker) follows. SQLite has one writer, and it commits
-- in the order it writes, so the position can be taken as the event is
-- inserted: the next after the highest so far (one probe of
-- `events_position`). A write whose savepoint rolls back takes its
-- positions back with it, so there are no gaps.
ALTER TABLE events ADD COLUMN position INTEGER;

-- Events written before this migration keep their id order.
UPDATE events SET position = ranked.n
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM events) AS ranked
WHERE events.id = ranked.id;

CREATE UNIQUE INDEX events_position ON events (position);

CREATE TRIGGER events_position AFTER INSERT ON events
BEGIN
    UPDATE events SET position = (SELECT COALESCE(MAX(position), 0) + 1 FROM events)
    WHERE id = NEW.id;
END;
