//! Per-request loaders: every nested relation of a page (a payment's
//! customer, source and destination, its refunds; an account's customer
//! and newest entries) is gathered from all the page's objects and loaded
//! in one statement per kind, each object then checked against the
//! reader's permission and policies, as `expand[]` does on REST. Created for each request, so nothing is shared between
//! keys and nothing is cached past the request.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use settle_core::Settle;
use settle_core::pipeline::{Failure, Viewer};
use settle_domain::account::Account;
use settle_domain::customer::Customer;
use settle_domain::ids::{AccountId, CustomerId, PaymentId};
use settle_domain::ledger::LedgerEntry;
use settle_domain::payment::Payment;
use settle_domain::rbac::Resource;
use settle_domain::refund::Refund;

/// One object as a loader gives it: the object, or why this reader may
/// not see it.
pub type Shown<T> = Result<T, Failure>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey(pub String);
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomerKey(pub String);
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentKey(pub String);
/// The newest `first` refunds of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefundsOf {
    pub payment: String,
    pub first: u32,
}
/// The newest `first` ledger entries of an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntriesOf {
    pub account: String,
    pub first: u32,
}

/// The newest children of one parent (a payment's refunds, an account's
/// entries), newest first, and whether more exist.
#[derive(Debug, Clone)]
pub struct Newest<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

impl<T> Default for Newest<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            has_more: false,
        }
    }
}

/// Each parent's page from the rows of a window of `first + 1` per parent
/// (newest first): the extra row only says there are more.
fn newest_by_parent<T>(rows: Vec<T>, first: u32, parent: impl Fn(&T) -> String) -> HashMap<String, Newest<T>> {
    let mut pages: HashMap<String, Newest<T>> = HashMap::new();
    for row in rows {
        let page = pages.entry(parent(&row)).or_default();
        if page.items.len() < first as usize {
            page.items.push(row);
        } else {
            page.has_more = true;
        }
    }
    pages
}

/// The parents of `keys` grouped by the `first` each asks for, so each
/// distinct `first` costs one statement (one in practice).
fn by_first<K, Id>(keys: &[K], of: impl Fn(&K) -> (&str, u32), parse: fn(&str) -> Option<Id>) -> HashMap<u32, Vec<Id>> {
    let mut grouped: HashMap<u32, Vec<Id>> = HashMap::new();
    for key in keys {
        let (parent, first) = of(key);
        if let Some(id) = parse(parent) {
            grouped.entry(first).or_default().push(id);
        }
    }
    grouped
}

pub struct Related {
    settle: Settle,
    viewer: Viewer,
}

pub type Loaders = DataLoader<Related, HashMapCache>;

/// The loaders of one request, run in that request's statement count. They
/// keep what they loaded for the request, so a page can load its
/// relations up front (see `schema::preload_payments`) and each object's
/// field then finds them, whatever the timing of the resolvers.
pub fn for_request(settle: Settle, viewer: Viewer) -> Loaders {
    let counter = settle_store::sql::statements::current();
    DataLoader::with_cache(
        Related { settle, viewer },
        move |work| {
            let counter = counter.clone();
            tokio::spawn(async move {
                match counter {
                    Some(counter) => settle_store::sql::statements::scope(counter, work).await,
                    None => work.await,
                }
            })
        },
        HashMapCache::default(),
    )
}

impl Related {
    fn shown<T>(&self, resource: Resource, id: &str, object: T) -> Shown<T> {
        self.settle.may_read(&self.viewer, resource, id).map(|()| object)
    }
}

fn failure(e: settle_store::StoreError) -> Failure {
    Failure::from(e)
}

impl Loader<AccountKey> for Related {
    type Value = Shown<Account>;
    type Error = Failure;

    async fn load(&self, keys: &[AccountKey]) -> Result<HashMap<AccountKey, Self::Value>, Self::Error> {
        let ids: Vec<AccountId> = keys.iter().filter_map(|k| AccountId::parse(&k.0)).collect();
        let found = self.settle.store().accounts_by_ids(&ids).await.map_err(failure)?;
        Ok(found
            .into_iter()
            .map(|a| {
                let id = a.id.to_string();
                (AccountKey(id.clone()), self.shown(Resource::Accounts, &id, a))
            })
            .collect())
    }
}

