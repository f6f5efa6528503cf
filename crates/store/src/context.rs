//! The one context every write carries: who acts, under which request, and
//! at what time. Later capabilities (idempotency claims, events, audit rows)
//! join the same transaction by adding fields here, not by changing every
//! signature.

use settle_domain::ids::ApiKeyId;

use crate::idempotency::IdempotencyClaim;

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
}

impl WriteContext {
    /// `created` fields are Unix seconds.
    pub fn now_secs(&self) -> i64 {
        (self.now_ms / 1000) as i64
    }
}
