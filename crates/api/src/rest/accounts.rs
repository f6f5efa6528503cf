//! `/v1/accounts`: open accounts, read them, edit their name and metadata
//! (optimistic, with `If-Match`), list them and their ledger entries.

use axum::extract::State;
use axum::response::Response;
use settle_core::Settle;
use settle_core::ops::accounts::{CreateAccount, ListAccounts, ListLedgerEntries, RetrieveAccount, UpdateAccount};
use settle_domain::ids::{AccountId, LedgerEntryId};

use super::serve::{Rest, RestInput};

pub async fn create(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::json::<CreateAccount>).await
}

pub async fn retrieve(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(RetrieveAccount {
            id: r.id(),
            expand: r.expand()?,
        })
    })
    .await
}

pub async fn update(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(UpdateAccount {
            if_version: r.if_match()?,
            ..r.targeted::<UpdateAccount>()?
        })
    })
    .await
}

pub async fn list(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListAccounts(r.list(ListAccounts::FILTERS, |t| {
            AccountId::parse(t).map(|i| i.uuid())
        })?))
    })
    .await
}

pub async fn entries(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListLedgerEntries {
            id: r.id(),
            params: r.list(&[], |t| LedgerEntryId::parse(t).map(|i| i.uuid()))?,
        })
    })
    .await
}
