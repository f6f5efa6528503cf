-- Every process keeps webhook endpoints with their decrypted signing
-- secrets in memory; a change made in one process must reach the others.
-- Only the columns that change what is sent or signed notify (the worker's
-- own `failing_since` bookkeeping does not), once per statement, after
-- commit. Endpoint changes are rare, so NOTIFY's commit lock costs nothing.
CREATE FUNCTION endpoints_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('settle_commits', 'endpoints');
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_endpoints_notify
    AFTER UPDATE OF url, enabled_events, status, secret, previous_secret, previous_secret_expires OR DELETE
    ON webhook_endpoints FOR EACH STATEMENT EXECUTE FUNCTION endpoints_notify();

-- Delivery jobs the fan-out writes already leased to its own process's
-- worker (handed over in memory) are nobody else's business: only jobs
-- that wait for a claim are announced, so a fan-out whose deliveries were
-- all handed over commits without NOTIFY's database-wide lock.
CREATE OR REPLACE FUNCTION commits_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 AND EXISTS (SELECT 1 FROM new_rows WHERE lease_token IS NULL) THEN
        PERFORM pg_notify('settle_commits', '');
    END IF;
    RETURN NULL;
END
$$;
