//! API key rows: the secret itself is never stored, only its SHA-256.

use settle_domain::ids::ApiKeyId;

use super::Tx;
use super::db::{Executor, query};
use super::rows::{self, API_KEY_COLS};
use crate::error::{StoreError, StoreResult};
use crate::records::ApiKey;

pub async fn insert(conn: &mut (impl Executor + ?Sized), k: &ApiKey) -> StoreResult<()> {
    query(
        "INSERT INTO api_keys (id, name, prefix, role, secret_hash, created, last_used, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(k.id.to_bytes())
    .bind(k.name.clone())
    .bind(k.prefix.clone())
    .bind(k.role.clone())
    .bind(k.secret_hash.clone())
    .bind(k.created)
    .bind(k.last_used)
    .bind(k.expires_at)
    .bind(k.revoked_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get<E: Executor + ?Sized>(ex: &mut E, id: ApiKeyId) -> StoreResult<Option<ApiKey>> {
    rows::by_id(ex, "api_keys", API_KEY_COLS, id.to_bytes(), "", rows::api_key).await
}

pub async fn revoke_key(conn: &mut (impl Executor + ?Sized), id: ApiKeyId, now: i64) -> StoreResult<()> {
    query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id.to_bytes())
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores a new key as the caller made it (id, prefix and secret hash
/// included) and hands it back.
pub async fn create(tx: &mut Tx<'_>, key: ApiKey) -> StoreResult<ApiKey> {
    insert(&mut *tx, &key).await?;
    Ok(key)
}

/// Revokes a key at the write's time (a key already revoked keeps its first
/// revocation time) and returns it as it now stands.
pub async fn revoke(tx: &mut Tx<'_>, id: ApiKeyId) -> StoreResult<ApiKey> {
    let now = tx.ctx.now_secs();
    revoke_key(&mut *tx, id, now).await?;
    get(&mut *tx, id).await?.ok_or(StoreError::NotFound {
        what: "API key",
        param: None,
    })
}

/// Records when keys were last used, never moving a time backwards; batched
/// by the caller, so requests never wait on this write.
pub async fn touch(tx: &mut Tx<'_>, uses: Vec<(ApiKeyId, i64)>) -> StoreResult<()> {
    for (id, at) in uses {
        query("UPDATE api_keys SET last_used = $1 WHERE id = $2 AND (last_used IS NULL OR last_used < $3)")
            .bind(at)
            .bind(id.to_bytes())
            .bind(at)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
