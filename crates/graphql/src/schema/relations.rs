//! The relations of an object, through the request's loaders: one object
//! at a time for a resolver, or for a whole page (of payments, of
//! accounts) at once before its nodes resolve, so a page costs one
//! statement per kind of relation.

use async_graphql::{Context, Result, SelectionField};
use serde_json::Value;
use settle_core::pipeline::Failure;
use settle_store::list::MAX_LIMIT;

use super::objects::{Account, Customer};
use super::page::NESTED_DEFAULT;
use super::{opt_text, rc};
use crate::errors::error;
use crate::loaders::{AccountKey, CustomerKey, EntriesOf, RefundsOf};

/// Loads, for a whole page of payments at once, the relations the query
/// asks of its nodes: one statement per kind (customers; accounts for
/// source and destination together; a window of refunds per payment).
/// Left to each node's resolver, the loaders would batch only what
/// arrived within their delay, and a slow page would cost many statements.
pub(super) async fn preload_payments(ctx: &Context<'_>, page: &Value) -> Result<()> {
    let node = ctx.look_ahead().field("edges").field("node");
    let payments: Vec<&Value> = page["data"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    if payments.is_empty() {
        return Ok(());
    }
    let loaders = rc(ctx)?.loaders().await?;
    let ids = |field: &'static str| -> Vec<String> { payments.iter().filter_map(|p| opt_text(p, field)).collect() };
    if node.field("customer").exists() {
        loaders
            .load_many(ids("customer").into_iter().map(CustomerKey))
            .await
            .map_err(error)?;
    }
    let mut accounts: Vec<AccountKey> = Vec::new();
    if node.field("source").exists() {
        accounts.extend(ids("source").into_iter().map(AccountKey));
    }
    if node.field("destination").exists() {
        accounts.extend(ids("destination").into_iter().map(AccountKey));
    }
    if !accounts.is_empty() {
        loaders.load_many(accounts).await.map_err(error)?;
    }
    for refunds in node.field("refunds").selection_fields() {
        let first = first_argument(&refunds)?;
        let keys = ids("id").into_iter().map(|payment| RefundsOf { payment, first });
        loaders.load_many(keys).await.map_err(error)?;
    }
    Ok(())
}

/// Loads, for a whole page of accounts at once, the relations the query
/// asks of its nodes: their customers in one statement, and for each
/// `entries(first:)` asked, a window of entries per account in one more.
pub(super) async fn preload_accounts(ctx: &Context<'_>, page: &Value) -> Result<()> {
    let node = ctx.look_ahead().field("edges").field("node");
    let accounts: Vec<&Value> = page["data"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    if accounts.is_empty() {
        return Ok(());
    }
    let loaders = rc(ctx)?.loaders().await?;
    let ids = |field: &'static str| -> Vec<String> { accounts.iter().filter_map(|a| opt_text(a, field)).collect() };
    if node.field("customer").exists() {
        loaders
            .load_many(ids("customer").into_iter().map(CustomerKey))
            .await
            .map_err(error)?;
    }
    for entries in node.field("entries").selection_fields() {
        let first = first_argument(&entries)?;
        let keys = ids("id").into_iter().map(|account| EntriesOf { account, first });
        loaders.load_many(keys).await.map_err(error)?;
    }
    Ok(())
}

/// The `first` a nested list asks for, as its resolver will read it (a
/// value out of range is refused there; here it only sizes the preload).
fn first_argument(field: &SelectionField<'_>) -> Result<u32> {
    Ok(field
        .arguments()?
        .into_iter()
        .find(|(name, _)| name.as_str() == "first")
        .and_then(|(_, v)| match v {
            async_graphql::Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .map_or(NESTED_DEFAULT, |n| n.clamp(1, u64::from(MAX_LIMIT)) as u32))
}

pub(super) async fn account_of(ctx: &Context<'_>, id: Option<String>) -> Result<Option<Account>> {
    let Some(id) = id else { return Ok(None) };
    let loaded = rc(ctx)?
        .loaders()
        .await?
        .load_one(AccountKey(id))
        .await
        .map_err(error)?;
    match loaded {
        None => Ok(None),
        Some(shown) => {
            let account = shown.map_err(error)?;
            Ok(Some(Account(
                serde_json::to_value(account).map_err(|_| error(Failure::internal()))?,
            )))
        }
    }
}

pub(super) async fn customer_of(ctx: &Context<'_>, id: Option<String>) -> Result<Option<Customer>> {
    let Some(id) = id else { return Ok(None) };
    let loaded = rc(ctx)?
        .loaders()
        .await?
        .load_one(CustomerKey(id))
        .await
        .map_err(error)?;
    match loaded {
        None => Ok(None),
        Some(shown) => {
            let customer = shown.map_err(error)?;
            Ok(Some(Customer(
                serde_json::to_value(customer).map_err(|_| error(Failure::internal()))?,
            )))
        }
    }
}
