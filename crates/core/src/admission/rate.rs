//! Rate limits per API key and class, by GCRA (the generic cell rate
//! algorithm): one number per bucket, the time at which the bucket would
//! be full again, so a check is one read and one write with no timer.
//!
//! With a shared store (Redis, when `REDIS_URL` is set) every process
//! counts against the same buckets, timed by the store's own clock. When
//! the store fails, each process falls back to its own buckets at the
//! limit divided by the number of live processes (counted by their
//! heartbeats in the shared store; the last count known when it is down),
//! so the cluster as a whole still holds about the configured rate.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use settle_domain::ids::ApiKeyId;

use super::{Class, retry_seconds};
use crate::cache::shared::TierError;
use crate::pipeline::Failure;

/// `count` requests per `per`, with a burst of up to `count` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    pub const fn per_second(count: u32) -> Self {
        Self {
            count,
            per: Duration::from_secs(1),
        }
    }

    /// `100/s`, `6000/m`, `50000/h`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a rate such as 100/s, 6000/m or 50000/h");
        let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(format!("`{text}`: a rate must allow at least one request"));
        }
        Ok(Self { count, per })
    }

    /// The same window with `count` shared among `parts` processes.
    fn divided(self, parts: u32) -> Self {
        Self {
            count: (self.count / parts.max(1)).max(1),
            per: self.per,
        }
    }

    fn window_micros(self) -> u64 {
        u64::try_from(self.per.as_micros()).unwrap_or(u64::MAX).max(1)
    }

    /// The spacing of requests at exactly the rate.
    fn interval_micros(self) -> u64 {
        (self.window_micros() / u64::from(self.count.max(1))).max(1)
    }

    /// The spacing of requests and the window, in microseconds: what
    /// GCRA works in, here and in a shared store's script.
    pub fn spacing_micros(self) -> (u64, u64) {
        (self.interval_micros(), self.window_micros())
    }

    fn unit(self) -> &'static str {
        match self.per.as_secs() {
            60 => "minute",
            3600 => "hour",
            _ => "second",
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            60 => "m",
            3600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// One check's decision with what the `RateLimit-*` headers tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateVerdict {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// Until a refused request would be allowed (zero when allowed).
    pub retry_after: Duration,
}

impl RateVerdict {
    /// The `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
    /// header values (reset in whole seconds, rounded up).
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            (
                "ratelimit-reset",
                (self.reset.as_secs() + u64::from(self.reset.subsec_nanos() > 0)).to_string(),
            ),
        ]
    }
}

/// GCRA on a bucket whose state is `tat` (the theoretical arrival time, in
/// microseconds on any clock that `now` shares): the decision and the new
/// state. The Redis script does the same arithmetic.
pub fn gcra(tat: u64, now: u64, rate: Rate) -> (RateVerdict, u64) {
    let interval = rate.interval_micros();
    let window = rate.window_micros();
    let tat = tat.max(now);
    let next = tat + interval;
    if next - now > window {
        let verdict = RateVerdict {
            allowed: false,
            limit: rate.count,
            remaining: 0,
            reset: Duration::from_micros(tat - now),
            retry_after: Duration::from_micros(next - window - now),
        };
        return (verdict, tat);
    }
    let verdict = RateVerdict {
        allowed: true,
        limit: rate.count,
        remaining: u32::try_from((window - (next - now)) / interval).unwrap_or(u32::MAX),
        reset: Duration::from_micros(next - now),
        retry_after: Duration::ZERO,
    };
    (verdict, next)
}

/// Buckets every process shares, behind a trait so core knows nothing of
/// Redis. Each call is one round trip.
#[async_trait]
pub trait SharedRates: Send + Sync + std::fmt::Debug {
    /// Takes one request from `bucket` at `rate`, on the store's clock.
    async fn check(&self, bucket: &str, rate: Rate) -> Result<RateVerdict, TierError>;

    /// Says `process` is alive for `ttl`; answers how many processes are.
    async fn heartbeat(&self, process: &str, ttl: Duration) -> Result<u32, TierError>;
}

/// The limits (`SETTLE_RATE_LIMIT_*`). Defaults are high: they stop a
/// runaway client, not a busy one, and the repository's benchmarks run
/// under them uncapped.
#[derive(Debug, Clone)]
pub struct RateOptions {
    /// `SETTLE_RATE_LIMITS=off` turns every limit off.
    pub enabled: bool,
    pub money: Rate,
    pub standard: Rate,
    pub bulk: Rate,
    /// Buckets shared by every process (Redis), if configured.
    pub shared: Option<Arc<dyn SharedRates>>,
    /// Each call to the shared store waits at most this long, then the
    /// process decides alone.
    pub shared_timeout: Duration,
    /// After a shared call failed, how long the process decides alone
    /// before it tries the store again.
    pub shared_cooldown: Duration,
    /// How often the process says it is alive; it counts as dead after
    /// three missed beats.
    pub heartbeat_every: Duration,
}

