//! Reads of webhooks: endpoints, each endpoint's deliveries and replays,
//! and each delivery's attempts, newest first as on REST.

use async_graphql::{Context, ID, Object, Result};
use settle_core::ops::webhooks::{
    ListWebhookAttempts, ListWebhookDeliveries, ListWebhookEndpoints, ListWebhookReplays, RetrieveWebhookDelivery,
    RetrieveWebhookEndpoint,
};
use settle_domain::ids::{WebhookAttemptId, WebhookDeliveryId, WebhookEndpointId, WebhookReplayId};

use super::page::{
    WebhookAttemptConnection, WebhookDeliveryConnection, WebhookEndpointConnection, WebhookReplayConnection, page,
    with_filter,
};
use super::rc;
use super::webhook_objects::{WebhookDelivery, WebhookEndpoint};

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    async fn webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookEndpoint> {
        let op = RetrieveWebhookEndpoint { id: id.0 };
        Ok(WebhookEndpoint(rc(ctx)?.run(op, None).await?))
    }

    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<WebhookEndpointConnection> {
        let params = page(first, after, |t| WebhookEndpointId::parse(t).map(|i| i.uuid()));
        Ok(WebhookEndpointConnection::from_page(
            rc(ctx)?
                .run_with(move || params.map(ListWebhookEndpoints), None)
                .await?,
        ))
    }

    /// One endpoint's deliveries, newest first; `status` is `pending`,
    /// `delivered` or `failed`; or `eventType` (one filter at a time).
    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint: ID,
        first: Option<i32>,
        after: Option<String>,
        status: Option<String>,
        event_type: Option<String>,
    ) -> Result<WebhookDeliveryConnection> {
        let params = page(first, after, |t| WebhookDeliveryId::parse(t).map(|i| i.uuid()));
        let params = params.and_then(|params| with_filter(params, &[("status", status), ("event_type", event_type)]));
        let op = params.map(|params| ListWebhookDeliveries { id: endpoint.0, params });
        Ok(WebhookDeliveryConnection::from_page(
            rc(ctx)?.run_with(move || op, None).await?,
        ))
    }

    async fn webhook_delivery(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookDelivery> {
        let op = RetrieveWebhookDelivery { id: id.0 };
        Ok(WebhookDelivery(rc(ctx)?.run(op, None).await?))
    }

    /// One delivery's attempts, newest first.
    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn webhook_attempts(
        &self,
        ctx: &Context<'_>,
        delivery: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<WebhookAttemptConnection> {
        let params = page(first, after, |t| WebhookAttemptId::parse(t).map(|i| i.uuid()));
        let op = params.map(|params| ListWebhookAttempts { id: delivery.0, params });
        Ok(WebhookAttemptConnection::from_page(
            rc(ctx)?.run_with(move || op, None).await?,
        ))
    }

    /// One endpoint's replays and their progress, newest first.
    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn webhook_replays(
        &self,
        ctx: &Context<'_>,
        endpoint: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<WebhookReplayConnection> {
        let params = page(first, after, |t| WebhookReplayId::parse(t).map(|i| i.uuid()));
        let op = params.map(|params| ListWebhookReplays { id: endpoint.0, params });
        Ok(WebhookReplayConnection::from_page(
            rc(ctx)?.run_with(move || op, None).await?,
        ))
    }
}
