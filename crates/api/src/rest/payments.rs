//! `/v1/payments`: create (settle at once or hold), capture (full or
//! partial), cancel, read, list by one filter.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use settle_core::Settle;
use settle_domain::ids::{AccountId, CustomerId, PaymentId};
use settle_domain::money::{Amount, Currency};
use settle_domain::payment::{NewPayment, PaymentStatus};
use settle_store::records::PaymentFilter;

use crate::error::ApiError;
use crate::extract::{JsonBody, ListRequest, PathId, body_ref, list_response, with_etag};
use crate::guard::Caller;

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    amount: i64,
    currency: String,
    source: String,
    destination: String,
    customer: Option<String>,
    #[serde(default = "yes")]
    capture: bool,
    description: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapturePayment {
    #[serde(default, deserialize_with = "crate::extract::not_null")]
    amount_to_capture: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelPayment {}

pub async fn create(
    State(settle): State<Settle>,
    caller: Caller,
    JsonBody(body): JsonBody<CreatePayment>,
) -> Result<Response, ApiError> {
    let new = NewPayment::new(
        Amount::parse("amount", body.amount)?,
        Currency::parse(&body.currency)?,
        body_ref("source", &body.source, AccountId::parse)?,
        body_ref("destination", &body.destination, AccountId::parse)?,
        body.customer
            .as_deref()
            .map(|c| body_ref("customer", c, CustomerId::parse))
            .transpose()?,
        body.capture,
        body.description,
        super::metadata(body.metadata)?,
    )?;
    let payment = settle.create_payment(&caller.context(&settle), new).await?;
    Ok(with_etag(payment))
}

pub async fn retrieve(State(settle): State<Settle>, PathId(id): PathId) -> Result<Response, ApiError> {
    let payment = settle.payment(PaymentId::parse(&id)).await?;
    Ok(with_etag(payment))
}

pub async fn capture(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody<CapturePayment>,
) -> Result<Response, ApiError> {
    let amount = body
        .amount_to_capture
        .map(|a| Amount::parse("amount_to_capture", a))
        .transpose()?;
    let payment = settle
        .capture_payment(&caller.context(&settle), PaymentId::parse(&id), amount)
        .await?;
    Ok(with_etag(payment))
}

pub async fn cancel(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
    JsonBody(_): JsonBody<CancelPayment>,
) -> Result<Response, ApiError> {
    let payment = settle
        .cancel_payment(&caller.context(&settle), PaymentId::parse(&id))
        .await?;
    Ok(with_etag(payment))
}

pub async fn list(State(settle): State<Settle>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &["status", "customer", "source", "destination"], |t| {
        PaymentId::parse(t).map(|i| i.uuid())
    })?;
    let filter = match &req.filter {
        None => None,
        Some((key, value)) => Some(match key.as_str() {
            "status" => PaymentFilter::Status(PaymentStatus::parse(value).ok_or_else(|| {
                ApiError::invalid(
                    "parameter_invalid",
                    "status",
                    format!("`{value}` is not a payment status."),
                )
            })?),
            "customer" => PaymentFilter::Customer(body_ref("customer", value, CustomerId::parse)?),
            "source" => PaymentFilter::Source(body_ref("source", value, AccountId::parse)?),
            _ => PaymentFilter::Destination(body_ref("destination", value, AccountId::parse)?),
        }),
    };
    let page = settle.list_payments(&req.with_filter(filter)).await?;
    Ok(list_response(page, "/v1/payments"))
}
