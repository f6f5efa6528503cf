//! Payments: create (settle at once or hold), capture (full or partial),
//! cancel, read, list by one filter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use settle_domain::ids::{AccountId, CustomerId, PaymentId};
use settle_domain::money::{Amount, Currency};
use settle_domain::payment::{NewPayment, Payment, PaymentStatus};
use settle_domain::rbac::Resource;
use settle_store::records::PaymentFilter;

use super::{ListParams, Targeted, by_id, id_param, invalid, metadata, not_null, object_attributes};
use crate::Settle;
use crate::expand::{Kind, Listed, Shown};
use crate::pipeline::registry::{CANCEL_PAYMENT, CAPTURE_PAYMENT, CREATE_PAYMENT, LIST_PAYMENTS, RETRIEVE_PAYMENT};
use crate::pipeline::{Failure, Operation, OperationContext, OperationSpec};
use crate::policy::ResourceAttrs;

fn yes() -> bool {
    true
}

/// Moves `amount` (minor units) from `source` to `destination`; `capture:
/// false` holds it against the source's available balance until captured or
/// canceled.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    pub amount: i64,
    pub currency: String,
    pub source: String,
    pub destination: String,
    pub customer: Option<String>,
    /// `true` settles at once; `false` holds the amount to capture later.
    #[serde(default = "yes")]
    pub capture: bool,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Operation for CreatePayment {
    type Output = Payment;
    const SPEC: &'static OperationSpec = &CREATE_PAYMENT;

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Payment, Failure> {
        let new = NewPayment::new(
            Amount::parse("amount", self.amount)?,
            Currency::parse(&self.currency)?,
            id_param("source", &self.source, AccountId::parse)?,
            id_param("destination", &self.destination, AccountId::parse)?,
            self.customer
                .as_deref()
                .map(|c| id_param("customer", c, CustomerId::parse))
                .transpose()?,
            self.capture,
            self.description,
            metadata(self.metadata)?,
        )?;
        Ok(settle.create_payment(ctx.write(), new).await?)
    }
}

/// One payment, its `customer`, `source` and `destination` expandable.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetrievePayment {
    pub id: String,
    pub expand: Vec<String>,
}

impl Operation for RetrievePayment {
    type Output = Shown<Payment>;
    const SPEC: &'static OperationSpec = &RETRIEVE_PAYMENT;
    const EXPANDS: bool = true;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Payments, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let payment = settle.read_payment(PaymentId::parse(&self.id)).await?;
        settle.show(ctx, Kind::Payment, &self.expand, payment).await
    }
}

by_id!(
    /// Cancels a held payment and releases its hold.
    CancelPayment, CANCEL_PAYMENT, Payments, Payment,
    |settle, ctx, id| settle.cancel_payment(ctx.write(), PaymentId::parse(&id))
);

/// Captures a held payment, all of it or `amount_to_capture`; what is not
/// captured goes back to the source's available balance.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapturePayment {
    #[serde(default, skip_deserializing)]
    pub id: String,
    /// Absent captures the whole hold.
    #[serde(default, deserialize_with = "not_null")]
    pub amount_to_capture: Option<i64>,
}

impl Targeted for CapturePayment {
    fn with_id(self, id: String) -> Self {
        Self { id, ..self }
    }
}

impl Operation for CapturePayment {
    type Output = Payment;
    const SPEC: &'static OperationSpec = &CAPTURE_PAYMENT;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Payments, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Payment, Failure> {
        let amount = self
            .amount_to_capture
            .map(|a| Amount::parse("amount_to_capture", a))
            .transpose()?;
        Ok(settle
            .capture_payment(ctx.write(), PaymentId::parse(&self.id), amount)
            .await?)
    }
}

/// Payments, newest first; at most one of `status`, `customer`, `source`,
/// `destination`.
#[derive(Debug, Clone, Serialize)]
pub struct ListPayments(pub ListParams);

impl ListPayments {
    pub const FILTERS: &'static [&'static str] = &["status", "customer", "source", "destination"];
}

impl Operation for ListPayments {
    type Output = Listed<Payment>;
    const SPEC: &'static OperationSpec = &LIST_PAYMENTS;
    const EXPANDS: bool = true;

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let filter = match &self.0.filter {
            None => None,
            Some((key, value)) => Some(match key.as_str() {
                "status" => PaymentFilter::Status(
                    PaymentStatus::parse(value)
                        .ok_or_else(|| invalid("status", format!("`{value}` is not a payment status.")))?,
                ),
                "customer" => PaymentFilter::Customer(id_param("customer", value, CustomerId::parse)?),
                "source" => PaymentFilter::Source(id_param("source", value, AccountId::parse)?),
                _ => PaymentFilter::Destination(id_param("destination", value, AccountId::parse)?),
            }),
        };
        let page = settle.list_payments(&self.0.with_filter(filter)).await?;
        settle.show_page(ctx, Kind::Payment, &self.0.expand, page).await
    }
}
