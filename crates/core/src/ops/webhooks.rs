//! Webhook endpoints (their signing secrets shown once, at creation and
//! rotation), each delivery and every attempt, manual retries and replays.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use settle_domain::ids::{WebhookDeliveryId, WebhookEndpointId};
use settle_domain::rbac::Resource;
use settle_domain::webhook::{
    DeliveryFilter, DeliveryStatus, EVENT_TYPES, EnabledEvents, EndpointPatch, EndpointStatus, NewWebhookEndpoint,
    TEST_EVENT, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookReplay,
};
use settle_store::Page;
use settle_store::records::Deleted;

use super::{
    ListParams, Targeted, WithSecret, by_id, invalid, metadata, not_null, nullable, object_attributes, plain_list,
};
use crate::Settle;
use crate::expand::Shown;
use crate::pipeline::registry::{
    CREATE_WEBHOOK_ENDPOINT, DELETE_WEBHOOK_ENDPOINT, LIST_WEBHOOK_ATTEMPTS, LIST_WEBHOOK_DELIVERIES,
    LIST_WEBHOOK_ENDPOINTS, LIST_WEBHOOK_REPLAYS, REPLAY_WEBHOOKS, RETRIEVE_WEBHOOK_DELIVERY,
    RETRIEVE_WEBHOOK_ENDPOINT, RETRY_WEBHOOK_DELIVERY, ROTATE_WEBHOOK_SECRET, SEND_WEBHOOK_TEST,
    UPDATE_WEBHOOK_ENDPOINT,
};
use crate::pipeline::{Failure, Operation, OperationContext, OperationSpec};
use crate::policy::ResourceAttrs;

/// Registers a public HTTPS or HTTP URL for the event types it wants (`*` for
/// all); the signing secret is in this answer only.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    pub url: String,
    pub enabled_events: Vec<String>,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Operation for CreateWebhookEndpoint {
    type Output = WithSecret<WebhookEndpoint>;
    const SPEC: &'static OperationSpec = &CREATE_WEBHOOK_ENDPOINT;
    const SHOWS_SECRET: bool = true;

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let new = NewWebhookEndpoint::new(
            self.url,
            self.enabled_events,
            self.description,
            metadata(self.metadata)?,
        )?;
        let (object, secret) = settle.create_webhook_endpoint(ctx.write(), new).await?;
        Ok(WithSecret { object, secret })
    }
}

by_id!(
    /// One webhook endpoint (never its secret).
    RetrieveWebhookEndpoint, RETRIEVE_WEBHOOK_ENDPOINT, Webhooks, Shown<WebhookEndpoint>,
    |settle, ctx, id| async { settle.read_webhook_endpoint(WebhookEndpointId::parse(&id)).await.map(Shown::cached) }
);

by_id!(
    /// Deletes an endpoint and its pending deliveries.
    DeleteWebhookEndpoint, DELETE_WEBHOOK_ENDPOINT, Webhooks, Deleted,
    |settle, ctx, id| settle.delete_webhook_endpoint(ctx.write(), WebhookEndpointId::parse(&id))
);

by_id!(
    /// One delivery.
    RetrieveWebhookDelivery, RETRIEVE_WEBHOOK_DELIVERY, Webhooks, WebhookDelivery,
    |settle, ctx, id| settle.webhook_delivery(WebhookDeliveryId::parse(&id))
);

by_id!(
    /// Sends a `webhook_endpoint.test` event to this endpoint alone.
    SendWebhookTest, SEND_WEBHOOK_TEST, Webhooks, WebhookDelivery,
    |settle, ctx, id| settle.send_webhook_test(ctx.write(), WebhookEndpointId::parse(&id))
);

by_id!(
    /// Queues an attempt now, also for a delivery that failed for good.
    RetryWebhookDelivery, RETRY_WEBHOOK_DELIVERY, Webhooks, WebhookDelivery,
    |settle, ctx, id| settle.retry_webhook_delivery(WebhookDeliveryId::parse(&id))
);

/// Issues a new signing secret, shown this once; the old one keeps signing
/// alongside it for the grace period.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookSecret {
    #[serde(default, skip_deserializing)]
    pub id: String,
}

impl Targeted for RotateWebhookSecret {
    fn with_id(self, id: String) -> Self {
        Self { id }
    }
}

impl Operation for RotateWebhookSecret {
    type Output = WithSecret<WebhookEndpoint>;
    const SPEC: &'static OperationSpec = &ROTATE_WEBHOOK_SECRET;
    const SHOWS_SECRET: bool = true;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Webhooks, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let (object, secret) = settle
            .rotate_webhook_secret(ctx.write(), WebhookEndpointId::parse(&self.id))
            .await?;
        Ok(WithSecret { object, secret })
    }
}

/// Edits an endpoint; `status: disabled` stops deliveries until it is enabled
/// again.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookEndpoint {
    #[serde(default, skip_deserializing)]
    pub id: String,
    #[serde(default, skip_deserializing)]
    pub if_version: Option<i64>,
    pub url: Option<String>,
    pub enabled_events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    pub metadata: Option<BTreeMap<String, Option<String>>>,
    /// `enabled` or `disabled`.
    pub status: Option<String>,
}

