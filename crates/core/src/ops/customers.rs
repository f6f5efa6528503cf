//! Customers: create, read, edit (optimistic), delete when nothing refers
//! to them, list (optionally by exact email).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use settle_domain::customer::{Customer, CustomerPatch, NewCustomer};
use settle_domain::ids::CustomerId;
use settle_domain::rbac::Resource;
use settle_store::Page;
use settle_store::records::{CustomerFilter, Deleted};

use super::{ListParams, Targeted, by_id, metadata, nullable, object_attributes};
use crate::Settle;
use crate::expand::Shown;
use crate::pipeline::registry::{CREATE_CUSTOMER, DELETE_CUSTOMER, LIST_CUSTOMERS, RETRIEVE_CUSTOMER, UPDATE_CUSTOMER};
use crate::pipeline::{Failure, Operation, OperationContext, OperationSpec};
use crate::policy::ResourceAttrs;

/// A customer accounts and payments can belong to.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    pub name: Option<String>,
    pub email: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Operation for CreateCustomer {
    type Output = Customer;
    const SPEC: &'static OperationSpec = &CREATE_CUSTOMER;

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Customer, Failure> {
        let new = NewCustomer::new(self.name, self.email, metadata(self.metadata)?)?;
        Ok(settle.create_customer(ctx.write(), new).await?)
    }
}

by_id!(
    /// One customer.
    RetrieveCustomer, RETRIEVE_CUSTOMER, Customers, Shown<Customer>,
    |settle, ctx, id| async { settle.read_customer(CustomerId::parse(&id)).await.map(Shown::cached) }
);

by_id!(
    /// Deletes a customer no account or payment refers to.
    DeleteCustomer, DELETE_CUSTOMER, Customers, Deleted,
    |settle, ctx, id| settle.delete_customer(ctx.write(), CustomerId::parse(&id))
);

/// Edits a customer; `null` clears `name` or `email`, and removes a metadata
/// key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    #[serde(default, skip_deserializing)]
    pub id: String,
    #[serde(default, skip_deserializing)]
    pub if_version: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub email: Option<Option<String>>,
    pub metadata: Option<BTreeMap<String, Option<String>>>,
}

impl Targeted for UpdateCustomer {
    fn with_id(self, id: String) -> Self {
        Self { id, ..self }
    }
}

impl Operation for UpdateCustomer {
    type Output = Customer;
    const SPEC: &'static OperationSpec = &UPDATE_CUSTOMER;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Customers, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Customer, Failure> {
        let patch = CustomerPatch::new(self.name, self.email, self.metadata)?;
        Ok(settle
            .update_customer(ctx.write(), CustomerId::parse(&self.id), patch, self.if_version)
            .await?)
    }
}

/// Customers, newest first; `email` filters by exact address.
#[derive(Debug, Clone, Serialize)]
pub struct ListCustomers(pub ListParams);

impl ListCustomers {
    pub const FILTERS: &'static [&'static str] = &["email"];
}

impl Operation for ListCustomers {
    type Output = Page<Customer>;
    const SPEC: &'static OperationSpec = &LIST_CUSTOMERS;

    async fn run(self, settle: &Settle, _ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let filter = self
            .0
            .filter
            .as_ref()
            .map(|(_, email)| CustomerFilter::Email(email.clone()));
        Ok(settle.list_customers(&self.0.with_filter(filter)).await?)
    }
}
