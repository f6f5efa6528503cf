//! [`Store`] for [`SqlStore`]: reads go to the read pool, writes become one
//! job for the backend's [`super::WriteExecutor`].

use std::sync::Arc;

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
    DeliveryStatus, EndpointPatch, EndpointStatus, NewWebhookEndpoint, WebhookAttempt, WebhookDelivery,
    WebhookEndpoint, WebhookReplay,
};

use super::db::query;
use super::events::Subject;
use super::list::{FilterValue, ListSpec, fetch_page};
use super::rows::{self, ACCOUNT_COLS, CUSTOMER_COLS, ENTRY_COLS, EVENT_COLS, PAYMENT_COLS, REFUND_COLS};
use super::webhooks::{AttemptRecord, SealedSecrets};
use super::{
    Dialect, SqlStore, accounts, api_keys, customers, entries, events, idempotency, payments, queue, webhook_replays,
    webhooks,
};
use crate::context::WriteContext;
use crate::error::{StoreError, StoreResult};
use crate::idempotency::{ClaimOutcome, ClaimRequest, IdempotencyClaim, StoredResponse};
use crate::list::{ListQuery, Page};
use crate::queue::{ConsumerBacklog, JobClaim, LeasedJob, ProcessedBy, ProcessorOutcome, Subscription};
use crate::records::{
    AccountFilter, ApiKey, AuditDraft, AuditEvent, CustomerFilter, Deleted, EntryFilter, Event, EventFilter, NewRefund,
    PaymentFilter, RefundFilter, StoredPolicy,
};
use crate::store::Store;

pub(super) fn spec<'a, F>(
    table: &'static str,
    columns: &'static str,
    q: &'a ListQuery<F>,
    filters: impl IntoIterator<Item = (&'static str, FilterValue)>,
) -> ListSpec<'a> {
    ListSpec {
        table,
        columns,
        filters: filters.into_iter().collect(),
        limit: q.limit,
        cursor: q.cursor,
        created: &q.created,
    }
}

/// A stale `If-Match` is a conflict; a race without `If-Match` is retried.
pub(super) fn lost_race(if_version: Option<i64>, current: i64) -> StoreError {
    match if_version {
        Some(expected) => StoreError::VersionConflict { expected, current },
        None => StoreError::Retry("the row changed while being edited".into()),
    }
}

