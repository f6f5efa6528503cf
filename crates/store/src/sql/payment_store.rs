//! [`crate::PaymentStore`] for [`SqlStore`]: payments, refunds and ledger entries.

use async_trait::async_trait;
use settle_domain::ids::{AccountId, PaymentId, RefundId};
use settle_domain::ledger::LedgerEntry;
use settle_domain::money::Amount;
use settle_domain::payment::{NewPayment, Payment};
use settle_domain::refund::Refund;

use super::list::{FilterValue, fetch_page};
use super::rows::{ENTRY_COLS, PAYMENT_COLS, REFUND_COLS};
use super::store::spec;
use super::{SqlStore, entries, payments, rows};
use crate::PaymentStore;
use crate::context::WriteContext;
use crate::error::StoreResult;
use crate::list::{ListQuery, Page};
use crate::queue::{ProcessedBy, ProcessorOutcome};
use crate::records::{EntryFilter, NewRefund, PaymentFilter, RefundFilter};

#[async_trait]
impl PaymentStore for SqlStore {
    async fn create_payment(&self, ctx: &WriteContext, new: NewPayment) -> StoreResult<Payment> {
        self.write(ctx, move |tx| Box::pin(payments::create(tx, new.clone())))
            .await
    }

    async fn payment(&self, id: PaymentId) -> StoreResult<Option<Payment>> {
        payments::get(&mut self.reader(), id).await
    }

    async fn payments_by_ids(&self, ids: &[PaymentId]) -> StoreResult<Vec<Payment>> {
        let ids = ids.iter().map(|id| id.to_bytes()).collect();
        rows::by_ids(
            &mut self.reader(),
            self.dialect,
            "payments",
            PAYMENT_COLS,
            ids,
            rows::payment,
        )
        .await
    }

    async fn capture_payment(&self, ctx: &WriteContext, id: PaymentId, amount: Option<Amount>) -> StoreResult<Payment> {
        self.write(ctx, move |tx| Box::pin(payments::capture(tx, id, amount)))
            .await
    }

    async fn cancel_payment(&self, ctx: &WriteContext, id: PaymentId) -> StoreResult<Payment> {
        self.write(ctx, move |tx| Box::pin(payments::cancel(tx, id))).await
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
        self.write(ctx, move |tx| Box::pin(payments::refund(tx, new.clone())))
            .await
    }

    async fn refund(&self, id: RefundId) -> StoreResult<Option<Refund>> {
        payments::get_refund(&mut self.reader(), id).await
    }

    async fn refunds_of_payments(&self, payments: &[PaymentId], first: u32) -> StoreResult<Vec<Refund>> {
        payments::refunds_of(&mut self.reader(), self.dialect, payments, first).await
    }

    async fn refunds_by_ids(&self, ids: &[RefundId]) -> StoreResult<Vec<Refund>> {
        let ids = ids.iter().map(|id| id.to_bytes()).collect();
        rows::by_ids(
            &mut self.reader(),
            self.dialect,
            "refunds",
            REFUND_COLS,
            ids,
            rows::refund,
        )
        .await
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

    async fn entries_of_accounts(&self, accounts: &[AccountId], first: u32) -> StoreResult<Vec<LedgerEntry>> {
        entries::of_accounts(&mut self.reader(), self.dialect, accounts, first).await
    }

    async fn entries_sum(&self, account: AccountId) -> StoreResult<i64> {
        entries::sum(&mut self.reader(), account).await
    }

    async fn conclude_payment(
        &self,
        ctx: &WriteContext,
        done: &ProcessedBy,
        id: PaymentId,
        outcome: ProcessorOutcome,
    ) -> StoreResult<Option<Payment>> {
        // The worker's context gives the write its time and request id; it
        // holds no idempotency claim or audit draft, so it runs plain.
        let done = done.clone();
        self.write_plain(ctx, move |tx| {
            Box::pin(payments::conclude(tx, done.clone(), id, outcome))
        })
        .await
    }
}
