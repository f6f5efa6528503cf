-- Roles, policies and the audit log live in the database; API keys can be revoked.
CREATE TABLE roles (
    id BYTEA PRIMARY KEY,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL,
    builtin BIGINT NOT NULL,
    version BIGINT NOT NULL,
    created BIGINT NOT NULL
);
CREATE UNIQUE INDEX roles_name ON roles (name);

ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
-- A role can be deleted only when no key uses it.
CREATE INDEX api_keys_role ON api_keys (role, id);

CREATE TABLE policies (
    id BYTEA PRIMARY KEY,
    name TEXT NOT NULL,
    policy TEXT NOT NULL,
    description TEXT,
    version BIGINT NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id BYTEA PRIMARY KEY,
    api_key_id BYTEA,
    operation TEXT NOT NULL,
    permission TEXT NOT NULL,
    object TEXT,
    request_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status BIGINT NOT NULL,
    created BIGINT NOT NULL
);
