-- What operators filter, recover and trace by.

-- A delivery keeps its event's type, so an endpoint's deliveries of one
-- type are found through an index instead of a join through every event.
ALTER TABLE webhook_deliveries ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
UPDATE webhook_deliveries
SET event_type = COALESCE((SELECT type FROM events WHERE events.id = webhook_deliveries.event_id), '');
CREATE INDEX webhook_deliveries_endpoint_type ON webhook_deliveries (endpoint_id, event_type, id);
-- A type picks a fraction of an endpoint's deliveries, as a status does
-- (see 0007: without this SQLite would rate the new index like the rest).
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('webhook_deliveries', 'webhook_deliveries_endpoint_type', '1000000 1000 100 1');

-- When a delivery failed for good (Unix ms): a recovery sends again what
-- failed during an outage. Earlier failures get their creation time.
ALTER TABLE webhook_deliveries ADD COLUMN failed_at INTEGER;
UPDATE webhook_deliveries SET failed_at = created * 1000 WHERE status = 'failed';

-- A recovery is a replay of only the deliveries that failed for good.
ALTER TABLE webhook_replays ADD COLUMN failed_only INTEGER NOT NULL DEFAULT 0;

-- The W3C trace context of the request that wrote an event, so that its
-- fan-out and webhook deliveries continue the same trace in any process.
ALTER TABLE events ADD COLUMN traceparent TEXT;
