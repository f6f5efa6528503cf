//! Webhook endpoints, deliveries, attempts and replays: the contract, and its record types.

use async_trait::async_trait;
use settle_domain::ids::{WebhookDeliveryId, WebhookEndpointId, WebhookReplayId};
use settle_domain::webhook::{
    DeliveryFilter, DeliveryStatus, EndpointPatch, NewWebhookEndpoint, WebhookAttempt, WebhookDelivery,
    WebhookEndpoint, WebhookReplay,
};

use crate::context::WriteContext;
use crate::error::StoreResult;
use crate::list::{ListQuery, Page};
use crate::records::*;

/// An endpoint's sealed signing secrets: the current one, and the one it
/// replaced while its grace period lasts (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecrets {
    pub current: Vec<u8>,
    pub previous: Option<(Vec<u8>, i64)>,
}

/// What one attempt came to, and what happens next.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub attempt: WebhookAttempt,
    pub status: DeliveryStatus,
    /// Unix ms of the next attempt, when another is due.
    pub next_attempt_ms: Option<u64>,
    /// Set when the receiver asked never to be called again (410).
    pub disable_endpoint: Option<String>,
    /// An endpoint whose attempts have all failed for this long is disabled.
    pub disable_after_ms: u64,
    pub now_ms: u64,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Settles or fails a `processing` payment with the processor's answer,
    /// once per message: `None` when `done` was already recorded or the
    /// payment is no longer processing.
    async fn create_webhook_endpoint(
        &self,
        ctx: &WriteContext,
        new: NewWebhookEndpoint,
        sealed_secret: Vec<u8>,
    ) -> StoreResult<WebhookEndpoint>;
    async fn webhook_endpoint(&self, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>>;
    /// The endpoint's sealed signing secrets, for the delivery worker.
    async fn webhook_secrets(&self, id: WebhookEndpointId) -> StoreResult<Option<SealedSecrets>>;
    /// Compare-and-set of an endpoint's sealed secrets (a master-key
    /// rotation's re-sealing); false when they changed since `read`.
    async fn reseal_webhook_secrets(
        &self,
        id: WebhookEndpointId,
        read: &SealedSecrets,
        resealed: &SealedSecrets,
    ) -> StoreResult<bool>;
    async fn update_webhook_endpoint(
        &self,
        ctx: &WriteContext,
        id: WebhookEndpointId,
        patch: EndpointPatch,
        if_version: Option<i64>,
    ) -> StoreResult<WebhookEndpoint>;
    async fn delete_webhook_endpoint(&self, ctx: &WriteContext, id: WebhookEndpointId) -> StoreResult<Deleted>;
    /// Seals in a new secret; the old one keeps signing until `grace_until_ms`.
    async fn rotate_webhook_secret(
        &self,
        ctx: &WriteContext,
        id: WebhookEndpointId,
        sealed_secret: Vec<u8>,
        grace_until_ms: i64,
    ) -> StoreResult<WebhookEndpoint>;
    async fn list_webhook_endpoints(&self, q: &ListQuery<()>) -> StoreResult<Page<WebhookEndpoint>>;
    async fn webhook_delivery(&self, id: WebhookDeliveryId) -> StoreResult<Option<WebhookDelivery>>;
    async fn list_webhook_deliveries(
        &self,
        endpoint: WebhookEndpointId,
        q: &ListQuery<DeliveryFilter>,
    ) -> StoreResult<Page<WebhookDelivery>>;
    async fn list_webhook_attempts(
        &self,
        delivery: WebhookDeliveryId,
        q: &ListQuery<()>,
    ) -> StoreResult<Page<WebhookAttempt>>;
    /// Deliveries by id, for a claimed batch (one read, not one per job).
    async fn webhook_deliveries(&self, ids: &[WebhookDeliveryId]) -> StoreResult<Vec<WebhookDelivery>>;
    /// Endpoints with their sealed secrets, for a delivery worker filling
    /// its cache of ready-to-sign endpoints.
    async fn webhook_signing_endpoints(
        &self,
        ids: &[WebhookEndpointId],
    ) -> StoreResult<Vec<(WebhookEndpoint, SealedSecrets)>>;
    /// Records attempts, the deliveries' new states and their next jobs,
    /// all in one transaction.
    async fn record_webhook_attempts(&self, records: Vec<(WebhookEndpointId, AttemptRecord)>) -> StoreResult<()>;
    /// Starts a replay of an endpoint's events created in `[since_ms,
    /// until_ms)`, or with `failed_only` a recovery of its deliveries that
    /// failed for good then.
    async fn create_webhook_replay(
        &self,
        ctx: &WriteContext,
        endpoint: WebhookEndpointId,
        since_ms: i64,
        until_ms: i64,
        failed_only: bool,
    ) -> StoreResult<WebhookReplay>;
    /// Pending deliveries per endpoint (its id as text).
    async fn webhook_backlog(&self) -> StoreResult<Vec<(String, i64)>>;
    /// Sends a `webhook_endpoint.test` event to this endpoint alone: the
    /// event and its one delivery, committed together.
    async fn send_webhook_test(&self, ctx: &WriteContext, id: WebhookEndpointId) -> StoreResult<WebhookDelivery>;
    /// Works through one page of a replay; true when it is done.
    async fn run_webhook_replay(&self, id: WebhookReplayId, page: u32, now_ms: u64) -> StoreResult<bool>;
    async fn list_webhook_replays(
        &self,
        endpoint: WebhookEndpointId,
        q: &ListQuery<()>,
    ) -> StoreResult<Page<WebhookReplay>>;
    /// Makes a delivery pending with an attempt due now.
    async fn retry_webhook_delivery(&self, id: WebhookDeliveryId, now_ms: u64) -> StoreResult<WebhookDelivery>;
}
