-- Delivery lists filtered by status walk this index from the cursor, so
-- finding an endpoint's few failed deliveries does not scan its delivered ones.
CREATE INDEX webhook_deliveries_endpoint_status ON webhook_deliveries (endpoint_id, status, id);

-- Without statistics SQLite rates both of the table's endpoint indexes alike
-- and takes the narrower one, which would read every delivery of the
-- endpoint to find a status. These figures (the documented way to steer the
-- planner) say what is true of real data: an endpoint has many deliveries, a
-- status picks a fraction of them. A later ANALYZE replaces them.
ANALYZE sqlite_schema;
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('webhook_deliveries', 'webhook_deliveries_endpoint_id', '1000000 1000 1'),
    ('webhook_deliveries', 'webhook_deliveries_endpoint_status', '1000000 1000 300 1');
