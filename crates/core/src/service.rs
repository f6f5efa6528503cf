//! [`Settle`]: the operations every interface exposes. Inputs arrive as
//! validated domain types; this layer adds who and when, and turns "not
//! found" into the error an interface can show.

use std::sync::Arc;
use std::time::Duration;

use settle_domain::account::{Account, AccountPatch, NewAccount};
use settle_domain::customer::{Customer, CustomerPatch, NewCustomer};
use settle_domain::ids::{AccountId, ApiKeyId, CustomerId, EventId, PaymentId, RefundId};
use settle_domain::ledger::LedgerEntry;
use settle_domain::money::Amount;
use settle_domain::payment::{NewPayment, Payment};
use settle_domain::refund::Refund;
use settle_store::idempotency::{ClaimOutcome, ClaimRequest, IdempotencyClaim, StoredResponse};
use settle_store::records::{
    AccountFilter, CustomerFilter, Deleted, EntryFilter, Event, EventFilter, NewRefund, PaymentFilter, RefundFilter,
};
use settle_store::{ListQuery, Page, Store, StoreError, WriteContext};

use crate::clock::Clock;
use crate::error::ServiceError;

type Result<T> = std::result::Result<T, ServiceError>;

/// Tunables of the service layer, each with a production default.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// An in-flight idempotency claim older than this is presumed dead (its
    /// process crashed) and a retry may take it over.
    pub idempotency_lock_timeout: Duration,
    /// Idempotency records are kept at least this long.
    pub idempotency_retention: Duration,
    /// How long a key, its role and the policy set are cached in process:
    /// the bound on how late a revocation or edit made by another process
    /// takes effect here.
    pub auth_cache_ttl: Duration,
    /// The commit stream's safety net: a subscriber that hears nothing
    /// looks again after this long (`SETTLE_COMMIT_POLL`).
    pub commit_poll: Duration,
    /// How long an operation may take, counted from when its request
    /// arrived (`SETTLE_REQUEST_TIMEOUT_MS`); a client may ask for less.
    pub operation_budget: Duration,
    /// The read cache of single objects.
    pub cache: crate::cache::CacheOptions,
    /// Rate limits and the adaptive concurrency limit.
    pub admission: crate::admission::AdmissionOptions,
    /// Webhook endpoints with `/metrics` series of their own; the rest are
    /// summed, so thousands of endpoints cannot swell every scrape.
    pub labelled_webhook_endpoints: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            idempotency_lock_timeout: Duration::from_secs(60),
            idempotency_retention: Duration::from_secs(24 * 3600),
            auth_cache_ttl: Duration::from_secs(5),
            commit_poll: Duration::from_secs(1),
            operation_budget: Duration::from_secs(30),
            cache: crate::cache::CacheOptions::default(),
            labelled_webhook_endpoints: crate::webhook::stats::DEFAULT_LABELLED_ENDPOINTS,
            admission: crate::admission::AdmissionOptions::default(),
        }
    }
}

/// The service layer; cheap to clone and share between interfaces: one
/// reference count, since every request clones it (axum hands each handler
/// its own copy of the state), more than once.
#[derive(Clone)]
pub struct Settle(Arc<SettleState>);

/// What a [`Settle`] holds.
pub struct SettleState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) options: Arc<ServiceOptions>,
    pub(crate) access: Arc<crate::access::AccessState>,
    pub(crate) queue: Arc<std::sync::OnceLock<crate::operations::QueueHandles>>,
    pub(crate) webhooks: Arc<std::sync::OnceLock<Arc<crate::webhook::WebhookSetup>>>,
    pub(crate) commits: crate::commits::CommitStream,
    pub(crate) cache: Arc<crate::cache::ObjectCache>,
    pub(crate) operation_stats: crate::pipeline::stats::OperationStats,
    pub(crate) delivery_stats: crate::webhook::stats::DeliveryStats,
    pub(crate) rate_limiter: Arc<crate::admission::RateLimiter>,
    pub(crate) admission: crate::admission::Admission,
}

impl std::ops::Deref for Settle {
    type Target = SettleState;

