//! The webhook operations every interface calls. Secrets are made here,
//! shown once, and stored only sealed under the master key; receiver URLs
//! pass the SSRF guard before they are saved.

use std::sync::Arc;
use std::time::Duration;

use settle_domain::ids::{WebhookDeliveryId, WebhookEndpointId};
use settle_domain::webhook::{
    DeliveryFilter, EndpointPatch, NewWebhookEndpoint, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookReplay,
};
use settle_store::records::Deleted;
use settle_store::webhooks::SealedSecrets;
use settle_store::{Cursor, ListQuery, Page, StoreError, WriteContext};

use super::signing::SigningSecret;
use super::target;
use crate::secrets::MasterKeys;
use crate::{ServiceError, Settle};

/// What webhooks need from start-up.
#[derive(Debug, Clone)]
pub struct WebhookSetup {
    pub keys: MasterKeys,
    /// `SETTLE_WEBHOOK_ALLOW_PRIVATE_TARGETS`: for tests and local demos.
    pub allow_private_targets: bool,
    /// How long a rotated-out secret keeps signing.
    pub rotation_grace: Duration,
}

type Result<T> = std::result::Result<T, ServiceError>;

/// What a re-sealing pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResealReport {
    /// Endpoints looked at.
    pub endpoints: u64,
    /// Endpoints whose secrets were sealed again under the current key.
    pub resealed: u64,
}

fn invalid(param: &str, message: String) -> ServiceError {
    ServiceError::Store(StoreError::Domain(settle_domain::DomainError::invalid(param, message)))
}

fn missing(what: &'static str) -> ServiceError {
    ServiceError::Store(StoreError::NotFound { what, param: None })
}

impl Settle {
    /// Attaches the master keys and webhook settings; later calls are ignored.
    pub fn attach_webhooks(&self, setup: WebhookSetup) {
        let _ = self.webhooks.set(Arc::new(setup));
    }

    pub(crate) fn webhook_setup(&self) -> Result<Arc<WebhookSetup>> {
        self.webhooks.get().cloned().ok_or_else(|| {
            ServiceError::Store(StoreError::Unavailable(
                "webhooks are not set up in this process".into(),
            ))
        })
    }

    /// Refuses URLs that are not http(s) or that reach a non-public address.
    pub async fn check_webhook_url(&self, url: &str) -> Result<()> {
        let parsed = target::parse(url).map_err(|e| invalid("url", e.to_string()))?;
        if self.webhook_setup()?.allow_private_targets {
            return Ok(());
        }
        target::resolve_public(&parsed)
            .await
            .map(|_| ())
            .map_err(|e| invalid("url", e.to_string()))
    }

    /// Creates an endpoint; the secret (`whsec_...`) is returned this once.
    pub async fn create_webhook_endpoint(
        &self,
        ctx: &WriteContext,
        new: NewWebhookEndpoint,
    ) -> Result<(WebhookEndpoint, String)> {
        self.check_webhook_url(&new.url).await?;
        let secret = SigningSecret::generate();
        let sealed = self
            .webhook_setup()?
            .keys
            .seal(secret.as_bytes())
            .map_err(|e| ServiceError::Store(StoreError::Internal(e.to_string())))?;
        let endpoint = self.store.create_webhook_endpoint(ctx, new, sealed).await?;
        Ok((endpoint, secret.reveal()))
    }

    pub async fn webhook_endpoint(&self, id: Option<WebhookEndpointId>) -> Result<WebhookEndpoint> {
        let Some(id) = id else {
            return Err(missing("webhook endpoint"));
        };
        self.store
            .webhook_endpoint(id)
            .await?
            .ok_or(missing("webhook endpoint"))
    }

    pub async fn update_webhook_endpoint(
        &self,
        ctx: &WriteContext,
        id: Option<WebhookEndpointId>,
        patch: EndpointPatch,
        if_version: Option<i64>,
    ) -> Result<WebhookEndpoint> {
        let Some(id) = id else {
            return Err(missing("webhook endpoint"));
        };
        if let Some(url) = &patch.url {
            self.check_webhook_url(url).await?;
        }
        Ok(self.store.update_webhook_endpoint(ctx, id, patch, if_version).await?)
    }

    pub async fn delete_webhook_endpoint(&self, ctx: &WriteContext, id: Option<WebhookEndpointId>) -> Result<Deleted> {
        let Some(id) = id else {
            return Err(missing("webhook endpoint"));
        };
        Ok(self.store.delete_webhook_endpoint(ctx, id).await?)
    }

    /// Issues a new secret (returned this once); the old one keeps signing,
    /// alongside it, for the grace period.
    pub async fn rotate_webhook_secret(
        &self,
        ctx: &WriteContext,
        id: Option<WebhookEndpointId>,
    ) -> Result<(WebhookEndpoint, String)> {
        let Some(id) = id else {
            return Err(missing("webhook endpoint"));
        };
        let setup = self.webhook_setup()?;
        let secret = SigningSecret::generate();
        let sealed = setup
            .keys
            .seal(secret.as_bytes())
            .map_err(|e| ServiceError::Store(StoreError::Internal(e.to_string())))?;
        let grace_until = ctx.now_ms.saturating_add(setup.rotation_grace.as_millis() as u64) as i64;
        let endpoint = self.store.rotate_webhook_secret(ctx, id, sealed, grace_until).await?;
        Ok((endpoint, secret.reveal()))
    }

