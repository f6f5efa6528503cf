//! Adaptive admission: how many operations may run at once, found from
//! the latency they see, and who goes first when that is not everyone.
//!
//! Every 100 ms the limiter compares each class's recent mean latency with
//! that class's own baseline (the lowest it saw, in ticks that shed
//! nothing, over the last 10 to 20 s; a list is slower than a payment and
//! that is not congestion). Only operations that ran count: a refusal at
//! authentication, permission or rate limit, or a replay, is fast and
//! says nothing. When the worst class runs past `tolerance` times its
//! baseline the limit is cut at once in proportion; otherwise it grows by
//! about half its square root a tick (Vegas-style probing). It is tuned
//! only while pressed (requests were refused, or more than its floor was
//! running): at low load latency says nothing about it, and unpressed it
//! drifts back to where it started. A request is admitted while the
//! operations in flight are below its class's share of the limit (money
//! 100%, single reads 75%, lists 50%), so the least important work is
//! shed first, and a shed request costs a few atomic operations: it
//! answers 503 before anything else runs.
//!
//! Admission is try-acquire, never a queue: axum does not propagate
//! `poll_ready`, and a queue in front of an overloaded database only turns
//! shed requests into late ones.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Class;
use crate::pipeline::Failure;
use crate::pipeline::stats::BUCKETS;

/// The limiter's settings (`SETTLE_ADMISSION*`).
#[derive(Debug, Clone)]
pub struct ConcurrencyOptions {
    /// `SETTLE_ADMISSION=off` admits everything (the counts still show).
    pub enabled: bool,
    /// The limit never goes below this: this many concurrent payments are
    /// always admitted (single reads get 75% of it, lists half).
    pub min_limit: u32,
    pub max_limit: u32,
    pub initial_limit: u32,
    /// How many times its baseline a class's latency may grow before the
    /// limit shrinks.
    pub tolerance: f64,
    /// Shedding for this long without a pause turns on the brownout:
    /// lists, replays and summaries are refused outright until it ends.
    pub brownout_after: Duration,
}

impl Default for ConcurrencyOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            min_limit: 8,
            max_limit: 1024,
            initial_limit: 256,
            tolerance: 2.0,
            brownout_after: Duration::from_secs(2),
        }
    }
}

/// Each class's share of the limit, most important first.
const SHARE: [f64; 3] = [1.0, 0.75, 0.5];

/// How often the limit is tuned.
const TICK: Duration = Duration::from_millis(100);

/// A baseline is the lowest of two windows of this length, so it forgets
/// a faster past within two windows and a slower spell never becomes it.
const BASELINE_WINDOW: Duration = Duration::from_secs(10);

/// Shedding is over after this long without a shed request.
const SHEDDING_QUIET: Duration = Duration::from_secs(1);

/// The brownout is over after this long without a shed request: longer
/// than shedding, so that lists coming back do not start it again at once.
const BROWNOUT_QUIET: Duration = Duration::from_secs(3);

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// More was running than its class's share of the limit.
    Overloaded(Class),
    /// The brownout refuses this class outright.
    Brownout(Class),
}

impl Shed {
    /// The 503 a client sees: its class, why, and when to come back.
    pub fn failure(self) -> Failure {
        let message = match self {
            Shed::Overloaded(class) => format!(
                "Settle is serving more requests than it can answer quickly and did not start this {} request; nothing was done. Retry after the time in Retry-After.",
                class.described()
            ),
            Shed::Brownout(class) => format!(
                "Settle has been overloaded for a while and refuses {} requests until it recovers (brownout), so that payments and single reads stay fast; nothing was done. Retry after the time in Retry-After.",
                class.described()
            ),
        };
        let mut failure = Failure::new(503, "api_error", "overloaded", message);
        failure.retry_after = Some(1);
        failure
    }
}

