//! `/v1/webhook_endpoints` and `/v1/webhook_deliveries`: receivers, their
//! signing secrets (shown once, at creation and rotation), each delivery
//! and every attempt, manual retries and replays.

use axum::extract::State;
use axum::response::Response;
use settle_core::Settle;
use settle_core::ops::webhooks::{
    CreateWebhookEndpoint, DeleteWebhookEndpoint, ListWebhookAttempts, ListWebhookDeliveries, ListWebhookEndpoints,
    ListWebhookReplays, ReplayWebhooks, RetrieveWebhookDelivery, RetrieveWebhookEndpoint, RetryWebhookDelivery,
    RotateWebhookSecret, SendWebhookTest, UpdateWebhookEndpoint,
};
use settle_domain::ids::{WebhookAttemptId, WebhookDeliveryId, WebhookEndpointId, WebhookReplayId};

use super::serve::{Rest, RestInput};

pub async fn create(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::json::<CreateWebhookEndpoint>).await
}

pub async fn retrieve(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<RetrieveWebhookEndpoint>)
        .await
}

pub async fn update(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(UpdateWebhookEndpoint {
            if_version: r.if_match()?,
            ..r.targeted::<UpdateWebhookEndpoint>()?
        })
    })
    .await
}

pub async fn remove(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<DeleteWebhookEndpoint>).await
}

pub async fn rotate_secret(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<RotateWebhookSecret>).await
}

pub async fn list(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListWebhookEndpoints(
            r.list(&[], |t| WebhookEndpointId::parse(t).map(|i| i.uuid()))?,
        ))
    })
    .await
}

pub async fn deliveries(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListWebhookDeliveries {
            id: r.id(),
            params: r.list(ListWebhookDeliveries::FILTERS, |t| {
                WebhookDeliveryId::parse(t).map(|i| i.uuid())
            })?,
        })
    })
    .await
}

pub async fn delivery(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<RetrieveWebhookDelivery>)
        .await
}

pub async fn attempts(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListWebhookAttempts {
            id: r.id(),
            params: r.list(&[], |t| WebhookAttemptId::parse(t).map(|i| i.uuid()))?,
        })
    })
    .await
}

/// The overview's figures: outcomes per minute, commit-to-receipt,
/// backlog and breaker per endpoint, dead letters.
pub async fn stats(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |_| Ok(settle_core::ops::webhook_stats::WebhookStats))
        .await
}

pub async fn send_test(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<SendWebhookTest>).await
}

pub async fn retry(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<RetryWebhookDelivery>).await
}

/// Starts a replay; it runs in the background and `GET` on the same path
/// shows its progress.
pub async fn replay(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::targeted::<ReplayWebhooks>).await
}

pub async fn replays(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListWebhookReplays {
            id: r.id(),
            params: r.list(&[], |t| WebhookReplayId::parse(t).map(|i| i.uuid()))?,
        })
    })
    .await
}
