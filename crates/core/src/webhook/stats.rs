//! What this process's webhook deliveries came to: attempts by outcome per
//! endpoint with their durations (for `/metrics`), the last hour minute by
//! minute and the time from an event's commit to its receiver's 2xx (for
//! the dashboard's overview), and where each endpoint's breaker stands.
//!
//! Counted in memory, per process: nothing is written per attempt beyond
//! the attempt itself. Endpoints get series of their own up to a bound
//! (the first ones seen); the rest are summed under `other`, so an
//! installation with thousands of endpoints cannot blow up `/metrics`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use settle_domain::ids::WebhookEndpointId;

use super::guard::{BreakerState, EndpointGuard};

/// Upper bounds (seconds) of the attempt-duration and commit-to-receipt
/// histograms: fine below 10 ms, where a healthy receiver answers.
pub const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.002, 0.0035, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0,
];

/// Minutes the overview keeps.
pub const WINDOW_MINUTES: usize = 60;

/// Endpoints with series of their own when nothing else is configured.
pub const DEFAULT_LABELLED_ENDPOINTS: usize = 20;

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It did not, and another attempt is scheduled.
    Retrying,
    /// It did not, and the schedule is used up (or the receiver said 410).
    Failed,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 3] = [Self::Delivered, Self::Retrying, Self::Failed];

    pub fn name(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A histogram over [`BUCKETS`]: counts per bucket (not cumulative), the
/// overflow last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub counts: [u64; BUCKETS.len() + 1],
    pub sum_seconds: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let i = BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum_seconds += seconds;
    }

    fn add(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.sum_seconds += other.sum_seconds;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The bucket bound under which a `q` share of the observations fall,
    /// interpolated within the bucket; `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0u64;
        for (i, n) in self.counts.iter().enumerate() {
            if *n > 0 && (below + n) as f64 >= rank {
                let low = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
                let high = BUCKETS.get(i).copied().unwrap_or(low * 2.0);
                let within = (rank - below as f64) / *n as f64;
                return Some(low + (high - low) * within.clamp(0.0, 1.0));
            }
            below += n;
        }
        BUCKETS.last().copied()
    }
}

/// One endpoint's (or `other`'s) attempts since the process started.
#[derive(Debug, Clone, Default)]
pub struct EndpointTotals {
    pub outcomes: [u64; 3],
    pub durations: Histogram,
}

/// One minute of the overview.
#[derive(Debug, Clone, Default)]
pub struct Minute {
    /// Unix minute (seconds / 60).
    pub minute: u64,
    pub outcomes: [u64; 3],
    pub receipt: Histogram,
}

#[derive(Default)]
struct Counters {
    endpoints: HashMap<WebhookEndpointId, EndpointTotals>,
    other: EndpointTotals,
    receipt: Histogram,
    minutes: VecDeque<Minute>,
}

type Guards = Arc<Mutex<HashMap<String, Arc<EndpointGuard>>>>;

/// The counters, shared by the delivery worker that feeds them and the
/// `/metrics` page and stats operation that read them.
pub struct DeliveryStats {
    labelled: usize,
    counters: Mutex<Counters>,
    guards: Mutex<Option<Guards>>,
}

impl Default for DeliveryStats {
    fn default() -> Self {
        Self::new(DEFAULT_LABELLED_ENDPOINTS)
    }
}

/// A copy of the counters for one reading.
#[derive(Debug, Clone, Default)]
pub struct DeliverySnapshot {
    /// Endpoints with series of their own.
    pub endpoints: Vec<(WebhookEndpointId, EndpointTotals)>,
    /// Every other endpoint, summed.
    pub other: EndpointTotals,
    /// Commit to 2xx of first attempts, since the process started.
    pub receipt: Histogram,
    /// The last [`WINDOW_MINUTES`] minutes, oldest first, every minute
    /// present (zeros where nothing happened).
    pub minutes: Vec<Minute>,
    /// Each endpoint's breaker, for endpoints this process has sent to.
    pub breakers: Vec<(String, BreakerState)>,
}

