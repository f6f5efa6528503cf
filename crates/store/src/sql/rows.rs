//! Decoding rows into domain records. Storage holds only values the domain
//! validated, so a value that does not decode means corruption: `Internal`.

use settle_domain::account::Account;
use settle_domain::customer::Customer;
use settle_domain::ids::{
    AccountId, ApiKeyId, AuditEventId, CustomerId, EventId, LedgerEntryId, PaymentId, PolicyId, RefundId, RoleId,
};
use settle_domain::ledger::LedgerEntry;
use settle_domain::metadata::Metadata;
use settle_domain::money::Currency;
use settle_domain::payment::{Payment, PaymentStatus};
use settle_domain::rbac::{Role, parse_permissions};
use settle_domain::refund::{Refund, RefundReason, RefundStatus};

use super::db::{Executor, Row, query};
use crate::error::{StoreError, StoreResult};
use crate::records::{ApiKey, AuditEvent, Event, StoredPolicy};

pub const ACCOUNT_COLS: &str =
    "id, name, currency, balance, pending_out, allow_negative, processor, customer_id, metadata, version, created";
pub const CUSTOMER_COLS: &str = "id, name, email, metadata, version, created";
pub const PAYMENT_COLS: &str = "id, amount, currency, source_id, destination_id, customer_id, status, \
     amount_captured, amount_refunded, description, metadata, version, created";
pub const REFUND_COLS: &str = "id, payment_id, amount, currency, reason, status, created";
pub const ENTRY_COLS: &str = "id, account_id, amount, payment_id, refund_id, created";
pub const API_KEY_COLS: &str = "id, name, prefix, role, secret_hash, created, last_used, expires_at, revoked_at";
pub const EVENT_COLS: &str = "id, type, data, sequence, position, request_id, created, traceparent";
pub const ROLE_COLS: &str = "id, name, permissions, builtin, version, created";
pub const POLICY_COLS: &str = "id, name, policy, description, version, created, disabled_at";
pub const AUDIT_COLS: &str = "id, api_key_id, operation, permission, object, request_id, outcome, status, created";

/// The row of `table` whose primary key is `id` (with an optional lock
/// clause), decoded: the one reader every get-by-id shares.
pub async fn by_id<E, T>(
    ex: &mut E,
    table: &str,
    columns: &str,
    id: Vec<u8>,
    lock: &str,
    decode: fn(&Row) -> StoreResult<T>,
) -> StoreResult<Option<T>>
where
    E: Executor + ?Sized,
{
    let sql = format!("SELECT {columns} FROM {table} WHERE id = $1{lock}");
    let row: Option<Row> = query(sql).bind(id).fetch_optional(ex).await?;
    row.as_ref().map(decode).transpose()
}

/// The rows of `table` whose primary key is one of `ids`, decoded, in one
/// statement (none for no ids).
pub async fn by_ids<E, T>(
    ex: &mut E,
    dialect: super::Dialect,
    table: &str,
    columns: &str,
    ids: Vec<Vec<u8>>,
    decode: fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>>
where
    E: Executor + ?Sized,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=ids.len()).map(|i| dialect.placeholder(i)).collect();
    let sql = format!("SELECT {columns} FROM {table} WHERE id IN ({})", marks.join(", "));
    let mut q = query(sql);
    for id in ids {
        q = q.bind(id);
    }
    let found = q.fetch_all(ex).await?;
    found.iter().map(decode).collect()
}

/// A table whose rows are shown per parent row, newest first (a
/// payment's refunds, an account's entries): its columns, and the column
/// naming the parent, indexed with `id`.
#[derive(Debug, Clone, Copy)]
pub struct Children {
    pub table: &'static str,
    pub columns: &'static str,
    pub parent: &'static str,
}

pub const REFUNDS_OF_PAYMENTS: Children = Children {
    table: "refunds",
    columns: REFUND_COLS,
    parent: "payment_id",
};

