//! New deliveries handed from the fan-out to this process's delivery
//! worker as they are created, so they go out without another transaction
//! (a claim, and on a durable SQLite its fsync) between the event's commit
//! and the request. The fan-out writes their jobs already leased, exactly
//! as a claim would have, in the transaction that creates them: a crash
//! before they are sent brings them back after the lease, and other
//! processes never take them meanwhile.
//!
//! The worker says how many it can take now (its endpoints' free slots and
//! lines, within its global cap); the fan-out leases no more than that and
//! leaves the rest in the queue for a claim. A worker that is not running
//! says nothing, so nothing is leased to it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use settle_store::queue::{FanoutLease, LeasedJob};
use tokio::sync::mpsc;

pub struct Handoff {
    lease: Duration,
    room: AtomicUsize,
    tx: mpsc::UnboundedSender<Vec<LeasedJob>>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Vec<LeasedJob>>>>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("lease", &self.lease)
            .field("room", &self.room.load(Ordering::Relaxed))
            .finish()
    }
}

impl Handoff {
    /// Jobs handed over are leased for `lease`, as claimed ones are.
    pub fn new(lease: Duration) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            lease,
            room: AtomicUsize::new(0),
            tx,
            rx: Mutex::new(Some(rx)),
        })
    }

    /// The lease for a fan-out starting at `now_ms`, taking its room from
    /// what the worker said (so two fan-outs never both take it); `None`
    /// when the worker has no room.
    pub fn lease(&self, now_ms: u64) -> Option<FanoutLease> {
        let most = self
            .room
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |_| Some(0))
            .unwrap_or(0);
        (most > 0).then(|| FanoutLease {
            token: rand::random(),
            until_ms: now_ms.saturating_add(self.lease.as_millis() as u64),
            most: u32::try_from(most).unwrap_or(u32::MAX),
        })
    }

    /// Gives the worker what the fan-out leased to it. Jobs nobody takes
    /// (the worker stopped) come back after their lease.
    pub fn give(&self, jobs: Vec<LeasedJob>) {
        if !jobs.is_empty() {
            let _ = self.tx.send(jobs);
        }
    }

    /// The worker's room for new deliveries, said afresh on every round.
    pub(crate) fn set_room(&self, room: usize) {
        self.room.store(room, Ordering::Release);
    }

    /// The receiving end, for the one worker that takes it.
    pub(crate) fn receiver(&self) -> Option<mpsc::UnboundedReceiver<Vec<LeasedJob>>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_leased_once_and_none_without_a_worker() {
        let h = Handoff::new(Duration::from_secs(30));
        assert_eq!(h.lease(1_000), None, "a worker that said nothing gets nothing");
        h.set_room(5);
        let lease = h.lease(1_000).unwrap();
        assert_eq!((lease.most, lease.until_ms), (5, 31_000));
        assert_eq!(h.lease(1_000), None, "the room was taken");
    }
}
