//! Per-endpoint protection for webhook deliveries. Only a receiver that
//! cannot be reached (a timeout, a refused or reset connection, a failed
//! TLS handshake, a name that does not resolve) is slowed or paused. One
//! that answers, even 500 at once, is retried on its schedule and held
//! back no further: an answered error costs one quick request and says
//! nothing about the receiver's capacity, and a breaker counting such
//! answers starves a receiver that fails at random (five 500s in a row
//! come every ~60 attempts at a 50% error rate).
//!
//! Two mechanisms, both fed by transport failures only:
//! - a breaker on the failure *rate* over a sliding time window, opening
//!   only once the window holds a minimum of requests, so scattered
//!   failures never open it; after its cooldown one trial request decides
//!   (half-open);
//! - concurrency that adapts (AIMD, as TCP does): it starts low, grows by
//!   one per round of fast answers (no slower than twice the endpoint's
//!   best recent answer, plus a little) up to the configured cap, and is
//!   halved on a transport failure, once per episode. A receiver that
//!   slows down as it gets more requests stops the growth, as in TCP
//!   Vegas, before it fails.
//!
//! Time is passed in (`now`), so the logic is tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The breaker's tunables.
#[derive(Debug, Clone, Copy)]
pub struct GuardOptions {
    /// Transport failures are counted over this sliding window.
    pub window: Duration,
    /// The breaker never opens on fewer requests than this in the window.
    pub min_requests: u32,
    /// Share of the window's requests, in percent, failing in transport at
    /// or above which the breaker opens.
    pub failure_percent: u32,
    /// How long the breaker stays open before a trial request.
    pub cooldown: Duration,
}

impl Default for GuardOptions {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(30),
            min_requests: 10,
            failure_percent: 50,
            cooldown: Duration::from_secs(60),
        }
    }
}

/// How an attempt ended, as far as the endpoint's health goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver sent a status line, whatever its code.
    Answered,
    /// No answer: timeout, connection refused or reset, TLS, DNS.
    Unreachable,
}

/// What the endpoint may have in flight now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Breaker closed: up to this many requests.
    Send(usize),
    /// Breaker half-open: this one trial request (the caller must send it
    /// or call [`EndpointGuard::abandon_trial`]).
    Trial,
    /// Breaker open, or a trial already out: none.
    Wait,
}

/// The window is kept as this many buckets of `window / BUCKETS` each, so
/// memory stays constant whatever the request rate; the window's edge is
/// accurate to one bucket.
const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    requests: u32,
    failures: u32,
}

#[derive(Debug)]
struct Window {
    origin: Instant,
    span: Duration,
    buckets: [Bucket; BUCKETS],
}

impl Window {
    fn new(window: Duration, origin: Instant) -> Self {
        Self {
            origin,
            span: (window / BUCKETS as u32).max(Duration::from_millis(1)),
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since / self.span.as_nanos()).unwrap_or(u64::MAX)
    }

    fn record(&mut self, now: Instant, failed: bool) {
        let epoch = self.epoch(now);
        let b = &mut self.buckets[(epoch % BUCKETS as u64) as usize];
        if b.epoch != epoch {
            *b = Bucket {
                epoch,
                ..Bucket::default()
            };
        }
        b.requests = b.requests.saturating_add(1);
        b.failures = b.failures.saturating_add(u32::from(failed));
    }

    /// Requests and transport failures in the window ending at `now`.
    fn totals(&self, now: Instant) -> (u32, u32) {
        let epoch = self.epoch(now);
        self.buckets
            .iter()
            .filter(|b| b.epoch <= epoch && epoch - b.epoch < BUCKETS as u64)
            .fold((0, 0), |(r, f), b| (r + b.requests, f + b.failures))
    }

    fn clear(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
    }
}

/// Where a breaker stands, as shown to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BreakerState {
    Closed,
    /// Requests wait (also once the cooldown is over, until one is tried).
    Open,
    /// One trial request is out.
    HalfOpen,
}

impl BreakerState {
    pub const ALL: [BreakerState; 3] = [Self::Closed, Self::Open, Self::HalfOpen];