    fn deref(&self) -> &SettleState {
        &self.0
    }
}

fn found<T>(value: Option<T>, what: &'static str) -> Result<T> {
    value.ok_or(ServiceError::Store(StoreError::NotFound { what, param: None }))
}

impl Settle {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self::with_options(store, clock, ServiceOptions::default())
    }

    pub fn with_options(store: Arc<dyn Store>, clock: Arc<dyn Clock>, options: ServiceOptions) -> Self {
        let access = Arc::new(crate::access::AccessState::new(options.auth_cache_ttl));
        let commits = crate::commits::CommitStream::new(store.commit_bus(), options.commit_poll);
        let cache = crate::cache::ObjectCache::new(options.cache.clone());
        store
            .commit_bus()
            .attach(Arc::clone(&cache) as Arc<dyn settle_store::commits::ChangeSink>);
        let rate_limiter = Arc::new(crate::admission::RateLimiter::new(options.admission.rate.clone()));
        let admission = crate::admission::Admission::new(options.admission.concurrency.clone());
        Self(Arc::new(SettleState {
            rate_limiter,
            admission,
            cache,
            operation_stats: Default::default(),
            delivery_stats: crate::webhook::stats::DeliveryStats::new(options.labelled_webhook_endpoints),
            commits,
            store,
            clock,
            options: Arc::new(options),
            access,
            queue: Arc::default(),
            webhooks: Arc::default(),
        }))
    }

    pub fn options(&self) -> &ServiceOptions {
        &self.options
    }

    /// The rate limiter (for `/metrics` and its heartbeats).
    pub fn rate_limiter(&self) -> &Arc<crate::admission::RateLimiter> {
        &self.rate_limiter
    }

    /// The admission limiter (for `/metrics`).
    pub fn admission(&self) -> &crate::admission::Admission {
        &self.admission
    }

    /// The read cache (for `/metrics` and tests).
    pub fn cache(&self) -> &Arc<crate::cache::ObjectCache> {
        &self.cache
    }

    /// `id` through the read cache, for reads a client asked for. Never for
    /// a decision: writes read inside their own transactions.
    pub(crate) async fn read_cached<T, Fut>(
        &self,
        id: Option<uuid::Uuid>,
        what: &'static str,
        load: impl FnOnce(Arc<dyn Store>, uuid::Uuid) -> Fut,
    ) -> Result<crate::cache::Cached>
    where
        T: crate::cache::Cacheable,
        Fut: std::future::Future<Output = std::result::Result<Option<T>, StoreError>> + Send + 'static,
    {
        let Some(id) = id else { return found(None, what) };
        let store = Arc::clone(&self.store);
        let read = self
            .cache
            .read(id, move || {
                let load = load(store, id);
                async move { Ok(load.await?) }
            })
            .await?;
        found(read, what)
    }

    /// An account as a client reads it: through the cache.
    pub async fn read_account(&self, id: Option<AccountId>) -> Result<crate::cache::Cached> {
        self.read_cached(id.map(|i| i.uuid()), "account", |store, id| async move {
            store.account(AccountId::from_uuid(id)).await
        })
        .await
    }

    /// A customer as a client reads it: through the cache.
    pub async fn read_customer(&self, id: Option<CustomerId>) -> Result<crate::cache::Cached> {
        self.read_cached(id.map(|i| i.uuid()), "customer", |store, id| async move {
            store.customer(CustomerId::from_uuid(id)).await
        })
        .await
    }

    /// A payment as a client reads it: through the cache.
    pub async fn read_payment(&self, id: Option<PaymentId>) -> Result<crate::cache::Cached> {
        self.read_cached(id.map(|i| i.uuid()), "payment", |store, id| async move {
            store.payment(PaymentId::from_uuid(id)).await
        })
        .await
    }

    /// A refund as a client reads it: through the cache.
    pub async fn read_refund(&self, id: Option<RefundId>) -> Result<crate::cache::Cached> {
        self.read_cached(id.map(|i| i.uuid()), "refund", |store, id| async move {
            store.refund(RefundId::from_uuid(id)).await
        })
        .await
    }

    /// An event as a client reads it: through the cache.
    pub async fn read_event(&self, id: Option<EventId>) -> Result<crate::cache::Cached> {
        self.read_cached(id.map(|i| i.uuid()), "event", |store, id| async move {
            store.event(EventId::from_uuid(id)).await
        })
        .await
    }

    /// A webhook endpoint as a client reads it (never its secret): through
    /// the cache.
    pub async fn read_webhook_endpoint(
        &self,
        id: Option<settle_domain::ids::WebhookEndpointId>,
    ) -> Result<crate::cache::Cached> {
        self.read_cached(id.map(|i| i.uuid()), "webhook endpoint", |store, id| async move {
            store
                .webhook_endpoint(settle_domain::ids::WebhookEndpointId::from_uuid(id))
                .await
        })
        .await
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The injected clock, shared with background workers.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// The context of a write made now by `actor` under `request_id`.
    pub fn context(&self, request_id: &str, actor: Option<ApiKeyId>) -> WriteContext {
        WriteContext {
            request_id: request_id.to_owned(),
            actor,
            now_ms: self.clock.now_ms(),
            idempotency: None,
            audit: None,
            success_status: None,
            policy: None,
            deadline: None,
            // The operation's span, when it runs within one.
            trace: settle_trace::current(),
        }
    }

    /// Claims `key` for `api_key` and this request, or says why not.
    pub async fn claim_idempotency(&self, api_key: ApiKeyId, key: &str, request_hash: Vec<u8>) -> Result<ClaimOutcome> {
        self.claim_idempotency_as(api_key, key, request_hash, None).await
    }

    /// Claims `key` with the request's fingerprint, accepting a record
    /// stored under `legacy_hash`, the fingerprint an earlier version gave
    /// the same request.
    pub async fn claim_idempotency_as(
        &self,
        api_key: ApiKeyId,
        key: &str,
        request_hash: Vec<u8>,
        legacy_hash: Option<Vec<u8>>,
    ) -> Result<ClaimOutcome> {
        let req = ClaimRequest {
            api_key,
            key: key.to_owned(),
            request_hash,
            legacy_hash,
            now_ms: self.clock.now_ms(),
            lock_timeout_ms: self.options.idempotency_lock_timeout.as_millis() as u64,
        };
        Ok(self.store.claim_idempotency(&req).await?)
    }

    /// Stores an operation's error answer for replay; false if the claim was lost.
    pub async fn complete_idempotency(&self, claim: &IdempotencyClaim, response: &StoredResponse) -> Result<bool> {
        Ok(self.store.complete_idempotency(claim, response).await?)
    }

    pub async fn release_idempotency(&self, claim: &IdempotencyClaim) -> Result<()> {
        Ok(self.store.release_idempotency(claim).await?)
    }

    /// Removes idempotency records past their retention, `batch` at a time,
    /// until none is left; returns how many went.
    pub async fn reap_idempotency(&self, batch: u32) -> Result<u64> {
        let retention = self.options.idempotency_retention.as_millis() as u64;
        let before = self.clock.now_ms().saturating_sub(retention);
        let mut total = 0;
        loop {
            let n = self.store.reap_idempotency(before, batch).await?;
            total += n;
            if n < u64::from(batch) {
                return Ok(total);
            }
        }
    }

    pub async fn readiness(&self) -> Result<()> {
        Ok(self.store.readiness().await?)
    }

    pub async fn create_account(&self, ctx: &WriteContext, new: NewAccount) -> Result<Account> {
        Ok(self.store.create_account(ctx, new).await?)
    }

    pub async fn account(&self, id: Option<AccountId>) -> Result<Account> {
        let Some(id) = id else { return found(None, "account") };
        found(self.store.account(id).await?, "account")
    }

    pub async fn update_account(
        &self,
        ctx: &WriteContext,
        id: Option<AccountId>,
        patch: AccountPatch,
        if_version: Option<i64>,
    ) -> Result<Account> {
        let id = found(id, "account")?;
        Ok(self.store.update_account(ctx, id, patch, if_version).await?)
    }

    pub async fn list_accounts(&self, q: &ListQuery<AccountFilter>) -> Result<Page<Account>> {
        Ok(self.store.list_accounts(q).await?)
    }

    /// An account's ledger; 404 when the account does not exist.
    pub async fn list_entries(&self, account: Option<AccountId>, q: ListQuery<()>) -> Result<Page<LedgerEntry>> {
        let account = self.account(account).await?;
        let q = ListQuery {
            limit: q.limit,
            cursor: q.cursor,
            filter: Some(EntryFilter::Account(account.id)),
            created: q.created,
        };
        Ok(self.store.list_entries(&q).await?)
    }

    pub async fn create_customer(&self, ctx: &WriteContext, new: NewCustomer) -> Result<Customer> {
        Ok(self.store.create_customer(ctx, new).await?)
    }

    pub async fn customer(&self, id: Option<CustomerId>) -> Result<Customer> {
        let Some(id) = id else { return found(None, "customer") };
        found(self.store.customer(id).await?, "customer")
    }

    pub async fn update_customer(
        &self,
        ctx: &WriteContext,
        id: Option<CustomerId>,
        patch: CustomerPatch,
        if_version: Option<i64>,
    ) -> Result<Customer> {
        let id = found(id, "customer")?;
        Ok(self.store.update_customer(ctx, id, patch, if_version).await?)
    }

    pub async fn delete_customer(&self, ctx: &WriteContext, id: Option<CustomerId>) -> Result<Deleted> {
        let id = found(id, "customer")?;
        Ok(self.store.delete_customer(ctx, id).await?)
    }

    pub async fn list_customers(&self, q: &ListQuery<CustomerFilter>) -> Result<Page<Customer>> {
        Ok(self.store.list_customers(q).await?)
    }

    pub async fn create_payment(&self, ctx: &WriteContext, new: NewPayment) -> Result<Payment> {
        Ok(self.store.create_payment(ctx, new).await?)
    }

    pub async fn payment(&self, id: Option<PaymentId>) -> Result<Payment> {
        let Some(id) = id else { return found(None, "payment") };
        found(self.store.payment(id).await?, "payment")
    }

    pub async fn capture_payment(
        &self,
        ctx: &WriteContext,
        id: Option<PaymentId>,
        amount: Option<Amount>,
    ) -> Result<Payment> {
        let id = found(id, "payment")?;
        Ok(self.store.capture_payment(ctx, id, amount).await?)
    }

    pub async fn cancel_payment(&self, ctx: &WriteContext, id: Option<PaymentId>) -> Result<Payment> {
        let id = found(id, "payment")?;
        Ok(self.store.cancel_payment(ctx, id).await?)
    }

    pub async fn list_payments(&self, q: &ListQuery<PaymentFilter>) -> Result<Page<Payment>> {
        Ok(self.store.list_payments(q).await?)
    }

    pub async fn create_refund(&self, ctx: &WriteContext, new: NewRefund) -> Result<Refund> {
        Ok(self.store.create_refund(ctx, new).await?)
    }

    pub async fn refund(&self, id: Option<RefundId>) -> Result<Refund> {
        let Some(id) = id else { return found(None, "refund") };
        found(self.store.refund(id).await?, "refund")
    }

    pub async fn list_refunds(&self, q: &ListQuery<RefundFilter>) -> Result<Page<Refund>> {
        Ok(self.store.list_refunds(q).await?)
    }

    pub async fn event(&self, id: Option<EventId>) -> Result<Event> {
        let Some(id) = id else { return found(None, "event") };
        found(self.store.event(id).await?, "event")
    }

    /// Up to `limit` events after `position`, in commit order: what a
    /// subscriber of [`Settle::commits`] reads on each wake.
    pub async fn events_after(&self, position: i64, limit: u32) -> Result<Page<Event>> {
        Ok(self.store.events_after(position, limit).await?)
    }

    /// The commit stream every worker and streaming face subscribes to.
    pub fn commits(&self) -> &crate::commits::CommitStream {
        &self.commits
    }

    pub async fn list_events(&self, q: &ListQuery<EventFilter>) -> Result<Page<Event>> {
        Ok(self.store.list_events(q).await?)
    }
}
