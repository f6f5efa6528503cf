//! Money movement: payments, refunds and ledger entries, and the processor's conclusions: the contract, and its record types.

use async_trait::async_trait;
use settle_domain::ids::{AccountId, CustomerId, PaymentId, RefundId};
use settle_domain::ledger::LedgerEntry;
use settle_domain::money::Amount;
use settle_domain::payment::{NewPayment, Payment, PaymentStatus};
use settle_domain::refund::{Refund, RefundReason};

use crate::context::WriteContext;
use crate::error::StoreResult;
use crate::list::{ListQuery, Page};
use crate::queue::{ProcessedBy, ProcessorOutcome};

/// Payments can be filtered by one of these, each served by its own index.
#[derive(Debug, Clone)]
pub enum PaymentFilter {
    Status(PaymentStatus),
    Customer(CustomerId),
    Source(AccountId),
    Destination(AccountId),
}

/// Refunds can be filtered by their payment.
#[derive(Debug, Clone)]
pub enum RefundFilter {
    Payment(PaymentId),
}

/// Ledger entries are always listed for one account.
#[derive(Debug, Clone)]
pub enum EntryFilter {
    Account(AccountId),
}

/// A validated refund request; `amount: None` refunds what is left.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub payment: PaymentId,
    pub amount: Option<Amount>,
    pub reason: Option<RefundReason>,
}

#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Locks both accounts, checks funds, writes the payment and its entries.
    async fn create_payment(&self, ctx: &WriteContext, new: NewPayment) -> StoreResult<Payment>;
    async fn payment(&self, id: PaymentId) -> StoreResult<Option<Payment>>;
    /// The payments with these ids that exist, in one statement.
    async fn payments_by_ids(&self, ids: &[PaymentId]) -> StoreResult<Vec<Payment>>;
    async fn capture_payment(&self, ctx: &WriteContext, id: PaymentId, amount: Option<Amount>) -> StoreResult<Payment>;
    async fn cancel_payment(&self, ctx: &WriteContext, id: PaymentId) -> StoreResult<Payment>;
    async fn list_payments(&self, q: &ListQuery<PaymentFilter>) -> StoreResult<Page<Payment>>;

    async fn create_refund(&self, ctx: &WriteContext, new: NewRefund) -> StoreResult<Refund>;
    async fn refund(&self, id: RefundId) -> StoreResult<Option<Refund>>;
    /// The refunds with these ids that exist, in one statement.
    async fn refunds_by_ids(&self, ids: &[RefundId]) -> StoreResult<Vec<Refund>>;
    /// The newest `first` refunds of each of these payments, newest first,
    /// in one statement whatever the number of payments (a window per
    /// payment, not a query each).
    async fn refunds_of_payments(&self, payments: &[PaymentId], first: u32) -> StoreResult<Vec<Refund>>;
    async fn list_refunds(&self, q: &ListQuery<RefundFilter>) -> StoreResult<Page<Refund>>;

    async fn list_entries(&self, q: &ListQuery<EntryFilter>) -> StoreResult<Page<LedgerEntry>>;
    /// The newest `first` entries of each of these accounts, newest first,
    /// in one statement whatever the number of accounts (a window per
    /// account, not a query each).
    async fn entries_of_accounts(&self, accounts: &[AccountId], first: u32) -> StoreResult<Vec<LedgerEntry>>;
    /// The sum of an account's entries: the invariant check compares it with the balance.
    async fn entries_sum(&self, account: AccountId) -> StoreResult<i64>;

    async fn conclude_payment(
        &self,
        ctx: &WriteContext,
        done: &ProcessedBy,
        id: PaymentId,
        outcome: ProcessorOutcome,
    ) -> StoreResult<Option<Payment>>;
}
