//! Record types shared by several aggregates ([`Deleted`]), and an index of
//! every aggregate's record types, which live beside their contract.

use serde::Serialize;

pub use crate::access::{ApiKey, AuditDraft, AuditEvent, StoredPolicy};
pub use crate::accounts::{AccountFilter, CustomerFilter};
pub use crate::events::{Event, EventFilter};
pub use crate::payments::{EntryFilter, NewRefund, PaymentFilter, RefundFilter};
pub use crate::webhooks::{AttemptRecord, SealedSecrets};

/// What a DELETE answers: `{"id", "object", "deleted": true}`.
#[derive(Debug, Clone, Serialize)]
pub struct Deleted {
    pub id: String,
    pub object: &'static str,
    pub deleted: bool,
}
