//! Exponential backoff with jitter: retries of many failed calls spread out
//! instead of arriving together when the other side comes back.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before attempt `attempt + 1` (attempt 1 failed → about
    /// `base`), doubled per attempt up to `max`, then drawn uniformly from
    /// its upper half ("equal jitter": never zero, never above the cap).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exp).min(self.max);
        let half = full / 2;
        let extra = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_capped() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
        };
        for _ in 0..200 {
            let first = b.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let fourth = b.delay(4);
            assert!(fourth >= Duration::from_millis(400) && fourth <= Duration::from_millis(800));
            assert!(b.delay(40) <= Duration::from_secs(5));
            assert!(b.delay(40) >= Duration::from_millis(2500));
        }
    }
}
