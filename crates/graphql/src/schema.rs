//! The schema: queries for every resource kind as Relay connections on the
//! same keyset cursors and newest-first order as REST, the relations of
//! each object through the request's loaders, and writes as mutations.
//! Objects are their REST JSON underneath, so a replayed mutation (its
//! stored JSON) and a fresh one are the same object.

use async_graphql::{Context, EmptySubscription, ID, InputObject, Json, Object, Result, Schema, SimpleObject};
use serde_json::Value;
use settle_core::Settle;
use settle_core::ops::ListParams;
use settle_core::ops::accounts::UpdateAccount;
use settle_core::ops::accounts::{CreateAccount, ListAccounts, RetrieveAccount};
use settle_core::ops::customers::{CreateCustomer, ListCustomers, RetrieveCustomer};
use settle_core::ops::customers::{DeleteCustomer, UpdateCustomer};
use settle_core::ops::events::{ListEvents, RetrieveEvent};
use settle_core::ops::payments::{CancelPayment, CapturePayment, CreatePayment, ListPayments, RetrievePayment};
use settle_core::ops::refunds::{CreateRefund, ListRefunds, RetrieveRefund};
use settle_core::ops::webhooks::{ListWebhookEndpoints, RetrieveWebhookEndpoint};
use settle_core::pipeline::{Call, Failure, Input, Operation, Outcome, Viewer};
use settle_domain::ids::{AccountId, CustomerId, EventId, PaymentId, RefundId, WebhookEndpointId};
use settle_store::list::{DEFAULT_LIMIT, MAX_LIMIT};
use settle_store::{Cursor, ListQuery};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::errors::error;
use crate::loaders::{self, AccountKey, CustomerKey, Loaders, PaymentKey, RefundsOf};

pub type SettleSchema = Schema<Query, Mutation, EmptySubscription>;

/// How much one request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub depth: usize,
    /// Each field costs 1, a list costs its `first` times its fields.
    pub complexity: usize,
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            depth: 8,
            complexity: 20_000,
            introspection: true,
        }
    }
}

pub fn build_schema(limits: Limits) -> SettleSchema {
    let builder = Schema::build(Query, Mutation, EmptySubscription)
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity);
    if limits.introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// What a request's resolvers share: the service, the request as the
/// pipeline sees it, and (made on first use) the reader and its loaders.
pub struct RequestContext {
    settle: Settle,
    call: Call,
    loaders: OnceCell<Result<Loaders, Failure>>,
}

impl RequestContext {
    pub fn new(settle: Settle, call: Call) -> Self {
        Self {
            settle,
            call,
            loaders: OnceCell::new(),
        }
    }

    async fn loaders(&self) -> Result<&Loaders> {
        let made = self
            .loaders
            .get_or_init(|| async {
                let viewer: Viewer = self.settle.viewer(&self.call).await?;
                Ok(loaders::for_request(self.settle.clone(), viewer))
            })
            .await;
        made.as_ref().map_err(|f| error(f.clone()))
    }

    /// Runs `op` through the pipeline; a replay is the stored JSON.
    async fn run<O: Operation>(&self, op: O, idempotency_key: Option<String>) -> Result<Value> {
        let mut call = self.call.clone();
        call.idempotency_key = idempotency_key;
        match self.settle.execute(call, || async { Ok(Input::new(op)) }).await {
            Ok(Outcome::Done(output)) => serde_json::to_value(output).map_err(|_| error(Failure::internal())),
            Ok(Outcome::Replayed { response, .. }) => replayed(&response.body, response.status),
            Err(failure) => Err(error(failure)),
        }
    }
}

/// A stored answer given again: the object, or the stored refusal.
fn replayed(body: &[u8], status: u16) -> Result<Value> {
    let json: Value = serde_json::from_slice(body).map_err(|_| error(Failure::internal()))?;
    if (200..300).contains(&status) {
        return Ok(json);
    }
    let e = &json["error"];
    let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
    let mut failure = Failure::new(status, "invalid_request_error", "replayed_error", text("message"));
    failure.param = e["param"].as_str().map(str::to_owned);
    let mut err = error(failure);
    if let Some(ext) = err.extensions.as_mut() {
        ext.set("code", text("code"));
        ext.set("type", text("type"));
    }
    Ok(Value::Null).and(Err(err))
}

