-- Every process may keep copies of accounts, customers, payments and
-- webhook endpoints in memory (the read cache). A change committed by one
-- process must reach the others: each statement that updates or deletes
-- rows of these tables queues one notification naming them ('c' and the
-- ids in hex, comma-separated), delivered only after the commit. A
-- statement touching more rows than a payload can name says 'c*': drop
-- everything. Inserts say nothing: a new id was never cached. Money
-- writes already notify for their events, so NOTIFY's commit lock is
-- taken by them anyway.
CREATE FUNCTION changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n INT;
    ids TEXT;
BEGIN
    SELECT count(*), string_agg(encode(id, 'hex'), ',') INTO n, ids FROM old_rows;
    IF n > 200 THEN
        PERFORM pg_notify('settle_commits', 'c*');
    ELSIF n > 0 THEN
        PERFORM pg_notify('settle_commits', 'c' || ids);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER accounts_changed AFTER UPDATE ON accounts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_notify();
CREATE TRIGGER accounts_removed AFTER DELETE ON accounts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_notify();
CREATE TRIGGER customers_changed AFTER UPDATE ON customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_notify();
CREATE TRIGGER customers_removed AFTER DELETE ON customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_notify();
CREATE TRIGGER payments_changed AFTER UPDATE ON payments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_notify();
CREATE TRIGGER payments_removed AFTER DELETE ON payments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_notify();
CREATE TRIGGER webhook_endpoints_changed AFTER UPDATE ON webhook_endpoints
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_notify();
CREATE TRIGGER webhook_endpoints_removed AFTER DELETE ON webhook_endpoints
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_notify();