impl DeliveryStats {
    /// At most `labelled` endpoints get series of their own.
    pub fn new(labelled: usize) -> Self {
        Self {
            labelled,
            counters: Mutex::default(),
            guards: Mutex::default(),
        }
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The worker's breakers, read (never changed) for each snapshot.
    pub(crate) fn watch_breakers(&self, guards: Guards) {
        *self.guards.lock().unwrap_or_else(|e| e.into_inner()) = Some(guards);
    }

    /// Counts one attempt. `receipt_seconds` is the time from the event's
    /// commit to this 2xx, given for a first attempt that was delivered.
    pub fn record(
        &self,
        endpoint: WebhookEndpointId,
        outcome: AttemptOutcome,
        duration_seconds: f64,
        receipt_seconds: Option<f64>,
        now_ms: u64,
    ) {
        let minute = now_ms / 60_000;
        let mut c = self.counters();
        let labelled = self.labelled;
        let totals = if c.endpoints.contains_key(&endpoint) || c.endpoints.len() < labelled {
            c.endpoints.entry(endpoint).or_default()
        } else {
            &mut c.other
        };
        totals.outcomes[outcome.index()] += 1;
        totals.durations.observe(duration_seconds);
        if let Some(r) = receipt_seconds {
            c.receipt.observe(r);
        }
        let fresh = c.minutes.back().is_none_or(|m| m.minute < minute);
        if fresh {
            c.minutes.push_back(Minute {
                minute,
                ..Minute::default()
            });
            while c.minutes.len() > WINDOW_MINUTES {
                c.minutes.pop_front();
            }
        }
        // A clock step back lands in the newest minute rather than nowhere.
        if let Some(m) = c.minutes.back_mut() {
            m.outcomes[outcome.index()] += 1;
            if let Some(r) = receipt_seconds {
                m.receipt.observe(r);
            }
        }
    }

    pub fn snapshot(&self, now_ms: u64) -> DeliverySnapshot {
        let now_minute = now_ms / 60_000;
        let first = now_minute.saturating_sub(WINDOW_MINUTES as u64 - 1);
        let (endpoints, other, receipt, kept) = {
            let c = self.counters();
            let mut endpoints: Vec<_> = c.endpoints.iter().map(|(id, t)| (*id, t.clone())).collect();
            endpoints.sort_by_key(|(id, _)| *id);
            let kept: Vec<Minute> = c.minutes.iter().filter(|m| m.minute >= first).cloned().collect();
            (endpoints, c.other.clone(), c.receipt.clone(), kept)
        };
        let minutes = (first..=now_minute)
            .map(|minute| {
                kept.iter().find(|m| m.minute == minute).cloned().unwrap_or(Minute {
                    minute,
                    ..Minute::default()
                })
            })
            .collect();
        let guards = self.guards.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut breakers: Vec<(String, BreakerState)> = guards
            .map(|g| {
                let map = g.lock().unwrap_or_else(|e| e.into_inner());
                map.iter().map(|(k, guard)| (k.clone(), guard.state())).collect()
            })
            .unwrap_or_default();
        breakers.sort();
        DeliverySnapshot {
            endpoints,
            other,
            receipt,
            minutes,
            breakers,
        }
    }
}

impl DeliverySnapshot {
    /// Commit to receipt over the window's minutes.
    pub fn window_receipt(&self) -> Histogram {
        let mut h = Histogram::default();
        for m in &self.minutes {
            h.add(&m.receipt);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(n: u128) -> WebhookEndpointId {
        WebhookEndpointId::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn endpoints_past_the_bound_are_summed_as_other() {
        let stats = DeliveryStats::new(2);
        for n in 1..=4 {
            stats.record(endpoint(n), AttemptOutcome::Delivered, 0.001, None, 60_000);
        }
        stats.record(endpoint(1), AttemptOutcome::Failed, 0.001, None, 60_000);
        let s = stats.snapshot(60_000);
        assert_eq!(s.endpoints.len(), 2);
        assert_eq!(s.endpoints[0].1.outcomes, [1, 0, 1]);
        assert_eq!(s.other.outcomes, [2, 0, 0]);
    }

    #[test]
    fn the_window_has_every_minute_and_forgets_older_ones() {
        let stats = DeliveryStats::default();
        // Some day in 2026, in Unix ms.
        let base = 29_400_000 * 60_000;
        stats.record(endpoint(1), AttemptOutcome::Delivered, 0.001, Some(0.004), base);
        stats.record(endpoint(1), AttemptOutcome::Retrying, 0.001, None, base + 30 * 60_000);
        let s = stats.snapshot(base + 30 * 60_000);
        assert_eq!(s.minutes.len(), WINDOW_MINUTES);
        assert_eq!(s.minutes.iter().map(|m| m.outcomes[0]).sum::<u64>(), 1);
        assert_eq!(s.minutes.last().map(|m| m.outcomes[1]), Some(1));
        let later = stats.snapshot(base + 89 * 60_000);
        assert_eq!(later.minutes.iter().map(|m| m.outcomes[1]).sum::<u64>(), 1);
        assert_eq!(later.minutes.iter().map(|m| m.outcomes[0]).sum::<u64>(), 0);
        assert_eq!(later.receipt.count(), 1, "the process totals keep everything");
    }

    #[test]
    fn quantiles_fall_in_the_right_bucket() {
        let mut h = Histogram::default();
        for _ in 0..98 {
            h.observe(0.003);
        }
        h.observe(0.2);
        h.observe(0.2);
        let p50 = h.quantile(0.5).unwrap_or_default();
        assert!(p50 > 0.002 && p50 <= 0.0035, "{p50}");
        let p99 = h.quantile(0.99).unwrap_or_default();
        assert!(p99 > 0.1 && p99 <= 0.25, "{p99}");
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
