//! Refunds: part or all of a captured payment, back from its destination
//! to its source; read; list by payment.

use serde::{Deserialize, Serialize};
use settle_domain::ids::{PaymentId, RefundId};
use settle_domain::money::Amount;
use settle_domain::rbac::Resource;
use settle_domain::refund::{Refund, RefundReason};
use settle_store::records::{NewRefund, RefundFilter};

use super::{ListParams, id_param, invalid, not_null, object_attributes};
use crate::Settle;
use crate::expand::{Kind, Listed, Shown};
use crate::pipeline::registry::{CREATE_REFUND, LIST_REFUNDS, RETRIEVE_REFUND};
use crate::pipeline::{Failure, Operation, OperationContext, OperationSpec};
use crate::policy::ResourceAttrs;

/// Refunds a payment, all that is left or `amount`, never beyond what was
/// captured.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    pub payment: String,
    /// Absent refunds what is left.
    #[serde(default, deserialize_with = "not_null")]
    pub amount: Option<i64>,
    pub reason: Option<String>,
}

impl Operation for CreateRefund {
    type Output = Refund;
    const SPEC: &'static OperationSpec = &CREATE_REFUND;

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Refund, Failure> {
        let reason = self
            .reason
            .map(|r| {
                RefundReason::parse(&r).ok_or_else(|| {
                    invalid(
                        "reason",
                        "`reason` is one of duplicate, fraudulent, requested_by_customer.",
                    )
                })
            })
            .transpose()?;
        let new = NewRefund {
            payment: id_param("payment", &self.payment, PaymentId::parse)?,
            amount: self.amount.map(|a| Amount::parse("amount", a)).transpose()?,
            reason,
        };
        Ok(settle.create_refund(ctx.write(), new).await?)
    }
}

/// One refund, its `payment` expandable.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetrieveRefund {
    pub id: String,
    pub expand: Vec<String>,
}

impl Operation for RetrieveRefund {
    type Output = Shown<Refund>;
    const SPEC: &'static OperationSpec = &RETRIEVE_REFUND;
    const EXPANDS: bool = true;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Refunds, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let refund = settle.read_refund(RefundId::parse(&self.id)).await?;
        settle.show(ctx, Kind::Refund, &self.expand, refund).await
    }
}

/// Refunds, newest first; `payment` filters by the payment refunded.
#[derive(Debug, Clone, Serialize)]
pub struct ListRefunds(pub ListParams);

impl ListRefunds {
    pub const FILTERS: &'static [&'static str] = &["payment"];
}

impl Operation for ListRefunds {
    type Output = Listed<Refund>;
    const SPEC: &'static OperationSpec = &LIST_REFUNDS;
    const EXPANDS: bool = true;

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let filter = match &self.0.filter {
            Some((_, value)) => Some(RefundFilter::Payment(id_param("payment", value, PaymentId::parse)?)),
            None => None,
        };
        let page = settle.list_refunds(&self.0.with_filter(filter)).await?;
        settle.show_page(ctx, Kind::Refund, &self.0.expand, page).await
    }
}