/// A stale `If-Match` fails before anything is read-modified-written.
pub(super) fn check_version(if_version: Option<i64>, current: i64) -> StoreResult<()> {
    match if_version {
        Some(expected) if expected != current => Err(StoreError::VersionConflict { expected, current }),
        _ => Ok(()),
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.dialect.name()
    }

    async fn readiness(&self) -> StoreResult<()> {
        let row = query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut self.reader())
            .await?;
        let applied: i64 = row.try_get("v")?;
        if applied < self.latest_migration {
            return Err(StoreError::Unavailable(format!(
                "migrations pending: {applied} applied, {} expected",
                self.latest_migration
            )));
        }
        Ok(())
    }

    async fn create_account(&self, ctx: &WriteContext, new: NewAccount) -> StoreResult<Account> {
        let account = Account {
            id: AccountId::from_uuid(self.ids.next(ctx.now_ms)),
            name: new.name,
            currency: new.currency,
            balance: 0,
            pending_out: 0,
            allow_negative: new.allow_negative,
            processor: new.processor,
            customer: new.customer,
            metadata: new.metadata,
            version: 1,
            created: ctx.now_secs(),
        };
        let (d, ids, c) = (self.dialect, Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (account, ids, c) = (account.clone(), Arc::clone(&ids), c.clone());
            Box::pin(async move {
                if let Some(c) = account.customer
                    && !accounts::customer_exists(&mut *conn, d, c).await?
                {
                    return Err(StoreError::NotFound {
                        what: "customer",
                        param: Some("customer"),
                    });
                }
                accounts::insert(&mut *conn, &account).await?;
                let subject = Subject {
                    object_type: "account",
                    object_id: account.id.to_bytes(),
                    new: true,
                };
                events::emit(conn, &ids, &c, subject, &["account.created"], &account).await?;
                Ok(account)
            })
        })
        .await
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        accounts::get(&mut self.reader(), id).await
    }

    async fn update_account(
        &self,
        ctx: &WriteContext,
        id: AccountId,
        patch: AccountPatch,
        if_version: Option<i64>,
    ) -> StoreResult<Account> {
        let patch = Arc::new(patch);
        let (ids, c) = (Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (patch, ids, c) = (Arc::clone(&patch), Arc::clone(&ids), c.clone());
            Box::pin(async move {
                let mut account = accounts::get(&mut *conn, id).await?.ok_or(StoreError::NotFound {
                    what: "account",
                    param: None,
                })?;
                let read_version = account.version;
                check_version(if_version, read_version)?;
                patch.apply(&mut account)?;
                account.version += 1;
                if !accounts::save_edit(&mut *conn, &account, read_version).await? {
                    return Err(lost_race(if_version, read_version + 1));
                }
                let subject = Subject {
                    object_type: "account",
                    object_id: account.id.to_bytes(),
                    new: false,
                };
                events::emit(conn, &ids, &c, subject, &["account.updated"], &account).await?;
                Ok(account)
            })
        })
        .await
    }

    async fn list_accounts(&self, q: &ListQuery<AccountFilter>) -> StoreResult<Page<Account>> {
        let filter = q
            .filter
            .as_ref()
            .map(|AccountFilter::Customer(c)| ("customer_id", FilterValue::Bytes(c.to_bytes())));
        fetch_page(
            &mut self.reader(),
            spec("accounts", ACCOUNT_COLS, q, filter),
            rows::account,
        )
        .await
    }

    async fn create_customer(&self, ctx: &WriteContext, new: NewCustomer) -> StoreResult<Customer> {
        let customer = Customer {
            id: CustomerId::from_uuid(self.ids.next(ctx.now_ms)),
            name: new.name,
            email: new.email,
            metadata: new.metadata,
            version: 1,
            created: ctx.now_secs(),
        };
        let (ids, c) = (Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (customer, ids, c) = (customer.clone(), Arc::clone(&ids), c.clone());
            Box::pin(async move {
                customers::insert(&mut *conn, &customer).await?;
                let subject = Subject {
                    object_type: "customer",
                    object_id: customer.id.to_bytes(),
                    new: true,
                };
                events::emit(conn, &ids, &c, subject, &["customer.created"], &customer).await?;
                Ok(customer)
            })
        })
        .await
    }

    async fn customer(&self, id: CustomerId) -> StoreResult<Option<Customer>> {
        customers::get(&mut self.reader(), id).await
    }

    async fn update_customer(
        &self,
        ctx: &WriteContext,
        id: CustomerId,
        patch: CustomerPatch,
        if_version: Option<i64>,
    ) -> StoreResult<Customer> {
        let patch = Arc::new(patch);
        let (ids, c) = (Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (patch, ids, c) = (Arc::clone(&patch), Arc::clone(&ids), c.clone());
            Box::pin(async move {
                let mut customer = customers::get(&mut *conn, id).await?.ok_or(StoreError::NotFound {
                    what: "customer",
                    param: None,
                })?;
                let read_version = customer.version;
                check_version(if_version, read_version)?;
                patch.apply(&mut customer)?;
                customer.version += 1;
                if !customers::save_edit(&mut *conn, &customer, read_version).await? {
                    return Err(lost_race(if_version, read_version + 1));
                }
                let subject = Subject {
                    object_type: "customer",
                    object_id: customer.id.to_bytes(),
                    new: false,
                };
                events::emit(conn, &ids, &c, subject, &["customer.updated"], &customer).await?;
                Ok(customer)
            })
        })
        .await
    }

    async fn delete_customer(&self, ctx: &WriteContext, id: CustomerId) -> StoreResult<Deleted> {
        let (d, ids, c) = (self.dialect, Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (ids, c) = (Arc::clone(&ids), c.clone());
            Box::pin(async move {
                if customers::get_locked(&mut *conn, id, d.lock_rows()).await?.is_none() {
                    return Err(StoreError::NotFound {
                        what: "customer",
                        param: None,
                    });
                }
                if customers::in_use(&mut *conn, id).await? {
                    return Err(StoreError::InUse("the customer has accounts or payments".into()));
                }
                customers::delete(&mut *conn, id).await?;
                let deleted = Deleted {
                    id: id.to_string(),
                    object: "customer",
                    deleted: true,
                };
                let subject = Subject {
                    object_type: "customer",
                    object_id: id.to_bytes(),
                    new: false,
                };
                events::emit(conn, &ids, &c, subject, &["customer.deleted"], &deleted).await?;
                Ok(deleted)
            })
        })
        .await
    }

    async fn list_customers(&self, q: &ListQuery<CustomerFilter>) -> StoreResult<Page<Customer>> {
        let filter = q
            .filter
            .as_ref()
            .map(|CustomerFilter::Email(e)| ("email", FilterValue::Text(e.clone())));
        fetch_page(
            &mut self.reader(),
            spec("customers", CUSTOMER_COLS, q, filter),
            rows::customer,
        )
        .await
    }

    async fn create_payment(&self, ctx: &WriteContext, new: NewPayment) -> StoreResult<Payment> {
        let (d, ids, c, new) = (self.dialect, Arc::clone(&self.ids), ctx.clone(), Arc::new(new));
        self.write(ctx, move |conn| {
            let (ids, ctx, new) = (Arc::clone(&ids), c.clone(), Arc::clone(&new));
            Box::pin(async move { payments::create(conn, d, &ids, &ctx, &new).await })
        })
        .await
    }

    async fn payment(&self, id: PaymentId) -> StoreResult<Option<Payment>> {
        payments::get(&mut self.reader(), id).await
    }

    async fn capture_payment(&self, ctx: &WriteContext, id: PaymentId, amount: Option<Amount>) -> StoreResult<Payment> {
        let (d, ids, c) = (self.dialect, Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (ids, ctx) = (Arc::clone(&ids), c.clone());
            Box::pin(async move { payments::capture(conn, d, &ids, &ctx, id, amount).await })
        })
        .await
    }

    async fn cancel_payment(&self, ctx: &WriteContext, id: PaymentId) -> StoreResult<Payment> {
        let (d, ids, c) = (self.dialect, Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (ids, ctx) = (Arc::clone(&ids), c.clone());
            Box::pin(async move { payments::cancel(conn, d, &ids, &ctx, id).await })
        })
        .await
    }

    async fn list_payments(&self, q: &ListQuery<PaymentFilter>) -> StoreResult<Page<Payment>> {
        let filter = q.filter.as_ref().map(|f| match f {
            PaymentFilter::Status(s) => ("status", FilterValue::Text(s.as_str().to_owned())),
            PaymentFilter::Customer(c) => ("customer_id", FilterValue::Bytes(c.to_bytes())),
            PaymentFilter::Source(a) => ("source_id", FilterValue::Bytes(a.to_bytes())),
            PaymentFilter::Destination(a) => ("destination_id", FilterValue::Bytes(a.to_bytes())),
        });
        fetch_page(
            &mut self.reader(),
            spec("payments", PAYMENT_COLS, q, filter),
            rows::payment,
        )
        .await
    }

    async fn create_refund(&self, ctx: &WriteContext, new: NewRefund) -> StoreResult<Refund> {
        let (d, ids, c) = (self.dialect, Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (ids, ctx, new) = (Arc::clone(&ids), c.clone(), new.clone());
            Box::pin(async move { payments::refund(conn, d, &ids, &ctx, &new).await })
        })
        .await
    }

    async fn refund(&self, id: RefundId) -> StoreResult<Option<Refund>> {
        payments::get_refund(&mut self.reader(), id).await
    }

    async fn list_refunds(&self, q: &ListQuery<RefundFilter>) -> StoreResult<Page<Refund>> {
        let filter = q
            .filter
            .as_ref()
            .map(|RefundFilter::Payment(p)| ("payment_id", FilterValue::Bytes(p.to_bytes())));
        fetch_page(
            &mut self.reader(),
            spec("refunds", REFUND_COLS, q, filter),
            rows::refund,
        )
        .await
    }

    async fn list_entries(&self, q: &ListQuery<EntryFilter>) -> StoreResult<Page<LedgerEntry>> {
        let filter = q
            .filter
            .as_ref()
            .map(|EntryFilter::Account(a)| ("account_id", FilterValue::Bytes(a.to_bytes())));
        fetch_page(
            &mut self.reader(),
            spec("ledger_entries", ENTRY_COLS, q, filter),
            rows::entry,
        )
        .await
    }

    async fn entries_sum(&self, account: AccountId) -> StoreResult<i64> {
        entries::sum(&mut self.reader(), account).await
    }

    async fn create_api_key(&self, ctx: &WriteContext, key: ApiKey) -> StoreResult<ApiKey> {
        self.write(ctx, move |conn| {
            let key = key.clone();
            Box::pin(async move {
                api_keys::insert(conn, &key).await?;
                Ok(key)
            })
        })
        .await
    }

    async fn api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKey>> {
        api_keys::get(&mut self.reader(), id).await
    }

    async fn claim_idempotency(&self, req: &ClaimRequest) -> StoreResult<ClaimOutcome> {
        let req = Arc::new(req.clone());
        let token = self.ids.next(req.now_ms).as_bytes().to_vec();
        // PostgreSQL: a new key is claimed by one autocommitted insert (one
        // round trip); only an existing key needs the transaction below.
        // SQLite writes go through its single writer either way.
        if self.dialect == Dialect::Postgres && idempotency::try_insert(&mut self.reader(), &req, &token).await? {
            return Ok(ClaimOutcome::Claimed(IdempotencyClaim::new(
                req.api_key,
                req.key.clone(),
                token,
            )));
        }
        self.write_background(move |conn| {
            let (req, token) = (Arc::clone(&req), token.clone());
            Box::pin(async move { idempotency::claim(conn, &req, token).await })
        })
        .await
    }

    async fn complete_idempotency(&self, claim: &IdempotencyClaim, response: &StoredResponse) -> StoreResult<bool> {
        let (claim, response) = (claim.clone(), response.clone());
        self.write_background(move |conn| {
            let (claim, response) = (claim.clone(), response.clone());
            Box::pin(async move { idempotency::complete(conn, &claim, &response).await })
        })
        .await
    }

    async fn release_idempotency(&self, claim: &IdempotencyClaim) -> StoreResult<()> {
        let claim = claim.clone();
        self.write_background(move |conn| {
            let claim = claim.clone();
            Box::pin(async move { idempotency::release(conn, &claim).await })
        })
        .await
    }

    async fn reap_idempotency(&self, before_ms: u64, batch: u32) -> StoreResult<u64> {
        self.write_background(move |conn| Box::pin(async move { idempotency::reap(conn, before_ms, batch).await }))
            .await
    }

    async fn sync_builtin_roles(&self, now_ms: u64) -> StoreResult<()> {
        self.sync_builtin_roles_impl(now_ms).await
    }

    async fn create_role(&self, ctx: &WriteContext, name: String, permissions: Vec<Permission>) -> StoreResult<Role> {
        self.create_role_impl(ctx, name, permissions).await
    }

    async fn role(&self, id: RoleId) -> StoreResult<Option<Role>> {
        self.role_by_id(id).await
    }

    async fn role_by_name(&self, name: &str) -> StoreResult<Option<Role>> {
        self.role_named(name).await
    }

    async fn update_role(
        &self,
        ctx: &WriteContext,
        id: RoleId,
        permissions: Vec<Permission>,
        if_version: Option<i64>,
    ) -> StoreResult<Role> {
        self.update_role_impl(ctx, id, permissions, if_version).await
    }

    async fn delete_role(&self, ctx: &WriteContext, id: RoleId) -> StoreResult<Deleted> {
        self.delete_role_impl(ctx, id).await
    }

    async fn list_roles(&self, q: &ListQuery<()>) -> StoreResult<Page<Role>> {
        self.list_roles_impl(q).await
    }

    async fn list_api_keys(&self, q: &ListQuery<()>) -> StoreResult<Page<ApiKey>> {
        self.list_api_keys_impl(q).await
    }

    async fn revoke_api_key(&self, ctx: &WriteContext, id: ApiKeyId) -> StoreResult<ApiKey> {
        self.revoke_api_key_impl(ctx, id).await
    }

    async fn touch_api_keys(&self, uses: Vec<(ApiKeyId, i64)>) -> StoreResult<()> {
        self.touch_api_keys_impl(uses).await
    }

    async fn create_policy(&self, ctx: &WriteContext, policy: StoredPolicy) -> StoreResult<StoredPolicy> {
        self.create_policy_impl(ctx, policy).await
    }

    async fn policy(&self, id: PolicyId) -> StoreResult<Option<StoredPolicy>> {
        self.policy_by_id(id).await
    }

    async fn update_policy(
        &self,
        ctx: &WriteContext,
        policy: StoredPolicy,
        if_version: Option<i64>,
    ) -> StoreResult<StoredPolicy> {
        self.update_policy_impl(ctx, policy, if_version).await
    }

    async fn delete_policy(&self, ctx: &WriteContext, id: PolicyId) -> StoreResult<Deleted> {
        self.delete_policy_impl(ctx, id).await
    }

    async fn list_policies(&self, q: &ListQuery<()>) -> StoreResult<Page<StoredPolicy>> {
        self.list_policies_impl(q).await
    }

    async fn all_policies(&self) -> StoreResult<Vec<StoredPolicy>> {
        self.all_policies_impl().await
    }

    async fn record_audit(&self, draft: &AuditDraft, outcome: &str, status: u16, now_ms: u64) -> StoreResult<()> {
        self.record_audit_impl(draft, outcome, status, now_ms).await
    }

    async fn list_audit_events(&self, q: &ListQuery<()>) -> StoreResult<Page<AuditEvent>> {
        self.list_audit_impl(q).await
    }

    async fn event(&self, id: EventId) -> StoreResult<Option<Event>> {
        events::get(&mut self.reader(), id).await
    }

    async fn list_events(&self, q: &ListQuery<EventFilter>) -> StoreResult<Page<Event>> {
        let filter = q.filter.as_ref().map(|f| match f {
            EventFilter::Type(t) => ("type", FilterValue::Text(t.clone())),
            EventFilter::Object(o) => ("object_id", FilterValue::Bytes(o.clone())),
        });
        fetch_page(&mut self.reader(), spec("events", EVENT_COLS, q, filter), rows::event).await
    }

    async fn events_by_ids(&self, ids: &[EventId]) -> StoreResult<Vec<Event>> {
        events::by_ids(&mut self.reader(), self.dialect, ids).await
    }

    async fn register_consumers(&self, subs: &[Subscription]) -> StoreResult<()> {
        let subs = subs.to_vec();
        self.write_background(move |conn| {
            let subs = subs.clone();
            Box::pin(async move { queue::register(conn, &subs).await })
        })
        .await
    }

    async fn claim_jobs(&self, claim: &JobClaim) -> StoreResult<Vec<LeasedJob>> {
        let (d, claim) = (self.dialect, claim.clone());
        self.write_background(move |conn| {
            let claim = claim.clone();
            Box::pin(async move { queue::claim(conn, d, &claim).await })
        })
        .await
    }

    async fn finish_jobs(&self, jobs: &[LeasedJob]) -> StoreResult<u64> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let (d, jobs) = (self.dialect, jobs.to_vec());
        self.write_background(move |conn| {
            let jobs = jobs.clone();
            Box::pin(async move { queue::finish(conn, d, &jobs).await })
        })
        .await
    }

    async fn retry_job(&self, job: &LeasedJob, run_at_ms: u64, error: &str) -> StoreResult<()> {
        let (job, error) = (job.clone(), error.to_owned());
        self.write_background(move |conn| {
            let (job, error) = (job.clone(), error.clone());
            Box::pin(async move { queue::retry(conn, &job, run_at_ms, &error).await })
        })
        .await
    }

    async fn bury_job(&self, job: &LeasedJob, error: &str, now_ms: u64) -> StoreResult<()> {
        let (d, job, error) = (self.dialect, job.clone(), error.to_owned());
        self.write_background(move |conn| {
            let (job, error) = (job.clone(), error.clone());
            Box::pin(async move { queue::bury(conn, d, &job, &error, now_ms).await })
        })
        .await
    }

    async fn replay_dead_jobs(&self, consumer: Option<&str>, now_ms: u64) -> StoreResult<u64> {
        let consumer = consumer.map(str::to_owned);
        self.write_background(move |conn| {
            let consumer = consumer.clone();
            Box::pin(async move { queue::replay_dead(conn, consumer.as_deref(), now_ms).await })
        })
        .await
    }

    async fn queue_backlog(&self) -> StoreResult<Vec<ConsumerBacklog>> {
        queue::backlog(&mut self.reader()).await
    }

    async fn drain_fanout(&self, max: u32, now_ms: u64) -> StoreResult<u64> {
        let (d, ids) = (self.dialect, Arc::clone(&self.ids));
        self.write_background(move |conn| {
            let ids = Arc::clone(&ids);
            Box::pin(async move { queue::drain_fanout(conn, d, &ids, max, now_ms).await })
        })
        .await
    }

    async fn fan_out_events(&self, event_ids: &[Vec<u8>], now_ms: u64) -> StoreResult<u64> {
        if event_ids.is_empty() {
            return Ok(0);
        }
        let (d, ids, events) = (self.dialect, Arc::clone(&self.ids), event_ids.to_vec());
        self.write_background(move |conn| {
            let (ids, events) = (Arc::clone(&ids), events.clone());
            Box::pin(async move { queue::fan_out(conn, d, &ids, &events, now_ms).await })
        })
        .await
    }

    async fn reap_processed(&self, before_ms: u64, batch: u32) -> StoreResult<u64> {
        self.write_background(move |conn| Box::pin(async move { queue::reap_processed(conn, before_ms, batch).await }))
            .await
    }

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

    async fn conclude_payment(
        &self,
        ctx: &WriteContext,
        done: &ProcessedBy,
        id: PaymentId,
        outcome: ProcessorOutcome,
    ) -> StoreResult<Option<Payment>> {
        let (d, ids, c, done) = (self.dialect, Arc::clone(&self.ids), ctx.clone(), done.clone());
        self.write_background(move |conn| {
            let (ids, ctx, done) = (Arc::clone(&ids), c.clone(), done.clone());
            Box::pin(async move { payments::conclude(conn, d, &ids, &ctx, &done, id, outcome).await })
        })
        .await
    }
}
