//! The fill-after-invalidate guard: a reader that read the database before
//! a writer's commit must not put what it read into the cache after the
//! writer's invalidation went by, or the old state would stay until its
//! time ran out.
//!
//! Every invalidation takes a number from one counter and leaves it in the
//! slot its id hashes to; a reader takes the counter's value (its ticket)
//! before it reads. After filling, the reader looks at its id's slot: a
//! number above its ticket means an invalidation may have passed it, and
//! it removes what it filled. Slots are shared by ids that hash alike, so
//! a guard errs only towards dropping a good entry, never keeping a bad one.

use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

/// Slots of the guard: enough that unrelated writes rarely spoil a fill.
const SLOTS: usize = 4096;

#[derive(Debug)]
pub(super) struct FillGuard {
    counter: AtomicU64,
    slots: Box<[AtomicU64]>,
    /// The number taken by the last flush, which spoils every older ticket.
    flushed: AtomicU64,
}

impl Default for FillGuard {
    fn default() -> Self {
        Self {
            counter: AtomicU64::new(0),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            flushed: AtomicU64::new(0),
        }
    }
}

impl FillGuard {
    fn slot(&self, id: Uuid) -> &AtomicU64 {
        // The low bits of a v7 id are random.
        let bits = id.as_u128() as u64;
        &self.slots[(bits % SLOTS as u64) as usize]
    }

    /// What a reader holds while it reads.
    pub(super) fn ticket(&self) -> u64 {
        self.counter.load(Ordering::SeqCst)
    }

    /// Marks `id` as changed; called before its entry is removed.
    pub(super) fn invalidate(&self, id: Uuid) {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.slot(id).fetch_max(n, Ordering::SeqCst);
    }

    /// Marks everything as changed; called before the entries are removed.
    pub(super) fn flush(&self) {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.flushed.fetch_max(n, Ordering::SeqCst);
    }

    /// Whether an invalidation of `id` (or a flush) may have come after
    /// `ticket` was taken.
    pub(super) fn spoiled(&self, id: Uuid, ticket: u64) -> bool {
        self.slot(id).load(Ordering::SeqCst) > ticket || self.flushed.load(Ordering::SeqCst) > ticket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalidation_after_the_ticket_spoils_the_fill() {
        let guard = FillGuard::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let ticket = guard.ticket();
        assert!(!guard.spoiled(a, ticket));
        guard.invalidate(a);
        assert!(guard.spoiled(a, ticket));
        assert!(!guard.spoiled(b, ticket));
        let later = guard.ticket();
        assert!(!guard.spoiled(a, later));
        guard.flush();
        assert!(guard.spoiled(b, later));
    }
}
