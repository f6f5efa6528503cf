//! Webhook endpoints, their deliveries and attempts. An endpoint receives
//! the events it enabled; each (event, endpoint) pair is one delivery, tried
//! until a 2xx or until the retry schedule runs out; every try is an
//! attempt, kept for the log.

use std::time::Duration;

use serde::Serialize;

use crate::ids::{EventId, WebhookAttemptId, WebhookDeliveryId, WebhookEndpointId, WebhookReplayId};
use crate::metadata::Metadata;
use crate::{DomainError, text};

/// Every event type Settle writes; endpoints may enable any of them, or `*`.
pub const EVENT_TYPES: &[&str] = &[
    "account.created",
    "account.updated",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "payment.created",
    "payment.updated",
    "payment.processing",
    "payment.requires_capture",
    "payment.succeeded",
    "payment.canceled",
    "payment.failed",
    "refund.created",
    "refund.succeeded",
    "webhook_endpoint.created",
    "webhook_endpoint.updated",
    "webhook_endpoint.deleted",
    "webhook_endpoint.disabled",
];

/// The event an operator sends to one endpoint to see it receive, sign and
/// log a delivery. It goes to that endpoint alone: no subscription (not
/// even `*`) matches it, so fan-outs and replays never send it elsewhere.
pub const TEST_EVENT: &str = "webhook_endpoint.test";

/// The events an endpoint receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnabledEvents {
    All,
    Only(Vec<String>),
}

impl EnabledEvents {
    /// `["*"]` or a non-empty list of known types, each once.
    pub fn new(types: Vec<String>) -> Result<Self, DomainError> {
        if types.is_empty() {
            return Err(DomainError::invalid(
                "enabled_events",
                "`enabled_events` must not be empty",
            ));
        }
        if types.iter().any(|t| t == "*") {
            if types.len() > 1 {
                return Err(DomainError::invalid(
                    "enabled_events",
                    "`*` already enables every event; list nothing else with it",
                ));
            }
            return Ok(Self::All);
        }
        let mut seen = Vec::with_capacity(types.len());
        for t in types {
            if !EVENT_TYPES.contains(&t.as_str()) {
                return Err(DomainError::invalid(
                    "enabled_events",
                    format!("`{t}` is not an event type"),
                ));
            }
            if !seen.contains(&t) {
                seen.push(t);
            }
        }
        Ok(Self::Only(seen))
    }

    pub fn matches(&self, event_type: &str) -> bool {
        if event_type == TEST_EVENT {
            return false;
        }
        match self {
            Self::All => true,
            Self::Only(types) => types.iter().any(|t| t == event_type),
        }
    }

    pub fn to_list(&self) -> Vec<String> {
        match self {
            Self::All => vec!["*".into()],
            Self::Only(types) => types.clone(),
        }
    }
}

impl Serialize for EnabledEvents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_list().serialize(s)
    }
}

/// A validated request to create an endpoint (the URL's reachability is
/// checked by the service layer's SSRF guard).
#[derive(Debug, Clone)]
pub struct NewWebhookEndpoint {
    pub url: String,
    pub enabled_events: EnabledEvents,
    pub description: Option<String>,
    pub metadata: Metadata,
}

impl NewWebhookEndpoint {
    pub fn new(
        url: String,
        enabled_events: Vec<String>,
        description: Option<String>,
        metadata: Metadata,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            url: webhook_url(url)?,
            enabled_events: EnabledEvents::new(enabled_events)?,
            description: description
                .map(|d| text::bounded("description", d, 1000, false))
                .transpose()?,
            metadata,
        })
    }
}

/// An http(s) URL of reasonable length.
pub fn webhook_url(url: String) -> Result<String, DomainError> {
    let url = text::bounded("url", url, 2048, true)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(DomainError::invalid("url", "`url` must be an http or https URL"));
    }
    Ok(url)
}

/// Whether an endpoint receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    Enabled,
    Disabled,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "enabled" => Some(Self::Enabled),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// An endpoint as stored and shown; its secret is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "object", rename = "webhook_endpoint")]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub url: String,
    pub enabled_events: EnabledEvents,
    pub description: Option<String>,
    pub metadata: Metadata,
    pub status: EndpointStatus,
    /// Why Settle disabled it (a 410 from the receiver, say); `None` when a
    /// user did, or when it is enabled.
    pub disabled_reason: Option<String>,
    pub version: i64,
    pub created: i64,
}

/// A validated edit of an endpoint; `status` lets a user disable or
/// re-enable it (re-enabling clears `disabled_reason`).
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub enabled_events: Option<EnabledEvents>,
    pub description: Option<Option<String>>,
    pub metadata: Option<std::collections::BTreeMap<String, Option<String>>>,
    pub status: Option<EndpointStatus>,
}

