//! What a connection pool shows at `/metrics`: its bound, connections in use
//! and idle, callers waiting, and how long they waited (a histogram), so an
//! operator sees a pool that is too small before clients see 503s.

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use crate::error::{StoreError, StoreResult};

/// Upper bounds of the acquire-wait histogram, in seconds.
pub const WAIT_BUCKETS: [f64; 10] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Counters one pool keeps about its callers.
#[derive(Debug)]
pub struct PoolStats {
    name: &'static str,
    max: u32,
    waiting: AtomicI64,
    timeouts: AtomicU64,
    /// Waits per bucket of [`WAIT_BUCKETS`] (not cumulative), and past the last.
    buckets: [AtomicU64; WAIT_BUCKETS.len() + 1],
    wait_micros: AtomicU64,
}

/// A pool as seen at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSnapshot {
    /// Which pool: `database` (PostgreSQL: reads and writes), `reads`
    /// (SQLite's readers; its one writer connection is not pooled).
    pub name: &'static str,
    pub max: u32,
    pub in_use: u64,
    pub idle: u64,
    pub waiting: u64,
    pub timeouts: u64,
    /// Cumulative counts per upper bound, as Prometheus wants them.
    pub wait_buckets: Vec<(f64, u64)>,
    pub wait_count: u64,
    pub wait_seconds: f64,
}

impl PoolStats {
    pub fn new(name: &'static str, max: u32) -> Self {
        Self {
            name,
            max,
            waiting: AtomicI64::new(0),
            timeouts: AtomicU64::new(0),
            buckets: Default::default(),
            wait_micros: AtomicU64::new(0),
        }
    }

    /// Runs `acquire` as a wait for a connection: counted while it waits,
    /// its time recorded, a refusal for lack of connections counted as a
    /// timeout.
    pub async fn timed<T>(&self, acquire: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let started = Instant::now();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let result = acquire.await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.record(started.elapsed().as_secs_f64());
        if let Err(StoreError::Unavailable(_)) = &result {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Records a wait that took no time (a connection was free at once).
    pub fn record_immediate(&self) {
        self.record(0.0);
    }

    fn record(&self, seconds: f64) {
        let bucket = WAIT_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(WAIT_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.wait_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The pool now, given what only the pool itself knows.
    pub fn snapshot(&self, in_use: u64, idle: u64) -> PoolSnapshot {
        let mut cumulative = 0;
        let mut wait_buckets = Vec::with_capacity(WAIT_BUCKETS.len());
        for (bound, count) in WAIT_BUCKETS.iter().zip(&self.buckets) {
            cumulative += count.load(Ordering::Relaxed);
            wait_buckets.push((*bound, cumulative));
        }
        let wait_count = cumulative + self.buckets[WAIT_BUCKETS.len()].load(Ordering::Relaxed);
        PoolSnapshot {
            name: self.name,
            max: self.max,
            in_use,
            idle,
            waiting: self.waiting.load(Ordering::Relaxed).max(0) as u64,
            timeouts: self.timeouts.load(Ordering::Relaxed),
            wait_buckets,
            wait_count,
            wait_seconds: self.wait_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_land_in_buckets() {
        let stats = PoolStats::new("reads", 4);
        stats.record_immediate();
        let _ = stats.timed(async { Ok::<_, StoreError>(()) }).await;
        let refused: StoreResult<()> = stats
            .timed(async { Err(StoreError::Unavailable("timed out".into())) })
            .await;
        assert!(refused.is_err());
        let s = stats.snapshot(1, 3);
        assert_eq!(s.wait_count, 3);
        assert_eq!(s.timeouts, 1);
        assert_eq!(s.wait_buckets.last().map(|b| b.1), Some(3));
        assert_eq!((s.in_use, s.idle, s.waiting, s.max), (1, 3, 0, 4));
    }
}
