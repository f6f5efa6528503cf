//! [`crate::AccountStore`] for [`SqlStore`]: accounts and customers.

use super::SqlStore;
use super::accounts;
use super::customers;
use super::events;
use super::events::Subject;
use super::list::FilterValue;
use super::list::fetch_page;
use super::rows;
use super::rows::ACCOUNT_COLS;
use super::rows::CUSTOMER_COLS;
use super::store::check_version;
use super::store::lost_race;
use super::store::spec;
use crate::context::WriteContext;
use crate::error::StoreError;
use crate::error::StoreResult;
use crate::list::ListQuery;
use crate::list::Page;
use crate::records::AccountFilter;
use crate::records::CustomerFilter;
use crate::records::Deleted;
use crate::*;
use async_trait::async_trait;
use settle_domain::account::Account;
use settle_domain::account::AccountPatch;
use settle_domain::account::NewAccount;
use settle_domain::customer::Customer;
use settle_domain::customer::CustomerPatch;
use settle_domain::customer::NewCustomer;
use settle_domain::ids::AccountId;
use settle_domain::ids::CustomerId;
use std::sync::Arc;

#[async_trait]
impl AccountStore for SqlStore {
    async fn create_account(&self, ctx: &WriteContext, new: NewAccount) -> StoreResult<Account> {
        let account = Account {
            id: AccountId::from_uuid(self.ids.next(ctx.now_ms)),
            name: new.name,
            currency: new.currency,
            balance: 0,
            pending_out: 0,
            allow_negative: new.allow_negative,
            processor: new.processor,
            customer: new.customer,
            metadata: new.metadata,
            version: 1,
            created: ctx.now_secs(),
        };
        let (d, ids, c) = (self.dialect, Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (account, ids, c) = (account.clone(), Arc::clone(&ids), c.clone());
            Box::pin(async move {
                if let Some(c) = account.customer
                    && !accounts::customer_exists(&mut *conn, d, c).await?
                {
                    return Err(StoreError::NotFound {
                        what: "customer",
                        param: Some("customer"),
                    });
                }
                accounts::insert(&mut *conn, &account).await?;
                let subject = Subject {
                    object_type: "account",
                    object_id: account.id.to_bytes(),
                    new: true,
                };
                events::emit(conn, &ids, &c, subject, &["account.created"], &account).await?;
                Ok(account)
            })
        })
        .await
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        accounts::get(&mut self.reader(), id).await
    }

    async fn update_account(
        &self,
        ctx: &WriteContext,
        id: AccountId,
        patch: AccountPatch,
        if_version: Option<i64>,
    ) -> StoreResult<Account> {
        let patch = Arc::new(patch);
        let (ids, c) = (Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (patch, ids, c) = (Arc::clone(&patch), Arc::clone(&ids), c.clone());
            Box::pin(async move {
                let mut account = accounts::get(&mut *conn, id).await?.ok_or(StoreError::NotFound {
                    what: "account",
                    param: None,
                })?;
                let read_version = account.version;
                check_version(if_version, read_version)?;
                patch.apply(&mut account)?;
                account.version += 1;
                if !accounts::save_edit(&mut *conn, &account, read_version).await? {
                    return Err(lost_race(if_version, read_version + 1));
                }
                let subject = Subject {
                    object_type: "account",
                    object_id: account.id.to_bytes(),
                    new: false,
                };
                events::emit(conn, &ids, &c, subject, &["account.updated"], &account).await?;
                Ok(account)
            })
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
        let customer = Customer {
            id: CustomerId::from_uuid(self.ids.next(ctx.now_ms)),
            name: new.name,
            email: new.email,
            metadata: new.metadata,
            version: 1,
            created: ctx.now_secs(),
        };
        let (ids, c) = (Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (customer, ids, c) = (customer.clone(), Arc::clone(&ids), c.clone());
            Box::pin(async move {
                customers::insert(&mut *conn, &customer).await?;
                let subject = Subject {
                    object_type: "customer",
                    object_id: customer.id.to_bytes(),
                    new: true,
                };
                events::emit(conn, &ids, &c, subject, &["customer.created"], &customer).await?;
                Ok(customer)
            })
        })
        .await
    }

    async fn customer(&self, id: CustomerId) -> StoreResult<Option<Customer>> {
        customers::get(&mut self.reader(), id).await
    }

    async fn update_customer(
        &self,
        ctx: &WriteContext,
        id: CustomerId,
        patch: CustomerPatch,
        if_version: Option<i64>,
    ) -> StoreResult<Customer> {
        let patch = Arc::new(patch);
        let (ids, c) = (Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (patch, ids, c) = (Arc::clone(&patch), Arc::clone(&ids), c.clone());
            Box::pin(async move {
                let mut customer = customers::get(&mut *conn, id).await?.ok_or(StoreError::NotFound {
                    what: "customer",
                    param: None,
                })?;
                let read_version = customer.version;
                check_version(if_version, read_version)?;
                patch.apply(&mut customer)?;
                customer.version += 1;
                if !customers::save_edit(&mut *conn, &customer, read_version).await? {
                    return Err(lost_race(if_version, read_version + 1));
                }
                let subject = Subject {
                    object_type: "customer",
                    object_id: customer.id.to_bytes(),
                    new: false,
                };
                events::emit(conn, &ids, &c, subject, &["customer.updated"], &customer).await?;
                Ok(customer)
            })
        })
        .await
    }

    async fn delete_customer(&self, ctx: &WriteContext, id: CustomerId) -> StoreResult<Deleted> {
        let (d, ids, c) = (self.dialect, Arc::clone(&self.ids), ctx.clone());
        self.write(ctx, move |conn| {
            let (ids, c) = (Arc::clone(&ids), c.clone());
            Box::pin(async move {
                if customers::get_locked(&mut *conn, id, d.lock_rows()).await?.is_none() {
                    return Err(StoreError::NotFound {
                        what: "customer",
                        param: None,
                    });
                }
                if customers::in_use(&mut *conn, id).await? {
                    return Err(StoreError::InUse("the customer has accounts or payments".into()));
                }
                customers::delete(&mut *conn, id).await?;
                let deleted = Deleted {
                    id: id.to_string(),
                    object: "customer",
                    deleted: true,
                };
                let subject = Subject {
                    object_type: "customer",
                    object_id: id.to_bytes(),
                    new: false,
                };
                events::emit(conn, &ids, &c, subject, &["customer.deleted"], &deleted).await?;
                Ok(deleted)
            })
        })
        .await
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
