//! Events: every state change, newest first, by type or by object; or, from
//! a position of the commit stream, oldest first in commit order.

use serde::Serialize;
use settle_domain::ids::{EventId, decode_base32};
use settle_store::Page;
use settle_store::records::{Event, EventFilter};

use super::{ListParams, by_id};
use crate::Settle;
use crate::expand::Shown;
use crate::pipeline::registry::{LIST_EVENTS, RETRIEVE_EVENT};
use crate::pipeline::{Failure, Operation, OperationContext, OperationSpec};

by_id!(
    /// One event.
    RetrieveEvent, RETRIEVE_EVENT, Events, Shown<Event>,
    |settle, ctx, id| async { settle.read_event(EventId::parse(&id)).await.map(Shown::cached) }
);

/// Which events a list shows.
#[derive(Debug, Clone, Serialize)]
pub enum ListEvents {
    /// Newest first; `type` or `object` filters.
    Page(ListParams),
    /// The commit stream: up to `limit` events committed after `position`,
    /// in commit order; a cursor of its own.
    After { position: i64, limit: u32 },
}

impl ListEvents {
    pub const FILTERS: &'static [&'static str] = &["type", "object"];
}

/// The 16 bytes of any prefixed object id (`pay_...`, `acct_...`).
fn object_bytes(text: &str) -> Option<Vec<u8>> {
    let (prefix, rest) = text.split_once('_')?;
    const PREFIXES: [&str; 6] = ["acct", "cus", "pay", "re", "we", "evt"];
    PREFIXES.contains(&prefix).then_some(())?;
    decode_base32(rest).map(|v| v.to_be_bytes().to_vec())
}

impl Operation for ListEvents {
    type Output = Page<Event>;
    const SPEC: &'static OperationSpec = &LIST_EVENTS;

    async fn run(self, settle: &Settle, _ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let params = match self {
            ListEvents::After { position, limit } => return Ok(settle.events_after(position, limit).await?),
            ListEvents::Page(params) => params,
        };
        let filter = match &params.filter {
            None => None,
            Some((key, value)) if key == "type" => Some(EventFilter::Type(value.clone())),
            Some((_, value)) => Some(EventFilter::Object(
                object_bytes(value).ok_or_else(|| Failure::names_nothing("object"))?,
            )),
        };
        Ok(settle.list_events(&params.with_filter(filter)).await?)
    }
}
