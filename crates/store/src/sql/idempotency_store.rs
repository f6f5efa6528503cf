//! [`crate::IdempotencyStore`] for [`SqlStore`]: idempotency keys.

use async_trait::async_trait;

use super::{SqlStore, idempotency};
use crate::IdempotencyStore;
use crate::error::StoreResult;
use crate::idempotency::{ClaimOutcome, ClaimRequest, IdempotencyClaim, StoredResponse};

#[async_trait]
impl IdempotencyStore for SqlStore {
    async fn claim_idempotency(&self, req: &ClaimRequest) -> StoreResult<ClaimOutcome> {
        let (req, token) = (req.clone(), self.ids.next(req.now_ms).as_bytes().to_vec());
        // Where it can, a new key is claimed by one autocommitted insert (one
        // round trip); only an existing key needs the transaction below.
        if self.dialect.claims_new_keys_outside_the_writer()
            && idempotency::try_insert(&mut self.reader(), &req, &token).await?
        {
            return Ok(ClaimOutcome::Claimed(IdempotencyClaim::new(
                req.api_key,
                req.key,
                token,
            )));
        }
        self.write_background(move |tx| Box::pin(idempotency::claim(tx, req.clone(), token.clone())))
            .await
    }

    async fn complete_idempotency(&self, claim: &IdempotencyClaim, response: &StoredResponse) -> StoreResult<bool> {
        let (claim, response) = (claim.clone(), response.clone());
        self.write_background(move |tx| Box::pin(idempotency::store_response(tx, claim.clone(), response.clone())))
            .await
    }

    async fn release_idempotency(&self, claim: &IdempotencyClaim) -> StoreResult<()> {
        let claim = claim.clone();
        self.write_background(move |tx| Box::pin(idempotency::release(tx, claim.clone())))
            .await
    }

    async fn reap_idempotency(&self, before_ms: u64, batch: u32) -> StoreResult<u64> {
        self.write_background(move |tx| Box::pin(idempotency::reap(tx, before_ms, batch)))
            .await
    }
}
