//! `/v1/events`: every state change, newest first, by type or by object;
//! or, with `after_position`, the commit stream: oldest first, in commit
//! order, from a position a reader saw last.

use axum::extract::{RawQuery, State};
use settle_core::Settle;
use settle_domain::ids::{EventId, decode_base32};
use settle_store::list::{DEFAULT_LIMIT, MAX_LIMIT};
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
    if let Some(stream) = StreamRequest::parse(raw.as_deref())? {
        return Ok(list_response(
            settle.events_after(stream.after, stream.limit).await?,
            "/v1/events",
        ));
    }
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

/// `?after_position=N[&limit=L]`: the events committed after position N,
/// in commit order. A cursor of its own, so it takes no id cursor or filter.
struct StreamRequest {
    after: i64,
    limit: u32,
}

impl StreamRequest {
    /// `None` when the query does not ask for the commit stream.
    fn parse(raw: Option<&str>) -> Result<Option<Self>, ApiError> {
        let raw = raw.unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|e| {
            ApiError::invalid(
                "parameter_invalid",
                "query",
                format!("The query string is malformed: {e}"),
            )
        })?;
        if !pairs.iter().any(|(k, _)| k == "after_position") {
            return Ok(None);
        }
        let mut out = StreamRequest {
            after: 0,
            limit: DEFAULT_LIMIT,
        };
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in &pairs {
            if seen.contains(&key.as_str()) {
                return Err(ApiError::invalid(
                    "parameter_invalid",
                    key.clone(),
                    format!("`{key}` is given more than once."),
                ));
            }
            seen.push(key);
            let number = value.parse::<i64>().ok();
            match key.as_str() {
                "after_position" => {
                    out.after = number.filter(|n| *n >= 0).ok_or_else(|| {
                        ApiError::invalid(
                            "parameter_invalid",
                            "after_position",
                            "`after_position` must be a position, 0 or more.",
                        )
                    })?;
                }
                "limit" => {
                    let limit = number
                        .filter(|n| (1..=i64::from(MAX_LIMIT)).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "parameter_invalid",
                                "limit",
                                format!("`limit` must be between 1 and {MAX_LIMIT}."),
                            )
                        })?;
                    out.limit = limit as u32;
                }
                other => {
                    return Err(ApiError::invalid(
                        "parameter_invalid",
                        other,
                        format!("`{other}` cannot be combined with `after_position`."),
                    ));
                }
            }
        }
        Ok(Some(out))
    }
}

pub async fn retrieve(State(settle): State<Settle>, PathId(id): PathId) -> Result<axum::Json<Event>, ApiError> {
    Ok(axum::Json(settle.event(EventId::parse(&id)).await?))
}
