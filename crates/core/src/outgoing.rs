//! Requests Settle has sent and not yet heard back from, by destination:
//! what `/metrics` shows of outgoing HTTP (the client's own connection pool
//! does not say how many connections it holds; these counts are Settle's).

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// One destination's counts.
#[derive(Debug, Default)]
pub struct Outgoing {
    in_flight: AtomicI64,
    sent: AtomicU64,
}

impl Outgoing {
    /// Counts `request` as in flight until it is answered (or dropped).
    pub async fn track<T>(&self, request: impl Future<Output = T>) -> T {
        struct Landed<'a>(&'a AtomicI64);
        impl Drop for Landed<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _landed = Landed(&self.in_flight);
        request.await
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// Webhook deliveries to receivers.
pub static WEBHOOKS: Outgoing = Outgoing {
    in_flight: AtomicI64::new(0),
    sent: AtomicU64::new(0),
};

/// Charges to the external processor.
pub static PROCESSOR: Outgoing = Outgoing {
    in_flight: AtomicI64::new(0),
    sent: AtomicU64::new(0),
};
