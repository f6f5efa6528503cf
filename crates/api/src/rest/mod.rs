//! One module per resource: its request types and its handlers.

pub mod accounts;
pub mod api_keys;
pub mod customers;
pub mod events;
pub mod payments;
pub mod policies;
pub mod queue;
pub mod refunds;
pub mod roles;
pub mod webhooks;

use std::collections::BTreeMap;

use settle_domain::metadata::Metadata;

use crate::error::ApiError;

/// Metadata from a create request; absent means empty.
pub fn metadata(map: Option<BTreeMap<String, String>>) -> Result<Metadata, ApiError> {
    Ok(Metadata::parse(map.unwrap_or_default())?)
}
