//! `/v1/refunds`: refund part or all of a captured payment, read, list by payment.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use settle_core::Settle;
use settle_domain::ids::{PaymentId, RefundId};
use settle_domain::money::Amount;
use settle_domain::refund::RefundReason;
use settle_store::records::{NewRefund, RefundFilter};

use crate::error::ApiError;
use crate::extract::{JsonBody, ListRequest, PathId, body_ref, list_response};
use crate::guard::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    payment: String,
    #[serde(default, deserialize_with = "crate::extract::not_null")]
    amount: Option<i64>,
    reason: Option<String>,
}

pub async fn create(
    State(settle): State<Settle>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateRefund>,
) -> Result<axum::Json<settle_domain::refund::Refund>, ApiError> {
    let reason = body
        .reason
        .map(|r| {
            RefundReason::parse(&r).ok_or_else(|| {
                ApiError::invalid(
                    "parameter_invalid",
                    "reason",
                    "`reason` is one of duplicate, fraudulent, requested_by_customer.",
                )
            })
        })
        .transpose()?;
    let new = NewRefund {
        payment: body_ref("payment", &body.payment, PaymentId::parse)?,
        amount: body.amount.map(|a| Amount::parse("amount", a)).transpose()?,
        reason,
    };
    Ok(axum::Json(settle.create_refund(&caller.context(&settle), new).await?))
}

pub async fn retrieve(
    State(settle): State<Settle>,
    PathId(id): PathId,
) -> Result<axum::Json<settle_domain::refund::Refund>, ApiError> {
    Ok(axum::Json(settle.refund(RefundId::parse(&id)).await?))
}

pub async fn list(State(settle): State<Settle>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &["payment"], |t| RefundId::parse(t).map(|i| i.uuid()))?;
    let filter = match &req.filter {
        Some((_, value)) => Some(RefundFilter::Payment(body_ref("payment", value, PaymentId::parse)?)),
        None => None,
    };
    let page = settle.list_refunds(&req.with_filter(filter)).await?;
    Ok(list_response(page, "/v1/refunds"))
}
