//! [`crate::WebhookStore`] for [`SqlStore`]: webhook endpoints, deliveries, attempts and replays.

use std::sync::Arc;

use async_trait::async_trait;
use settle_domain::ids::{WebhookDeliveryId, WebhookEndpointId, WebhookReplayId};
use settle_domain::webhook::{
    DeliveryStatus, EndpointPatch, EndpointStatus, NewWebhookEndpoint, WebhookAttempt, WebhookDelivery,
    WebhookEndpoint, WebhookReplay,
};

use super::events::Subject;
use super::list::{FilterValue, fetch_page};
use super::store::{check_version, spec};
use super::{SqlStore, events, webhook_replays, webhooks};
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
        let e = WebhookEndpoint {
            id: WebhookEndpointId::from_uuid(self.ids.next(ctx.now_ms)),
            url: new.url,
            enabled_events: new.enabled_events,
            description: new.description,
            metadata: new.metadata,
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            version: 1,
            created: ctx.now_secs(),
        };
        let (ep, ids, c) = (e.clone(), Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (e, ids, ctx, secret) = (ep.clone(), Arc::clone(&ids), c.clone(), sealed_secret.clone());
            Box::pin(async move {
                webhooks::insert_endpoint(&mut *conn, &e, &secret).await?;
                let subject = Subject {
                    object_type: "webhook_endpoint",
                    object_id: e.id.to_bytes(),
                    new: true,
                };
                events::emit(conn, &ids, &ctx, subject, &["webhook_endpoint.created"], &e).await?;
                Ok(e)
            })
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
        let (d, ids, c) = (self.dialect, Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (ids, ctx, patch) = (Arc::clone(&ids), c.clone(), patch.clone());
            Box::pin(async move {
                let mut e = webhooks::lock_endpoint(&mut *conn, d, id).await?;
                check_version(if_version, e.version)?;
                patch.apply(&mut e)?;
                e.version += 1;
                webhooks::save_endpoint(&mut *conn, &e).await?;
                let subject = Subject {
                    object_type: "webhook_endpoint",
                    object_id: e.id.to_bytes(),
                    new: false,
                };
                events::emit(conn, &ids, &ctx, subject, &["webhook_endpoint.updated"], &e).await?;
                Ok(e)
            })
        })
        .await
    }

    async fn delete_webhook_endpoint(&self, ctx: &WriteContext, id: WebhookEndpointId) -> StoreResult<Deleted> {
        let (d, ids, c) = (self.dialect, Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (ids, ctx) = (Arc::clone(&ids), c.clone());
            Box::pin(async move {
                let e = webhooks::lock_endpoint(&mut *conn, d, id).await?;
                webhooks::delete_endpoint(&mut *conn, id).await?;
                let subject = Subject {
                    object_type: "webhook_endpoint",
                    object_id: e.id.to_bytes(),
                    new: false,
                };
                events::emit(conn, &ids, &ctx, subject, &["webhook_endpoint.deleted"], &e).await?;
                Ok(Deleted {
                    id: id.to_string(),
                    object: "webhook_endpoint",
                    deleted: true,
                })
            })
        })
        .await
    }

    async fn reseal_webhook_secrets(
        &self,
        id: WebhookEndpointId,
        read: &SealedSecrets,
        resealed: &SealedSecrets,
    ) -> StoreResult<bool> {
        let (read, resealed) = (read.clone(), resealed.clone());
        self.write_background(move |conn| {
            let (read, resealed) = (read.clone(), resealed.clone());
            Box::pin(async move { webhooks::reseal_secrets(conn, id, &read, &resealed).await })
        })
        .await
    }

    async fn rotate_webhook_secret(
        &self,
        ctx: &WriteContext,
        id: WebhookEndpointId,
        sealed_secret: Vec<u8>,
        grace_until_ms: i64,
    ) -> StoreResult<WebhookEndpoint> {
        let d = self.dialect;
        self.write(ctx, move |conn| {
            let secret = sealed_secret.clone();
            Box::pin(async move { webhooks::rotate_secret(conn, d, id, &secret, grace_until_ms).await })
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
        q: &ListQuery<DeliveryStatus>,
    ) -> StoreResult<Page<WebhookDelivery>> {
        let mut filters = vec![("endpoint_id", FilterValue::Bytes(endpoint.to_bytes()))];
        if let Some(status) = q.filter {
            filters.push(("status", FilterValue::Text(status.as_str().to_owned())));
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

    async fn record_webhook_attempt(&self, endpoint: WebhookEndpointId, record: &AttemptRecord) -> StoreResult<()> {
        let (d, ids, record) = (self.dialect, Arc::clone(&self.ids), record.clone());
        self.write_background(move |conn| {
            let (ids, record) = (Arc::clone(&ids), record.clone());
            Box::pin(async move { webhooks::record_attempt(conn, d, &ids, endpoint, &record).await })
        })
        .await
    }

    async fn create_webhook_replay(
        &self,
        ctx: &WriteContext,
        endpoint: WebhookEndpointId,
        since_ms: i64,
        until_ms: i64,
    ) -> StoreResult<WebhookReplay> {
        let r = WebhookReplay {
            id: WebhookReplayId::from_uuid(self.ids.next(ctx.now_ms)),
            endpoint,
            since: since_ms / 1000,
            until: until_ms / 1000,
            status: "running".into(),
            deliveries: 0,
            created: ctx.now_secs(),
        };
        let (d, replay) = (self.dialect, r.clone());
        self.write(ctx, move |conn| {
            let r = replay.clone();
            Box::pin(async move {
                webhook_replays::create_replay(conn, d, &r, since_ms, until_ms).await?;
                Ok(r)
            })
        })
        .await
    }

    async fn run_webhook_replay(&self, id: WebhookReplayId, page: u32, now_ms: u64) -> StoreResult<bool> {
        let (d, ids) = (self.dialect, Arc::clone(&self.ids));
        self.write_background(move |conn| {
            let ids = Arc::clone(&ids);
            Box::pin(async move { webhook_replays::run_replay_page(conn, d, &ids, id, page, now_ms).await })
        })
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
        let d = self.dialect;
        self.write_background(move |conn| Box::pin(async move { webhooks::retry_now(conn, d, id, now_ms).await }))
            .await
    }
}
