-- Delivery lists filtered by status walk this index from the cursor, so
-- finding an endpoint's few failed deliveries does not scan its delivered ones.
CREATE INDEX webhook_deliveries_endpoint_status ON webhook_deliveries (endpoint_id, status, id);