fn rc<'a>(ctx: &'a Context<'_>) -> Result<&'a RequestContext> {
    ctx.data::<RequestContext>()
}

fn text(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

fn opt_text(v: &Value, k: &str) -> Option<String> {
    v[k].as_str().map(str::to_owned)
}

fn int(v: &Value, k: &str) -> i64 {
    v[k].as_i64().unwrap_or_default()
}

/// A page's parameters from Relay's `first` and `after` (an id: the same
/// keyset cursor as REST's `starting_after`).
fn page(first: Option<i32>, after: Option<String>, cursor: fn(&str) -> Option<Uuid>) -> Result<ListParams> {
    let limit = match first {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT as i32).contains(&n) => n as u32,
        Some(_) => {
            return Err(error(Failure::invalid(
                "parameter_invalid",
                "first",
                format!("`first` must be between 1 and {MAX_LIMIT}."),
            )));
        }
    };
    let mut query = ListQuery::first(limit);
    if let Some(after) = after {
        let id = cursor(&after).ok_or_else(|| error(Failure::names_nothing("after")))?;
        query.cursor = Some(Cursor::StartingAfter(id));
    }
    Ok(ListParams::new(query))
}

fn with_filter(mut params: ListParams, filters: &[(&str, Option<String>)]) -> Result<ListParams> {
    let given: Vec<(String, String)> = filters
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| ((*k).to_owned(), v)))
        .collect();
    if given.len() > 1 {
        return Err(error(Failure::invalid(
            "parameter_invalid",
            given[1].0.clone(),
            "At most one equality filter is allowed per list.",
        )));
    }
    params.filter = given.into_iter().next();
    Ok(params)
}

#[derive(SimpleObject)]
pub struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// Connection and edge types of one node type, on the REST page.
macro_rules! connection {
    ($node:ident, $connection:ident, $edge:ident) => {
        #[derive(SimpleObject)]
        pub struct $edge {
            cursor: String,
            node: $node,
        }

        #[derive(SimpleObject)]
        pub struct $connection {
            edges: Vec<$edge>,
            page_info: PageInfo,
        }

        impl $connection {
            fn from_page(page: Value) -> Self {
                let nodes: Vec<Value> = page["data"].as_array().cloned().unwrap_or_default();
                let end_cursor = nodes.last().map(|n| text(n, "id"));
                Self {
                    edges: nodes
                        .into_iter()
                        .map(|node| $edge {
                            cursor: text(&node, "id"),
                            node: $node(node),
                        })
                        .collect(),
                    page_info: PageInfo {
                        has_next_page: page["has_more"].as_bool().unwrap_or(false),
                        end_cursor,
                    },
                }
            }
        }
    };
}

connection!(Payment, PaymentConnection, PaymentEdge);
connection!(Account, AccountConnection, AccountEdge);
connection!(Customer, CustomerConnection, CustomerEdge);
connection!(Refund, RefundConnection, RefundEdge);
connection!(Event, EventConnection, EventEdge);
connection!(WebhookEndpoint, WebhookEndpointConnection, WebhookEndpointEdge);

