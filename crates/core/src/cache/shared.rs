//! Tier 2: a cache shared by every process (Redis, when `REDIS_URL` is
//! set), behind a trait so the service layer knows nothing of Redis.
//!
//! It may fail at any moment and must never fail a request: every call has
//! a timeout, and a breaker stops calling it for a while after failures
//! (reads then go to the database, counted as skipped). An invalidation it
//! could not take leaves it possibly holding old states, so the process
//! remembers that and, before using the tier again, moves it to a new
//! epoch: every entry written before is then ignored by every process.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;
use uuid::Uuid;

/// What a shared tier's call could not do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("shared cache: {0}")]
pub struct TierError(pub String);

/// What looking an id up in the shared tier found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The entry, as [`encode`] wrote it.
    Found(Bytes),
    /// Nothing. `generation` is the id's invalidation count, to hand back
    /// to [`SharedTier::fill`]; `leased`: this caller took the lease and is
    /// the one expected to read the database and fill.
    Missing { generation: String, leased: bool },
}

/// The shared tier's operations; each one round trip.
#[async_trait]
pub trait SharedTier: Send + Sync + std::fmt::Debug {
    /// The entry of `id`; when there is none, takes the lease on it (for
    /// `lease`) if nobody holds it.
    async fn lookup(&self, id: Uuid, lease: Duration) -> Result<Lookup, TierError>;

    /// Stores `value` for `ttl` unless `id` was invalidated since
    /// `generation` was read (or the epoch moved), and drops the lease.
    /// Returns whether it was stored.
    async fn fill(&self, id: Uuid, generation: &str, value: Bytes, ttl: Duration) -> Result<bool, TierError>;

    /// Drops the entries of `ids` and counts an invalidation of each, so a
    /// fill that read before it is refused.
    async fn invalidate(&self, ids: &[Uuid]) -> Result<(), TierError>;

    /// Moves to a new epoch: every entry written before is ignored.
    async fn new_epoch(&self) -> Result<(), TierError>;

    /// Calls waiting for an answer now (`/metrics`).
    fn in_flight(&self) -> u64 {
        0
    }
}

/// The tier's settings (`SETTLE_REDIS_*`).
#[derive(Debug, Clone)]
pub struct SharedOptions {
    /// Each call's bound (`SETTLE_REDIS_TIMEOUT_MS`).
    pub timeout: Duration,
    /// Consecutive failures that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before one call tries again.
    pub breaker_cooldown: Duration,
    /// How long one process's read holds the lease on an id; others wait
    /// for its fill at most this long, then read the database themselves.
    pub lease: Duration,
}

impl Default for SharedOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(50),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(1),
            lease: Duration::from_millis(250),
        }
    }
}

/// Counters for `/metrics` (tier `redis`).
#[derive(Debug, Default)]
pub struct SharedStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub fills: AtomicU64,
    pub fills_refused: AtomicU64,
    pub lease_waits: AtomicU64,
    pub invalidations: AtomicU64,
    pub errors: AtomicU64,
    /// Calls not made because the breaker was open.
    pub skipped: AtomicU64,
    pub epochs: AtomicU64,
}

/// The breaker's states, as `/metrics` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

/// The shared tier with its timeout, breaker and epoch bookkeeping.
#[derive(Debug)]
pub struct Shared {
    tier: Box<dyn SharedTier>,
    pub(super) options: SharedOptions,
    pub(super) stats: SharedStats,
    failures: AtomicU64,
    state: AtomicU8,
    open_until: Mutex<Option<Instant>>,
    /// An invalidation failed or was skipped: the tier may hold old states.
    dirty: AtomicBool,
}

impl Shared {
    pub fn new(tier: Box<dyn SharedTier>, options: SharedOptions) -> Self {
        Self {
            tier,
            options,
            stats: SharedStats::default(),
            failures: AtomicU64::new(0),
            state: AtomicU8::new(BreakerState::Closed as u8),
            open_until: Mutex::new(None),
            dirty: AtomicBool::new(false),
        }
    }

    pub fn stats(&self) -> &SharedStats {
        &self.stats
    }

    /// Calls waiting for the tier now.
    pub fn in_flight(&self) -> u64 {
        self.tier.in_flight()
    }

    pub fn breaker(&self) -> BreakerState {
        match self.state.load(Ordering::Relaxed) {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    /// Whether a call may be made now: closed, or open past its cooldown
    /// (then this one call is the trial).
    fn allow(&self) -> bool {
        match self.breaker() {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => false,
            BreakerState::Open => {
                let mut until = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
                if until.is_some_and(|t| Instant::now() >= t) {
                    *until = None;
                    self.state.store(BreakerState::HalfOpen as u8, Ordering::Relaxed);
                    true
                } else {
                    false
                }
            }
        }
    }

    fn succeeded(&self) {
        self.failures.store(0, Ordering::Relaxed);
        if self.breaker() != BreakerState::Closed {
            tracing::info!("the shared cache answers again; its breaker closes");
        }
        self.state.store(BreakerState::Closed as u8, Ordering::Relaxed);
    }

    fn failed(&self, error: &TierError) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let trial = self.breaker() == BreakerState::HalfOpen;
        if trial || failures >= u64::from(self.options.breaker_failures) {
            if self.breaker() == BreakerState::Closed {
                tracing::warn!(%error, "the shared cache fails; its breaker opens and reads go to the database");
            }
            *self.open_until.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Instant::now() + self.options.breaker_cooldown);
            self.state.store(BreakerState::Open as u8, Ordering::Relaxed);
        }
    }

