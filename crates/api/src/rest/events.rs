//! `/v1/events`: every state change, newest first, by type or by object;
//! or, with `after_position`, the commit stream: oldest first, in commit
//! order, from a position a reader saw last.

use axum::extract::State;
use axum::response::Response;
use settle_core::Settle;
use settle_core::ops::events::{ListEvents, RetrieveEvent};
use settle_domain::ids::EventId;
use settle_store::list::{DEFAULT_LIMIT, MAX_LIMIT};

use super::serve::{Rest, RestInput};
use crate::error::ApiError;

pub async fn list(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        if let Some(stream) = StreamRequest::parse(r.query())? {
            return Ok(ListEvents::After {
                position: stream.after,
                limit: stream.limit,
            });
        }
        Ok(ListEvents::Page(
            r.list(ListEvents::FILTERS, |t| EventId::parse(t).map(|i| i.uuid()))?,
        ))
    })
    .await
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
        let pairs = crate::extract::query_pairs(Some(raw))?;
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

pub async fn retrieve(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<RetrieveEvent>).await
}
