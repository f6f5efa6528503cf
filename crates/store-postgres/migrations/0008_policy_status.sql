-- A policy can be disabled without deleting it: kept, shown, but not loaded.
-- The break-glass for a policy that locks every key out (`settle policies disable`).
ALTER TABLE policies ADD COLUMN disabled_at BIGINT;
