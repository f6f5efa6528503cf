//! `webhook_stats`: what the dashboard's overview draws. Whether deliveries
//! are healthy at a glance: outcomes per minute over the last hour, the time
//! from commit to a receiver's 2xx, each endpoint's backlog and breaker, and
//! the queue's dead letters.
//!
//! The per-minute figures and breakers are this process's own (they are
//! counted in memory as attempts finish); the backlog and dead letters come
//! from the database and the queue, and so cover every process.

use std::collections::HashMap;

use serde::Serialize;
use settle_domain::ids::WebhookEndpointId;
use settle_store::ListQuery;

use crate::Settle;
use crate::pipeline::registry::WEBHOOK_STATS;
use crate::pipeline::{Failure, Operation, OperationContext, OperationSpec};
use crate::webhook::stats::{AttemptOutcome, WINDOW_MINUTES};

/// Endpoints the overview lists, newest first.
const ENDPOINTS_SHOWN: u32 = 100;

#[derive(Debug, Clone, Default, Serialize)]
pub struct WebhookStats;

/// One minute of attempts by outcome.
#[derive(Debug, Clone, Serialize)]
pub struct MinuteCounts {
    /// Unix seconds of the minute's start.
    pub start: i64,
    pub delivered: u64,
    pub retrying: u64,
    pub failed: u64,
}

/// Commit to a receiver's 2xx, first attempts only, over the window.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptLatency {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointHealth {
    pub id: WebhookEndpointId,
    pub url: String,
    pub status: &'static str,
    /// Deliveries waiting for an attempt (every process's).
    pub pending: i64,
    /// `closed`, `open` or `half_open`; null until this process has sent
    /// to the endpoint.
    pub breaker: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "object", rename = "webhook_stats")]
pub struct WebhookStatsView {
    pub window_minutes: usize,
    pub minutes: Vec<MinuteCounts>,
    pub commit_to_receipt: ReceiptLatency,
    pub endpoints: Vec<EndpointHealth>,
    /// Events the fan-out gave up on (`settle queue replay` puts them back).
    pub dead_letters: u64,
}

impl Operation for WebhookStats {
    type Output = WebhookStatsView;
    const SPEC: &'static OperationSpec = &WEBHOOK_STATS;

    async fn run(self, settle: &Settle, _ctx: &OperationContext) -> Result<WebhookStatsView, Failure> {
        let snapshot = settle.delivery_stats().snapshot(settle.clock.now_ms());
        let count = |m: &crate::webhook::stats::Minute, o: AttemptOutcome| m.outcomes[o as usize];
        let minutes = snapshot
            .minutes
            .iter()
            .map(|m| MinuteCounts {
                start: (m.minute * 60) as i64,
                delivered: count(m, AttemptOutcome::Delivered),
                retrying: count(m, AttemptOutcome::Retrying),
                failed: count(m, AttemptOutcome::Failed),
            })
            .collect();
        let receipt = snapshot.window_receipt();
        let ms = |q: f64| receipt.quantile(q).map(|s| (s * 1e4).round() / 10.0);
        let backlog: HashMap<String, i64> = settle.store.webhook_backlog().await?.into_iter().collect();
        let breakers: HashMap<String, &'static str> = snapshot
            .breakers
            .iter()
            .map(|(k, state)| (k.clone(), state.name()))
            .collect();
        let endpoints = settle
            .list_webhook_endpoints(&ListQuery::first(ENDPOINTS_SHOWN))
            .await?
            .data
            .into_iter()
            .map(|e| {
                let key = e.id.to_string();
                EndpointHealth {
                    pending: backlog.get(&key).copied().unwrap_or(0),
                    breaker: breakers.get(&key).copied(),
                    id: e.id,
                    url: e.url,
                    status: e.status.as_str(),
                }
            })
            .collect();
        let queue = settle.queue_status().await?;
        Ok(WebhookStatsView {
            window_minutes: WINDOW_MINUTES,
            minutes,
            commit_to_receipt: ReceiptLatency {
                count: receipt.count(),
                p50_ms: ms(0.5),
                p99_ms: ms(0.99),
            },
            endpoints,
            // The fan-out's only: the rest of the queue is `queue:read`'s.
            dead_letters: queue
                .consumers
                .iter()
                .filter(|c| c.consumer == crate::queue::FANOUT)
                .map(|c| c.dead_letters)
                .sum(),
        })
    }
}
