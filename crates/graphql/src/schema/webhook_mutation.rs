//! Writes of webhooks: endpoints (their signing secret shown once, at
//! creation and at rotation), replays of past events, and a delivery sent
//! again now.

use async_graphql::{Context, ID, Object, Result};
use settle_core::ops::webhooks::{
    CreateWebhookEndpoint, DeleteWebhookEndpoint, ReplayWebhooks, RetryWebhookDelivery, RotateWebhookSecret,
    SendWebhookTest, UpdateWebhookEndpoint,
};

use super::inputs::{CreateWebhookEndpointInput, Nullable, UpdateWebhookEndpointInput};
use super::webhook_objects::{WebhookDelivery, WebhookEndpoint, WebhookEndpointWithSecret, WebhookReplay};
use super::{rc, text};

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Registers a receiver; the answer holds its signing secret, this
    /// once (a replay of the same `idempotencyKey` says it omitted it).
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
        idempotency_key: Option<String>,
    ) -> Result<WebhookEndpointWithSecret> {
        let op = CreateWebhookEndpoint {
            url: input.url,
            enabled_events: input.enabled_events,
            description: input.description,
            metadata: input.metadata.map(|m| m.0),
        };
        let answer = rc(ctx)?.answer(move || Ok(op), idempotency_key).await?;
        Ok(WebhookEndpointWithSecret(answer))
    }

    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookEndpointInput,
        expected_version: Option<i64>,
        idempotency_key: Option<String>,
    ) -> Result<WebhookEndpoint> {
        let op = UpdateWebhookEndpoint {
            id: id.0,
            if_version: expected_version,
            url: input.url,
            enabled_events: input.enabled_events,
            description: input.description.map(Nullable::into_option),
            metadata: input.metadata.map(|m| m.0),
            status: input.status,
        };
        Ok(WebhookEndpoint(rc(ctx)?.run(op, idempotency_key).await?))
    }

    /// Deletes an endpoint and its pending deliveries; answers its id.
    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: ID, idempotency_key: Option<String>) -> Result<ID> {
        let op = DeleteWebhookEndpoint { id: id.0 };
        let deleted = rc(ctx)?.run(op, idempotency_key).await?;
        Ok(ID(text(&deleted, "id")))
    }

    /// Issues a new signing secret, shown this once; the old one keeps
    /// signing alongside it for the grace period.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> Result<WebhookEndpointWithSecret> {
        let op = RotateWebhookSecret { id: id.0 };
        let answer = rc(ctx)?.answer(move || Ok(op), idempotency_key).await?;
        Ok(WebhookEndpointWithSecret(answer))
    }

    /// Sends again, in the background, the endpoint's matching events
    /// created in `[since, until)` (Unix seconds; `until` defaults to now);
    /// with `failedOnly`, only its deliveries that failed for good in that
    /// range (recovery after an outage).
    async fn replay_webhooks(
        &self,
        ctx: &Context<'_>,
        id: ID,
        since: i64,
        until: Option<i64>,
        failed_only: Option<bool>,
        idempotency_key: Option<String>,
    ) -> Result<WebhookReplay> {
        let op = ReplayWebhooks {
            id: id.0,
            since: Some(since),
            until,
            failed_only: failed_only.unwrap_or(false),
        };
        Ok(WebhookReplay(rc(ctx)?.run(op, idempotency_key).await?))
    }

    /// Sends a `webhook_endpoint.test` event to this endpoint alone.
    async fn send_webhook_test(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> Result<WebhookDelivery> {
        let op = SendWebhookTest { id: id.0 };
        Ok(WebhookDelivery(rc(ctx)?.run(op, idempotency_key).await?))
    }

    /// Queues an attempt of a delivery now, also one that failed for good.
    async fn retry_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> Result<WebhookDelivery> {
        let op = RetryWebhookDelivery { id: id.0 };
        Ok(WebhookDelivery(rc(ctx)?.run(op, idempotency_key).await?))
    }
}
