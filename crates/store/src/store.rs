//! The storage contract. Methods are coarse: one method is one business
//! operation in one transaction, and every write takes a [`WriteContext`].

use async_trait::async_trait;
use settle_domain::account::{Account, AccountPatch, NewAccount};
use settle_domain::customer::{Customer, CustomerPatch, NewCustomer};
use settle_domain::ids::{
    AccountId, ApiKeyId, CustomerId, EventId, PaymentId, PolicyId, RefundId, RoleId, WebhookDeliveryId,
    WebhookEndpointId, WebhookReplayId,
};
use settle_domain::ledger::LedgerEntry;
use settle_domain::money::Amount;
use settle_domain::payment::{NewPayment, Payment};
use settle_domain::rbac::{Permission, Role};
use settle_domain::refund::Refund;
use settle_domain::webhook::{
    DeliveryStatus, EndpointPatch, NewWebhookEndpoint, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookReplay,
};

use crate::context::WriteContext;
use crate::error::StoreResult;
use crate::idempotency::{ClaimOutcome, ClaimRequest, IdempotencyClaim, StoredResponse};
use crate::list::{ListQuery, Page};
use crate::queue::{ConsumerBacklog, JobClaim, LeasedJob, ProcessedBy, ProcessorOutcome, Subscription};
use crate::records::{
    AccountFilter, ApiKey, AuditDraft, AuditEvent, CustomerFilter, Deleted, EntryFilter, Event, EventFilter, NewRefund,
    PaymentFilter, RefundFilter, StoredPolicy,
};
use crate::sql::webhooks::{AttemptRecord, SealedSecrets};

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and readiness.
    fn backend(&self) -> &'static str;

    /// Succeeds when the database answers and every migration is applied.
    async fn readiness(&self) -> StoreResult<()>;

    async fn create_account(&self, ctx: &WriteContext, new: NewAccount) -> StoreResult<Account>;
    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>>;
    /// Applies `patch` if the stored version equals `if_version` (when given).
    async fn update_account(
        &self,
        ctx: &WriteContext,
        id: AccountId,
        patch: AccountPatch,
        if_version: Option<i64>,
    ) -> StoreResult<Account>;
    async fn list_accounts(&self, q: &ListQuery<AccountFilter>) -> StoreResult<Page<Account>>;

    async fn create_customer(&self, ctx: &WriteContext, new: NewCustomer) -> StoreResult<Customer>;
    async fn customer(&self, id: CustomerId) -> StoreResult<Option<Customer>>;
    async fn update_customer(
        &self,
        ctx: &WriteContext,
        id: CustomerId,
        patch: CustomerPatch,
        if_version: Option<i64>,
    ) -> StoreResult<Customer>;
    /// Removes a customer no account or payment refers to.
    async fn delete_customer(&self, ctx: &WriteContext, id: CustomerId) -> StoreResult<Deleted>;
    async fn list_customers(&self, q: &ListQuery<CustomerFilter>) -> StoreResult<Page<Customer>>;

    /// Locks both accounts, checks funds, writes the payment and its entries.
    async fn create_payment(&self, ctx: &WriteContext, new: NewPayment) -> StoreResult<Payment>;
    async fn payment(&self, id: PaymentId) -> StoreResult<Option<Payment>>;
    async fn capture_payment(&self, ctx: &WriteContext, id: PaymentId, amount: Option<Amount>) -> StoreResult<Payment>;
    async fn cancel_payment(&self, ctx: &WriteContext, id: PaymentId) -> StoreResult<Payment>;
    async fn list_payments(&self, q: &ListQuery<PaymentFilter>) -> StoreResult<Page<Payment>>;

    async fn create_refund(&self, ctx: &WriteContext, new: NewRefund) -> StoreResult<Refund>;
    async fn refund(&self, id: RefundId) -> StoreResult<Option<Refund>>;
    async fn list_refunds(&self, q: &ListQuery<RefundFilter>) -> StoreResult<Page<Refund>>;

    async fn list_entries(&self, q: &ListQuery<EntryFilter>) -> StoreResult<Page<LedgerEntry>>;
    /// The sum of an account's entries: the invariant check compares it with the balance.
    async fn entries_sum(&self, account: AccountId) -> StoreResult<i64>;

    async fn create_api_key(&self, ctx: &WriteContext, key: ApiKey) -> StoreResult<ApiKey>;
    async fn api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKey>>;

    /// Claims an idempotency key in a short transaction of its own, or says
    /// why not (replay, mismatch, in flight).
    async fn claim_idempotency(&self, req: &ClaimRequest) -> StoreResult<ClaimOutcome>;
    /// Stores an operation's error response for replay; false if the claim was lost.
    async fn complete_idempotency(&self, claim: &IdempotencyClaim, response: &StoredResponse) -> StoreResult<bool>;
    /// Gives the key back after a failure that is not stored.
    async fn release_idempotency(&self, claim: &IdempotencyClaim) -> StoreResult<()>;
    /// Removes up to `batch` records created before `before_ms`; returns how many.
    async fn reap_idempotency(&self, before_ms: u64, batch: u32) -> StoreResult<u64>;

    /// Creates the built-in roles, or refreshes their permissions to the
    /// sets defined in code; run at start-up.
    async fn sync_builtin_roles(&self, now_ms: u64) -> StoreResult<()>;
    async fn create_role(&self, ctx: &WriteContext, name: String, permissions: Vec<Permission>) -> StoreResult<Role>;
    async fn role(&self, id: RoleId) -> StoreResult<Option<Role>>;
    async fn role_by_name(&self, name: &str) -> StoreResult<Option<Role>>;
    /// Replaces a custom role's permissions if `if_version` (when given) is current.
    async fn update_role(
        &self,
        ctx: &WriteContext,
        id: RoleId,
        permissions: Vec<Permission>,
        if_version: Option<i64>,
    ) -> StoreResult<Role>;
    /// Deletes a custom role no unrevoked key uses.
    async fn delete_role(&self, ctx: &WriteContext, id: RoleId) -> StoreResult<Deleted>;
    async fn list_roles(&self, q: &ListQuery<()>) -> StoreResult<Page<Role>>;

    async fn list_api_keys(&self, q: &ListQuery<()>) -> StoreResult<Page<ApiKey>>;
    /// Revokes a key at once; revoking twice is harmless.
    async fn revoke_api_key(&self, ctx: &WriteContext, id: ApiKeyId) -> StoreResult<ApiKey>;
    /// Records keys' last use, batched off the request path.
    async fn touch_api_keys(&self, uses: Vec<(ApiKeyId, i64)>) -> StoreResult<()>;

    async fn create_policy(&self, ctx: &WriteContext, policy: StoredPolicy) -> StoreResult<StoredPolicy>;
    async fn policy(&self, id: PolicyId) -> StoreResult<Option<StoredPolicy>>;
    /// Saves an edited policy if `if_version` (when given) is current.
    async fn update_policy(
        &self,
        ctx: &WriteContext,
        policy: StoredPolicy,
        if_version: Option<i64>,
    ) -> StoreResult<StoredPolicy>;
    async fn delete_policy(&self, ctx: &WriteContext, id: PolicyId) -> StoreResult<Deleted>;
    async fn list_policies(&self, q: &ListQuery<()>) -> StoreResult<Page<StoredPolicy>>;
    /// Every policy, for compiling the policy set.
    async fn all_policies(&self) -> StoreResult<Vec<StoredPolicy>>;

    /// Records a write that did not succeed (successful writes are recorded
    /// inside their own transaction).
    async fn record_audit(&self, draft: &AuditDraft, outcome: &str, status: u16, now_ms: u64) -> StoreResult<()>;
    async fn list_audit_events(&self, q: &ListQuery<()>) -> StoreResult<Page<AuditEvent>>;

    async fn event(&self, id: EventId) -> StoreResult<Option<Event>>;
    async fn list_events(&self, q: &ListQuery<EventFilter>) -> StoreResult<Page<Event>>;
    /// The events with these ids that exist, in id order.
    async fn events_by_ids(&self, ids: &[EventId]) -> StoreResult<Vec<Event>>;

    /// Makes the queue's subscriptions exactly `subs`; run at start-up.
    async fn register_consumers(&self, subs: &[Subscription]) -> StoreResult<()>;
    /// Leases ready jobs of one consumer.
    async fn claim_jobs(&self, claim: &JobClaim) -> StoreResult<Vec<LeasedJob>>;
    /// Removes finished jobs still held under their lease; returns how many.
    async fn finish_jobs(&self, jobs: &[LeasedJob]) -> StoreResult<u64>;
    /// Puts a job back to run not before `run_at_ms`.
    async fn retry_job(&self, job: &LeasedJob, run_at_ms: u64, error: &str) -> StoreResult<()>;
    /// Moves a job that used up its deliveries to the dead letters.
    async fn bury_job(&self, job: &LeasedJob, error: &str, now_ms: u64) -> StoreResult<()>;
    /// Requeues dead jobs (of one consumer, or all); returns how many.
    async fn replay_dead_jobs(&self, consumer: Option<&str>, now_ms: u64) -> StoreResult<u64>;
    /// Each consumer's backlog and dead letters.
    async fn queue_backlog(&self) -> StoreResult<Vec<ConsumerBacklog>>;
    /// Takes up to `max` ready fan-out jobs and applies them (processed
    /// records, webhook deliveries) in one transaction; returns how many.
    async fn drain_fanout(&self, max: u32, now_ms: u64) -> StoreResult<u64>;
    /// Applies the fan-out to events consumed from a broker, once each;
    /// returns how many were new.
    async fn fan_out_events(&self, event_ids: &[Vec<u8>], now_ms: u64) -> StoreResult<u64>;
    /// Forgets processed-message records older than `before_ms`; returns how many.
    async fn reap_processed(&self, before_ms: u64, batch: u32) -> StoreResult<u64>;
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
        q: &ListQuery<DeliveryStatus>,
    ) -> StoreResult<Page<WebhookDelivery>>;
    async fn list_webhook_attempts(
        &self,
        delivery: WebhookDeliveryId,
        q: &ListQuery<()>,
    ) -> StoreResult<Page<WebhookAttempt>>;
    /// Records an attempt, the delivery's new state and its next job.
    async fn record_webhook_attempt(&self, endpoint: WebhookEndpointId, record: &AttemptRecord) -> StoreResult<()>;
    /// Starts a replay of an endpoint's events created in `[since_ms, until_ms)`.
    async fn create_webhook_replay(
        &self,
        ctx: &WriteContext,
        endpoint: WebhookEndpointId,
        since_ms: i64,
        until_ms: i64,
    ) -> StoreResult<WebhookReplay>;
    /// Works through one page of a replay; true when it is done.
    async fn run_webhook_replay(&self, id: WebhookReplayId, page: u32, now_ms: u64) -> StoreResult<bool>;
    async fn list_webhook_replays(
        &self,
        endpoint: WebhookEndpointId,
        q: &ListQuery<()>,
    ) -> StoreResult<Page<WebhookReplay>>;
    /// Makes a delivery pending with an attempt due now.
    async fn retry_webhook_delivery(&self, id: WebhookDeliveryId, now_ms: u64) -> StoreResult<WebhookDelivery>;

    async fn conclude_payment(
        &self,
        ctx: &WriteContext,
        done: &ProcessedBy,
        id: PaymentId,
        outcome: ProcessorOutcome,
    ) -> StoreResult<Option<Payment>>;
}
