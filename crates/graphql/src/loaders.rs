//! Per-request loaders: every nested relation of a page (a payment's
//! customer, source and destination, its refunds) is gathered from all the
//! page's objects and loaded in one statement per kind, each object then
//! checked against the reader's permission and policies, as `expand[]`
//! does on REST. Created for each request, so nothing is shared between
//! keys and nothing is cached past the request.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use settle_core::Settle;
use settle_core::pipeline::{Failure, Viewer};
use settle_domain::account::Account;
use settle_domain::customer::Customer;
use settle_domain::ids::{AccountId, CustomerId, PaymentId};
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

/// The refunds of one payment, newest first, and whether more exist.
#[derive(Debug, Clone, Default)]
pub struct RefundPage {
    pub refunds: Vec<Refund>,
    pub has_more: bool,
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
    type Value = Shown<RefundPage>;
    type Error = Failure;

    /// One statement per distinct `first` (one in practice): a window of
    /// `first + 1` refunds per payment, the extra one saying there are more.
    async fn load(&self, keys: &[RefundsOf]) -> Result<HashMap<RefundsOf, Self::Value>, Self::Error> {
        let mut by_first: HashMap<u32, Vec<PaymentId>> = HashMap::new();
        for key in keys {
            if let Some(id) = PaymentId::parse(&key.payment) {
                by_first.entry(key.first).or_default().push(id);
            }
        }
        let mut out = HashMap::new();
        for (first, payments) in by_first {
            let refunds = self
                .settle
                .store()
                .refunds_of_payments(&payments, first.saturating_add(1))
                .await
                .map_err(failure)?;
            let mut pages: HashMap<String, RefundPage> = HashMap::new();
            for refund in refunds {
                let page = pages.entry(refund.payment.to_string()).or_default();
                if page.refunds.len() < first as usize {
                    page.refunds.push(refund);
                } else {
                    page.has_more = true;
                }
            }
            for payment in payments {
                let id = payment.to_string();
                let page = pages.remove(&id).unwrap_or_default();
                let shown = match self.settle.may_read(&self.viewer, Resource::Refunds, "") {
                    Ok(()) => Ok(page),
                    Err(e) => Err(e),
                };
                out.insert(RefundsOf { payment: id, first }, shown);
            }
        }
        Ok(out)
    }
}