    pub fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed,
    Open {
        until: Instant,
    },
    /// One trial request is out; everything else waits for its outcome.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    breaker: Breaker,
    window: Window,
    /// Requests allowed in flight now, 1..=ceiling.
    limit: usize,
    /// Answers since the limit last grew.
    answers: usize,
    /// When the limit was last halved: failures of requests started before
    /// then belong to the same episode and do not halve it again.
    cut_at: Option<Instant>,
    /// The fastest answer of this period and of the last one: what "fast"
    /// is measured against, so it follows a receiver that changed.
    fastest: Fastest,
}

/// The endpoint's best answer time over the last one or two breaker windows.
#[derive(Debug)]
struct Fastest {
    period: Duration,
    started: Instant,
    now: Option<Duration>,
    before: Option<Duration>,
}

/// An answer this much slower than the best still counts as fast: a
/// loopback receiver's best is tens of microseconds, and scheduling noise
/// alone is more.
const FAST_SLACK: Duration = Duration::from_millis(5);

impl Fastest {
    fn new(period: Duration, now: Instant) -> Self {
        Self {
            period,
            started: now,
            now: None,
            before: None,
        }
    }

    /// Takes an answer's time; says whether it was fast.
    fn answer(&mut self, took: Duration, at: Instant) -> bool {
        if at.saturating_duration_since(self.started) >= self.period {
            self.before = self.now.take();
            self.started = at;
        }
        self.now = Some(self.now.map_or(took, |t| t.min(took)));
        let best = [self.now, self.before].into_iter().flatten().min().unwrap_or(took);
        took <= best * 2 + FAST_SLACK
    }
}

/// One endpoint's breaker and adaptive concurrency.
#[derive(Debug)]
pub struct EndpointGuard {
    options: GuardOptions,
    ceiling: usize,
    inner: Mutex<Inner>,
}

