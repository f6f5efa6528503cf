-- What operators filter, recover and trace by. The statements that take
-- long on a big table come first; `events`, which every payment writes,
-- is altered last (a catalog change only), so it is locked only for the
-- moment before this migration commits.

-- A delivery keeps its event's type, so an endpoint's deliveries of one
-- type are found through an index instead of a join through every event.
ALTER TABLE webhook_deliveries ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
UPDATE webhook_deliveries AS d SET event_type = e.type FROM events AS e WHERE e.id = d.event_id;
CREATE INDEX webhook_deliveries_endpoint_type ON webhook_deliveries (endpoint_id, event_type, id);

-- When a delivery failed for good (Unix ms): a recovery sends again what
-- failed during an outage. Earlier failures get their creation time.
ALTER TABLE webhook_deliveries ADD COLUMN failed_at BIGINT;
UPDATE webhook_deliveries SET failed_at = created * 1000 WHERE status = 'failed';

-- A recovery is a replay of only the deliveries that failed for good.
ALTER TABLE webhook_replays ADD COLUMN failed_only BIGINT NOT NULL DEFAULT 0;

-- The W3C trace context of the request that wrote an event, so that its
-- fan-out and webhook deliveries continue the same trace in any process.
ALTER TABLE events ADD COLUMN traceparent TEXT;
