//! `/v1/payments`: create (settle at once or hold), capture (full or
//! partial), cancel, read, list by one filter.

use axum::extract::State;
use axum::response::Response;
use settle_core::Settle;
use settle_core::ops::payments::{CancelPayment, CapturePayment, CreatePayment, ListPayments, RetrievePayment};
use settle_domain::ids::PaymentId;

use super::serve::{Rest, RestInput};

pub async fn create(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::json::<CreatePayment>).await
}

pub async fn retrieve(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(RetrievePayment {
            id: r.id(),
            expand: r.expand()?,
        })
    })
    .await
}

pub async fn capture(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::targeted::<CapturePayment>).await
}

pub async fn cancel(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::targeted::<CancelPayment>).await
}

pub async fn list(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListPayments(r.list(ListPayments::FILTERS, |t| {
            PaymentId::parse(t).map(|i| i.uuid())
        })?))
    })
    .await
}
