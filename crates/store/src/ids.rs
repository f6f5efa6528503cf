//! UUIDv7 generation that stays strictly increasing within a process, even
//! when the clock stalls or steps back, so keyset pagination sees ids in
//! creation order.

use std::sync::Mutex;

use rand::Rng;
use settle_domain::ids::uuid_v7;
use uuid::Uuid;

#[derive(Debug, Default)]
pub struct IdGenerator {
    last: Mutex<(u64, u128)>,
}

impl IdGenerator {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id at `now_ms`: a fresh random tail in a new millisecond,
    /// otherwise the previous tail plus one.
    pub fn next(&self, now_ms: u64) -> Uuid {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let (ms, tail) = if now_ms > last.0 {
            // Top bit clear leaves 2^73 increments of headroom in the millisecond.
            (now_ms, rand::rng().random::<u128>() & ((1u128 << 73) - 1))
        } else {
            (last.0, last.1 + 1)
        };
        *last = (ms, tail);
        uuid_v7(ms, tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_increasing_even_when_time_goes_back() {
        let g = IdGenerator::new();
        let a = g.next(1_000);
        let b = g.next(1_000);
        let c = g.next(999);
        let d = g.next(1_001);
        assert!(a < b && b < c && c < d);
    }
}
