//! API key rows: the secret itself is never stored, only its SHA-256.

use settle_domain::ids::ApiKeyId;

use super::db::{Executor, query};
use super::rows::{self, API_KEY_COLS};
use crate::error::StoreResult;
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
