//! [`crate::WebhookStore`] for [`SqlStore`]: webhook endpoints, deliveries, attempts and replays.

use async_trait::async_trait;
use settle_domain::ids::{WebhookDeliveryId, WebhookEndpointId, WebhookReplayId};
use settle_domain::webhook::{
    DeliveryFilter, EndpointPatch, NewWebhookEndpoint, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookReplay,
};

use super::list::{FilterValue, fetch_page};
use super::store::spec;
use super::{SqlStore, webhook_replays, webhooks};
use crate::WebhookStore;
use crate::context::WriteContext;
use crate::error::StoreResult;
use crate::list::{ListQuery, Page};
use crate::records::Deleted;
use crate::webhooks::{AttemptRecord, SealedSecrets};

#[async_trait]
impl WebhookStore for SqlStore {
    async fn create_webhook_endpoint(
        &self,
        ctx: &WriteContext,
        new: NewWebhookEndpoint,
        sealed_secret: Vec<u8>,
    ) -> StoreResult<WebhookEndpoint> {
        self.write(ctx, move |tx| {
            Box::pin(webhooks::create_endpoint(tx, new.clone(), sealed_secret.clone()))
        })
        .await
    }

    async fn webhook_endpoint(&self, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
        webhooks::get_endpoint(&mut self.reader(), id).await
    }

    async fn webhook_secrets(&self, id: WebhookEndpointId) -> StoreResult<Option<SealedSecrets>> {
        webhooks::secrets(&mut self.reader(), id).await
    }

    async fn update_webhook_endpoint(
        &self,
        ctx: &WriteContext,
        id: WebhookEndpointId,
        patch: EndpointPatch,
        if_version: Option<i64>,
    ) -> StoreResult<WebhookEndpoint> {
        self.write(ctx, move |tx| {
            Box::pin(webhooks::update_endpoint(tx, id, patch.clone(), if_version))
        })
        .await
    }

    async fn delete_webhook_endpoint(&self, ctx: &WriteContext, id: WebhookEndpointId) -> StoreResult<Deleted> {
        self.write(ctx, move |tx| Box::pin(webhooks::remove_endpoint(tx, id)))
            .await
    }

    async fn reseal_webhook_secrets(
        &self,
        id: WebhookEndpointId,
        read: &SealedSecrets,
        resealed: &SealedSecrets,
    ) -> StoreResult<bool> {
        let (read, resealed) = (read.clone(), resealed.clone());
        self.write_background(move |tx| Box::pin(webhooks::reseal_secrets(tx, id, read.clone(), resealed.clone())))
            .await
    }

    async fn rotate_webhook_secret(
        &self,
        ctx: &WriteContext,
        id: WebhookEndpointId,
        sealed_secret: Vec<u8>,
        grace_until_ms: i64,
    ) -> StoreResult<WebhookEndpoint> {
        self.write(ctx, move |tx| {
            Box::pin(webhooks::rotate_secret(tx, id, sealed_secret.clone(), grace_until_ms))
        })
        .await
    }

    async fn list_webhook_endpoints(&self, q: &ListQuery<()>) -> StoreResult<Page<WebhookEndpoint>> {
        fetch_page(
            &mut self.reader(),
            spec("webhook_endpoints", webhooks::ENDPOINT_COLS, q, None),
            webhooks::endpoint,
        )
        .await
    }

    async fn webhook_delivery(&self, id: WebhookDeliveryId) -> StoreResult<Option<WebhookDelivery>> {
        webhooks::get_delivery(&mut self.reader(), id).await
    }

    async fn list_webhook_deliveries(
        &self,
        endpoint: WebhookEndpointId,
        q: &ListQuery<DeliveryFilter>,
    ) -> StoreResult<Page<WebhookDelivery>> {
        let mut filters = vec![("endpoint_id", FilterValue::Bytes(endpoint.to_bytes()))];
        match &q.filter {
            Some(DeliveryFilter::Status(status)) => {
                filters.push(("status", FilterValue::Text(status.as_str().to_owned())))
            }
            Some(DeliveryFilter::EventType(t)) => filters.push(("event_type", FilterValue::Text(t.clone()))),
            None => {}
        }
        fetch_page(
            &mut self.reader(),
            spec("webhook_deliveries", webhooks::DELIVERY_COLS, q, filters),
            webhooks::delivery,
        )
        .await
    }

    async fn list_webhook_attempts(
        &self,
        delivery: WebhookDeliveryId,
        q: &ListQuery<()>,
    ) -> StoreResult<Page<WebhookAttempt>> {
        let filter = Some(("delivery_id", FilterValue::Bytes(delivery.to_bytes())));
        fetch_page(
            &mut self.reader(),
            spec("webhook_attempts", webhooks::ATTEMPT_COLS, q, filter),
            webhooks::attempt,
        )
        .await
    }

    async fn webhook_deliveries(&self, ids: &[WebhookDeliveryId]) -> StoreResult<Vec<WebhookDelivery>> {
        webhooks::deliveries_by_ids(&mut self.reader(), self.dialect, ids).await
    }

    async fn webhook_signing_endpoints(
        &self,
        ids: &[WebhookEndpointId],
    ) -> StoreResult<Vec<(WebhookEndpoint, SealedSecrets)>> {
        webhooks::signing_endpoints(&mut self.reader(), self.dialect, ids).await
    }

    async fn record_webhook_attempts(&self, records: Vec<(WebhookEndpointId, AttemptRecord)>) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.write_background(move |tx| Box::pin(webhooks::record_attempts(tx, records.clone())))
            .await
    }

    async fn create_webhook_replay(
        &self,
        ctx: &WriteContext,
        endpoint: WebhookEndpointId,
        since_ms: i64,
        until_ms: i64,
        failed_only: bool,
    ) -> StoreResult<WebhookReplay> {
        self.write(ctx, move |tx| {
            Box::pin(webhook_replays::create(tx, endpoint, since_ms, until_ms, failed_only))
        })
        .await
    }

    async fn webhook_backlog(&self) -> StoreResult<Vec<(String, i64)>> {
        webhooks::backlog(&mut self.reader()).await
    }

    async fn send_webhook_test(&self, ctx: &WriteContext, id: WebhookEndpointId) -> StoreResult<WebhookDelivery> {
        self.write(ctx, move |tx| Box::pin(webhooks::send_test(tx, id))).await
    }

    async fn run_webhook_replay(&self, id: WebhookReplayId, page: u32, now_ms: u64) -> StoreResult<bool> {
        self.write_background(move |tx| Box::pin(webhook_replays::run_page(tx, id, page, now_ms)))
            .await
    }

    async fn list_webhook_replays(
        &self,
        endpoint: WebhookEndpointId,
        q: &ListQuery<()>,
    ) -> StoreResult<Page<WebhookReplay>> {
        let filter = Some(("endpoint_id", FilterValue::Bytes(endpoint.to_bytes())));
        fetch_page(
            &mut self.reader(),
            spec("webhook_replays", webhook_replays::REPLAY_COLS, q, filter),
            webhook_replays::replay,
        )
        .await
    }

    async fn retry_webhook_delivery(&self, id: WebhookDeliveryId, now_ms: u64) -> StoreResult<WebhookDelivery> {
        self.write_background(move |tx| Box::pin(webhooks::retry_now(tx, id, now_ms)))
            .await
    }
}
