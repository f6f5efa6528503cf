//! The object types: each is its REST JSON, its fields read from it, its
//! relations loaded through the request's loaders.

use async_graphql::{Context, ID, Json, Object, Result};
use serde_json::Value;
use settle_core::pipeline::Failure;

use super::page::{LedgerEntryConnection, RefundConnection, nested_first, newest_page};
use super::relations::{account_of, customer_of};
use super::{int, opt_id, opt_text, rc, text};
use crate::errors::error;
use crate::loaders::{EntriesOf, PaymentKey, RefundsOf};

/// Moves an amount from a source account to a destination.
pub struct Payment(pub(super) Value);
/// A balance in one currency.
pub struct Account(pub(super) Value);
/// Who accounts and payments belong to.
pub struct Customer(pub(super) Value);
/// Money of a payment given back.
pub struct Refund(pub(super) Value);
/// A state change, with the object as it was right after.
pub struct Event(pub(super) Value);
/// One signed line of an account's ledger; never changed once written.
pub struct LedgerEntry(pub(super) Value);
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
    async fn refunds(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: Option<i32>,
    ) -> Result<RefundConnection> {
        let key = RefundsOf {
            payment: text(&self.0, "id"),
            first: nested_first(first)?,
        };
        let loaded = rc(ctx)?.loaders().await?.load_one(key).await.map_err(error)?;
        let newest = loaded.unwrap_or_else(|| Ok(Default::default())).map_err(error)?;
        Ok(RefundConnection::from_page(newest_page(&newest)?))
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
    /// The newest ledger entries of this account; loaded for the whole
    /// page at once (a window per account), never one query per account.
    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: Option<i32>,
    ) -> Result<LedgerEntryConnection> {
        let key = EntriesOf {
            account: text(&self.0, "id"),
            first: nested_first(first)?,
        };
        let loaded = rc(ctx)?.loaders().await?.load_one(key).await.map_err(error)?;
        let newest = loaded.unwrap_or_else(|| Ok(Default::default())).map_err(error)?;
        Ok(LedgerEntryConnection::from_page(newest_page(&newest)?))
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

#[Object]
impl LedgerEntry {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn account_id(&self) -> ID {
        ID(text(&self.0, "account"))
    }
    /// Signed: negative leaves the account.
    async fn amount(&self) -> i64 {
        int(&self.0, "amount")
    }
    /// The payment that moved it, if a payment did.
    async fn payment_id(&self) -> Option<ID> {
        opt_id(&self.0, "payment")
    }
    /// The refund that moved it, if a refund did.
    async fn refund_id(&self) -> Option<ID> {
        opt_id(&self.0, "refund")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
}
