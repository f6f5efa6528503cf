-- PostgreSQL's 0010 notifies other processes when a webhook endpoint
-- changes. An embedded SQLite database has one Settle process, whose
-- writes announce endpoint changes in process; this keeps the two
-- schemas' migration lists in step.
SELECT 1;
