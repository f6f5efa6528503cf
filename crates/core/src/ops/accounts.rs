//! Accounts: open one, read it, edit its name and metadata (optimistic,
//! with the version the client last saw), list them and their ledger.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use settle_domain::account::{Account, AccountPatch, NewAccount};
use settle_domain::ids::{AccountId, CustomerId};
use settle_domain::ledger::LedgerEntry;
use settle_domain::money::Currency;
use settle_domain::rbac::Resource;
use settle_store::records::AccountFilter;

use super::{ListParams, Targeted, id_param, metadata, object_attributes};
use crate::Settle;
use crate::expand::{Kind, Listed, Shown};
use crate::pipeline::registry::{CREATE_ACCOUNT, LIST_ACCOUNTS, LIST_LEDGER_ENTRIES, RETRIEVE_ACCOUNT, UPDATE_ACCOUNT};
use crate::pipeline::{Failure, Operation, OperationContext, OperationSpec};
use crate::policy::ResourceAttrs;

/// Opens an account in one currency; `allow_negative` for funding sources (a
/// bank, a card network) that may go below zero, `processor` for accounts an
/// external processor settles.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    pub name: String,
    pub currency: String,
    #[serde(default)]
    pub allow_negative: bool,
    #[serde(default)]
    pub processor: bool,
    pub customer: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Operation for CreateAccount {
    type Output = Account;
    const SPEC: &'static OperationSpec = &CREATE_ACCOUNT;

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Account, Failure> {
        let customer = self
            .customer
            .as_deref()
            .map(|c| id_param("customer", c, CustomerId::parse))
            .transpose()?;
        let new = NewAccount::new(
            self.name,
            Currency::parse(&self.currency)?,
            self.allow_negative,
            customer,
            metadata(self.metadata)?,
        )?
        .funded_by_processor(self.processor)?;
        Ok(settle.create_account(ctx.write(), new).await?)
    }
}

/// One account with its balances, its `customer` expandable.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetrieveAccount {
    pub id: String,
    pub expand: Vec<String>,
}

impl Operation for RetrieveAccount {
    type Output = Shown<Account>;
    const SPEC: &'static OperationSpec = &RETRIEVE_ACCOUNT;
    const EXPANDS: bool = true;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Accounts, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let account = settle.read_account(AccountId::parse(&self.id)).await?;
        settle.show(ctx, Kind::Account, &self.expand, account).await
    }
}

/// Renames an account or edits its metadata; `null` in `metadata` removes that
/// key. Balances only move through payments and refunds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    #[serde(default, skip_deserializing)]
    pub id: String,
    /// The version the client last saw (`If-Match`); `None` edits any.
    #[serde(default, skip_deserializing)]
    pub if_version: Option<i64>,
    pub name: Option<String>,
    pub metadata: Option<BTreeMap<String, Option<String>>>,
}

impl Targeted for UpdateAccount {
    fn with_id(self, id: String) -> Self {
        Self { id, ..self }
    }
}

impl Operation for UpdateAccount {
    type Output = Account;
    const SPEC: &'static OperationSpec = &UPDATE_ACCOUNT;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Accounts, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Account, Failure> {
        let patch = AccountPatch::new(self.name, self.metadata)?;
        Ok(settle
            .update_account(ctx.write(), AccountId::parse(&self.id), patch, self.if_version)
            .await?)
    }
}

/// Accounts, newest first; `customer` filters by owner.
#[derive(Debug, Clone, Serialize)]
pub struct ListAccounts(pub ListParams);

impl ListAccounts {
    pub const FILTERS: &'static [&'static str] = &["customer"];
}

impl Operation for ListAccounts {
    type Output = Listed<Account>;
    const SPEC: &'static OperationSpec = &LIST_ACCOUNTS;
    const EXPANDS: bool = true;

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let filter = match &self.0.filter {
            Some((_, value)) => Some(AccountFilter::Customer(id_param("customer", value, CustomerId::parse)?)),
            None => None,
        };
        let page = settle.list_accounts(&self.0.with_filter(filter)).await?;
        settle.show_page(ctx, Kind::Account, &self.0.expand, page).await
    }
}

/// One account's ledger entries, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct ListLedgerEntries {
    pub id: String,
    pub params: ListParams,
}

impl Operation for ListLedgerEntries {
    type Output = Listed<LedgerEntry>;
    const SPEC: &'static OperationSpec = &LIST_LEDGER_ENTRIES;
    const EXPANDS: bool = true;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Accounts, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let page = settle
            .list_entries(AccountId::parse(&self.id), self.params.query)
            .await?;
        settle
            .show_page(ctx, Kind::LedgerEntry, &self.params.expand, page)
            .await
    }
}