impl EndpointGuard {
    /// The endpoint starts with `start` requests in flight; `ceiling` is
    /// the most it ever gets.
    pub fn new(options: GuardOptions, start: usize, ceiling: usize, now: Instant) -> Self {
        let ceiling = ceiling.max(1);
        Self {
            options,
            ceiling,
            inner: Mutex::new(Inner {
                breaker: Breaker::Closed,
                window: Window::new(options.window, now),
                limit: start.clamp(1, ceiling),
                answers: 0,
                cut_at: None,
                fastest: Fastest::new(options.window, now),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What may go out now. Asking is what turns a cooled-down breaker
    /// half-open, so a [`Gate::Trial`] must be used or abandoned.
    pub fn gate(&self, now: Instant) -> Gate {
        let mut inner = self.lock();
        match inner.breaker {
            Breaker::Closed => Gate::Send(inner.limit),
            Breaker::Open { until } if now >= until => {
                inner.breaker = Breaker::HalfOpen;
                Gate::Trial
            }
            Breaker::Open { .. } | Breaker::HalfOpen => Gate::Wait,
        }
    }

    /// Whether requests flow normally, and how many may be in flight;
    /// unlike [`gate`](Self::gate) this never starts a trial.
    pub fn flowing(&self) -> Option<usize> {
        let inner = self.lock();
        (inner.breaker == Breaker::Closed).then_some(inner.limit)
    }

    /// The breaker's state for a reader; unlike [`gate`](Self::gate) it
    /// changes nothing.
    pub fn state(&self) -> BreakerState {
        match self.lock().breaker {
            Breaker::Closed => BreakerState::Closed,
            Breaker::Open { .. } => BreakerState::Open,
            Breaker::HalfOpen => BreakerState::HalfOpen,
        }
    }

    pub fn is_half_open(&self) -> bool {
        self.lock().breaker == Breaker::HalfOpen
    }

    /// Takes an attempt's outcome; `started` is when its request went out.
    /// True when this outcome opened the breaker.
    pub fn record(&self, outcome: Outcome, started: Instant, now: Instant) -> bool {
        let mut inner = self.lock();
        match outcome {
            Outcome::Answered => {
                let fast = inner.fastest.answer(now.saturating_duration_since(started), now);
                if fast && inner.limit < self.ceiling {
                    inner.answers += 1;
                    if inner.answers >= inner.limit {
                        inner.limit += 1;
                        inner.answers = 0;
                    }
                }
                match inner.breaker {
                    Breaker::Closed => inner.window.record(now, false),
                    Breaker::HalfOpen => {
                        inner.window.clear();
                        inner.breaker = Breaker::Closed;
                    }
                    // A request sent before it opened: only a trial closes it.
                    Breaker::Open { .. } => {}
                }
                false
            }
            Outcome::Unreachable => {
                if inner.cut_at.is_none_or(|cut| started >= cut) {
                    inner.limit = (inner.limit / 2).max(1);
                    inner.answers = 0;
                    inner.cut_at = Some(now);
                }
                let open = match inner.breaker {
                    Breaker::Closed => {
                        inner.window.record(now, true);
                        let (requests, failures) = inner.window.totals(now);
                        requests >= self.options.min_requests
                            && u64::from(failures) * 100
                                >= u64::from(self.options.failure_percent) * u64::from(requests)
                    }
                    Breaker::HalfOpen => true,
                    Breaker::Open { .. } => false,
                };
                if open {
                    inner.breaker = Breaker::Open {
                        until: now + self.options.cooldown,
                    };
                    inner.window.clear();
                }
                open
            }
        }
    }

    /// A trial that sent nothing (the delivery had nothing to send, or a
    /// read failed) lets the next trial go at once, so the endpoint is not
    /// left half-open forever.
    pub fn abandon_trial(&self, now: Instant) {
        let mut inner = self.lock();
        if inner.breaker == Breaker::HalfOpen {
            inner.breaker = Breaker::Open { until: now };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: GuardOptions = GuardOptions {
        window: Duration::from_secs(30),
        min_requests: 10,
        failure_percent: 50,
        cooldown: Duration::from_secs(60),
    };

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn answers_never_open_it_nor_shrink_concurrency() {
        let t0 = Instant::now();
        let g = EndpointGuard::new(OPTIONS, 4, 4, t0);
        // A thousand answers in a row (think 500s at once) change nothing.
        for i in 0..1000 {
            assert!(!g.record(Outcome::Answered, at(t0, i), at(t0, i)));
        }
        assert_eq!(g.gate(at(t0, 1000)), Gate::Send(4));
    }

    #[test]
    fn opens_on_the_failure_rate_over_the_window_with_a_minimum_of_requests() {
        let t0 = Instant::now();
        let g = EndpointGuard::new(OPTIONS, 4, 4, t0);
        // Nine failures alone are under the minimum of requests.
        for i in 0..9 {
            assert!(!g.record(Outcome::Unreachable, at(t0, i), at(t0, i)));
        }
        assert_eq!(g.gate(at(t0, 9)), Gate::Send(1));
        // The tenth request makes the minimum, at 100% failures.
        assert!(g.record(Outcome::Unreachable, at(t0, 9), at(t0, 9)));
        assert_eq!(g.gate(at(t0, 10)), Gate::Wait);

        // Under the rate: 4 failures in 10 requests.
        let g = EndpointGuard::new(OPTIONS, 4, 4, t0);
        for i in 0..6 {
            g.record(Outcome::Answered, at(t0, i), at(t0, i));
        }
        for i in 6..10 {
            assert!(!g.record(Outcome::Unreachable, at(t0, i), at(t0, i)));
        }
        // The fifth makes 5 of 11: still under 50%; the sixth 6 of 12 opens it.
        assert!(!g.record(Outcome::Unreachable, at(t0, 10), at(t0, 10)));
        assert!(g.record(Outcome::Unreachable, at(t0, 11), at(t0, 11)));
    }

    #[test]
    fn old_failures_leave_the_window() {
        let t0 = Instant::now();
        let g = EndpointGuard::new(OPTIONS, 4, 4, t0);
        for i in 0..9 {
            g.record(Outcome::Unreachable, at(t0, i), at(t0, i));
        }
        // 40 s later those nine are out of the 30 s window: one more
        // failure is one request, under the minimum.
        assert!(!g.record(Outcome::Unreachable, at(t0, 40_000), at(t0, 40_000)));
        assert!(matches!(g.gate(at(t0, 40_001)), Gate::Send(_)));
    }

    #[test]
    fn half_open_trial_closes_on_an_answer_and_reopens_on_a_failure() {
        let t0 = Instant::now();
        let g = EndpointGuard::new(OPTIONS, 4, 4, t0);
        for i in 0..10 {
            g.record(Outcome::Unreachable, at(t0, i), at(t0, i));
        }
        assert_eq!(g.gate(at(t0, 59_000)), Gate::Wait);
        assert_eq!(g.gate(at(t0, 60_009)), Gate::Trial);
        assert_eq!(g.gate(at(t0, 60_010)), Gate::Wait, "one trial at a time");
        // The trial fails: another cooldown.
        assert!(g.record(Outcome::Unreachable, at(t0, 60_009), at(t0, 60_100)));
        assert_eq!(g.gate(at(t0, 60_200)), Gate::Wait);
        assert_eq!(g.gate(at(t0, 120_100)), Gate::Trial);
        // A trial that sent nothing lets the next go.
        g.abandon_trial(at(t0, 120_101));
        assert_eq!(g.gate(at(t0, 120_102)), Gate::Trial);
        // Answered, even with a 500: closed, at the shrunken limit.
        g.record(Outcome::Answered, at(t0, 120_102), at(t0, 120_150));
        assert_eq!(g.gate(at(t0, 120_200)), Gate::Send(2));
        assert_eq!(g.flowing(), Some(2));
    }

    #[test]
    fn concurrency_halves_once_per_episode_and_grows_back_by_one_per_round() {
        let t0 = Instant::now();
        let g = EndpointGuard::new(OPTIONS, 8, 8, t0);
        // Four requests out at 0 ms all time out at 100 ms: one halving.
        for _ in 0..4 {
            g.record(Outcome::Unreachable, at(t0, 0), at(t0, 100));
        }
        assert_eq!(g.flowing(), Some(4));
        // A request started after the cut fails: halved again.
        g.record(Outcome::Unreachable, at(t0, 150), at(t0, 200));
        assert_eq!(g.flowing(), Some(2));
        // Two answers make a round at 2: up to 3; three more: 4.
        for i in 0..5 {
            g.record(Outcome::Answered, at(t0, 300 + i), at(t0, 300 + i));
        }
        assert_eq!(g.flowing(), Some(4));
        // Never past the ceiling.
        for i in 0..100 {
            g.record(Outcome::Answered, at(t0, 400 + i), at(t0, 400 + i));
        }
        assert_eq!(g.flowing(), Some(8));
    }

    #[test]
    fn concurrency_starts_low_and_grows_only_while_answers_stay_fast() {
        let t0 = Instant::now();
        let g = EndpointGuard::new(OPTIONS, 4, 64, t0);
        assert_eq!(g.gate(t0), Gate::Send(4));
        // Answers in 1 ms each: rounds of 4, 5 and 6 grow it by one each.
        let mut t = 0;
        for _ in 0..(4 + 5 + 6) {
            g.record(Outcome::Answered, at(t0, t), at(t0, t + 1));
            t += 1;
        }
        assert_eq!(g.flowing(), Some(7));
        // The receiver slows to 100 ms an answer: no more growth.
        for _ in 0..100 {
            g.record(Outcome::Answered, at(t0, t), at(t0, t + 100));
            t += 1;
        }
        assert_eq!(g.flowing(), Some(7));
        // Fast again: growth resumes, up to the ceiling and no further.
        for _ in 0..10_000 {
            g.record(Outcome::Answered, at(t0, t), at(t0, t + 1));
            t += 1;
        }
        assert_eq!(g.flowing(), Some(64));
        // A timeout halves it.
        g.record(Outcome::Unreachable, at(t0, t), at(t0, t + 15_000));
        assert_eq!(g.flowing(), Some(32));
    }
}
