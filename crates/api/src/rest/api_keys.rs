//! `/v1/api_keys`: create (the secret is shown once), list, read, revoke.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use settle_core::Settle;
use settle_domain::ids::ApiKeyId;

use crate::error::ApiError;
use crate::extract::{JsonBody, ListRequest, PathId, list_response};
use crate::guard::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    name: String,
    role: String,
    #[serde(default, deserialize_with = "crate::extract::not_null")]
    expires_at: Option<i64>,
}

/// The one response that carries the secret; it is not stored, so an
/// idempotent replay of it says the secret was omitted.
pub async fn create(
    State(settle): State<Settle>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateApiKey>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let ctx = caller.context(&settle);
    let (key, secret) = settle
        .create_api_key(&ctx, Some(&caller.principal), body.name, &body.role, body.expires_at)
        .await?;
    let mut json = serde_json::to_value(&key).map_err(|_| ApiError::internal())?;
    json["secret"] = serde_json::Value::String(secret);
    Ok(axum::Json(json))
}

pub async fn retrieve(
    State(settle): State<Settle>,
    PathId(id): PathId,
) -> Result<axum::Json<settle_store::records::ApiKey>, ApiError> {
    Ok(axum::Json(settle.api_key(ApiKeyId::parse(&id)).await?))
}

pub async fn list(State(settle): State<Settle>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &[], |t| ApiKeyId::parse(t).map(|i| i.uuid()))?;
    let page = settle.list_api_keys(&req.query).await?;
    Ok(list_response(page, "/v1/api_keys"))
}

/// Revokes at once: the key's next request gets 401.
pub async fn revoke(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<axum::Json<settle_store::records::ApiKey>, ApiError> {
    Ok(axum::Json(
        settle
            .revoke_api_key(&caller.context(&settle), Some(&caller.principal), ApiKeyId::parse(&id))
            .await?,
    ))
}