/// Loads, for a whole page of payments at once, the relations the query
/// asks of its nodes: one statement per kind (customers; accounts for
/// source and destination together; a window of refunds per payment).
/// Left to each node's resolver, the loaders would batch only what
/// arrived within their delay, and a slow page would cost many statements.
async fn preload_payments(ctx: &Context<'_>, page: &Value) -> Result<()> {
    let node = ctx.look_ahead().field("edges").field("node");
    let payments: Vec<&Value> = page["data"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    if payments.is_empty() {
        return Ok(());
    }
    let loaders = rc(ctx)?.loaders().await?;
    let ids = |field: &'static str| -> Vec<String> { payments.iter().filter_map(|p| opt_text(p, field)).collect() };
    if node.field("customer").exists() {
        loaders
            .load_many(ids("customer").into_iter().map(CustomerKey))
            .await
            .map_err(error)?;
    }
    let mut accounts: Vec<AccountKey> = Vec::new();
    if node.field("source").exists() {
        accounts.extend(ids("source").into_iter().map(AccountKey));
    }
    if node.field("destination").exists() {
        accounts.extend(ids("destination").into_iter().map(AccountKey));
    }
    if !accounts.is_empty() {
        loaders.load_many(accounts).await.map_err(error)?;
    }
    for refunds in node.field("refunds").selection_fields() {
        let first = refunds
            .arguments()?
            .into_iter()
            .find(|(name, _)| name.as_str() == "first")
            .and_then(|(_, v)| match v {
                async_graphql::Value::Number(n) => n.as_u64(),
                _ => None,
            })
            .map_or(10, |n| n.clamp(1, u64::from(MAX_LIMIT)) as u32);
        let keys = ids("id").into_iter().map(|payment| RefundsOf { payment, first });
        loaders.load_many(keys).await.map_err(error)?;
    }
    Ok(())
}

/// Moves an amount from a source account to a destination.
pub struct Payment(Value);
/// A balance in one currency.
pub struct Account(Value);
/// Who accounts and payments belong to.
pub struct Customer(Value);
/// Money of a payment given back.
pub struct Refund(Value);
/// A state change, with the object as it was right after.
pub struct Event(Value);
/// A receiver of signed events (its secret is never shown here).
pub struct WebhookEndpoint(Value);

#[Object]
impl WebhookEndpoint {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn url(&self) -> String {
        text(&self.0, "url")
    }
    async fn enabled_events(&self) -> Vec<String> {
        self.0["enabled_events"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
    async fn description(&self) -> Option<String> {
        opt_text(&self.0, "description")
    }
    async fn status(&self) -> String {
        text(&self.0, "status")
    }
    async fn disabled_reason(&self) -> Option<String> {
        opt_text(&self.0, "disabled_reason")
    }
    async fn metadata(&self) -> Json<Value> {
        Json(self.0["metadata"].clone())
    }
    async fn version(&self) -> i64 {
        int(&self.0, "version")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
}

async fn account_of(ctx: &Context<'_>, id: Option<String>) -> Result<Option<Account>> {
    let Some(id) = id else { return Ok(None) };
    let loaded = rc(ctx)?
        .loaders()
        .await?
        .load_one(AccountKey(id))
        .await
        .map_err(error)?;
    match loaded {
        None => Ok(None),
        Some(shown) => {
            let account = shown.map_err(error)?;
            Ok(Some(Account(
                serde_json::to_value(account).map_err(|_| error(Failure::internal()))?,
            )))
        }
    }
}

async fn customer_of(ctx: &Context<'_>, id: Option<String>) -> Result<Option<Customer>> {
    let Some(id) = id else { return Ok(None) };
    let loaded = rc(ctx)?
        .loaders()
        .await?
        .load_one(CustomerKey(id))
        .await
        .map_err(error)?;
    match loaded {
        None => Ok(None),
        Some(shown) => {
            let customer = shown.map_err(error)?;
            Ok(Some(Customer(
                serde_json::to_value(customer).map_err(|_| error(Failure::internal()))?,
            )))
        }
    }
}

#[Object]
impl Payment {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn amount(&self) -> i64 {
        int(&self.0, "amount")
    }
    async fn currency(&self) -> String {
        text(&self.0, "currency")
    }
    async fn status(&self) -> String {
        text(&self.0, "status")
    }
    async fn amount_captured(&self) -> i64 {
        int(&self.0, "amount_captured")
    }
    async fn amount_refunded(&self) -> i64 {
        int(&self.0, "amount_refunded")
    }
    async fn description(&self) -> Option<String> {
        opt_text(&self.0, "description")
    }
    async fn metadata(&self) -> Json<Value> {
        Json(self.0["metadata"].clone())
    }
    async fn version(&self) -> i64 {
        int(&self.0, "version")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
    async fn customer(&self, ctx: &Context<'_>) -> Result<Option<Customer>> {
        customer_of(ctx, opt_text(&self.0, "customer")).await
    }
    async fn source(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        account_of(ctx, opt_text(&self.0, "source")).await
    }
    async fn destination(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        account_of(ctx, opt_text(&self.0, "destination")).await
    }
    /// The newest refunds of this payment; loaded for the whole page at
    /// once (a window per payment), never one query per payment.
    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn refunds(&self, ctx: &Context<'_>, first: Option<i32>) -> Result<RefundConnection> {
        let first = match first {
            None => 10,
            Some(n) if (1..=MAX_LIMIT as i32).contains(&n) => n as u32,
            Some(_) => {
                return Err(error(Failure::invalid(
                    "parameter_invalid",
                    "first",
                    format!("`first` must be between 1 and {MAX_LIMIT}."),
                )));
            }
        };
        let key = RefundsOf {
            payment: text(&self.0, "id"),
            first,
        };
        let loaded = rc(ctx)?.loaders().await?.load_one(key).await.map_err(error)?;
        let page = loaded.unwrap_or_else(|| Ok(Default::default())).map_err(error)?;
        let data: Vec<Value> = page
            .refunds
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(|_| error(Failure::internal()))?;
        Ok(RefundConnection::from_page(
            serde_json::json!({"data": data, "has_more": page.has_more}),
        ))
    }
}

#[Object]
impl Account {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn name(&self) -> String {
        text(&self.0, "name")
    }
    async fn currency(&self) -> String {
        text(&self.0, "currency")
    }
    async fn balance(&self) -> i64 {
        int(&self.0, "balance")
    }
    async fn pending_out(&self) -> i64 {
        int(&self.0, "pending_out")
    }
    async fn available(&self) -> i64 {
        int(&self.0, "available")
    }
    async fn allow_negative(&self) -> bool {
        self.0["allow_negative"].as_bool().unwrap_or(false)
    }
    async fn metadata(&self) -> Json<Value> {
        Json(self.0["metadata"].clone())
    }
    async fn version(&self) -> i64 {
        int(&self.0, "version")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
    async fn customer(&self, ctx: &Context<'_>) -> Result<Option<Customer>> {
        customer_of(ctx, opt_text(&self.0, "customer")).await
    }
}

#[Object]
impl Customer {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn name(&self) -> Option<String> {
        opt_text(&self.0, "name")
    }
    async fn email(&self) -> Option<String> {
        opt_text(&self.0, "email")
    }
    async fn metadata(&self) -> Json<Value> {
        Json(self.0["metadata"].clone())
    }
    async fn version(&self) -> i64 {
        int(&self.0, "version")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
}

#[Object]
impl Refund {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn amount(&self) -> i64 {
        int(&self.0, "amount")
    }
    async fn currency(&self) -> String {
        text(&self.0, "currency")
    }
    async fn status(&self) -> String {
        text(&self.0, "status")
    }
    async fn reason(&self) -> Option<String> {
        opt_text(&self.0, "reason")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
    async fn payment(&self, ctx: &Context<'_>) -> Result<Option<Payment>> {
        let Some(id) = opt_text(&self.0, "payment") else {
            return Ok(None);
        };
        let loaded = rc(ctx)?
            .loaders()
            .await?
            .load_one(PaymentKey(id))
            .await
            .map_err(error)?;
        match loaded {
            None => Ok(None),
            Some(shown) => {
                let payment = shown.map_err(error)?;
                Ok(Some(Payment(
                    serde_json::to_value(payment).map_err(|_| error(Failure::internal()))?,
                )))
            }
        }
    }
}

#[Object]
impl Event {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> String {
        text(&self.0, "type")
    }
    /// The object as it was stored with the event.
    async fn object(&self) -> Json<Value> {
        Json(self.0["data"]["object"].clone())
    }
    async fn position(&self) -> Option<i64> {
        self.0["position"].as_i64()
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
}

pub struct Query;

#[Object]
impl Query {
    async fn payment(&self, ctx: &Context<'_>, id: ID) -> Result<Payment> {
        let op = RetrievePayment {
            id: id.0,
            expand: Vec::new(),
        };
        Ok(Payment(rc(ctx)?.run(op, None).await?))
    }

    /// Payments, newest first; at most one of the filters.
    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn payments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PaymentFilter>,
    ) -> Result<PaymentConnection> {
        let params = page(first, after, |t| PaymentId::parse(t).map(|i| i.uuid()))?;
        let f = filter.unwrap_or_default();
        let params = with_filter(
            params,
            &[
                ("status", f.status),
                ("customer", f.customer.map(|i| i.0)),
                ("source", f.source.map(|i| i.0)),
                ("destination", f.destination.map(|i| i.0)),
            ],
        )?;
        let page = rc(ctx)?.run(ListPayments(params), None).await?;
        preload_payments(ctx, &page).await?;
        Ok(PaymentConnection::from_page(page))
    }

    async fn account(&self, ctx: &Context<'_>, id: ID) -> Result<Account> {
        let op = RetrieveAccount {
            id: id.0,
            expand: Vec::new(),
        };
        Ok(Account(rc(ctx)?.run(op, None).await?))
    }

    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        customer: Option<ID>,
    ) -> Result<AccountConnection> {
        let params = page(first, after, |t| AccountId::parse(t).map(|i| i.uuid()))?;
        let params = with_filter(params, &[("customer", customer.map(|i| i.0))])?;
        Ok(AccountConnection::from_page(
            rc(ctx)?.run(ListAccounts(params), None).await?,
        ))
    }

    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Result<Customer> {
        let op = RetrieveCustomer { id: id.0 };
        Ok(Customer(rc(ctx)?.run(op, None).await?))
    }

    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        email: Option<String>,
    ) -> Result<CustomerConnection> {
        let params = page(first, after, |t| CustomerId::parse(t).map(|i| i.uuid()))?;
        let params = with_filter(params, &[("email", email)])?;
        Ok(CustomerConnection::from_page(
            rc(ctx)?.run(ListCustomers(params), None).await?,
        ))
    }

    async fn refund(&self, ctx: &Context<'_>, id: ID) -> Result<Refund> {
        let op = RetrieveRefund {
            id: id.0,
            expand: Vec::new(),
        };
        Ok(Refund(rc(ctx)?.run(op, None).await?))
    }

    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn refunds(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        payment: Option<ID>,
    ) -> Result<RefundConnection> {
        let params = page(first, after, |t| RefundId::parse(t).map(|i| i.uuid()))?;
        let params = with_filter(params, &[("payment", payment.map(|i| i.0))])?;
        Ok(RefundConnection::from_page(
            rc(ctx)?.run(ListRefunds(params), None).await?,
        ))
    }

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
        let params = page(first, after, |t| WebhookEndpointId::parse(t).map(|i| i.uuid()))?;
        Ok(WebhookEndpointConnection::from_page(
            rc(ctx)?.run(ListWebhookEndpoints(params), None).await?,
        ))
    }

    async fn event(&self, ctx: &Context<'_>, id: ID) -> Result<Event> {
        let op = RetrieveEvent { id: id.0 };
        Ok(Event(rc(ctx)?.run(op, None).await?))
    }

    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(name = "type")] kind: Option<String>,
    ) -> Result<EventConnection> {
        let params = page(first, after, |t| EventId::parse(t).map(|i| i.uuid()))?;
        let params = with_filter(params, &[("type", kind)])?;
        Ok(EventConnection::from_page(
            rc(ctx)?.run(ListEvents::Page(params), None).await?,
        ))
    }
}

/// At most one of these, each served by its own index (as on REST).
#[derive(InputObject, Default)]
pub struct PaymentFilter {
    status: Option<String>,
    customer: Option<ID>,
    source: Option<ID>,
    destination: Option<ID>,
}

#[derive(InputObject)]
pub struct CreatePaymentInput {
    amount: i64,
    currency: String,
    source: ID,
    destination: ID,
    customer: Option<ID>,
    capture: Option<bool>,
    description: Option<String>,
    metadata: Option<Json<std::collections::BTreeMap<String, String>>>,
}

#[derive(InputObject)]
pub struct CreateAccountInput {
    name: String,
    currency: String,
    allow_negative: Option<bool>,
    customer: Option<ID>,
    metadata: Option<Json<std::collections::BTreeMap<String, String>>>,
}

#[derive(InputObject)]
pub struct CreateCustomerInput {
    name: Option<String>,
    email: Option<String>,
    metadata: Option<Json<std::collections::BTreeMap<String, String>>>,
}

#[derive(InputObject)]
pub struct UpdateAccountInput {
    name: Option<String>,
    /// Keys to set; a key set to `null` is removed.
    metadata: Option<Json<std::collections::BTreeMap<String, Option<String>>>>,
}

/// `null` clears a field; leaving it out keeps it (`Nullable`).
#[derive(InputObject)]
pub struct UpdateCustomerInput {
    name: Option<Nullable>,
    email: Option<Nullable>,
    metadata: Option<Json<std::collections::BTreeMap<String, Option<String>>>>,
}

/// A value that may be set to `null` on purpose: `{value: "x"}` sets,
/// `{value: null}` clears.
#[derive(InputObject)]
pub struct Nullable {
    value: Option<String>,
}

impl Nullable {
    fn into_option(self) -> Option<String> {
        self.value
    }
}

#[derive(InputObject)]
pub struct CreateRefundInput {
    payment: ID,
    amount: Option<i64>,
    reason: Option<String>,
}

pub struct Mutation;

/// Every write takes `idempotencyKey`: the same key with the same input
/// gives the first answer again, whichever face sent it first.
#[Object]
impl Mutation {
    async fn create_payment(
        &self,
        ctx: &Context<'_>,
        input: CreatePaymentInput,
        idempotency_key: Option<String>,
    ) -> Result<Payment> {
        let op = CreatePayment {
            amount: input.amount,
            currency: input.currency,
            source: input.source.0,
            destination: input.destination.0,
            customer: input.customer.map(|c| c.0),
            capture: input.capture.unwrap_or(true),
            description: input.description,
            metadata: input.metadata.map(|m| m.0),
        };
        Ok(Payment(rc(ctx)?.run(op, idempotency_key).await?))
    }

    async fn capture_payment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        amount_to_capture: Option<i64>,
        idempotency_key: Option<String>,
    ) -> Result<Payment> {
        let op = CapturePayment {
            id: id.0,
            amount_to_capture,
        };
        Ok(Payment(rc(ctx)?.run(op, idempotency_key).await?))
    }

    async fn cancel_payment(&self, ctx: &Context<'_>, id: ID, idempotency_key: Option<String>) -> Result<Payment> {
        let op = CancelPayment { id: id.0 };
        Ok(Payment(rc(ctx)?.run(op, idempotency_key).await?))
    }

    async fn create_refund(
        &self,
        ctx: &Context<'_>,
        input: CreateRefundInput,
        idempotency_key: Option<String>,
    ) -> Result<Refund> {
        let op = CreateRefund {
            payment: input.payment.0,
            amount: input.amount,
            reason: input.reason,
        };
        Ok(Refund(rc(ctx)?.run(op, idempotency_key).await?))
    }

    async fn create_account(
        &self,
        ctx: &Context<'_>,
        input: CreateAccountInput,
        idempotency_key: Option<String>,
    ) -> Result<Account> {
        let op = CreateAccount {
            name: input.name,
            currency: input.currency,
            allow_negative: input.allow_negative.unwrap_or(false),
            processor: false,
            customer: input.customer.map(|c| c.0),
            metadata: input.metadata.map(|m| m.0),
        };
        Ok(Account(rc(ctx)?.run(op, idempotency_key).await?))
    }

    /// Renames an account or edits its metadata (`null` removes a key);
    /// `expectedVersion` refuses the edit if the account changed since.
    async fn update_account(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateAccountInput,
        expected_version: Option<i64>,
        idempotency_key: Option<String>,
    ) -> Result<Account> {
        let op = UpdateAccount {
            id: id.0,
            if_version: expected_version,
            name: input.name,
            metadata: input.metadata.map(|m| m.0),
        };
        Ok(Account(rc(ctx)?.run(op, idempotency_key).await?))
    }

    /// Edits a customer; `expectedVersion` as for accounts.
    async fn update_customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCustomerInput,
        expected_version: Option<i64>,
        idempotency_key: Option<String>,
    ) -> Result<Customer> {
        let op = UpdateCustomer {
            id: id.0,
            if_version: expected_version,
            name: input.name.map(Nullable::into_option),
            email: input.email.map(Nullable::into_option),
            metadata: input.metadata.map(|m| m.0),
        };
        Ok(Customer(rc(ctx)?.run(op, idempotency_key).await?))
    }

    /// Deletes a customer nothing refers to; answers its id.
    async fn delete_customer(&self, ctx: &Context<'_>, id: ID, idempotency_key: Option<String>) -> Result<ID> {
        let deleted = rc(ctx)?.run(DeleteCustomer { id: id.0 }, idempotency_key).await?;
        Ok(ID(text(&deleted, "id")))
    }

    async fn create_customer(
        &self,
        ctx: &Context<'_>,
        input: CreateCustomerInput,
        idempotency_key: Option<String>,
    ) -> Result<Customer> {
        let op = CreateCustomer {
            name: input.name,
            email: input.email,
            metadata: input.metadata.map(|m| m.0),
        };
        Ok(Customer(rc(ctx)?.run(op, idempotency_key).await?))
    }
}
