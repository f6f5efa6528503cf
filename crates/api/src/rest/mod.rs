//! One module per resource: its request types and its handlers.

pub mod accounts;
pub mod customers;
pub mod payments;
pub mod refunds;

use std::collections::BTreeMap;

use settle_domain::metadata::Metadata;

use crate::error::ApiError;

/// Metadata from a create request; absent means empty.
pub fn metadata(map: Option<BTreeMap<String, String>>) -> Result<Metadata, ApiError> {
    Ok(Metadata::parse(map.unwrap_or_default())?)
}
