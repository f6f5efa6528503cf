//! The storage contract: every `settle_store::Store` backend (SQLite and
//! PostgreSQL) keeps the same rules when called directly, without HTTP.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use settle_domain::account::{Account, NewAccount};
use settle_domain::customer::{Customer, NewCustomer};
use settle_domain::ids::{AccountId, PaymentId, uuid_v7};
use settle_domain::metadata::Metadata;
use settle_domain::money::{Amount, Currency};
use settle_domain::payment::{NewPayment, Payment};
use settle_store::records::PaymentFilter;
use settle_store::{ListQuery, Page, Store, StoreError, WriteContext};
use uuid::Uuid;

use crate::support::TestApp;

mod ledger;
mod lists;
mod records;

fn ctx(app: &TestApp) -> WriteContext {
    app.settle.context("test", None)
}

fn usd() -> Currency {
    Currency::parse("usd").unwrap()
}

fn amount(value: i64) -> Amount {
    Amount::parse("amount", value).unwrap()
}

/// A random UUIDv7 from now: well formed, names nothing.
fn unknown_uuid() -> Uuid {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    uuid_v7(now_ms, rand::random::<u128>())
}

async fn open(store: &dyn Store, ctx: &WriteContext, name: &str, currency: Currency, allow_negative: bool) -> Account {
    let new = NewAccount::new(name.into(), currency, allow_negative, None, Metadata::default()).unwrap();
    store.create_account(ctx, new).await.unwrap()
}

async fn customer(store: &dyn Store, ctx: &WriteContext, name: &str) -> Customer {
    let new = NewCustomer::new(
        Some(name.into()),
        Some(format!("{name}@example.com")),
        Metadata::default(),
    )
    .unwrap();
    store.create_customer(ctx, new).await.unwrap()
}

fn new_payment(source: AccountId, destination: AccountId, value: i64, capture: bool) -> NewPayment {
    NewPayment::new(
        amount(value),
        usd(),
        source,
        destination,
        None,
        capture,
        None,
        Metadata::default(),
    )
    .unwrap()
}

async fn pay(
    store: &dyn Store,
    ctx: &WriteContext,
    source: AccountId,
    destination: AccountId,
    value: i64,
    capture: bool,
) -> Result<Payment, StoreError> {
    store
        .create_payment(ctx, new_payment(source, destination, value, capture))
        .await
}

async fn reload(store: &dyn Store, id: AccountId) -> Account {
    store.account(id).await.unwrap().expect("account exists")
}

fn payment_query(filter: Option<PaymentFilter>) -> ListQuery<PaymentFilter> {
    ListQuery {
        filter,
        ..ListQuery::first(100)
    }
}

fn ids(page: &Page<Payment>) -> Vec<PaymentId> {
    page.data.iter().map(|p| p.id).collect()
}
