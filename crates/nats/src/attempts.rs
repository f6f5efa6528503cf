//! The delivery count a consumer acts on, kept beside the broker's.
//!
//! nats-server 2.9 can hand one delivery of a message to two pull requests
//! when a request expires while the message is on its way: the server
//! takes the delivery back (and its count with it) and delivers it again
//! under the same count. Bounding a charge's attempts by the server's count
//! alone would then call the processor once more than configured. Every
//! delivery this process saw is counted here too, and the larger of the
//! two counts decides.

use std::collections::HashMap;
use std::sync::Mutex;

/// Past this many messages in flight the memory is dropped and the broker's
/// count alone decides until it fills again: a bound on memory, not on
/// correctness in the usual case of a few hundred in flight.
const MOST_REMEMBERED: usize = 100_000;

/// Deliveries seen per (consumer, stream sequence), forgotten at the ack.
#[derive(Default)]
pub(crate) struct Attempts {
    seen: Mutex<HashMap<(String, u64), u32>>,
}

impl Attempts {
    /// This delivery's number: the broker's, or one past the last this
    /// process saw, whichever is larger.
    pub(crate) fn delivered(&self, consumer: &str, sequence: u64, by_broker: u32) -> u32 {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MOST_REMEMBERED {
            seen.clear();
        }
        let entry = seen.entry((consumer.to_owned(), sequence)).or_insert(0);
        *entry = by_broker.max(entry.saturating_add(1));
        *entry
    }

    /// The message is settled (acknowledged or terminated): it will not
    /// come back, so its count is no longer needed.
    pub(crate) fn forget(&self, consumer: &str, sequence: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.remove(&(consumer.to_owned(), sequence));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_the_broker_counts_twice_is_counted_once_more_here() {
        let attempts = Attempts::default();
        assert_eq!(attempts.delivered("processor", 7, 1), 1);
        assert_eq!(attempts.delivered("processor", 7, 2), 2);
        // The broker took delivery 2 back and sends it again as 2.
        assert_eq!(attempts.delivered("processor", 7, 2), 3);
        assert_eq!(attempts.delivered("fanout", 7, 1), 1, "counted per consumer");
        attempts.forget("processor", 7);
        assert_eq!(
            attempts.delivered("processor", 7, 5),
            5,
            "after the ack, the broker's count again"
        );
    }
}
