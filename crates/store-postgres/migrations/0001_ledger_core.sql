-- Ledger core: customers, accounts, payments, refunds, ledger entries, API keys.
-- Ids are UUIDv7 as 16-byte bytea: byte order is creation order, so every
-- list is a keyset walk over (filter column, id).

CREATE TABLE customers (
    id BYTEA PRIMARY KEY,
    name TEXT,
    email TEXT,
    metadata TEXT NOT NULL,
    version BIGINT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX customers_email_id ON customers (email, id);

CREATE TABLE accounts (
    id BYTEA PRIMARY KEY,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance BIGINT NOT NULL,
    pending_out BIGINT NOT NULL CHECK (pending_out >= 0),
    allow_negative BIGINT NOT NULL CHECK (allow_negative IN (0, 1)),
    customer_id BYTEA REFERENCES customers (id),
    metadata TEXT NOT NULL,
    version BIGINT NOT NULL,
    created BIGINT NOT NULL,
    CHECK (allow_negative = 1 OR balance - pending_out >= 0)
);
CREATE INDEX accounts_customer_id ON accounts (customer_id, id);

CREATE TABLE payments (
    id BYTEA PRIMARY KEY,
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    source_id BYTEA NOT NULL REFERENCES accounts (id),
    destination_id BYTEA NOT NULL REFERENCES accounts (id),
    customer_id BYTEA REFERENCES customers (id),
    status TEXT NOT NULL,
    amount_captured BIGINT NOT NULL,
    amount_refunded BIGINT NOT NULL CHECK (amount_refunded <= amount_captured),
    description TEXT,
    metadata TEXT NOT NULL,
    version BIGINT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX payments_status_id ON payments (status, id);
CREATE INDEX payments_customer_id ON payments (customer_id, id);
CREATE INDEX payments_source_id ON payments (source_id, id);
CREATE INDEX payments_destination_id ON payments (destination_id, id);

CREATE TABLE refunds (
    id BYTEA PRIMARY KEY,
    payment_id BYTEA NOT NULL REFERENCES payments (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    reason TEXT,
    status TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX refunds_payment_id ON refunds (payment_id, id);

CREATE TABLE ledger_entries (
    id BYTEA PRIMARY KEY,
    account_id BYTEA NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL CHECK (amount <> 0),
    payment_id BYTEA REFERENCES payments (id),
    refund_id BYTEA REFERENCES refunds (id),
    created BIGINT NOT NULL
);
CREATE INDEX ledger_entries_account_id ON ledger_entries (account_id, id);

CREATE TABLE api_keys (
    id BYTEA PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    created BIGINT NOT NULL,
    last_used BIGINT,
    expires_at BIGINT
);
