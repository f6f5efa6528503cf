//! `/v1/accounts`: open accounts, read them, edit their name and metadata
//! (optimistic, with `If-Match`), list them and their ledger entries.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use settle_core::Settle;
use settle_domain::account::{AccountPatch, NewAccount};
use settle_domain::ids::{AccountId, CustomerId, LedgerEntryId};
use settle_domain::money::Currency;
use settle_store::records::AccountFilter;

use crate::error::ApiError;
use crate::extract::{IfMatch, JsonBody, ListRequest, PathId, body_ref, list_response, with_etag};
use crate::guard::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    name: String,
    currency: String,
    #[serde(default)]
    allow_negative: bool,
    #[serde(default)]
    processor: bool,
    customer: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    name: Option<String>,
    metadata: Option<BTreeMap<String, Option<String>>>,
}

pub async fn create(
    State(settle): State<Settle>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateAccount>,
) -> Result<Response, ApiError> {
    let customer = body
        .customer
        .as_deref()
        .map(|c| body_ref("customer", c, CustomerId::parse))
        .transpose()?;
    let new = NewAccount::new(
        body.name,
        Currency::parse(&body.currency)?,
        body.allow_negative,
        customer,
        super::metadata(body.metadata)?,
    )?
    .funded_by_processor(body.processor)?;
    let account = settle.create_account(&caller.context(&settle), new).await?;
    Ok(with_etag(account))
}

pub async fn retrieve(State(settle): State<Settle>, PathId(id): PathId) -> Result<Response, ApiError> {
    let account = settle.account(AccountId::parse(&id)).await?;
    Ok(with_etag(account))
}

pub async fn update(
    State(settle): State<Settle>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(if_version): IfMatch,
    JsonBody(body): JsonBody<UpdateAccount>,
) -> Result<Response, ApiError> {
    let patch = AccountPatch::new(body.name, body.metadata)?;
    let account = settle
        .update_account(&caller.context(&settle), AccountId::parse(&id), patch, if_version)
        .await?;
    Ok(with_etag(account))
}

pub async fn list(State(settle): State<Settle>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &["customer"], |t| AccountId::parse(t).map(|i| i.uuid()))?;
    let filter = match &req.filter {
        Some((_, value)) => Some(AccountFilter::Customer(body_ref("customer", value, CustomerId::parse)?)),
        None => None,
    };
    let page = settle.list_accounts(&req.with_filter(filter)).await?;
    Ok(list_response(page, "/v1/accounts"))
}

pub async fn entries(
    State(settle): State<Settle>,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &[], |t| LedgerEntryId::parse(t).map(|i| i.uuid()))?;
    let page = settle.list_entries(AccountId::parse(&id), req.query).await?;
    Ok(list_response(page, &format!("/v1/accounts/{id}/entries")))
}