#[derive(Debug, Default)]
struct ClassCounters {
    in_flight: AtomicU32,
    admitted: AtomicU64,
    shed: AtomicU64,
    browned_out: AtomicU64,
    /// Completions since the last tick, and their total latency.
    samples: AtomicU64,
    sample_micros: AtomicU64,
}

/// The tuning state, touched once per tick.
#[derive(Debug)]
struct Tuning {
    last_tick: Instant,
    /// Smoothed mean latency per class, in microseconds (0: none yet).
    recent: [f64; 3],
    /// The lowest `recent` in the current and the previous window.
    lowest: [[f64; 2]; 3],
    window_started: Instant,
    shedding_since: Option<Instant>,
    last_shed: Option<Instant>,
    shed_at_start: u64,
}

/// The admission limiter of one process.
#[derive(Debug)]
pub struct Admission {
    options: ConcurrencyOptions,
    limit: AtomicU32,
    in_flight: AtomicU32,
    /// The most in flight at once since the last tick.
    peak: AtomicU32,
    shed_since_tick: AtomicBool,
    brownout: AtomicBool,
    classes: [ClassCounters; 3],
    /// How long admitted requests waited between arriving and admission.
    delay_buckets: [AtomicU64; BUCKETS.len() + 1],
    delay_micros: AtomicU64,
    tuning: Mutex<Tuning>,
}

/// One admitted operation; dropping it ends it and reports its latency.
#[must_use]
#[derive(Debug)]
pub struct Permit<'a> {
    admission: &'a Admission,
    class: Class,
    started: Instant,
    sampled: bool,
}

impl Permit<'_> {
    /// Ends the operation without its latency counting for the limit: it
    /// never ran (refused at authentication, permission or rate limit, or
    /// replayed), and a fast refusal would pull the baseline down.
    pub fn unsampled(mut self) {
        self.sampled = false;
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let a = self.admission;
        let counters = &a.classes[self.class as usize];
        counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.sampled {
            // Time first, count second; the tick takes the count first, so
            // a sample it counts always brings its time.
            let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
            counters.sample_micros.fetch_add(micros, Ordering::Relaxed);
            counters.samples.fetch_add(1, Ordering::Relaxed);
        }
        a.maybe_tick(Instant::now());
    }
}

/// What `/metrics` shows of the limiter.
#[derive(Debug, Clone)]
pub struct AdmissionSnapshot {
    pub enabled: bool,
    pub limit: u32,
    pub brownout: bool,
    pub in_flight: [u32; 3],
    pub admitted: [u64; 3],
    pub shed: [u64; 3],
    pub browned_out: [u64; 3],
    pub delay_buckets: [u64; BUCKETS.len() + 1],
    pub delay_seconds: f64,
}

impl Admission {
    pub fn new(options: ConcurrencyOptions) -> Self {
        let now = Instant::now();
        let limit = options
            .initial_limit
            .clamp(options.min_limit, options.max_limit.max(options.min_limit));
        Self {
            limit: AtomicU32::new(limit),
            in_flight: AtomicU32::new(0),
            peak: AtomicU32::new(0),
            shed_since_tick: AtomicBool::new(false),
            brownout: AtomicBool::new(false),
            classes: Default::default(),
            delay_buckets: Default::default(),
            delay_micros: AtomicU64::new(0),
            tuning: Mutex::new(Tuning {
                last_tick: now,
                recent: [0.0; 3],
                lowest: [[f64::INFINITY; 2]; 3],
                window_started: now,
                shedding_since: None,
                last_shed: None,
                shed_at_start: 0,
            }),
            options,
        }
    }

