//! [`crate::AccountStore`] for [`SqlStore`]: accounts and customers.

use async_trait::async_trait;
use settle_domain::account::{Account, AccountPatch, NewAccount};
use settle_domain::customer::{Customer, CustomerPatch, NewCustomer};
use settle_domain::ids::{AccountId, CustomerId};

use super::list::{FilterValue, fetch_page};
use super::rows::{ACCOUNT_COLS, CUSTOMER_COLS};
use super::store::spec;
use super::{SqlStore, accounts, customers, rows};
use crate::AccountStore;
use crate::context::WriteContext;
use crate::error::StoreResult;
use crate::list::{ListQuery, Page};
use crate::records::{AccountFilter, CustomerFilter, Deleted};

#[async_trait]
impl AccountStore for SqlStore {
    async fn create_account(&self, ctx: &WriteContext, new: NewAccount) -> StoreResult<Account> {
        self.write(ctx, move |tx| Box::pin(accounts::create(tx, new.clone())))
            .await
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        accounts::get(&mut self.reader(), id).await
    }

    async fn accounts_by_ids(&self, ids: &[AccountId]) -> StoreResult<Vec<Account>> {
        let ids = ids.iter().map(|id| id.to_bytes()).collect();
        rows::by_ids(
            &mut self.reader(),
            self.dialect,
            "accounts",
            ACCOUNT_COLS,
            ids,
            rows::account,
        )
        .await
    }

    async fn update_account(
        &self,
        ctx: &WriteContext,
        id: AccountId,
        patch: AccountPatch,
        if_version: Option<i64>,
    ) -> StoreResult<Account> {
        self.write(ctx, move |tx| {
            Box::pin(accounts::update(tx, id, patch.clone(), if_version))
        })
        .await
    }

    async fn list_accounts(&self, q: &ListQuery<AccountFilter>) -> StoreResult<Page<Account>> {
        let filter = q
            .filter
            .as_ref()
            .map(|AccountFilter::Customer(c)| ("customer_id", FilterValue::Bytes(c.to_bytes())));
        fetch_page(
            &mut self.reader(),
            spec("accounts", ACCOUNT_COLS, q, filter),
            rows::account,
        )
        .await
    }

    async fn create_customer(&self, ctx: &WriteContext, new: NewCustomer) -> StoreResult<Customer> {
        self.write(ctx, move |tx| Box::pin(customers::create(tx, new.clone())))
            .await
    }

    async fn customer(&self, id: CustomerId) -> StoreResult<Option<Customer>> {
        customers::get(&mut self.reader(), id).await
    }

    async fn customers_by_ids(&self, ids: &[CustomerId]) -> StoreResult<Vec<Customer>> {
        let ids = ids.iter().map(|id| id.to_bytes()).collect();
        rows::by_ids(
            &mut self.reader(),
            self.dialect,
            "customers",
            CUSTOMER_COLS,
            ids,
            rows::customer,
        )
        .await
    }

    async fn update_customer(
        &self,
        ctx: &WriteContext,
        id: CustomerId,
        patch: CustomerPatch,
        if_version: Option<i64>,
    ) -> StoreResult<Customer> {
        self.write(ctx, move |tx| {
            Box::pin(customers::update(tx, id, patch.clone(), if_version))
        })
        .await
    }

    async fn delete_customer(&self, ctx: &WriteContext, id: CustomerId) -> StoreResult<Deleted> {
        self.write(ctx, move |tx| Box::pin(customers::remove(tx, id))).await
    }

    async fn list_customers(&self, q: &ListQuery<CustomerFilter>) -> StoreResult<Page<Customer>> {
        let filter = q
            .filter
            .as_ref()
            .map(|CustomerFilter::Email(e)| ("email", FilterValue::Text(e.clone())));
        fetch_page(
            &mut self.reader(),
            spec("customers", CUSTOMER_COLS, q, filter),
            rows::customer,
        )
        .await
    }
}
