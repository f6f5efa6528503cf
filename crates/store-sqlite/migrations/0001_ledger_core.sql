-- Ledger core: customers, accounts, payments, refunds, ledger entries, API keys.
-- Ids are UUIDv7 as 16-byte blobs: byte order is creation order, so every
-- list is a keyset walk over (filter column, id).

CREATE TABLE customers (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT,
    email TEXT,
    metadata TEXT NOT NULL,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX customers_email_id ON customers (email, id);

CREATE TABLE accounts (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance INTEGER NOT NULL,
    pending_out INTEGER NOT NULL CHECK (pending_out >= 0),
    allow_negative INTEGER NOT NULL CHECK (allow_negative IN (0, 1)),
    customer_id BLOB REFERENCES customers (id),
    metadata TEXT NOT NULL,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL,
    CHECK (allow_negative = 1 OR balance - pending_out >= 0)
) WITHOUT ROWID;
CREATE INDEX accounts_customer_id ON accounts (customer_id, id);

CREATE TABLE payments (
    id BLOB PRIMARY KEY NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    source_id BLOB NOT NULL REFERENCES accounts (id),
    destination_id BLOB NOT NULL REFERENCES accounts (id),
    customer_id BLOB REFERENCES customers (id),
    status TEXT NOT NULL,
    amount_captured INTEGER NOT NULL,
    amount_refunded INTEGER NOT NULL CHECK (amount_refunded <= amount_captured),
    description TEXT,
    metadata TEXT NOT NULL,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX payments_status_id ON payments (status, id);
CREATE INDEX payments_customer_id ON payments (customer_id, id);
CREATE INDEX payments_source_id ON payments (source_id, id);
CREATE INDEX payments_destination_id ON payments (destination_id, id);

CREATE TABLE refunds (
    id BLOB PRIMARY KEY NOT NULL,
    payment_id BLOB NOT NULL REFERENCES payments (id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    reason TEXT,
    status TEXT NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX refunds_payment_id ON refunds (payment_id, id);

CREATE TABLE ledger_entries (
    id BLOB PRIMARY KEY NOT NULL,
    account_id BLOB NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL CHECK (amount <> 0),
    payment_id BLOB REFERENCES payments (id),
    refund_id BLOB REFERENCES refunds (id),
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ledger_entries_account_id ON ledger_entries (account_id, id);

CREATE TABLE api_keys (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created INTEGER NOT NULL,
    last_used INTEGER,
    expires_at INTEGER
) WITHOUT ROWID;
