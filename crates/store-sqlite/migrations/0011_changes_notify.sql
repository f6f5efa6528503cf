-- PostgreSQL's 0011 tells other processes which cached objects changed.
-- An embedded SQLite database has one Settle process, whose writes drop
-- their cached objects in process; this keeps the two schemas' migration
-- lists in step.
SELECT 1;