impl Targeted for UpdateWebhookEndpoint {
    fn with_id(self, id: String) -> Self {
        Self { id, ..self }
    }
}

impl Operation for UpdateWebhookEndpoint {
    type Output = WebhookEndpoint;
    const SPEC: &'static OperationSpec = &UPDATE_WEBHOOK_ENDPOINT;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Webhooks, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<WebhookEndpoint, Failure> {
        let status = match self.status.as_deref() {
            None => None,
            Some(text) => Some(
                EndpointStatus::parse(text)
                    .ok_or_else(|| invalid("status", "`status` must be `enabled` or `disabled`."))?,
            ),
        };
        let patch = EndpointPatch {
            url: self.url,
            enabled_events: self.enabled_events.map(EnabledEvents::new).transpose()?,
            description: self.description,
            metadata: self.metadata,
            status,
        };
        Ok(settle
            .update_webhook_endpoint(ctx.write(), WebhookEndpointId::parse(&self.id), patch, self.if_version)
            .await?)
    }
}

plain_list!(
    /// Webhook endpoints, newest first.
    ListWebhookEndpoints, LIST_WEBHOOK_ENDPOINTS, WebhookEndpoint,
    |settle, query| settle.list_webhook_endpoints(&query)
);

/// One endpoint's deliveries, newest first; `status` or `event_type` filters.
#[derive(Debug, Clone, Serialize)]
pub struct ListWebhookDeliveries {
    pub id: String,
    pub params: ListParams,
}

impl ListWebhookDeliveries {
    pub const FILTERS: &'static [&'static str] = &["status", "event_type"];
}

impl Operation for ListWebhookDeliveries {
    type Output = Page<WebhookDelivery>;
    const SPEC: &'static OperationSpec = &LIST_WEBHOOK_DELIVERIES;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Webhooks, &self.id)
    }

    async fn run(self, settle: &Settle, _ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let filter = match &self.params.filter {
            None => None,
            Some((name, value)) if name == "event_type" => {
                if !(EVENT_TYPES.contains(&value.as_str()) || value == TEST_EVENT) {
                    return Err(invalid("event_type", format!("`{value}` is not an event type.")));
                }
                Some(DeliveryFilter::EventType(value.clone()))
            }
            Some((_, value)) => Some(DeliveryFilter::Status(DeliveryStatus::parse(value).ok_or_else(
                || {
                    invalid(
                        "status",
                        format!("`{value}` is not a delivery status (pending, delivered, failed)."),
                    )
                },
            )?)),
        };
        Ok(settle
            .list_webhook_deliveries(WebhookEndpointId::parse(&self.id), &self.params.with_filter(filter))
            .await?)
    }
}

/// One delivery's attempts, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct ListWebhookAttempts {
    pub id: String,
    pub params: ListParams,
}

impl Operation for ListWebhookAttempts {
    type Output = Page<WebhookAttempt>;
    const SPEC: &'static OperationSpec = &LIST_WEBHOOK_ATTEMPTS;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Webhooks, &self.id)
    }

    async fn run(self, settle: &Settle, _ctx: &OperationContext) -> Result<Self::Output, Failure> {
        Ok(settle
            .list_webhook_attempts(WebhookDeliveryId::parse(&self.id), &self.params.query)
            .await?)
    }
}

/// Sends again, as new deliveries in the background, the endpoint's
/// matching events created in `[since, until)` (Unix seconds); with
/// `failed_only`, only its deliveries that failed for good (retries used
/// up) in that range, made pending again (recovery after an outage).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayWebhooks {
    #[serde(default, skip_deserializing)]
    pub id: String,
    #[serde(default, deserialize_with = "not_null")]
    pub since: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    pub until: Option<i64>,
    #[serde(default)]
    pub failed_only: bool,
}

impl Targeted for ReplayWebhooks {
    fn with_id(self, id: String) -> Self {
        Self { id, ..self }
    }
}

impl Operation for ReplayWebhooks {
    type Output = WebhookReplay;
    const SPEC: &'static OperationSpec = &REPLAY_WEBHOOKS;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Webhooks, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<WebhookReplay, Failure> {
        // An unknown endpoint is a 404 whatever the body says.
        let endpoint = settle.webhook_endpoint(WebhookEndpointId::parse(&self.id)).await?;
        let since = self
            .since
            .ok_or_else(|| Failure::invalid("parameter_missing", "since", "Missing required parameter `since`."))?;
        Ok(settle
            .replay_webhooks(ctx.write(), Some(endpoint.id), since, self.until, self.failed_only)
            .await?)
    }
}

/// One endpoint's replays and their progress, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct ListWebhookReplays {
    pub id: String,
    pub params: ListParams,
}

impl Operation for ListWebhookReplays {
    type Output = Page<WebhookReplay>;
    const SPEC: &'static OperationSpec = &LIST_WEBHOOK_REPLAYS;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Webhooks, &self.id)
    }

    async fn run(self, settle: &Settle, _ctx: &OperationContext) -> Result<Self::Output, Failure> {
        Ok(settle
            .list_webhook_replays(WebhookEndpointId::parse(&self.id), &self.params.query)
            .await?)
    }
}
