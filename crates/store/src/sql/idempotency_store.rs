//! [`crate::IdempotencyStore`] for [`SqlStore`]: idempotency keys.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Dialect, SqlStore, idempotency};
use crate::IdempotencyStore;
use crate::error::StoreResult;
use crate::idempotency::{ClaimOutcome, ClaimRequest, IdempotencyClaim, StoredResponse};

#[async_trait]
impl IdempotencyStore for SqlStore {
    async fn claim_idempotency(&self, req: &ClaimRequest) -> StoreResult<ClaimOutcome> {
        let req = Arc::new(req.clone());
        let token = self.ids.next(req.now_ms).as_bytes().to_vec();
        // PostgreSQL: a new key is claimed by one autocommitted insert (one
        // round trip); only an existing key needs the transaction below.
        // SQLite writes go through its single writer either way.
        if self.dialect == Dialect::Postgres && idempotency::try_insert(&mut self.reader(), &req, &token).await? {
            return Ok(ClaimOutcome::Claimed(IdempotencyClaim::new(
                req.api_key,
                req.key.clone(),
                token,
            )));
        }
        self.write_background(move |conn| {
            let (req, token) = (Arc::clone(&req), token.clone());
            Box::pin(async move { idempotency::claim(conn, &req, token).await })
        })
        .await
    }

    async fn complete_idempotency(&self, claim: &IdempotencyClaim, response: &StoredResponse) -> StoreResult<bool> {
        let (claim, response) = (claim.clone(), response.clone());
        self.write_background(move |conn| {
            let (claim, response) = (claim.clone(), response.clone());
            Box::pin(async move { idempotency::complete(conn, &claim, &response).await })
        })
        .await
    }

    async fn release_idempotency(&self, claim: &IdempotencyClaim) -> StoreResult<()> {
        let claim = claim.clone();
        self.write_background(move |conn| {
            let claim = claim.clone();
            Box::pin(async move { idempotency::release(conn, &claim).await })
        })
        .await
    }

    async fn reap_idempotency(&self, before_ms: u64, batch: u32) -> StoreResult<u64> {
        self.write_background(move |conn| Box::pin(async move { idempotency::reap(conn, before_ms, batch).await }))
            .await
    }
}
