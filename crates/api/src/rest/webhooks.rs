//! `/v1/webhook_endpoints` and `/v1/webhook_deliveries`: receivers, their
//! signing secrets (shown once, at creation and rotation), each delivery
//! and every attempt, and a manual retry.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use settle_core::Settle;
use settle_domain::ids::{WebhookAttemptId, WebhookDeliveryId, WebhookEndpointId};
use settle_domain::webhook::{DeliveryStatus, EnabledEvents, EndpointPatch, EndpointStatus, NewWebhookEndpoint};
use settle_store::records::Deleted;

use crate::error::ApiError;
use crate::extract::{IfMatch, JsonBody, ListRequest, PathId, json_with_etag, list_response, nullable, with_etag};
use crate::guard::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    url: String,
    enabled_events: Vec<String>,
    description: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    url: Option<String>,
    enabled_events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    metadata: Option<BTreeMap<String, Option<String>>>,
    status: Option<String>,
}

/// The endpoint's JSON with its secret, which is never stored with it.
fn with_secret(endpoint: &settle_domain::webhook::WebhookEndpoint, secret: String) -> Result<Response, ApiError> {
    let mut json = serde_json::to_value(endpoint).map_err(|_| ApiError::internal())?;
    json["secret"] = serde_json::Value::String(secret);
    Ok(json_with_etag(json, endpoint.version))
}

pub async fn create(
    State(settle): State<Settle>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateEndpoint>,
) -> Result<Response, ApiError> {
    let new = NewWebhookEndpoint::new(
        body.url,
        body.enabled_events,
        body.description,
        super::metadata(body.metadata)?,
    )?;
    let (endpoint, secret) = settle.create_webhook_endpoint(&caller.context(&settle), new).await?;
    with_secret(&endpoint, secret)
}

pub async fn retrieve(State(settle): State<Settle>, PathId(id): PathId) -> Result<Response, ApiError> {
    Ok(with_etag(settle.webhook_endpoint(WebhookEndpointId::parse(&id)).await?))
}

pub async fn update(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(if_version): IfMatch,
    JsonBody(body): JsonBody<UpdateEndpoint>,
) -> Result<Response, ApiError> {
    let status = match body.status.as_deref() {
        None => None,
        Some(text) => Some(EndpointStatus::parse(text).ok_or_else(|| {
            ApiError::invalid(
                "parameter_invalid",
                "status",
                "`status` must be `enabled` or `disabled`.",
            )
        })?),
    };
    let patch = EndpointPatch {
        url: body.url,
        enabled_events: body.enabled_events.map(EnabledEvents::new).transpose()?,
        description: body.description,
        metadata: body.metadata,
        status,
    };
    let endpoint = settle
        .update_webhook_endpoint(
            &caller.context(&settle),
            WebhookEndpointId::parse(&id),
            patch,
            if_version,
        )
        .await?;
    Ok(with_etag(endpoint))
}

pub async fn remove(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<axum::Json<Deleted>, ApiError> {
    Ok(axum::Json(
        settle
            .delete_webhook_endpoint(&caller.context(&settle), WebhookEndpointId::parse(&id))
            .await?,
    ))
}

pub async fn rotate_secret(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let (endpoint, secret) = settle
        .rotate_webhook_secret(&caller.context(&settle), WebhookEndpointId::parse(&id))
        .await?;
    with_secret(&endpoint, secret)
}

pub async fn list(State(settle): State<Settle>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &[], |t| WebhookEndpointId::parse(t).map(|i| i.uuid()))?;
    let page = settle.list_webhook_endpoints(&req.query).await?;
    Ok(list_response(page, "/v1/webhook_endpoints"))
}

pub async fn deliveries(
    State(settle): State<Settle>,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &["status"], |t| {
        WebhookDeliveryId::parse(t).map(|i| i.uuid())
    })?;
    let status = match &req.filter {
        None => None,
        Some((_, value)) => Some(DeliveryStatus::parse(value).ok_or_else(|| {
            ApiError::invalid(
                "parameter_invalid",
                "status",
                format!("`{value}` is not a delivery status (pending, delivered, failed)."),
            )
        })?),
    };
    let page = settle
        .list_webhook_deliveries(WebhookEndpointId::parse(&id), &req.with_filter(status))
        .await?;
    Ok(list_response(page, &format!("/v1/webhook_endpoints/{id}/deliveries")))
}

pub async fn delivery(
    State(settle): State<Settle>,
    PathId(id): PathId,
) -> Result<axum::Json<settle_domain::webhook::WebhookDelivery>, ApiError> {
    Ok(axum::Json(
        settle.webhook_delivery(WebhookDeliveryId::parse(&id)).await?,
    ))
}

pub async fn attempts(
    State(settle): State<Settle>,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &[], |t| WebhookAttemptId::parse(t).map(|i| i.uuid()))?;
    let page = settle
        .list_webhook_attempts(WebhookDeliveryId::parse(&id), &req.query)
        .await?;
    Ok(list_response(page, &format!("/v1/webhook_deliveries/{id}/attempts")))
}

pub async fn retry(
    State(settle): State<Settle>,
    PathId(id): PathId,
) -> Result<axum::Json<settle_domain::webhook::WebhookDelivery>, ApiError> {
    Ok(axum::Json(
        settle.retry_webhook_delivery(WebhookDeliveryId::parse(&id)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    #[serde(default, deserialize_with = "crate::extract::not_null")]
    since: Option<i64>,
    #[serde(default, deserialize_with = "crate::extract::not_null")]
    until: Option<i64>,
}

/// Starts a replay; it runs in the background and `GET` on the same path
/// shows its progress.
pub async fn replay(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody<Replay>,
) -> Result<axum::Json<settle_domain::webhook::WebhookReplay>, ApiError> {
    // An unknown endpoint is a 404 whatever the body says.
    let endpoint = settle.webhook_endpoint(WebhookEndpointId::parse(&id)).await?;
    let since = body
        .since
        .ok_or_else(|| ApiError::invalid("parameter_missing", "since", "Missing required parameter `since`."))?;
    Ok(axum::Json(
        settle
            .replay_webhooks(&caller.context(&settle), Some(endpoint.id), since, body.until)
            .await?,
    ))
}

pub async fn replays(
    State(settle): State<Settle>,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &[], |t| {
        settle_domain::ids::WebhookReplayId::parse(t).map(|i| i.uuid())
    })?;
    let page = settle
        .list_webhook_replays(WebhookEndpointId::parse(&id), &req.query)
        .await?;
    Ok(list_response(page, &format!("/v1/webhook_endpoints/{id}/replay")))
}