    /// Finishes a master-key rotation: every signing secret sealed under an
    /// older key is sealed again under the current one, after which the
    /// older keys can leave `SETTLE_MASTER_KEY`. Safe while serving: a
    /// secret rotated meanwhile is read again and resealed if need be.
    pub async fn reseal_webhook_secrets(&self) -> Result<ResealReport> {
        let keys = &self.webhook_setup()?.keys;
        let secret_error = |id: WebhookEndpointId, e: crate::secrets::SecretError| {
            ServiceError::Store(StoreError::Internal(format!("endpoint {id}: {e}")))
        };
        let mut report = ResealReport::default();
        let mut query = ListQuery::first(100);
        loop {
            let page = self.store.list_webhook_endpoints(&query).await?;
            for endpoint in &page.data {
                report.endpoints += 1;
                let id = endpoint.id;
                // A rotation racing us makes the swap fail; read again.
                while let Some(read) = self.store.webhook_secrets(id).await? {
                    let stale =
                        keys.is_stale(&read.current) || read.previous.as_ref().is_some_and(|(p, _)| keys.is_stale(p));
                    if !stale {
                        break;
                    }
                    let reseal = |sealed: &[u8]| keys.open(sealed).and_then(|plain| keys.seal(&plain));
                    let resealed = SealedSecrets {
                        current: reseal(&read.current).map_err(|e| secret_error(id, e))?,
                        previous: match &read.previous {
                            Some((p, expires)) => Some((reseal(p).map_err(|e| secret_error(id, e))?, *expires)),
                            None => None,
                        },
                    };
                    if self.store.reseal_webhook_secrets(id, &read, &resealed).await? {
                        report.resealed += 1;
                        break;
                    }
                }
            }
            match page.data.last() {
                Some(last) if page.has_more => query.cursor = Some(Cursor::StartingAfter(last.id.uuid())),
                _ => return Ok(report),
            }
        }
    }

    pub async fn list_webhook_endpoints(&self, q: &ListQuery<()>) -> Result<Page<WebhookEndpoint>> {
        Ok(self.store.list_webhook_endpoints(q).await?)
    }

    pub async fn list_webhook_deliveries(
        &self,
        endpoint: Option<WebhookEndpointId>,
        q: &ListQuery<DeliveryFilter>,
    ) -> Result<Page<WebhookDelivery>> {
        let endpoint = self.webhook_endpoint(endpoint).await?;
        Ok(self.store.list_webhook_deliveries(endpoint.id, q).await?)
    }

    pub async fn webhook_delivery(&self, id: Option<WebhookDeliveryId>) -> Result<WebhookDelivery> {
        let Some(id) = id else {
            return Err(missing("webhook delivery"));
        };
        self.store
            .webhook_delivery(id)
            .await?
            .ok_or(missing("webhook delivery"))
    }

    pub async fn list_webhook_attempts(
        &self,
        delivery: Option<WebhookDeliveryId>,
        q: &ListQuery<()>,
    ) -> Result<Page<WebhookAttempt>> {
        let delivery = self.webhook_delivery(delivery).await?;
        Ok(self.store.list_webhook_attempts(delivery.id, q).await?)
    }

    /// Re-delivers the endpoint's matching events created in `[since,
    /// until)` (Unix seconds; `until` defaults to now) as new deliveries,
    /// or with `failed_only` makes its deliveries that failed for good in
    /// that range pending again (recovery after an outage); in the
    /// background, and the replay object shows the progress.
    pub async fn replay_webhooks(
        &self,
        ctx: &WriteContext,
        endpoint: Option<WebhookEndpointId>,
        since: i64,
        until: Option<i64>,
        failed_only: bool,
    ) -> Result<WebhookReplay> {
        let endpoint = self.webhook_endpoint(endpoint).await?;
        let now = (ctx.now_ms / 1000) as i64;
        let until = until.unwrap_or(now + 1);
        if since < 0 || until <= since {
            return Err(invalid("since", "`since` must be before `until` (Unix seconds)".into()));
        }
        let ms = |s: i64| s.saturating_mul(1000);
        Ok(self
            .store
            .create_webhook_replay(ctx, endpoint.id, ms(since), ms(until), failed_only)
            .await?)
    }

    pub async fn list_webhook_replays(
        &self,
        endpoint: Option<WebhookEndpointId>,
        q: &ListQuery<()>,
    ) -> Result<Page<WebhookReplay>> {
        let endpoint = self.webhook_endpoint(endpoint).await?;
        Ok(self.store.list_webhook_replays(endpoint.id, q).await?)
    }

    /// Sends a `webhook_endpoint.test` event to this endpoint alone, signed
    /// and logged like any delivery; answers the delivery to follow.
    pub async fn send_webhook_test(
        &self,
        ctx: &WriteContext,
        id: Option<WebhookEndpointId>,
    ) -> Result<WebhookDelivery> {
        let Some(id) = id else {
            return Err(missing("webhook endpoint"));
        };
        Ok(self.store.send_webhook_test(ctx, id).await?)
    }

    /// Queues an attempt now, also for a delivery that failed for good.
    pub async fn retry_webhook_delivery(&self, id: Option<WebhookDeliveryId>) -> Result<WebhookDelivery> {
        let Some(id) = id else {
            return Err(missing("webhook delivery"));
        };
        Ok(self.store.retry_webhook_delivery(id, self.clock.now_ms()).await?)
    }
}
