//! Idempotency records as the store sees them: claims with fencing tokens,
//! stored responses, and what a claim attempt found.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use settle_domain::ids::ApiKeyId;

/// A request's hold on an idempotency key. Only the holder of `token` may
/// complete the record, so a request whose claim was taken over after a
/// lock timeout can never also produce an effect.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub api_key: ApiKeyId,
    pub key: String,
    pub token: Vec<u8>,
    /// Set once the operation itself starts; before that, a failure
    /// (validation, parsing) releases the claim instead of being stored.
    started: Arc<AtomicBool>,
}

impl IdempotencyClaim {
    pub fn new(api_key: ApiKeyId, key: String, token: Vec<u8>) -> Self {
        Self {
            api_key,
            key,
            token,
            started: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    pub fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }
}

/// What a claim attempt asks for.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub api_key: ApiKeyId,
    pub key: String,
    /// "The same parameters": a versioned fingerprint of the operation and
    /// its typed input (see `settle_core::pipeline::fingerprint`).
    pub request_hash: Vec<u8>,
    /// The same request's fingerprint as an earlier version computed it,
    /// if the face can tell: a record stored under it still replays.
    pub legacy_hash: Option<Vec<u8>>,
    pub now_ms: u64,
    /// An in-flight claim older than this is presumed dead and may be taken over.
    pub lock_timeout_ms: u64,
}

/// A response kept for replay; never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// The key is ours: run the operation.
    Claimed(IdempotencyClaim),
    /// The key already answered this request: replay it.
    Replay(StoredResponse),
    /// The key was used with other parameters.
    Mismatch,
    /// Another request holds the key right now.
    InFlight,
}

/// Idempotency keys: claimed before an operation, completed in its transaction.
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims an idempotency key in a short transaction of its own, or says
    /// why not (replay, mismatch, in flight).
    async fn claim_idempotency(&self, req: &ClaimRequest) -> crate::error::StoreResult<ClaimOutcome>;
    /// Stores an operation's error response for replay; false if the claim was lost.
    async fn complete_idempotency(
        &self,
        claim: &IdempotencyClaim,
        response: &StoredResponse,
    ) -> crate::error::StoreResult<bool>;
    /// Gives the key back after a failure that is not stored.
    async fn release_idempotency(&self, claim: &IdempotencyClaim) -> crate::error::StoreResult<()>;
    /// Removes up to `batch` records created before `before_ms`; returns how many.
    async fn reap_idempotency(&self, before_ms: u64, batch: u32) -> crate::error::StoreResult<u64>;
}
