//! What the surge harness keeps of each request and the figures it derives:
//! goodput, percentiles of admitted requests, shed fractions, and the time
//! the p99 takes to come back after the surge.

use std::time::Duration;

/// The classes the figures are reported by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Payment creates and captures: what must keep being served.
    Money,
    /// Retrieves of one payment or account.
    Reads,
    /// Pages of 100 payments.
    Lists,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Money, Class::Reads, Class::Lists];

    /// Its place in [`Class::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Money => "money",
            Class::Reads => "reads",
            Class::Lists => "lists",
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx: the requests the percentiles are taken over.
    Admitted,
    /// A deliberate refusal: 429, or 503 `overloaded`/`brownout`.
    Shed,
    /// Any other 5xx: a failure.
    ServerError,
    /// A 4xx other than 429 (e.g. a capture that lost a race).
    ClientError,
    /// No answer within the client's timeout.
    Timeout,
    /// The connection failed or broke.
    Connection,
    /// The generator had no free slot at the intended time: never sent.
    NotSent,
}

/// One request as the generator saw it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub class: Class,
    pub outcome: Outcome,
    /// Which API key sent it.
    pub key: u8,
    /// From the intended send instant to the whole answer.
    pub latency_us: u32,
    /// From the intended send instant to the actual one: the generator's
    /// own delay, which the latency includes.
    pub lag_us: u32,
    /// The intended send instant, from the start of its phase.
    pub offset_ms: u32,
}

/// The figures of one class (or of the whole mix) over one phase.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Requests the schedule asked for, per second (sent or not).
    pub offered: f64,
    /// 2xx answers per second.
    pub goodput: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Deliberately refused, as a share of the requests sent.
    pub shed: f64,
    pub server_errors: u64,
    pub client_errors: u64,
    pub timeouts: u64,
    pub connection_errors: u64,
    pub not_sent: u64,
}

/// Summarizes the samples of `class` (all of them for `None`) over a phase
/// of `seconds`.
pub fn summarize(samples: &[Sample], class: Option<Class>, seconds: f64) -> Summary {
    let mut admitted = Vec::new();
    let mut summary = Summary::default();
    let (mut offered, mut sent, mut shed) = (0u64, 0u64, 0u64);
    for s in samples.iter().filter(|s| class.is_none_or(|c| s.class == c)) {
        offered += 1;
        if s.outcome != Outcome::NotSent {
            sent += 1;
        }
        match s.outcome {
            Outcome::Admitted => admitted.push(s.latency_us),
            Outcome::Shed => shed += 1,
            Outcome::ServerError => summary.server_errors += 1,
            Outcome::ClientError => summary.client_errors += 1,
            Outcome::Timeout => summary.timeouts += 1,
            Outcome::Connection => summary.connection_errors += 1,
            Outcome::NotSent => summary.not_sent += 1,
        }
    }
    admitted.sort_unstable();
    let seconds = seconds.max(f64::EPSILON);
    summary.offered = offered as f64 / seconds;
    summary.goodput = admitted.len() as f64 / seconds;
    summary.p50_ms = percentile_ms(&admitted, 0.50);
    summary.p99_ms = percentile_ms(&admitted, 0.99);
    summary.shed = if sent > 0 { shed as f64 / sent as f64 } else { 0.0 };
    summary
}

/// The nearest-rank percentile `q` of sorted microseconds, in milliseconds.
pub fn percentile_ms(sorted: &[u32], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    Some(f64::from(sorted[rank - 1]) / 1000.0)
}

/// The generator's own delay (intended → actual send), p99 in ms.
pub fn lag_p99_ms(samples: &[Sample]) -> Option<f64> {
    let mut lags: Vec<u32> = samples
        .iter()
        .filter(|s| s.outcome != Outcome::NotSent)
        .map(|s| s.lag_us)
        .collect();
    lags.sort_unstable();
    percentile_ms(&lags, 0.99)
}

/// Width of the windows the recovery is judged on.
pub const WINDOW: Duration = Duration::from_millis(500);

