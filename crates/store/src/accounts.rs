//! Accounts and the customers they may belong to: the contract, and its record types.

use async_trait::async_trait;
use settle_domain::account::{Account, AccountPatch, NewAccount};
use settle_domain::customer::{Customer, CustomerPatch, NewCustomer};
use settle_domain::ids::{AccountId, CustomerId};

use crate::context::WriteContext;
use crate::error::StoreResult;
use crate::list::{ListQuery, Page};
use crate::records::*;

/// Accounts can be filtered by their customer.
#[derive(Debug, Clone)]
pub enum AccountFilter {
    Customer(CustomerId),
}

/// Customers can be filtered by exact email.
#[derive(Debug, Clone)]
pub enum CustomerFilter {
    Email(String),
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_account(&self, ctx: &WriteContext, new: NewAccount) -> StoreResult<Account>;
    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>>;
    /// The accounts with these ids that exist, in one statement (for
    /// `expand[]`: one load per page, never one per object).
    async fn accounts_by_ids(&self, ids: &[AccountId]) -> StoreResult<Vec<Account>>;
    /// Applies `patch` if the stored version equals `if_version` (when given).
    async fn update_account(
        &self,
        ctx: &WriteContext,
        id: AccountId,
        patch: AccountPatch,
        if_version: Option<i64>,
    ) -> StoreResult<Account>;
    async fn list_accounts(&self, q: &ListQuery<AccountFilter>) -> StoreResult<Page<Account>>;

    async fn create_customer(&self, ctx: &WriteContext, new: NewCustomer) -> StoreResult<Customer>;
    async fn customer(&self, id: CustomerId) -> StoreResult<Option<Customer>>;
    /// The customers with these ids that exist, in one statement.
    async fn customers_by_ids(&self, ids: &[CustomerId]) -> StoreResult<Vec<Customer>>;
    async fn update_customer(
        &self,
        ctx: &WriteContext,
        id: CustomerId,
        patch: CustomerPatch,
        if_version: Option<i64>,
    ) -> StoreResult<Customer>;
    /// Removes a customer no account or payment refers to.
    async fn delete_customer(&self, ctx: &WriteContext, id: CustomerId) -> StoreResult<Deleted>;
    async fn list_customers(&self, q: &ListQuery<CustomerFilter>) -> StoreResult<Page<Customer>>;
}
