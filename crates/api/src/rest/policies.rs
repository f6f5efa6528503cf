//! `/v1/policies`: attribute policies in Cedar, validated against the
//! published schema (`GET /v1/policies/schema`) before they are stored.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use settle_core::{PolicyEdit, PolicyStatus, Settle};
use settle_domain::ids::PolicyId;
use settle_store::records::Deleted;

use crate::error::ApiError;
use crate::extract::{IfMatch, JsonBody, ListRequest, PathId, list_response, nullable, with_etag};
use crate::guard::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicy {
    name: String,
    policy: String,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    name: Option<String>,
    policy: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    /// `enabled` or `disabled`; enabling validates the text again.
    status: Option<PolicyStatus>,
}

pub async fn create(
    State(settle): State<Settle>,
    caller: Caller,
    JsonBody(body): JsonBody<CreatePolicy>,
) -> Result<Response, ApiError> {
    let policy = settle
        .create_policy(&caller.context(&settle), body.name, body.policy, body.description)
        .await?;
    Ok(with_etag(policy))
}

pub async fn retrieve(State(settle): State<Settle>, PathId(id): PathId) -> Result<Response, ApiError> {
    let policy = settle.policy(PolicyId::parse(&id)).await?;
    Ok(with_etag(policy))
}

pub async fn update(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(if_version): IfMatch,
    JsonBody(body): JsonBody<UpdatePolicy>,
) -> Result<Response, ApiError> {
    let ctx = caller.context(&settle);
    let policy = settle
        .update_policy(
            &ctx,
            PolicyId::parse(&id),
            PolicyEdit {
                name: body.name,
                text: body.policy,
                description: body.description,
                status: body.status,
                if_version,
            },
        )
        .await?;
    Ok(with_etag(policy))
}

pub async fn remove(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<axum::Json<Deleted>, ApiError> {
    Ok(axum::Json(
        settle
            .delete_policy(&caller.context(&settle), PolicyId::parse(&id))
            .await?,
    ))
}

pub async fn list(State(settle): State<Settle>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &[], |t| PolicyId::parse(t).map(|i| i.uuid()))?;
    Ok(list_response(settle.list_policies(&req.query).await?, "/v1/policies"))
}

/// The Cedar schema policies are validated against.
pub async fn schema() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        settle_core::policy::SCHEMA,
    )
}

pub async fn audit_events(State(settle): State<Settle>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &[], |t| {
        settle_domain::ids::AuditEventId::parse(t).map(|i| i.uuid())
    })?;
    Ok(list_response(
        settle.list_audit_events(&req.query).await?,
        "/v1/audit_events",
    ))
}
