//! Reads: one object by id, or a page of a kind as a Relay connection,
//! each through the operation REST runs for the same read. The root
//! gathers the reads of each area; this file holds the ledger's
//! (payments, accounts and their entries, customers, refunds, events).

use async_graphql::{Context, ID, MergedObject, Object, Result};
use settle_core::ops::accounts::{ListAccounts, ListLedgerEntries, RetrieveAccount};
use settle_core::ops::customers::{ListCustomers, RetrieveCustomer};
use settle_core::ops::events::{ListEvents, RetrieveEvent};
use settle_core::ops::payments::{ListPayments, RetrievePayment};
use settle_core::ops::refunds::{ListRefunds, RetrieveRefund};
use settle_domain::ids::{AccountId, CustomerId, EventId, LedgerEntryId, PaymentId, RefundId};

use super::access_query::AccessQuery;
use super::inputs::PaymentFilter;
use super::objects::{Account, Customer, Event, Payment, Refund};
use super::page::{
    AccountConnection, CustomerConnection, EventConnection, LedgerEntryConnection, PaymentConnection, RefundConnection,
    page, with_filter,
};
use super::rc;
use super::relations::{preload_accounts, preload_payments};
use super::webhook_query::WebhookQuery;

/// Every read: the ledger's, then webhooks', then access control's.
#[derive(MergedObject, Default)]
pub struct Query(LedgerQuery, WebhookQuery, AccessQuery);

#[derive(Default)]
pub struct LedgerQuery;

#[Object]
impl LedgerQuery {
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
        let params = page(first, after, |t| PaymentId::parse(t).map(|i| i.uuid()));
        let f = filter.unwrap_or_default();
        let filters = [
            ("status", f.status),
            ("customer", f.customer.map(|i| i.0)),
            ("source", f.source.map(|i| i.0)),
            ("destination", f.destination.map(|i| i.0)),
        ];
        let params = params.and_then(|params| with_filter(params, &filters));
        let page = rc(ctx)?.run_with(move || params.map(ListPayments), None).await?;
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
        let params = page(first, after, |t| AccountId::parse(t).map(|i| i.uuid()));
        let params = params.and_then(|params| with_filter(params, &[("customer", customer.map(|i| i.0))]));
        let page = rc(ctx)?.run_with(move || params.map(ListAccounts), None).await?;
        preload_accounts(ctx, &page).await?;
        Ok(AccountConnection::from_page(page))
    }

    /// An account's ledger entries, newest first.
    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn ledger_entries(
        &self,
        ctx: &Context<'_>,
        account: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<LedgerEntryConnection> {
        let params = page(first, after, |t| LedgerEntryId::parse(t).map(|i| i.uuid()));
        let op = params.map(|params| ListLedgerEntries { id: account.0, params });
        Ok(LedgerEntryConnection::from_page(
            rc(ctx)?.run_with(move || op, None).await?,
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
        let params = page(first, after, |t| CustomerId::parse(t).map(|i| i.uuid()));
        let params = params.and_then(|params| with_filter(params, &[("email", email)]));
        Ok(CustomerConnection::from_page(
            rc(ctx)?.run_with(move || params.map(ListCustomers), None).await?,
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
        let params = page(first, after, |t| RefundId::parse(t).map(|i| i.uuid()));
        let params = params.and_then(|params| with_filter(params, &[("payment", payment.map(|i| i.0))]));
        Ok(RefundConnection::from_page(
            rc(ctx)?.run_with(move || params.map(ListRefunds), None).await?,
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
        let params = page(first, after, |t| EventId::parse(t).map(|i| i.uuid()));
        let params = params.and_then(|params| with_filter(params, &[("type", kind)]));
        Ok(EventConnection::from_page(
            rc(ctx)?.run_with(move || params.map(ListEvents::Page), None).await?,
        ))
    }
}