    /// Admits one operation of `class` that arrived at `received`, or says
    /// why not. Never waits.
    pub fn try_admit(&self, class: Class, received: Instant) -> Result<Permit<'_>, Shed> {
        let now = Instant::now();
        self.maybe_tick(now);
        let counters = &self.classes[class as usize];
        if self.options.enabled {
            if class == Class::Bulk && self.brownout.load(Ordering::Relaxed) {
                counters.browned_out.fetch_add(1, Ordering::Relaxed);
                return Err(Shed::Brownout(class));
            }
            let allowed = self.allowed(class);
            let running = self.in_flight.fetch_add(1, Ordering::Relaxed);
            if running >= allowed {
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
                counters.shed.fetch_add(1, Ordering::Relaxed);
                self.shed_since_tick.store(true, Ordering::Relaxed);
                return Err(Shed::Overloaded(class));
            }
            self.peak.fetch_max(running + 1, Ordering::Relaxed);
        } else {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        counters.in_flight.fetch_add(1, Ordering::Relaxed);
        counters.admitted.fetch_add(1, Ordering::Relaxed);
        self.record_delay(now.saturating_duration_since(received));
        Ok(Permit {
            admission: self,
            class,
            started: now,
            sampled: true,
        })
    }

    /// How many may run at once when a request of `class` asks.
    fn allowed(&self, class: Class) -> u32 {
        let limit = f64::from(self.limit.load(Ordering::Relaxed));
        ((limit * SHARE[class as usize]).ceil() as u32).max(1)
    }

    fn record_delay(&self, delay: Duration) {
        let seconds = delay.as_secs_f64();
        let bucket = BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len());
        self.delay_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.delay_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn maybe_tick(&self, now: Instant) {
        let mut tuning = match self.tuning.try_lock() {
            Ok(tuning) => tuning,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        if now.saturating_duration_since(tuning.last_tick) >= TICK {
            tuning.last_tick = now;
            self.tune(&mut tuning, now);
        }
    }

    fn tune(&self, t: &mut Tuning, now: Instant) {
        if now.saturating_duration_since(t.window_started) >= BASELINE_WINDOW {
            t.window_started = now;
            for lowest in &mut t.lowest {
                // A window with no baseline (it shed throughout) keeps the
                // one before.
                let kept = if lowest[0].is_finite() { lowest[0] } else { lowest[1] };
                *lowest = [f64::INFINITY, kept];
            }
        }
        let shed = self.shed_since_tick.swap(false, Ordering::Relaxed);
        let mut worst: Option<f64> = None;
        for (i, counters) in self.classes.iter().enumerate() {
            let count = counters.samples.swap(0, Ordering::Relaxed);
            let micros = counters.sample_micros.swap(0, Ordering::Relaxed);
            // A sample whose time landed before its count is carried to
            // the next tick rather than lowering this one's mean.
            if count == 0 {
                continue;
            }
            let mean = (micros as f64 / count as f64).max(1.0);
            t.recent[i] = if t.recent[i] == 0.0 {
                mean
            } else {
                0.5 * t.recent[i] + 0.5 * mean
            };
            // A tick of one or two requests is noise, not a baseline; nor
            // is a tick that shed: under a sustained surge the limiter
            // holds latency at the tolerance, and that must not become
            // the baseline it is measured against.
            if count >= 3 && !shed {
                t.lowest[i][0] = t.lowest[i][0].min(t.recent[i]);
            }
            let baseline = t.lowest[i][0].min(t.lowest[i][1]);
            if baseline.is_finite() {
                let ratio = t.recent[i] / baseline;
                worst = Some(worst.map_or(ratio, |w: f64| w.max(ratio)));
            }
        }
        let peak = self
            .peak
            .swap(self.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
        let limit = f64::from(self.limit.load(Ordering::Relaxed));
        // The limit is only tuned while more than its floor is running (or
        // requests were refused): at low load latency says nothing about
        // it, and a limit shrunk by a slow spell there would shed the next
        // burst for nothing.
        let pressed = shed || peak > self.options.min_limit;
        let (low, high) = (
            self.options.min_limit,
            self.options.max_limit.max(self.options.min_limit),
        );
        if let Some(worst) = worst.filter(|_| pressed) {
            let gradient = (self.options.tolerance / worst).clamp(0.2, 1.0);
            let target = limit * gradient + limit.sqrt();
            // Down at once (a surge must not run on the old limit for a
            // second), up smoothed.
            let next = if target < limit {
                target
            } else {
                0.5 * limit + 0.5 * target
            }
            .round();
            self.limit.store((next as u32).clamp(low, high), Ordering::Relaxed);
        } else if !pressed && limit < f64::from(self.options.initial_limit) {
            // Unpressed after a surge shrank it: back towards where it
            // started, 5% a tick (from the floor in about 7 s), so that the
            // next burst is not met by the surge's limit.
            let next = (limit * 1.05)
                .max(limit + 1.0)
                .min(f64::from(self.options.initial_limit));
            self.limit.store((next as u32).clamp(low, high), Ordering::Relaxed);
        }
        self.follow_shedding(t, shed, now);
    }

    /// Logs when shedding starts and stops, and turns the brownout on
    /// after sustained shedding and off after a quiet spell.
    fn follow_shedding(&self, t: &mut Tuning, shed: bool, now: Instant) {
        let total_shed = || self.classes.iter().map(|c| c.shed.load(Ordering::Relaxed)).sum::<u64>();
        if shed {
            t.last_shed = Some(now);
            match t.shedding_since {
                None => {
                    t.shedding_since = Some(now);
                    t.shed_at_start = total_shed();
                    tracing::warn!(
                        limit = self.limit.load(Ordering::Relaxed),
                        in_flight = self.in_flight.load(Ordering::Relaxed),
                        "admission: overloaded, shedding requests (lists first, then single reads, money last)"
                    );
                }
                Some(since) if now.duration_since(since) >= self.options.brownout_after => {
                    if !self.brownout.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "admission: brownout on; lists, replays and summaries are refused until the overload ends"
                        );
                    }
                }
                Some(_) => {}
            }
            return;
        }
        let quiet = t
            .last_shed
            .map_or(Duration::MAX, |last| now.saturating_duration_since(last));
        if t.shedding_since.is_some() && quiet >= SHEDDING_QUIET {
            t.shedding_since = None;
            tracing::info!(
                shed = total_shed().saturating_sub(t.shed_at_start),
                limit = self.limit.load(Ordering::Relaxed),
                "admission: shedding stopped"
            );
        }
        if quiet >= BROWNOUT_QUIET && self.brownout.swap(false, Ordering::Relaxed) {
            tracing::info!("admission: brownout off; every class is admitted again");
        }
    }

