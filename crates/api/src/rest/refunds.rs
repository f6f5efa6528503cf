//! `/v1/refunds`: refund part or all of a captured payment, read, list by payment.

use axum::extract::State;
use axum::response::Response;
use settle_core::Settle;
use settle_core::ops::refunds::{CreateRefund, ListRefunds, RetrieveRefund};
use settle_domain::ids::RefundId;

use super::serve::{Rest, RestInput};

pub async fn create(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::json::<CreateRefund>).await
}

pub async fn retrieve(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(RetrieveRefund {
            id: r.id(),
            expand: r.expand()?,
        })
    })
    .await
}

pub async fn list(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListRefunds(r.list(ListRefunds::FILTERS, |t| {
            RefundId::parse(t).map(|i| i.uuid())
        })?))
    })
    .await
}
