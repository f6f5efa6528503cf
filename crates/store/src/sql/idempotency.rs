//! Idempotency claims: a short transaction of its own inserts the in-flight
//! marker (so a concurrent duplicate sees it at once), and completion happens
//! inside the operation's transaction, fenced by the claim's token.

use super::Tx;
use super::db::{Executor, query};
use crate::error::{StoreError, StoreResult};
use crate::idempotency::{ClaimOutcome, ClaimRequest, IdempotencyClaim, StoredResponse};

/// Inserts the in-flight marker unless the key exists; true when inserted.
/// Alone it is the whole claim in the common case (a new key), so on
/// PostgreSQL it runs first as one autocommitted statement.
pub async fn try_insert<E: Executor + ?Sized>(ex: &mut E, req: &ClaimRequest, token: &[u8]) -> StoreResult<bool> {
    let now = req.now_ms as i64;
    let inserted = query(
        "INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, token, locked_at, created) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (api_key_id, idempotency_key) DO NOTHING",
    )
    .bind(req.api_key.to_bytes())
    .bind(req.key.clone())
    .bind(req.request_hash.clone())
    .bind(token.to_vec())
    .bind(now)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Claims the key in a write transaction: inserts the in-flight marker, or
/// reads the existing record and answers a replay, a mismatch or a claim in
/// flight, or takes over a claim whose holder is presumed dead.
pub async fn claim(tx: &mut Tx<'_>, req: ClaimRequest, token: Vec<u8>) -> StoreResult<ClaimOutcome> {
    let now = req.now_ms as i64;
    let inserted = try_insert(&mut *tx, &req, &token).await?;
    let claimed = || ClaimOutcome::Claimed(IdempotencyClaim::new(req.api_key, req.key.clone(), token.clone()));
    if inserted {
        return Ok(claimed());
    }
    let row = query(
        "SELECT request_hash, token, locked_at, response_status, response_body FROM idempotency_keys \
         WHERE api_key_id = $1 AND idempotency_key = $2",
    )
    .bind(req.api_key.to_bytes())
    .bind(req.key.clone())
    .fetch_optional(&mut *tx)
    .await?;
    // Reaped between the insert and the read: the next attempt will insert.
    let Some(row) = row else {
        return Ok(ClaimOutcome::InFlight);
    };
    let hash: Vec<u8> = row.try_get("request_hash")?;
    if hash != req.request_hash && req.legacy_hash.as_ref() != Some(&hash) {
        return Ok(ClaimOutcome::Mismatch);
    }
    let status: Option<i64> = row.try_get("response_status")?;
    if let Some(status) = status {
        let body: Option<Vec<u8>> = row.try_get("response_body")?;
        let status = u16::try_from(status).map_err(|_| StoreError::Internal("stored status out of range".into()))?;
        return Ok(ClaimOutcome::Replay(StoredResponse {
            status,
            body: body.unwrap_or_default(),
        }));
    }
    let locked_at: i64 = row.try_get("locked_at")?;
    if locked_at.saturating_add(req.lock_timeout_ms as i64) > now {
        return Ok(ClaimOutcome::InFlight);
    }
    // The holder is presumed dead (its transaction rolled back with it):
    // take the claim over, but only if nobody else did first.
    let old_token: Vec<u8> = row.try_get("token")?;
    let taken = query(
        "UPDATE idempotency_keys SET token = $1, locked_at = $2 \
         WHERE api_key_id = $3 AND idempotency_key = $4 AND token = $5 AND response_status IS NULL",
    )
    .bind(token.clone())
    .bind(now)
    .bind(req.api_key.to_bytes())
    .bind(req.key.clone())
    .bind(old_token)
    .execute(&mut *tx)
    .await?;
    Ok(if taken.rows_affected() == 1 {
        claimed()
    } else {
        ClaimOutcome::InFlight
    })
}

/// [`complete`] as a write of its own: stores an answer the operation's
/// transaction did not (an error answer kept for replay).
pub async fn store_response(tx: &mut Tx<'_>, claim: IdempotencyClaim, response: StoredResponse) -> StoreResult<bool> {
    complete(tx, &claim, &response).await
}

/// Stores the response, only while `claim` still holds the key. Returns
/// false when the claim was taken over; the caller must then roll back.
pub async fn complete(
    conn: &mut (impl Executor + ?Sized),
    claim: &IdempotencyClaim,
    response: &StoredResponse,
) -> StoreResult<bool> {
    let done = query(
        "UPDATE idempotency_keys SET response_status = $1, response_body = $2 \
         WHERE api_key_id = $3 AND idempotency_key = $4 AND token = $5 AND response_status IS NULL",
    )
    .bind(i64::from(response.status))
    .bind(response.body.clone())
    .bind(claim.api_key.to_bytes())
    .bind(claim.key.clone())
    .bind(claim.token.clone())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives the key back after a failure that is not stored.
pub async fn release(tx: &mut Tx<'_>, claim: IdempotencyClaim) -> StoreResult<()> {
    query(
        "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND idempotency_key = $2 AND token = $3 \
         AND response_status IS NULL",
    )
    .bind(claim.api_key.to_bytes())
    .bind(claim.key.clone())
    .bind(claim.token)
    .execute(tx)
    .await?;
    Ok(())
}

/// One reaper batch: the oldest records first, through the `created` index.
pub const REAP_SQL: &str = "DELETE FROM idempotency_keys WHERE (api_key_id, idempotency_key) IN \
     (SELECT api_key_id, idempotency_key FROM idempotency_keys WHERE created < $1 ORDER BY created LIMIT $2)";

/// Deletes up to `batch` records created before `before_ms`, oldest first,
/// through the `created` index.
pub async fn reap(tx: &mut Tx<'_>, before_ms: u64, batch: u32) -> StoreResult<u64> {
    let done = query(REAP_SQL)
        .bind(before_ms as i64)
        .bind(i64::from(batch))
        .execute(tx)
        .await?;
    Ok(done.rows_affected())
}
