//! `/v1/roles`: custom roles (built-ins are listed but cannot change); a key
//! can only grant permissions it has itself.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use settle_core::Settle;
use settle_domain::ids::RoleId;
use settle_store::records::Deleted;

use crate::error::ApiError;
use crate::extract::{IfMatch, JsonBody, ListRequest, PathId, list_response, with_etag};
use crate::guard::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    name: String,
    permissions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    permissions: Option<Vec<String>>,
}

pub async fn create(
    State(settle): State<Settle>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateRole>,
) -> Result<Response, ApiError> {
    let role = settle
        .create_role(
            &caller.context(&settle),
            Some(&caller.principal),
            &body.name,
            &body.permissions,
        )
        .await?;
    Ok(with_etag(role))
}

pub async fn retrieve(State(settle): State<Settle>, PathId(id): PathId) -> Result<Response, ApiError> {
    let role = settle.role(RoleId::parse(&id)).await?;
    Ok(with_etag(role))
}

pub async fn update(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(if_version): IfMatch,
    JsonBody(body): JsonBody<UpdateRole>,
) -> Result<Response, ApiError> {
    let ctx = caller.context(&settle);
    let id = RoleId::parse(&id);
    let Some(permissions) = body.permissions else {
        // Nothing to change: answer with the role as it is (404 if none).
        let role = settle.role(id).await?;
        return Ok(with_etag(role));
    };
    let role = settle
        .update_role(&ctx, Some(&caller.principal), id, &permissions, if_version)
        .await?;
    Ok(with_etag(role))
}

pub async fn remove(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<axum::Json<Deleted>, ApiError> {
    Ok(axum::Json(
        settle
            .delete_role(&caller.context(&settle), Some(&caller.principal), RoleId::parse(&id))
            .await?,
    ))
}

pub async fn list(State(settle): State<Settle>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &[], |t| RoleId::parse(t).map(|i| i.uuid()))?;
    Ok(list_response(settle.list_roles(&req.query).await?, "/v1/roles"))
}
