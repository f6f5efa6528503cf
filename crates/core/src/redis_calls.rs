//! Redis as this process uses it, for `/metrics`: each link (the read
//! cache's shared tier, the shared rate limits) is one multiplexed
//! connection, so its "pool" is the calls waiting on it, how long they
//! took, and how many the caller gave up on (its timeout) or that failed.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// Upper bounds (seconds) of the call-duration histogram.
pub const BUCKETS: [f64; 10] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

/// One link's counters.
pub struct RedisCalls {
    pub name: &'static str,
    in_flight: AtomicI64,
    ok: AtomicU64,
    failed: AtomicU64,
    abandoned: AtomicU64,
    connections: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len() + 1],
    micros: AtomicU64,
}

impl RedisCalls {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            in_flight: AtomicI64::new(0),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            buckets: [const { AtomicU64::new(0) }; BUCKETS.len() + 1],
            micros: AtomicU64::new(0),
        }
    }

    /// Counts a call from now until the returned guard is told how it
    /// ended, or is dropped unfinished (the caller stopped waiting).
    pub fn start(&'static self) -> Call {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Call {
            link: self,
            started: Instant::now(),
            done: false,
        }
    }

    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RedisSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RedisSnapshot {
            name: self.name,
            in_flight: self.in_flight.load(Ordering::Relaxed).max(0) as u64,
            ok: load(&self.ok),
            failed: load(&self.failed),
            abandoned: load(&self.abandoned),
            connections: load(&self.connections),
            buckets: self.buckets.each_ref().map(load),
            seconds: load(&self.micros) as f64 / 1e6,
        }
    }
}

/// The read cache's shared tier.
pub static CACHE: RedisCalls = RedisCalls::new("cache");
/// The shared rate limits.
pub static RATE_LIMITS: RedisCalls = RedisCalls::new("rate_limits");
/// Every link, for `/metrics`.
pub static LINKS: [&RedisCalls; 2] = [&CACHE, &RATE_LIMITS];

/// One call under way.
pub struct Call {
    link: &'static RedisCalls,
    started: Instant,
    done: bool,
}

impl Call {
    /// The call ended, answered (`ok`) or with an error.
    pub fn finish(mut self, ok: bool) {
        self.done = true;
        let link = self.link;
        let elapsed = self.started.elapsed();
        let i = BUCKETS
            .iter()
            .position(|b| elapsed.as_secs_f64() <= *b)
            .unwrap_or(BUCKETS.len());
        link.buckets[i].fetch_add(1, Ordering::Relaxed);
        link.micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if ok { &link.ok } else { &link.failed }.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.link.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.done {
            self.link.abandoned.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One link's figures at one moment.
#[derive(Debug, Clone)]
pub struct RedisSnapshot {
    pub name: &'static str,
    pub in_flight: u64,
    pub ok: u64,
    pub failed: u64,
    pub abandoned: u64,
    pub connections: u64,
    pub buckets: [u64; BUCKETS.len() + 1],
    pub seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    static LINK: RedisCalls = RedisCalls::new("test");

    #[test]
    fn a_call_dropped_unfinished_counts_as_abandoned() {
        LINK.start().finish(true);
        LINK.start().finish(false);
        let waiting = LINK.start();
        assert_eq!(LINK.snapshot().in_flight, 1);
        drop(waiting);
        let s = LINK.snapshot();
        assert_eq!((s.in_flight, s.ok, s.failed, s.abandoned), (0, 1, 1, 1));
        assert_eq!(s.buckets.iter().sum::<u64>(), 2);
    }
}