impl Loader<CustomerKey> for Related {
    type Value = Shown<Customer>;
    type Error = Failure;

    async fn load(&self, keys: &[CustomerKey]) -> Result<HashMap<CustomerKey, Self::Value>, Self::Error> {
        let ids: Vec<CustomerId> = keys.iter().filter_map(|k| CustomerId::parse(&k.0)).collect();
        let found = self.settle.store().customers_by_ids(&ids).await.map_err(failure)?;
        Ok(found
            .into_iter()
            .map(|c| {
                let id = c.id.to_string();
                (CustomerKey(id.clone()), self.shown(Resource::Customers, &id, c))
            })
            .collect())
    }
}

impl Loader<PaymentKey> for Related {
    type Value = Shown<Payment>;
    type Error = Failure;

    async fn load(&self, keys: &[PaymentKey]) -> Result<HashMap<PaymentKey, Self::Value>, Self::Error> {
        let ids: Vec<PaymentId> = keys.iter().filter_map(|k| PaymentId::parse(&k.0)).collect();
        let found = self.settle.store().payments_by_ids(&ids).await.map_err(failure)?;
        Ok(found
            .into_iter()
            .map(|p| {
                let id = p.id.to_string();
                (PaymentKey(id.clone()), self.shown(Resource::Payments, &id, p))
            })
            .collect())
    }
}

impl Loader<RefundsOf> for Related {
    type Value = Shown<Newest<Refund>>;
    type Error = Failure;

    /// One statement per distinct `first`: a window of `first + 1` refunds
    /// per payment, the extra one saying there are more.
    async fn load(&self, keys: &[RefundsOf]) -> Result<HashMap<RefundsOf, Self::Value>, Self::Error> {
        let mut out = HashMap::new();
        for (first, payments) in by_first(keys, |k| (&k.payment, k.first), PaymentId::parse) {
            let refunds = self
                .settle
                .store()
                .refunds_of_payments(&payments, first.saturating_add(1))
                .await
                .map_err(failure)?;
            let mut pages = newest_by_parent(refunds, first, |r| r.payment.to_string());
            for payment in payments {
                let id = payment.to_string();
                let page = pages.remove(&id).unwrap_or_default();
                let shown = self.shown(Resource::Refunds, "", page);
                out.insert(RefundsOf { payment: id, first }, shown);
            }
        }
        Ok(out)
    }
}

impl Loader<EntriesOf> for Related {
    type Value = Shown<Newest<LedgerEntry>>;
    type Error = Failure;

    /// One statement per distinct `first`: a window of `first + 1` entries
    /// per account the reader may list the entries of (`accounts:read`
    /// and the policies for that account, as REST's
    /// `GET /v1/accounts/{id}/entries`); the others are refused unread.
    async fn load(&self, keys: &[EntriesOf]) -> Result<HashMap<EntriesOf, Self::Value>, Self::Error> {
        let mut out = HashMap::new();
        for (first, accounts) in by_first(keys, |k| (&k.account, k.first), AccountId::parse) {
            let mut readable = Vec::new();
            for account in accounts {
                let id = account.to_string();
                match self.settle.may_read(&self.viewer, Resource::Accounts, &id) {
                    Ok(()) => readable.push(account),
                    Err(refused) => {
                        out.insert(EntriesOf { account: id, first }, Err(refused));
                    }
                }
            }
            let entries = self
                .settle
                .store()
                .entries_of_accounts(&readable, first.saturating_add(1))
                .await
                .map_err(failure)?;
            let mut pages = newest_by_parent(entries, first, |e| e.account.to_string());
            for account in readable {
                let id = account.to_string();
                let page = pages.remove(&id).unwrap_or_default();
                out.insert(EntriesOf { account: id, first }, Ok(page));
            }
        }
        Ok(out)
    }
}
