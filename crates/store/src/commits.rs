//! Where the store says, in process, that a write has committed something
//! someone may be waiting for: new events (in the commit order their
//! positions give) or new jobs. It is a bell, not a channel of data: a
//! waiter that hears it reads from its own position, so a ring it missed
//! (or one rung twice) changes nothing but when it reads.
//!
//! The store rings it after a write transaction's COMMIT returned, never
//! before, so whoever wakes finds the data. Other processes ring it from
//! the outside: PostgreSQL's listener on a notification, and on a
//! reconnect with [`CommitBus::resync`], since notifications sent while it
//! was away are lost.

use std::sync::{Arc, RwLock};

use tokio::sync::watch;

/// What one committed write added, as far as waiters care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Touched {
    /// Rows were inserted into `events` (and so, by the outbox trigger,
    /// jobs for the consumers subscribed to them).
    pub events: bool,
    /// Rows were inserted into `jobs` directly (webhook deliveries,
    /// replays, replayed dead letters).
    pub jobs: bool,
    /// Committed events were given their positions (PostgreSQL's
    /// sequencer; SQLite numbers events as it inserts them).
    pub positions: bool,
    /// A webhook endpoint's address, events, status or secrets changed, or
    /// it was deleted: whoever keeps it (decrypted secrets included) in
    /// memory drops it. Said by the write itself ([`Touched::ENDPOINTS`]),
    /// not read from its SQL.
    pub endpoints: bool,
    /// Cached objects changed ([`crate::sql::Tx::changed`]). PostgreSQL's
    /// triggers leave their ids in the database for the change sender to
    /// announce to other processes; this wakes it.
    pub changes: bool,
}

impl Touched {
    /// Every kind: what a notification from another process means, since
    /// it does not say which.
    pub const ALL: Touched = Touched {
        events: true,
        jobs: true,
        positions: true,
        endpoints: true,
        changes: true,
    };

    /// What another process's commit of events or jobs announces (its
    /// notification carries no payload).
    pub const QUEUE: Touched = Touched {
        events: true,
        jobs: true,
        positions: true,
        endpoints: false,
        changes: false,
    };

    /// What the sequencer's commit announces.
    pub const POSITIONS: Touched = Touched {
        events: false,
        jobs: false,
        positions: true,
        endpoints: false,
        changes: false,
    };

    /// What a change to a webhook endpoint announces.
    pub const ENDPOINTS: Touched = Touched {
        events: false,
        jobs: false,
        positions: false,
        endpoints: true,
        changes: false,
    };

    pub fn any(self) -> bool {
        self.events || self.jobs || self.positions || self.endpoints || self.changes
    }

    /// What running `sql` inserts, read from the statement itself: events
    /// are written by several pieces of SQL (a statement per event on
    /// SQLite, one statement of data-modifying CTEs on PostgreSQL), and the
    /// transaction layer is the one place all of them pass.
    pub fn by_statement(sql: &str) -> Touched {
        Touched {
            events: sql.contains("INSERT INTO events "),
            jobs: sql.contains("INSERT INTO jobs "),
            positions: false,
            endpoints: false,
            changes: false,
        }
    }

    pub fn merge(self, other: Touched) -> Touched {
        Touched {
            events: self.events || other.events,
            jobs: self.jobs || other.jobs,
            positions: self.positions || other.positions,
            endpoints: self.endpoints || other.endpoints,
            changes: self.changes || other.changes,
        }
    }
}

/// How many times each kind of news has been announced. Waiters compare
/// what they saw last with the current tick; counters only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    pub events: u64,
    pub jobs: u64,
    pub positions: u64,
    pub endpoints: u64,
    pub changes: u64,
    /// Times a listener came back after losing its connection: anything
    /// may have committed meanwhile without a word.
    pub resyncs: u64,
}

/// Who keeps copies of objects and must drop them when they change: told
/// right after the commit (this process's writes: awaited before the writer
/// hears back) or as soon as another process's commit is heard.
#[async_trait::async_trait]
pub trait ChangeSink: Send + Sync {
    /// These objects changed or were removed.
    async fn changed(&self, ids: &[uuid::Uuid]);
    /// Anything may have changed without anyone naming it (a notification
    /// too large to name its objects): drop everything, shared copies too.
    fn flush(&self);