    /// Runs `call` under the breaker and the timeout; `None` when it was
    /// skipped or failed. A tier that may hold old states is moved to a
    /// new epoch first.
    async fn call<T>(&self, call: impl std::future::Future<Output = Result<T, TierError>>) -> Option<T> {
        if !self.allow() {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self.dirty.load(Ordering::SeqCst) {
            // Not a success for the breaker: only the call itself says
            // whether a half-open tier is back.
            if let Err(e) = self.timed(self.tier.new_epoch()).await {
                self.failed(&e);
                return None;
            }
            self.dirty.store(false, Ordering::SeqCst);
            self.stats.epochs.fetch_add(1, Ordering::Relaxed);
        }
        match self.timed(call).await {
            Ok(value) => {
                self.succeeded();
                Some(value)
            }
            Err(e) => {
                self.failed(&e);
                None
            }
        }
    }

    /// `call` within the tier's timeout; running out of it is an error.
    async fn timed<T>(&self, call: impl std::future::Future<Output = Result<T, TierError>>) -> Result<T, TierError> {
        tokio::time::timeout(self.options.timeout, call)
            .await
            .unwrap_or_else(|_| Err(TierError("timed out".into())))
    }

    pub(super) async fn lookup(&self, id: Uuid) -> Option<Lookup> {
        self.call(self.tier.lookup(id, self.options.lease)).await
    }

    pub(super) async fn fill(&self, id: Uuid, generation: &str, value: Bytes, ttl: Duration) {
        match self.call(self.tier.fill(id, generation, value, ttl)).await {
            Some(true) => self.stats.fills.fetch_add(1, Ordering::Relaxed),
            Some(false) => self.stats.fills_refused.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
    }

    pub(super) async fn invalidate(&self, ids: &[Uuid]) {
        match self.call(self.tier.invalidate(ids)).await {
            Some(()) => {
                self.stats.invalidations.fetch_add(ids.len() as u64, Ordering::Relaxed);
            }
            // Skipped or failed: the tier may keep these states. Whoever
            // next reaches it moves it to a new epoch first.
            None => self.dirty.store(true, Ordering::SeqCst),
        }
    }

    /// Changes may have gone unheard: the tier may hold old states.
    pub(super) fn flush(&self) {
        self.dirty.store(true, Ordering::SeqCst);
    }
}

/// An entry as the shared tier stores it: its kind, its version and its
/// JSON, one line each for the first two.
pub fn encode(kind: &str, version: Option<i64>, json: &[u8]) -> Bytes {
    let version = version.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let mut out = Vec::with_capacity(kind.len() + version.len() + json.len() + 2);
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(version.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(json);
    Bytes::from(out)
}

/// [`encode`]'s inverse; `None` for anything else (treated as a miss).
pub fn decode(value: &Bytes) -> Option<(String, Option<i64>, Bytes)> {
    let first = value.iter().position(|b| *b == b'\n')?;
    let rest = &value[first + 1..];
    let second = rest.iter().position(|b| *b == b'\n')?;
    let kind = std::str::from_utf8(&value[..first]).ok()?.to_owned();
    let version = match std::str::from_utf8(&rest[..second]).ok()? {
        "-" => None,
        v => Some(v.parse().ok()?),
    };
    Some((kind, version, value.slice(first + 1 + second + 1..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let value = encode("payment", Some(3), b"{\"a\":1}");
        let (kind, version, json) = decode(&value).unwrap();
        assert_eq!(
            (kind.as_str(), version, &json[..]),
            ("payment", Some(3), &b"{\"a\":1}"[..])
        );
        let value = encode("event", None, b"{}");
        assert_eq!(decode(&value).unwrap().1, None);
        assert!(decode(&Bytes::from_static(b"garbage")).is_none());
    }

    #[derive(Debug)]
    struct Down;

    #[async_trait]
    impl SharedTier for Down {
        async fn lookup(&self, _: Uuid, _: Duration) -> Result<Lookup, TierError> {
            Err(TierError("down".into()))
        }
        async fn fill(&self, _: Uuid, _: &str, _: Bytes, _: Duration) -> Result<bool, TierError> {
            Err(TierError("down".into()))
        }
        async fn invalidate(&self, _: &[Uuid]) -> Result<(), TierError> {
            Err(TierError("down".into()))
        }
        async fn new_epoch(&self) -> Result<(), TierError> {
            Err(TierError("down".into()))
        }
    }

    #[tokio::test]
    async fn the_breaker_opens_and_tries_again_after_its_cooldown() {
        let shared = Shared::new(
            Box::new(Down),
            SharedOptions {
                breaker_cooldown: Duration::from_millis(20),
                ..SharedOptions::default()
            },
        );
        for _ in 0..3 {
            assert!(shared.lookup(Uuid::nil()).await.is_none());
        }
        assert_eq!(shared.breaker(), BreakerState::Open);
        assert!(shared.lookup(Uuid::nil()).await.is_none());
        assert_eq!(shared.stats.skipped.load(Ordering::Relaxed), 1);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(shared.lookup(Uuid::nil()).await.is_none());
        assert_eq!(shared.stats.errors.load(Ordering::Relaxed), 4, "one trial call");
        assert_eq!(shared.breaker(), BreakerState::Open);
        // An invalidation it could not take makes the next use start an epoch.
        shared.invalidate(&[Uuid::nil()]).await;
        assert!(shared.dirty.load(Ordering::SeqCst));
    }
}
