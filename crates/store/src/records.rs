//! Types the store speaks beyond the domain's own: list filters, the refund
//! request, and API key records.

use serde::Serialize;
use settle_domain::ids::{AccountId, ApiKeyId, AuditEventId, CustomerId, EventId, PaymentId, PolicyId};
use settle_domain::money::Amount;
use settle_domain::payment::PaymentStatus;
use settle_domain::refund::RefundReason;

/// Accounts can be filtered by their customer.
#[derive(Debug, Clone)]
pub enum AccountFilter {
    Customer(CustomerId),
}

/// Customers can be filtered by exact email.
#[derive(Debug, Clone)]
pub enum CustomerFilter {
    Email(String),
}

/// Payments can be filtered by one of these, each served by its own index.
#[derive(Debug, Clone)]
pub enum PaymentFilter {
    Status(PaymentStatus),
    Customer(CustomerId),
    Source(AccountId),
    Destination(AccountId),
}

/// Refunds can be filtered by their payment.
#[derive(Debug, Clone)]
pub enum RefundFilter {
    Payment(PaymentId),
}

/// Ledger entries are always listed for one account.
#[derive(Debug, Clone)]
pub enum EntryFilter {
    Account(AccountId),
}

/// A validated refund request; `amount: None` refunds what is left.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub payment: PaymentId,
    pub amount: Option<Amount>,
    pub reason: Option<RefundReason>,
}

/// An API key as stored: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "object", rename = "api_key")]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub role: String,
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    pub created: i64,
    pub last_used: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    /// Expired keys are refused like unknown ones, but with their own code.
    pub fn is_expired(&self, now_secs: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now_secs)
    }
}

/// What a DELETE answers: `{"id", "object", "deleted": true}`.
#[derive(Debug, Clone, Serialize)]
pub struct Deleted {
    pub id: String,
    pub object: &'static str,
    pub deleted: bool,
}

/// An attribute policy as stored: Cedar text, validated before it is saved.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "object", rename = "policy")]
pub struct StoredPolicy {
    pub id: PolicyId,
    pub name: String,
    pub policy: String,
    pub description: Option<String>,
    pub version: i64,
    pub created: i64,
    /// When it was disabled (Unix seconds), or `None` while it applies.
    /// Shown as `"status": "enabled" | "disabled"`; a disabled policy is
    /// kept but not loaded, which is how an operator recovers from a
    /// policy that locks everyone out (`settle policies disable`).
    #[serde(rename = "status", serialize_with = "policy_status")]
    pub disabled_at: Option<i64>,
}

impl StoredPolicy {
    pub fn enabled(&self) -> bool {
        self.disabled_at.is_none()
    }
}

fn policy_status<S: serde::Serializer>(disabled_at: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if disabled_at.is_some() { "disabled" } else { "enabled" })
}

/// Who did which write under which request: what the audit log records.
#[derive(Debug, Clone)]
pub struct AuditDraft {
    pub api_key: Option<ApiKeyId>,
    pub operation: &'static str,
    pub permission: String,
    pub request_id: String,
}

/// One audit log record; `outcome` is `succeeded` or the error code.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "object", rename = "audit_event")]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub api_key: Option<ApiKeyId>,
    pub operation: String,
    pub permission: String,
    /// The id of the object written, when the write succeeded.
    pub target: Option<String>,
    pub request_id: String,
    pub outcome: String,
    pub status: i64,
    pub created: i64,
}

/// Events can be filtered by type or by the object they are about.
#[derive(Debug, Clone)]
pub enum EventFilter {
    Type(String),
    /// The object's 16-byte id.
    Object(Vec<u8>),
}

/// A state change as it was recorded: `data.object` is the object after it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "object", rename = "event")]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: serde_json::Value,
    /// Orders the events of one object: 1, 2, 3...
    pub sequence: i64,
    pub request_id: Option<String>,
    pub created: i64,
}