    /// This process may have missed announcements (its listener
    /// reconnected): drop what it keeps itself. Copies shared with other
    /// processes were dropped by the writers, who named what they changed.
    fn missed(&self);
}

/// The bell. One per store; cheap to ring when nobody listens.
pub struct CommitBus {
    tick: watch::Sender<Tick>,
    sinks: RwLock<Vec<Arc<dyn ChangeSink>>>,
    origin: String,
}

impl std::fmt::Debug for CommitBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitBus").field("tick", &*self.tick.borrow()).finish()
    }
}

impl Default for CommitBus {
    fn default() -> Self {
        Self {
            tick: watch::Sender::new(Tick::default()),
            sinks: RwLock::default(),
            origin: format!("{:016x}", rand::random::<u64>()),
        }
    }
}

impl CommitBus {
    /// A random name for this store's writes (PostgreSQL tags the changed
    /// ids its triggers record with it): its listener skips notifications
    /// of its own changes, which this process dropped before the writer
    /// heard back, instead of dropping them a second time a moment later.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Rings for what a committed write added; nothing when it added none
    /// of it, so a worker's own empty claims never wake it again.
    pub fn announce(&self, touched: Touched) {
        if !touched.any() {
            return;
        }
        self.tick.send_modify(|t| {
            t.events += u64::from(touched.events);
            t.jobs += u64::from(touched.jobs);
            t.positions += u64::from(touched.positions);
            t.endpoints += u64::from(touched.endpoints);
            t.changes += u64::from(touched.changes);
        });
    }

    /// Tells every waiter it may have missed news and must read again, and
    /// every keeper of copies to drop them.
    pub fn resync(&self) {
        for sink in self.sinks.read().unwrap_or_else(|e| e.into_inner()).iter() {
            sink.missed();
        }
        self.tick.send_modify(|t| t.resyncs += 1);
    }

    /// Registers a keeper of copies; it hears every change from now on.
    pub fn attach(&self, sink: Arc<dyn ChangeSink>) {
        self.sinks.write().unwrap_or_else(|e| e.into_inner()).push(sink);
    }

    /// Says that `ids` changed (committed here, or heard from another process).
    pub async fn changed(&self, ids: &[uuid::Uuid]) {
        if ids.is_empty() {
            return;
        }
        let sinks = self.sinks.read().unwrap_or_else(|e| e.into_inner()).clone();
        for sink in sinks {
            sink.changed(ids).await;
        }
    }

    /// Says that anything may have changed.
    pub fn flush(&self) {
        for sink in self.sinks.read().unwrap_or_else(|e| e.into_inner()).iter() {
            sink.flush();
        }
    }

    /// A receiver of every tick from now on (it starts having seen the
    /// current one).
    pub fn subscribe(&self) -> watch::Receiver<Tick> {
        self.tick.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_read_for_what_they_insert() {
        let t = Touched::by_statement("INSERT INTO events (id, type) VALUES ($1, $2)");
        assert_eq!(
            t,
            Touched {
                events: true,
                ..Touched::default()
            }
        );
        let t = Touched::by_statement("WITH w0 AS (INSERT INTO events (id) VALUES ($1) RETURNING 1) SELECT 1");
        assert!(t.events);
        let t = Touched::by_statement("INSERT INTO jobs (consumer, message_id) VALUES ($1, $2)");
        assert_eq!(
            t,
            Touched {
                jobs: true,
                ..Touched::default()
            }
        );
        assert!(!Touched::by_statement("UPDATE jobs SET run_at = $1").any());
        assert!(!Touched::by_statement("INSERT INTO events_archive (id) VALUES ($1)").any());
    }

    #[test]
    fn empty_writes_ring_nothing() {
        let bus = CommitBus::default();
        let rx = bus.subscribe();
        bus.announce(Touched::default());
        assert!(!rx.has_changed().unwrap());
        bus.announce(Touched {
            events: true,
            jobs: false,
            positions: false,
            endpoints: false,
            changes: false,
        });
        assert_eq!(rx.borrow().events, 1);
        assert_eq!(rx.borrow().jobs, 0);
    }
}
