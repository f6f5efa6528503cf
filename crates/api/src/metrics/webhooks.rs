//! Webhook deliveries at `/metrics`: attempts by endpoint and outcome, how
//! long receivers took to answer, the time from commit to a receiver's 2xx,
//! and each endpoint's breaker. Endpoints past the configured number are
//! summed under `endpoint="other"`, so the series stay bounded.

use settle_core::Settle;
use settle_core::webhook::guard::BreakerState;
use settle_core::webhook::stats::{AttemptOutcome, BUCKETS, EndpointTotals};

use super::{histogram, metric};

pub fn render_webhooks(out: &mut String, settle: &Settle) {
    let s = settle.delivery_stats().snapshot(settle.clock().now_ms());
    let series: Vec<(String, &EndpointTotals)> = s
        .endpoints
        .iter()
        .map(|(id, t)| (id.to_string(), t))
        .chain([("other".to_owned(), &s.other)])
        .collect();
    metric(
        out,
        "settle_webhook_deliveries_total",
        "Delivery attempts this process made, by endpoint and outcome: delivered (2xx), retrying (another attempt is scheduled), failed (the schedule is used up).",
        "counter",
        series
            .iter()
            .flat_map(|(endpoint, t)| {
                AttemptOutcome::ALL.iter().zip(t.outcomes).map(move |(o, n)| {
                    (
                        format!("{{endpoint=\"{endpoint}\",outcome=\"{}\"}}", o.name()),
                        n as f64,
                    )
                })
            })
            .collect(),
    );
    histogram(
        out,
        "settle_webhook_attempt_duration_seconds",
        "How long each attempt took, from sending to the receiver's answer (or the error), by endpoint.",
        &BUCKETS,
        series.iter().map(|(endpoint, t)| {
            (
                format!("endpoint=\"{endpoint}\""),
                &t.durations.counts[..],
                t.durations.sum_seconds,
            )
        }),
    );
    histogram(
        out,
        "settle_webhook_commit_to_receipt_seconds",
        "From an event's commit to its receiver's 2xx, first attempts only.",
        &BUCKETS,
        [(String::new(), &s.receipt.counts[..], s.receipt.sum_seconds)],
    );
    // The same endpoints as the counters have series; the rest are
    // counted per state under `other`.
    let labelled: Vec<String> = s.endpoints.iter().map(|(id, _)| id.to_string()).collect();
    let mut rows = Vec::new();
    let mut others = [0u64; 3];
    for (endpoint, state) in &s.breakers {
        if labelled.contains(endpoint) {
            rows.extend(BreakerState::ALL.iter().map(|candidate| {
                (
                    format!("{{endpoint=\"{endpoint}\",state=\"{}\"}}", candidate.name()),
                    f64::from(u8::from(candidate == state)),
                )
            }));
        } else if let Some(i) = BreakerState::ALL.iter().position(|c| c == state) {
            others[i] += 1;
        }
    }
    rows.extend(
        BreakerState::ALL
            .iter()
            .zip(others)
            .map(|(state, n)| (format!("{{endpoint=\"other\",state=\"{}\"}}", state.name()), n as f64)),
    );
    metric(
        out,
        "settle_webhook_breaker_state",
        "Each endpoint breaker's state, 1 for the current one (endpoints this process has sent to; open means its deliveries wait); for endpoint=\"other\", how many of the remaining endpoints are in each state.",
        "gauge",
        rows,
    );
}
