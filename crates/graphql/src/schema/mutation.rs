//! Writes: each mutation fills an operation's typed input and runs it
//! through the pipeline, with the client's idempotency key. The root
//! gathers the writes of each area; this file holds the ledger's
//! (payments, refunds, accounts, customers).

use async_graphql::{Context, ID, MergedObject, Object, Result};
use settle_core::ops::accounts::{CreateAccount, UpdateAccount};
use settle_core::ops::customers::{CreateCustomer, DeleteCustomer, UpdateCustomer};
use settle_core::ops::payments::{CancelPayment, CapturePayment, CreatePayment};
use settle_core::ops::refunds::CreateRefund;

use super::access_mutation::AccessMutation;
use super::inputs::{
    CreateAccountInput, CreateCustomerInput, CreatePaymentInput, CreateRefundInput, Nullable, UpdateAccountInput,
    UpdateCustomerInput,
};
use super::objects::{Account, Customer, Payment, Refund};
use super::webhook_mutation::WebhookMutation;
use super::{rc, text};

/// Every write takes `idempotencyKey`: the same key with the same input
/// gives the first answer again, whichever face sent it first. Updates
/// take `expectedVersion`, refused with `version_conflict` when the
/// object changed since (REST's `If-Match`).
#[derive(MergedObject, Default)]
pub struct Mutation(LedgerMutation, WebhookMutation, AccessMutation);

#[derive(Default)]
pub struct LedgerMutation;

#[Object]
impl LedgerMutation {
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
