//! Customers: who accounts and payments belong to.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ids::CustomerId;
use crate::metadata::Metadata;
use crate::{DomainError, text};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "object", rename = "customer")]
pub struct Customer {
    pub id: CustomerId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub metadata: Metadata,
    pub version: i64,
    pub created: i64,
}

/// A validated request to create a customer.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub name: Option<String>,
    pub email: Option<String>,
    pub metadata: Metadata,
}

impl NewCustomer {
    pub fn new(name: Option<String>, email: Option<String>, metadata: Metadata) -> Result<Self, DomainError> {
        Ok(Self {
            name: name.map(|n| text::bounded("name", n, 200, true)).transpose()?,
            email: email.map(text::email).transpose()?,
            metadata,
        })
    }
}

/// A validated edit; `Some(None)` clears a field.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    pub name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub metadata: Option<BTreeMap<String, Option<String>>>,
}

impl CustomerPatch {
    pub fn new(
        name: Option<Option<String>>,
        email: Option<Option<String>>,
        metadata: Option<BTreeMap<String, Option<String>>>,
    ) -> Result<Self, DomainError> {
        let name = name
            .map(|n| n.map(|n| text::bounded("name", n, 200, true)).transpose())
            .transpose()?;
        let email = email.map(|e| e.map(text::email).transpose()).transpose()?;
        Ok(Self { name, email, metadata })
    }

    pub fn apply(&self, customer: &mut Customer) -> Result<(), DomainError> {
        if let Some(name) = &self.name {
            customer.name = name.clone();
        }
        if let Some(email) = &self.email {
            customer.email = email.clone();
        }
        if let Some(patch) = &self.metadata {
            customer.metadata = customer.metadata.merge(patch)?;
        }
        Ok(())
    }
}