/// Consecutive good windows that count as recovered: one good window in a
/// storm of bad ones is luck, not recovery.
pub const GOOD_IN_A_ROW: usize = 3;

/// How long after the start of the phase (the surge's end) the p99 of
/// admitted requests of `class` came back within `limit_ms`: the start of
/// the first window of [`GOOD_IN_A_ROW`] good ones (those the phase still
/// holds, near its end). A window where requests were due but none was
/// admitted is bad; one where none was due (a class too rare for the
/// window) tells nothing and passes. `None`: not within the phase.
pub fn recovery(samples: &[Sample], class: Option<Class>, limit_ms: f64, phase: Duration) -> Option<Duration> {
    let width = WINDOW.as_millis() as u32;
    let windows = (phase.as_millis() as u32).div_ceil(width).max(1) as usize;
    let mut due = vec![0usize; windows];
    let mut admitted = vec![Vec::new(); windows];
    for s in samples.iter().filter(|s| class.is_none_or(|c| s.class == c)) {
        let w = (s.offset_ms / width) as usize;
        if w >= windows {
            continue;
        }
        due[w] += 1;
        if s.outcome == Outcome::Admitted {
            admitted[w].push(s.latency_us);
        }
    }
    let good: Vec<bool> = admitted
        .iter_mut()
        .zip(&due)
        .map(|(bucket, &due)| {
            bucket.sort_unstable();
            due == 0 || percentile_ms(bucket, 0.99).is_some_and(|p99| p99 <= limit_ms)
        })
        .collect();
    (0..windows)
        .find(|&w| good[w..(w + GOOD_IN_A_ROW).min(windows)].iter().all(|g| *g))
        .map(|w| WINDOW * w as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(offset_ms: u32, latency_ms: u32) -> Sample {
        Sample {
            class: Class::Money,
            outcome: Outcome::Admitted,
            key: 0,
            latency_us: latency_ms * 1000,
            lag_us: 0,
            offset_ms,
        }
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&sorted, 0.5), Some(50.0));
        assert_eq!(percentile_ms(&sorted, 0.99), Some(99.0));
        assert_eq!(percentile_ms(&[], 0.99), None);
    }

    #[test]
    fn recovery_is_the_first_of_three_good_windows() {
        // Slow for the first second, then fast, except one slow window at
        // 2 s: the two good windows before it do not count as recovery.
        let mut samples = Vec::new();
        for offset in (0..5000).step_by(50) {
            let slow = offset < 1000 || (2000..2500).contains(&offset);
            samples.push(admitted(offset, if slow { 100 } else { 2 }));
        }
        let at = recovery(&samples, None, 10.0, Duration::from_secs(5));
        assert_eq!(at, Some(Duration::from_millis(2500)));
        assert_eq!(recovery(&samples, None, 1.0, Duration::from_secs(5)), None);
    }

    #[test]
    fn windows_with_nothing_due_pass_and_refused_ones_fail() {
        let shed = |offset_ms| Sample {
            outcome: Outcome::Shed,
            ..admitted(offset_ms, 1)
        };
        // Everything shed for the first second, then one fast answer a
        // second: the windows in between hold nothing and do not count.
        let mut samples: Vec<Sample> = (0..1000).step_by(100).map(shed).collect();
        samples.extend((1000..5000).step_by(1000).map(|offset| admitted(offset, 2)));
        let at = recovery(&samples, None, 10.0, Duration::from_secs(5));
        assert_eq!(at, Some(Duration::from_millis(1000)));
    }

    #[test]
    fn shed_is_a_share_of_what_was_sent() {
        let mut samples = vec![admitted(0, 1); 3];
        samples.push(Sample {
            outcome: Outcome::Shed,
            ..admitted(0, 1)
        });
        samples.push(Sample {
            outcome: Outcome::NotSent,
            ..admitted(0, 1)
        });
        let s = summarize(&samples, Some(Class::Money), 1.0);
        assert_eq!((s.offered, s.goodput, s.shed, s.not_sent), (5.0, 3.0, 0.25, 1));
    }
}