pub const ENTRIES_OF_ACCOUNTS: Children = Children {
    table: "ledger_entries",
    columns: ENTRY_COLS,
    parent: "account_id",
};

/// The newest `first` children of each of `parents` parents (the limit is
/// the last placeholder), newest first within each parent, in one
/// statement whatever the number of parents: a window per parent over the
/// `(parent, id)` index, instead of a query each.
pub fn newest_per_parent_sql(dialect: super::Dialect, children: Children, parents: usize) -> String {
    let Children { table, columns, parent } = children;
    let marks: Vec<String> = (1..=parents).map(|i| dialect.placeholder(i)).collect();
    let limit = dialect.placeholder(parents + 1);
    format!(
        "SELECT {columns} FROM (SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY {parent} ORDER BY id DESC) AS rank \
         FROM {table} WHERE {parent} IN ({})) AS ranked WHERE rank <= {limit} ORDER BY {parent}, id DESC",
        marks.join(", ")
    )
}

/// Runs [`newest_per_parent_sql`] and decodes its rows (no statement for
/// no parents).
pub async fn newest_per_parent<E, T>(
    ex: &mut E,
    dialect: super::Dialect,
    children: Children,
    parents: Vec<Vec<u8>>,
    first: u32,
    decode: fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>>
where
    E: Executor + ?Sized,
{
    if parents.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = query(newest_per_parent_sql(dialect, children, parents.len()));
    for id in parents {
        q = q.bind(id);
    }
    let rows = q.bind(i64::from(first)).fetch_all(ex).await?;
    rows.iter().map(decode).collect()
}

fn corrupt(what: &str, col: &str) -> StoreError {
    StoreError::Internal(format!("stored {what}.{col} is not valid"))
}

fn id<T>(row: &Row, col: &str, parse: fn(&[u8]) -> Option<T>) -> StoreResult<T> {
    let bytes: Vec<u8> = row.try_get(col)?;
    parse(&bytes).ok_or_else(|| corrupt("row", col))
}

fn opt_id<T>(row: &Row, col: &str, parse: fn(&[u8]) -> Option<T>) -> StoreResult<Option<T>> {
    let bytes: Option<Vec<u8>> = row.try_get(col)?;
    bytes.map(|b| parse(&b).ok_or_else(|| corrupt("row", col))).transpose()
}

fn currency(row: &Row) -> StoreResult<Currency> {
    let code: String = row.try_get("currency")?;
    Currency::parse(&code).map_err(|_| corrupt("row", "currency"))
}

fn metadata(row: &Row) -> StoreResult<Metadata> {
    let text: String = row.try_get("metadata")?;
    Metadata::from_json(&text).map_err(|_| corrupt("row", "metadata"))
}

pub fn account(row: &Row) -> StoreResult<Account> {
    Ok(Account {
        id: id(row, "id", AccountId::from_bytes)?,
        name: row.try_get("name")?,
        currency: currency(row)?,
        balance: row.try_get("balance")?,
        pending_out: row.try_get("pending_out")?,
        allow_negative: row.try_get::<i64, _>("allow_negative")? != 0,
        processor: row.try_get::<i64, _>("processor")? != 0,
        customer: opt_id(row, "customer_id", CustomerId::from_bytes)?,
        metadata: metadata(row)?,
        version: row.try_get("version")?,
        created: row.try_get("created")?,
    })
}

pub fn customer(row: &Row) -> StoreResult<Customer> {
    Ok(Customer {
        id: id(row, "id", CustomerId::from_bytes)?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        metadata: metadata(row)?,
        version: row.try_get("version")?,
        created: row.try_get("created")?,
    })
}

pub fn payment(row: &Row) -> StoreResult<Payment> {
    let status: String = row.try_get("status")?;
    Ok(Payment {
        id: id(row, "id", PaymentId::from_bytes)?,
        amount: row.try_get("amount")?,
        currency: currency(row)?,
        source: id(row, "source_id", AccountId::from_bytes)?,
        destination: id(row, "destination_id", AccountId::from_bytes)?,
        customer: opt_id(row, "customer_id", CustomerId::from_bytes)?,
        status: PaymentStatus::parse(&status).ok_or_else(|| corrupt("payment", "status"))?,
        amount_captured: row.try_get("amount_captured")?,
        amount_refunded: row.try_get("amount_refunded")?,
        description: row.try_get("description")?,
        metadata: metadata(row)?,
        version: row.try_get("version")?,
        created: row.try_get("created")?,
    })
}

pub fn refund(row: &Row) -> StoreResult<Refund> {
    let reason: Option<String> = row.try_get("reason")?;
    let status: String = row.try_get("status")?;
    Ok(Refund {
        id: id(row, "id", RefundId::from_bytes)?,
        payment: id(row, "payment_id", PaymentId::from_bytes)?,
        amount: row.try_get("amount")?,
        currency: currency(row)?,
        reason: reason
            .map(|r| RefundReason::parse(&r).ok_or_else(|| corrupt("refund", "reason")))
            .transpose()?,
        status: RefundStatus::parse(&status).ok_or_else(|| corrupt("refund", "status"))?,
        created: row.try_get("created")?,
    })
}

pub fn entry(row: &Row) -> StoreResult<LedgerEntry> {
    Ok(LedgerEntry {
        id: id(row, "id", LedgerEntryId::from_bytes)?,
        account: id(row, "account_id", AccountId::from_bytes)?,
        amount: row.try_get("amount")?,
        payment: opt_id(row, "payment_id", PaymentId::from_bytes)?,
        refund: opt_id(row, "refund_id", RefundId::from_bytes)?,
        created: row.try_get("created")?,
    })
}

pub fn api_key(row: &Row) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: id(row, "id", ApiKeyId::from_bytes)?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        role: row.try_get("role")?,
        secret_hash: row.try_get("secret_hash")?,
        created: row.try_get("created")?,
        last_used: row.try_get("last_used")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

pub fn role(row: &Row) -> StoreResult<Role> {
    let permissions: String = row.try_get("permissions")?;
    let texts: Vec<String> = serde_json::from_str(&permissions).map_err(|_| corrupt("role", "permissions"))?;
    Ok(Role {
        id: id(row, "id", RoleId::from_bytes)?,
        name: row.try_get("name")?,
        permissions: parse_permissions(&texts).map_err(|_| corrupt("role", "permissions"))?,
        builtin: row.try_get::<i64, _>("builtin")? != 0,
        version: row.try_get("version")?,
        created: row.try_get("created")?,
    })
}

pub fn policy(row: &Row) -> StoreResult<StoredPolicy> {
    Ok(StoredPolicy {
        id: id(row, "id", PolicyId::from_bytes)?,
        name: row.try_get("name")?,
        policy: row.try_get("policy")?,
        description: row.try_get("description")?,
        version: row.try_get("version")?,
        created: row.try_get("created")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

pub fn audit(row: &Row) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: id(row, "id", AuditEventId::from_bytes)?,
        api_key: opt_id(row, "api_key_id", ApiKeyId::from_bytes)?,
        operation: row.try_get("operation")?,
        permission: row.try_get("permission")?,
        target: row.try_get("object")?,
        request_id: row.try_get("request_id")?,
        outcome: row.try_get("outcome")?,
        status: row.try_get("status")?,
        created: row.try_get("created")?,
    })
}

pub fn event(row: &Row) -> StoreResult<Event> {
    let data: String = row.try_get("data")?;
    let object: serde_json::Value = serde_json::from_str(&data).map_err(|_| corrupt("event", "data"))?;
    Ok(Event {
        id: id(row, "id", EventId::from_bytes)?,
        event_type: row.try_get("type")?,
        data: serde_json::json!({ "object": object }),
        sequence: row.try_get("sequence")?,
        position: row.try_get("position")?,
        request_id: row.try_get("request_id")?,
        created: row.try_get("created")?,
        traceparent: row.try_get("traceparent")?,
    })
}
