-- Roles, policies and the audit log live in the database; API keys can be revoked.
CREATE TABLE roles (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL,
    builtin INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX roles_name ON roles (name);

ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
-- A role can be deleted only when no key uses it.
CREATE INDEX api_keys_role ON api_keys (role, id);

CREATE TABLE policies (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    policy TEXT NOT NULL,
    description TEXT,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE audit_events (
    id BLOB PRIMARY KEY NOT NULL,
    api_key_id BLOB,
    operation TEXT NOT NULL,
    permission TEXT NOT NULL,
    object TEXT,
    request_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