impl Default for RateOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            money: Rate::per_second(10_000),
            standard: Rate::per_second(20_000),
            bulk: Rate::per_second(5_000),
            shared: None,
            shared_timeout: Duration::from_millis(50),
            shared_cooldown: Duration::from_secs(1),
            heartbeat_every: Duration::from_secs(1),
        }
    }
}

impl RateOptions {
    fn rate(&self, class: Class) -> Rate {
        match class {
            Class::Money => self.money,
            Class::Standard => self.standard,
            Class::Bulk => self.bulk,
        }
    }
}

/// Where checks were decided, for `/metrics`.
#[derive(Debug, Default)]
pub struct RateStats {
    /// Requests refused with 429, per class.
    pub limited: [AtomicU64; 3],
    pub shared_checks: AtomicU64,
    pub local_checks: AtomicU64,
    /// Checks decided locally because the shared store failed.
    pub fallback_checks: AtomicU64,
}

/// Local buckets kept before the full ones are swept.
const LOCAL_BUCKETS_SWEPT_AT: usize = 100_000;

/// The rate limiter of one process.
#[derive(Debug)]
pub struct RateLimiter {
    options: RateOptions,
    /// Theoretical arrival times of this process's own buckets.
    local: Mutex<HashMap<(ApiKeyId, Class), u64>>,
    started: Instant,
    /// The shared store is not asked before this (it just failed).
    shared_down_until: Mutex<Option<Instant>>,
    shared_down: AtomicBool,
    /// A request is finding out whether the shared store is back.
    probing: AtomicBool,
    /// Live processes as last counted (1 until a count is known).
    live: AtomicU32,
    process: String,
    pub stats: RateStats,
}

impl RateLimiter {
    pub fn new(options: RateOptions) -> Self {
        use rand::Rng;
        Self {
            options,
            local: Mutex::default(),
            started: Instant::now(),
            shared_down_until: Mutex::new(None),
            shared_down: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            live: AtomicU32::new(1),
            process: format!("{:016x}", rand::rng().random::<u64>()),
            stats: RateStats::default(),
        }
    }

    pub fn options(&self) -> &RateOptions {
        &self.options
    }

    /// Live processes as last counted by heartbeats.
    pub fn live_processes(&self) -> u32 {
        self.live.load(Ordering::Relaxed)
    }

    /// Whether checks go to this process's own buckets because the shared
    /// store failed.
    pub fn falling_back(&self) -> bool {
        self.shared_down.load(Ordering::Relaxed)
    }

    /// Takes one request of `class` from `key`'s bucket: `Ok` with what the
    /// headers tell, or the 429 refusal. `None` when limits are off.
    pub async fn check(&self, key: ApiKeyId, class: Class) -> Option<Result<RateVerdict, Failure>> {
        if !self.options.enabled {
            return None;
        }
        let rate = self.options.rate(class);
        let verdict = self.decide(key, class, rate).await;
        note(verdict);
        if verdict.allowed {
            return Some(Ok(verdict));
        }
        self.stats.limited[class as usize].fetch_add(1, Ordering::Relaxed);
        let mut failure = Failure::new(
            429,
            "rate_limit_error",
            "rate_limited",
            format!(
                "This API key sent more {} requests than its limit of {} per {}; retry after the time in Retry-After.",
                class.described(),
                verdict.limit,
                rate.unit()
            ),
        );
        failure.retry_after = Some(retry_seconds(verdict.retry_after));
        Some(Err(failure))
    }

