//! Relay connections over REST's pages: a page's parameters from `first`
//! and `after` (the same keyset cursor as `starting_after`), at most one
//! equality filter, and the connection and edge types of each node type.

use async_graphql::{Result, SimpleObject};
use serde::Serialize;
use serde_json::Value;
use settle_core::ops::ListParams;
use settle_core::pipeline::Failure;
use settle_store::list::{DEFAULT_LIMIT, MAX_LIMIT};
use settle_store::{Cursor, ListQuery};
use uuid::Uuid;

use super::access_objects::{ApiKey, AuditEvent, Policy, Role};
use super::objects::{Account, Customer, Event, LedgerEntry, Payment, Refund};
use super::text;
use super::webhook_objects::{WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookReplay};
use crate::errors::error;
use crate::loaders::Newest;

/// A page's parameters from Relay's `first` and `after` (an id: the same
/// keyset cursor as REST's `starting_after`).
///
/// A bad `first` or `after` is told only once the pipeline let the caller
/// in (the list is built inside it), as REST checks the permission before
/// the query string.
pub(super) fn page(
    first: Option<i32>,
    after: Option<String>,
    cursor: fn(&str) -> Option<Uuid>,
) -> Result<ListParams, Failure> {
    let limit = match first {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT as i32).contains(&n) => n as u32,
        Some(_) => {
            return Err(Failure::invalid(
                "parameter_invalid",
                "first",
                format!("`first` must be between 1 and {MAX_LIMIT}."),
            ));
        }
    };
    let mut query = ListQuery::first(limit);
    if let Some(after) = after {
        let id = cursor(&after).ok_or_else(|| Failure::names_nothing("after"))?;
        query.cursor = Some(Cursor::StartingAfter(id));
    }
    Ok(ListParams::new(query))
}

/// How many children a nested list (`refunds`, `entries`) shows when
/// `first` is not given.
pub(super) const NESTED_DEFAULT: u32 = 10;

/// The `first` of a nested list: 1 to the page limit, as for a list.
pub(super) fn nested_first(first: Option<i32>) -> Result<u32> {
    match first {
        None => Ok(NESTED_DEFAULT),
        Some(n) if (1..=MAX_LIMIT as i32).contains(&n) => Ok(n as u32),
        Some(_) => Err(error(Failure::invalid(
            "parameter_invalid",
            "first",
            format!("`first` must be between 1 and {MAX_LIMIT}."),
        ))),
    }
}

/// A parent's newest children as a page (`data`, `has_more`) to make a
/// connection from, their JSON as REST shows them.
pub(super) fn newest_page<T: Serialize>(newest: &Newest<T>) -> Result<Value> {
    let data: Vec<Value> = newest
        .items
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .map_err(|_| error(Failure::internal()))?;
    Ok(serde_json::json!({"data": data, "has_more": newest.has_more}))
}

pub(super) fn with_filter(params: ListParams, filters: &[(&str, Option<String>)]) -> Result<ListParams, Failure> {
    params.one_filter(filters.iter().map(|(k, v)| (*k, v.as_deref())))
}

#[derive(SimpleObject)]
pub struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// Connection and edge types of one node type, on the REST page.
macro_rules! connection {
    ($node:ident, $connection:ident, $edge:ident) => {
        #[derive(SimpleObject)]
        pub struct $edge {
            cursor: String,
            node: $node,
        }

        #[derive(SimpleObject)]
        pub struct $connection {
            edges: Vec<$edge>,
            page_info: PageInfo,
        }

        impl $connection {
            pub(super) fn from_page(page: Value) -> Self {
                let nodes: Vec<Value> = page["data"].as_array().cloned().unwrap_or_default();
                let end_cursor = nodes.last().map(|n| text(n, "id"));
                Self {
                    edges: nodes
                        .into_iter()
                        .map(|node| $edge {
                            cursor: text(&node, "id"),
                            node: $node(node),
                        })
                        .collect(),
                    page_info: PageInfo {
                        has_next_page: page["has_more"].as_bool().unwrap_or(false),
                        end_cursor,
                    },
                }
            }
        }
    };
}

connection!(Payment, PaymentConnection, PaymentEdge);
connection!(Account, AccountConnection, AccountEdge);
connection!(Customer, CustomerConnection, CustomerEdge);
connection!(Refund, RefundConnection, RefundEdge);
connection!(Event, EventConnection, EventEdge);
connection!(LedgerEntry, LedgerEntryConnection, LedgerEntryEdge);
connection!(WebhookEndpoint, WebhookEndpointConnection, WebhookEndpointEdge);
connection!(WebhookDelivery, WebhookDeliveryConnection, WebhookDeliveryEdge);
connection!(WebhookAttempt, WebhookAttemptConnection, WebhookAttemptEdge);
connection!(WebhookReplay, WebhookReplayConnection, WebhookReplayEdge);
connection!(ApiKey, ApiKeyConnection, ApiKeyEdge);
connection!(Role, RoleConnection, RoleEdge);
connection!(Policy, PolicyConnection, PolicyEdge);
connection!(AuditEvent, AuditEventConnection, AuditEventEdge);
