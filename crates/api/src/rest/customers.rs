//! `/v1/customers`: create, read, edit (optimistic, with `If-Match`), delete
//! when nothing refers to them, list (optionally by email).

use axum::extract::State;
use axum::response::Response;
use settle_core::Settle;
use settle_core::ops::customers::{CreateCustomer, DeleteCustomer, ListCustomers, RetrieveCustomer, UpdateCustomer};
use settle_domain::ids::CustomerId;

use super::serve::{Rest, RestInput};

pub async fn create(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::json::<CreateCustomer>).await
}

pub async fn retrieve(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<RetrieveCustomer>).await
}

pub async fn update(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(UpdateCustomer {
            if_version: r.if_match()?,
            ..r.targeted::<UpdateCustomer>()?
        })
    })
    .await
}

pub async fn remove(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<DeleteCustomer>).await
}

pub async fn list(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListCustomers(r.list(ListCustomers::FILTERS, |t| {
            CustomerId::parse(t).map(|i| i.uuid())
        })?))
    })
    .await
}