    /// The limit now.
    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> AdmissionSnapshot {
        let each = |f: fn(&ClassCounters) -> u64| -> [u64; 3] { [0, 1, 2].map(|i| f(&self.classes[i])) };
        AdmissionSnapshot {
            enabled: self.options.enabled,
            limit: self.limit(),
            brownout: self.brownout.load(Ordering::Relaxed),
            in_flight: [0, 1, 2].map(|i| self.classes[i].in_flight.load(Ordering::Relaxed)),
            admitted: each(|c| c.admitted.load(Ordering::Relaxed)),
            shed: each(|c| c.shed.load(Ordering::Relaxed)),
            browned_out: each(|c| c.browned_out.load(Ordering::Relaxed)),
            delay_buckets: self.delay_buckets.each_ref().map(|n| n.load(Ordering::Relaxed)),
            delay_seconds: self.delay_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    /// Runs one tuning step now, as if `TICK` had passed (tests).
    #[cfg(test)]
    pub(super) fn tick_now(&self) {
        let mut tuning = self.tuning.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        tuning.last_tick = now;
        self.tune(&mut tuning, now);
    }

    /// Says requests were refused since the last tick (tests).
    #[cfg(test)]
    pub(super) fn note_demand(&self) {
        self.shed_since_tick.store(true, Ordering::Relaxed);
    }

    /// Feeds a completion of `class` that took `latency` (tests).
    #[cfg(test)]
    pub(super) fn sample(&self, class: Class, latency: Duration) {
        let counters = &self.classes[class as usize];
        counters.samples.fetch_add(1, Ordering::Relaxed);
        counters
            .sample_micros
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }
}