    async fn decide(&self, key: ApiKeyId, class: Class, rate: Rate) -> RateVerdict {
        let Some(shared) = self.options.shared.as_ref() else {
            self.stats.local_checks.fetch_add(1, Ordering::Relaxed);
            return self.decide_locally(key, class, rate);
        };
        let down_until = *self.shared_down_until.lock().unwrap_or_else(|e| e.into_inner());
        if down_until.is_some_and(|until| Instant::now() < until) {
            return self.fall_back(key, class, rate, None);
        }
        // After a failure, one request at a time finds out whether the
        // store is back; the others keep deciding alone meanwhile.
        let _probe = match down_until {
            Some(_) if self.probing.swap(true, Ordering::Relaxed) => return self.fall_back(key, class, rate, None),
            Some(_) => Some(Probe(&self.probing)),
            None => None,
        };
        let bucket = format!("{}:{}", key.uuid().simple(), class.name());
        match tokio::time::timeout(self.options.shared_timeout, shared.check(&bucket, rate)).await {
            Ok(Ok(verdict)) => {
                *self.shared_down_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
                if self.shared_down.swap(false, Ordering::Relaxed) {
                    tracing::info!("rate limits: the shared store answers again; limits are shared across processes");
                }
                self.stats.shared_checks.fetch_add(1, Ordering::Relaxed);
                verdict
            }
            Ok(Err(e)) => self.fall_back(key, class, rate, Some(&e.to_string())),
            Err(_) => self.fall_back(key, class, rate, Some("no answer in time")),
        }
    }

    /// Decides in this process's own buckets at its share of `rate`;
    /// `failed` says why the shared store just failed (and starts its
    /// cooldown), `None` when it is still cooling down.
    fn fall_back(&self, key: ApiKeyId, class: Class, rate: Rate, failed: Option<&str>) -> RateVerdict {
        let live = self.live_processes();
        if let Some(why) = failed {
            *self.shared_down_until.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Instant::now() + self.options.shared_cooldown);
            if !self.shared_down.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    error = why,
                    live_processes = live,
                    "rate limits: the shared store failed; each process now allows its share of each limit alone"
                );
            }
        }
        self.stats.fallback_checks.fetch_add(1, Ordering::Relaxed);
        self.decide_locally(key, class, rate.divided(live))
    }

    fn decide_locally(&self, key: ApiKeyId, class: Class, rate: Rate) -> RateVerdict {
        let now = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut buckets = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= LOCAL_BUCKETS_SWEPT_AT {
            buckets.retain(|_, tat| *tat > now);
        }
        let tat = buckets.get(&(key, class)).copied().unwrap_or(now);
        let (verdict, tat) = gcra(tat, now, rate);
        buckets.insert((key, class), tat);
        verdict
    }

    /// Says this process is alive in the shared store and learns how many
    /// are, until the process ends. Without a shared store there is
    /// nothing to count and this returns at once.
    pub async fn run_heartbeats(self: Arc<Self>) {
        let Some(shared) = self.options.shared.clone() else {
            return;
        };
        let every = self.options.heartbeat_every.max(Duration::from_millis(10));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let beat = shared.heartbeat(&self.process, every * 3);
            // The last count stays when the store does not answer.
            if let Ok(Ok(live)) = tokio::time::timeout(every, beat).await {
                self.live.store(live.max(1), Ordering::Relaxed);
            }
        }
    }
}

/// The one request finding out whether the shared store is back; ends
/// however that request ends (a client may hang up mid-call).
struct Probe<'a>(&'a AtomicBool);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// What one request noted for its response headers.
#[derive(Debug, Default)]
pub struct Noted {
    /// The tightest rate verdict, for `RateLimit-*`.
    pub verdict: Option<RateVerdict>,
    /// Set by a face whose client asked to see its key's permissions (the
    /// dashboard, to offer only the controls the key may use).
    pub want_permissions: bool,
    /// The authenticated key's permissions, when wanted.
    pub permissions: Option<Vec<String>>,
}

/// Where one request's notes are kept for its response headers.
pub type VerdictSlot = Arc<Mutex<Noted>>;

tokio::task_local! {
    static VERDICT: VerdictSlot;
}

/// Runs `work` noting in `slot` the tightest verdict of the rate checks
/// it makes (a GraphQL request may run several operations), so the face
/// can send the `RateLimit-*` headers.
pub async fn note_rate_verdicts<F: Future>(slot: VerdictSlot, work: F) -> F::Output {
    VERDICT.scope(slot, work).await
}

fn note(verdict: RateVerdict) {
    let _ = VERDICT.try_with(|slot| {
        let mut noted = slot.lock().unwrap_or_else(|e| e.into_inner());
        let tighter = noted
            .verdict
            .is_none_or(|n| !verdict.allowed || (n.allowed && verdict.remaining < n.remaining));
        if tighter {
            noted.verdict = Some(verdict);
        }
    });
}

/// Notes the authenticated key's permissions, if the face wants them.
pub fn note_permissions(permissions: &[settle_domain::rbac::Permission]) {
    let _ = VERDICT.try_with(|slot| {
        let mut noted = slot.lock().unwrap_or_else(|e| e.into_inner());
        if noted.want_permissions && noted.permissions.is_none() {
            noted.permissions = Some(permissions.iter().map(ToString::to_string).collect());
        }
    });
}
