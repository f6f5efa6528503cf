//! The one context every write carries: who acts, under which request, and
//! at what time. Later capabilities (idempotency claims, events, audit rows)
//! join the same transaction by adding fields here, not by changing every
//! signature.

use settle_domain::ids::ApiKeyId;

use settle_domain::rbac::Permission;

use crate::idempotency::IdempotencyClaim;
use crate::records::AuditDraft;

#[derive(Debug, Clone)]
pub struct WriteContext {
    /// The request this write belongs to, for logs and audit.
    pub request_id: String,
    /// The API key acting, if any (the command line acts without one).
    pub actor: Option<ApiKeyId>,
    /// The time of the write in Unix milliseconds, from the injected clock.
    pub now_ms: u64,
    /// The `Idempotency-Key` claim this write completes, in its own
    /// transaction, if the request carried one.
    pub idempotency: Option<IdempotencyClaim>,
    /// The audit record this write adds in its own transaction when it succeeds.
    pub audit: Option<AuditDraft>,
    /// The status the calling face answers when this write succeeds (200
    /// for REST), stored as is with the idempotency record, for replay, and
    /// in the audit row. `None` for faces without one (the command line):
    /// the audit row then records 0, and an idempotency key is refused.
    pub success_status: Option<u16>,
    /// Attribute policies the store evaluates once an operation's resource
    /// is resolved inside the transaction (e.g. the real refund amount).
    pub policy: Option<std::sync::Arc<dyn PolicyCheck>>,
    /// When the request stops waiting: a write not begun by then is not
    /// begun (on SQLite, checked before its batch opens; on PostgreSQL the
    /// transaction's statements get what is left as their timeout).
    pub deadline: Option<std::time::Instant>,
    /// The trace this write belongs to (its operation's span): the
    /// transaction and commit are traced under it, and the events it
    /// writes keep it for their fan-out and deliveries.
    pub trace: Option<settle_trace::TraceContext>,
}

/// An attribute-policy decision, asked by the store with the resolved resource.
pub trait PolicyCheck: Send + Sync + std::fmt::Debug {
    /// `Err(reason)` denies the operation; nothing is written.
    fn check(&self, permission: Permission, resource: &Resolved) -> Result<(), String>;
}

/// The attributes of a money movement, resolved inside its transaction.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub amount: i64,
    pub currency: String,
    pub source: String,
    pub destination: String,
    pub payment: String,
}

impl WriteContext {
    /// The context of a write no request asked for (start-up, upkeep).
    pub fn background() -> Self {
        Self {
            request_id: String::new(),
            actor: None,
            now_ms: 0,
            idempotency: None,
            audit: None,
            success_status: None,
            policy: None,
            deadline: None,
            trace: None,
        }
    }

    /// Asks the policy (if any) about a resolved money movement.
    pub fn check_policy(&self, permission: Permission, resource: &Resolved) -> Result<(), crate::StoreError> {
        match &self.policy {
            Some(policy) => policy
                .check(permission, resource)
                .map_err(crate::StoreError::PolicyDenied),
            None => Ok(()),
        }
    }

    /// `created` fields are Unix seconds.
    pub fn now_secs(&self) -> i64 {
        (self.now_ms / 1000) as i64
    }
}
