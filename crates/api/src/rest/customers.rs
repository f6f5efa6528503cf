//! `/v1/customers`: create, read, edit (optimistic, with `If-Match`), delete
//! when nothing refers to them, list (optionally by email).

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use settle_core::Settle;
use settle_domain::customer::{CustomerPatch, NewCustomer};
use settle_domain::ids::CustomerId;
use settle_store::records::{CustomerFilter, Deleted};

use crate::error::ApiError;
use crate::extract::{IfMatch, JsonBody, ListRequest, PathId, list_response, nullable, with_etag};
use crate::guard::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    name: Option<String>,
    email: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    email: Option<Option<String>>,
    metadata: Option<BTreeMap<String, Option<String>>>,
}

pub async fn create(
    State(settle): State<Settle>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateCustomer>,
) -> Result<Response, ApiError> {
    let new = NewCustomer::new(body.name, body.email, super::metadata(body.metadata)?)?;
    let customer = settle.create_customer(&caller.context(&settle), new).await?;
    Ok(with_etag(customer))
}

pub async fn retrieve(State(settle): State<Settle>, PathId(id): PathId) -> Result<Response, ApiError> {
    let customer = settle.customer(CustomerId::parse(&id)).await?;
    Ok(with_etag(customer))
}

pub async fn update(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(if_version): IfMatch,
    JsonBody(body): JsonBody<UpdateCustomer>,
) -> Result<Response, ApiError> {
    let patch = CustomerPatch::new(body.name, body.email, body.metadata)?;
    let customer = settle
        .update_customer(&caller.context(&settle), CustomerId::parse(&id), patch, if_version)
        .await?;
    Ok(with_etag(customer))
}

pub async fn remove(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<axum::Json<Deleted>, ApiError> {
    Ok(axum::Json(
        settle
            .delete_customer(&caller.context(&settle), CustomerId::parse(&id))
            .await?,
    ))
}

pub async fn list(State(settle): State<Settle>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &["email"], |t| CustomerId::parse(t).map(|i| i.uuid()))?;
    let filter = req
        .filter
        .as_ref()
        .map(|(_, email)| CustomerFilter::Email(email.clone()));
    let page = settle.list_customers(&req.with_filter(filter)).await?;
    Ok(list_response(page, "/v1/customers"))
}
