-- PostgreSQL's 0012 sends changed ids apart from the commit. An embedded
-- SQLite database has one Settle process, whose writes drop their cached
-- objects in process; this keeps the two schemas' migration lists in step.
SELECT 1;