impl EndpointPatch {
    pub fn apply(&self, e: &mut WebhookEndpoint) -> Result<(), DomainError> {
        if let Some(url) = &self.url {
            e.url = webhook_url(url.clone())?;
        }
        if let Some(events) = &self.enabled_events {
            e.enabled_events = events.clone();
        }
        if let Some(description) = &self.description {
            e.description = description
                .clone()
                .map(|d| text::bounded("description", d, 1000, false))
                .transpose()?;
        }
        if let Some(patch) = &self.metadata {
            e.metadata = e.metadata.merge(patch)?;
        }
        if let Some(status) = self.status {
            e.status = status;
            e.disabled_reason = None;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One event's delivery to one endpoint. Its id is the `webhook-id` header
/// of every attempt, so receivers can drop duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "object", rename = "webhook_delivery")]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    pub endpoint: WebhookEndpointId,
    pub event: EventId,
    /// The event's type, kept with the delivery so lists filter by it.
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// When the next attempt is due (Unix seconds), while pending.
    pub next_attempt: Option<i64>,
    /// The HTTP status of the last attempt, if the receiver answered.
    pub last_status: Option<i64>,
    pub created: i64,
    /// Made by a replay, long after its event: its time from commit to
    /// receipt says nothing about Settle's speed.
    #[serde(skip)]
    pub replayed: bool,
}

/// What an endpoint's delivery list is narrowed to: one status or one
/// event type (one equality filter per list, as everywhere in the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryFilter {
    Status(DeliveryStatus),
    EventType(String),
}

/// One try of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "object", rename = "webhook_attempt")]
pub struct WebhookAttempt {
    pub id: WebhookAttemptId,
    pub delivery: WebhookDeliveryId,
    pub duration_ms: i64,
    pub request_id: String,
    pub response_status: Option<i64>,
    /// Up to 4 KiB of the response body, as text.
    pub response_excerpt: Option<String>,
    /// Why there was no answer (timeout, refused connection, SSRF guard).
    pub error: Option<String>,
    pub created: i64,
}

/// Re-delivering an endpoint's matching events created in `[since,
/// until)` (Unix seconds) as new deliveries; `status` is `running` until
/// the last page is done, and `deliveries` counts what it made so far.
/// With `failed_only` it is a recovery after an outage: only the
/// endpoint's deliveries that failed for good in that range are sent
/// again (the same deliveries, made pending), nothing that arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "object", rename = "webhook_replay")]
pub struct WebhookReplay {
    pub id: WebhookReplayId,
    pub endpoint: WebhookEndpointId,
    pub since: i64,
    pub until: i64,
    pub failed_only: bool,
    pub status: String,
    pub deliveries: i64,
    pub created: i64,
}

/// A delivery's retry schedule: the delay before each retry after the
/// first attempt (SPEC default: about three days in nine steps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::parse("5s,5m,30m,2h,5h,10h,14h,20h,24h").unwrap_or_else(|_| unreachable!("the default parses"))
    }
}

impl RetrySchedule {
    /// `5s,5m,30m,2h`: comma-separated delays in ms, s, m or h.
    pub fn parse(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(|part| {
                let part = part.trim();
                let split = part.find(|c: char| !c.is_ascii_digit()).unwrap_or(part.len());
                let (n, unit) = part.split_at(split);
                let n: u64 = n.parse().map_err(|_| format!("`{part}` is not a delay such as 5m"))?;
                match unit {
                    "ms" => Ok(Duration::from_millis(n)),
                    "s" => Ok(Duration::from_secs(n)),
                    "m" => Ok(Duration::from_secs(n * 60)),
                    "h" => Ok(Duration::from_secs(n * 3600)),
                    _ => Err(format!("`{part}` needs a unit: ms, s, m or h")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(delays))
    }

    /// The delay after failed attempt `attempt` (1-based), before jitter;
    /// `None` when the schedule is used up and the delivery fails.
    pub fn after(&self, attempt: u32) -> Option<Duration> {
        self.0.get(attempt.checked_sub(1)? as usize).copied()
    }

    /// How many attempts a delivery gets in all.
    pub fn attempts(&self) -> usize {
        self.0.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_events_are_known_types_or_everything() {
        assert_eq!(EnabledEvents::new(vec!["*".into()]).unwrap(), EnabledEvents::All);
        let some = EnabledEvents::new(vec!["payment.succeeded".into(), "payment.succeeded".into()]).unwrap();
        assert_eq!(some.to_list(), ["payment.succeeded"]);
        assert!(some.matches("payment.succeeded") && !some.matches("payment.failed"));
        assert!(
            !EnabledEvents::All.matches(TEST_EVENT),
            "a test event goes to its endpoint alone"
        );
        assert!(EnabledEvents::new(vec![]).is_err());
        assert!(EnabledEvents::new(vec!["payment.exploded".into()]).is_err());
        assert!(EnabledEvents::new(vec!["*".into(), "payment.failed".into()]).is_err());
    }

    #[test]
    fn the_default_schedule_spans_about_three_days() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 10);
        assert_eq!(s.after(1), Some(Duration::from_secs(5)));
        assert_eq!(s.after(10), None);
        let total: Duration = (1..10).filter_map(|a| s.after(a)).sum();
        assert!(total > Duration::from_secs(3 * 24 * 3600) && total < Duration::from_secs(4 * 24 * 3600));
        assert!(RetrySchedule::parse("5").is_err());
        assert_eq!(
            RetrySchedule::parse("10ms, 1s").unwrap().after(2),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn urls_are_http() {
        assert!(webhook_url("https://example.com/hook".into()).is_ok());
        assert!(webhook_url("ftp://example.com".into()).is_err());
        assert!(webhook_url(format!("https://e.com/{}", "a".repeat(3000))).is_err());
    }
}
