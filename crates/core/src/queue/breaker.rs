//! A circuit breaker: after `failures` failures in a row it opens and
//! refuses calls for `cooldown`, so work waits in the queue instead of
//! hammering a system that is down; then one trial call (half-open)
//! decides whether it closes again or stays open for another cooldown.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct BreakerOptions {
    pub failures: u32,
    pub cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is out; everyone else waits for its answer.
    HalfOpen,
}

#[derive(Debug)]
pub struct Breaker {
    options: BreakerOptions,
    inner: Mutex<Inner>,
    opened: AtomicU64,
    closed: AtomicU64,
}

impl Breaker {
    pub fn new(options: BreakerOptions) -> Self {
        Self {
            options,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
            opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many calls may start now: all (`None`), one trial (`Some(1)`,
    /// and the breaker turns half-open), or none (`Some(0)`).
    pub fn permits(&self) -> Option<usize> {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => None,
            Inner::Open { until } if Instant::now() >= until => {
                *inner = Inner::HalfOpen;
                Some(1)
            }
            Inner::Open { .. } | Inner::HalfOpen => Some(0),
        }
    }

    /// How long until a trial call may go out (zero unless open).
    pub fn wait(&self) -> Duration {
        match *self.lock() {
            Inner::Open { until } => until.saturating_duration_since(Instant::now()),
            _ => Duration::ZERO,
        }
    }

    pub fn success(&self) {
        let mut inner = self.lock();
        if !matches!(*inner, Inner::Closed { .. }) {
            self.closed.fetch_add(1, Ordering::Relaxed);
        }
        *inner = Inner::Closed { failures: 0 };
    }

    pub fn failure(&self) {
        let mut inner = self.lock();
        let open = match *inner {
            Inner::Closed { failures } => {
                let failures = failures + 1;
                *inner = Inner::Closed { failures };
                failures >= self.options.failures
            }
            Inner::HalfOpen => true,
            Inner::Open { .. } => false,
        };
        if open {
            *inner = Inner::Open {
                until: Instant::now() + self.options.cooldown,
            };
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A trial call that ended without an answer either way (the job was
    /// handed back) lets the next trial go.
    pub fn abandon_trial(&self) {
        let mut inner = self.lock();
        if matches!(*inner, Inner::HalfOpen) {
            *inner = Inner::Open { until: Instant::now() };
        }
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// How many times it opened and closed since start.
    pub fn transitions(&self) -> (u64, u64) {
        (self.opened.load(Ordering::Relaxed), self.closed.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_and_closes_after_a_good_trial() {
        let b = Breaker::new(BreakerOptions {
            failures: 3,
            cooldown: Duration::from_millis(30),
        });
        b.failure();
        b.failure();
        assert_eq!((b.state(), b.permits()), (BreakerState::Closed, None));
        b.failure();
        assert_eq!((b.state(), b.permits()), (BreakerState::Open, Some(0)));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.permits(), Some(1));
        assert_eq!((b.state(), b.permits()), (BreakerState::HalfOpen, Some(0)));
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.permits(), Some(1));
        b.success();
        assert_eq!((b.state(), b.permits()), (BreakerState::Closed, None));
        assert_eq!(b.transitions(), (2, 1));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breaker::new(BreakerOptions {
            failures: 2,
            cooldown: Duration::from_secs(60),
        });
        b.failure();
        b.success();
        b.failure();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
