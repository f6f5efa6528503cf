//! `/v1/api_keys`: create (the secret is shown once), list, read, revoke.

use axum::extract::State;
use axum::response::Response;
use settle_core::Settle;
use settle_core::ops::api_keys::{CreateApiKey, ListApiKeys, RetrieveApiKey, RevokeApiKey};
use settle_domain::ids::ApiKeyId;

use super::serve::{Rest, RestInput};

/// The one response that carries the secret; it is not stored, so an
/// idempotent replay of it says the secret was omitted.
pub async fn create(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::json::<CreateApiKey>).await
}

pub async fn retrieve(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<RetrieveApiKey>).await
}

pub async fn list(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListApiKeys(r.list(&[], |t| ApiKeyId::parse(t).map(|i| i.uuid()))?))
    })
    .await
}

/// Revokes at once: the key's next request gets 401.
pub async fn revoke(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<RevokeApiKey>).await
}
