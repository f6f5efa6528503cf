//! `/v1/events`: every state change, newest first, by type or by object.

use axum::extract::{RawQuery, State};
use settle_core::Settle;
use settle_domain::ids::{EventId, decode_base32};
use settle_store::records::{Event, EventFilter};

use crate::error::ApiError;
use crate::extract::{ListRequest, PathId, list_response};

/// The 16 bytes of any prefixed object id (`pay_...`, `acct_...`).
fn object_bytes(text: &str) -> Option<Vec<u8>> {
    let (prefix, rest) = text.split_once('_')?;
    const PREFIXES: [&str; 6] = ["acct", "cus", "pay", "re", "we", "evt"];
    PREFIXES.contains(&prefix).then_some(())?;
    decode_base32(rest).map(|v| v.to_be_bytes().to_vec())
}

pub async fn list(State(settle): State<Settle>, RawQuery(raw): RawQuery) -> Result<axum::response::Response, ApiError> {
    let req = ListRequest::parse(raw.as_deref(), &["type", "object"], |t| {
        EventId::parse(t).map(|i| i.uuid())
    })?;
    let filter = match &req.filter {
        None => None,
        Some((key, value)) if key == "type" => Some(EventFilter::Type(value.clone())),
        Some((_, value)) => {
            Some(EventFilter::Object(object_bytes(value).ok_or_else(|| {
                ApiError::invalid("resource_missing", "object", "`object` names nothing.")
            })?))
        }
    };
    Ok(list_response(
        settle.list_events(&req.with_filter(filter)).await?,
        "/v1/events",
    ))
}

pub async fn retrieve(State(settle): State<Settle>, PathId(id): PathId) -> Result<axum::Json<Event>, ApiError> {
    Ok(axum::Json(settle.event(EventId::parse(&id)).await?))
}
