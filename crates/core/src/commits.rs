//! The commit stream as everything above the store sees it: subscribe, and
//! be woken when something you follow commits (here or, through the
//! store's listener, in another process), when a listener reconnected and
//! news may have been lost, when a time you asked for comes, or at the
//! latest after the safety-net poll interval.
//!
//! A wake is a reason to read, never data: a subscriber keeps its own
//! position (the last event position it handled, or simply "whatever is
//! ready in my queue") and reads from it, so a wake it missed or got twice
//! changes when it reads, never what it sees. Workers attach here, and so
//! will later faces (a gRPC `WatchEvents` stream subscribes to
//! [`Topic::Positions`] and follows [`crate::Settle::events_after`] from
//! its cursor on each wake; a cache
//! drops its entries on [`Wake::Resync`]) without touching the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use settle_store::commits::{CommitBus, Tick};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// How long a busy subscriber lets commits gather before its next read,
/// when they kept arriving while it read the last batch. An idle one reads
/// at once; one under load trades this much latency for batches that carry
/// many commits instead of one transaction each.
pub const GATHER: Duration = Duration::from_millis(5);

/// What a subscriber follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// New events (and the outbox jobs they bring): the fan-out, the
    /// processor worker, the relay, stream readers.
    Events,
    /// Jobs queued without an event: webhook deliveries and replays.
    Jobs,
    /// Events that have their position: what a reader of the stream
    /// (`events_after`) waits for. New events count too (on SQLite they
    /// are numbered as they are written).
    Positions,
    /// Webhook endpoints changed (edited, disabled, rotated, deleted):
    /// what keeps their decrypted secrets in memory follows this.
    Endpoints,
    /// Objects other processes may cache changed here: what sends their
    /// ids to other processes (on PostgreSQL) follows this.
    Changes,
}

impl Topic {
    /// Whether the bell rang for this topic between two ticks (news of
    /// other topics, a worker's own commit included, is not news here).
    fn news(self, before: Tick, now: Tick) -> bool {
        match self {
            Topic::Events => now.events != before.events,
            Topic::Jobs => now.jobs != before.jobs,
            Topic::Positions => now.positions != before.positions || now.events != before.events,
            Topic::Endpoints => now.endpoints != before.endpoints,
            Topic::Changes => now.changes != before.changes,
        }
    }
}

/// Why [`Subscription::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Something the subscriber follows has committed.
    Committed,
    /// A listener lost its connection or came back: commits may have gone
    /// unannounced. Read everything after your position.
    Resync,
    /// A time asked for with [`Alarm::within`] came.
    Due,
    /// The safety-net interval passed with no news.
    Poll,
}

/// How often subscribers woke for each reason (shown at `/metrics`; a
/// test asserts an idle worker was woken by a commit, not by its poll).
#[derive(Debug, Default)]
pub struct WakeStats {
    pub committed: AtomicU64,
    pub resync: AtomicU64,
    pub due: AtomicU64,
    pub poll: AtomicU64,
}

impl WakeStats {
    fn count(&self, wake: Wake) {
        let counter = match wake {
            Wake::Committed => &self.committed,
            Wake::Resync => &self.resync,
            Wake::Due => &self.due,
            Wake::Poll => &self.poll,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The hub: one per process, cheap to clone.
#[derive(Debug, Clone)]
pub struct CommitStream {
    bus: Arc<CommitBus>,
    poll: Duration,
    stats: Arc<WakeStats>,
}

impl CommitStream {
    /// Follows `bus`; a subscriber with no news looks again after `poll`
    /// (the safety net: a bell that never rang costs at most this long).
    pub fn new(bus: Arc<CommitBus>, poll: Duration) -> Self {
        Self {
            bus,
            poll: poll.max(Duration::from_millis(1)),
            stats: Arc::default(),
        }
    }

    pub fn subscribe(&self, topic: Topic) -> Subscription {
        self.subscribe_with_alarm(topic, Alarm::default())
    }

    /// A subscription woken by `alarm` too, for a worker that made its
    /// alarm before it started waiting (and handed it to its tasks).
    pub fn subscribe_with_alarm(&self, topic: Topic, alarm: Alarm) -> Subscription {
        let rx = self.bus.subscribe();
        let seen = *rx.borrow();
        Subscription {
            rx,
            seen,
            topic,
            poll: self.poll,
            alarm,
            stats: Arc::clone(&self.stats),
        }
    }

    /// The safety-net interval.
    pub fn poll(&self) -> Duration {
        self.poll
    }

    pub fn stats(&self) -> &WakeStats {
        &self.stats
    }
}

/// A time a subscriber wants to be woken at (a retry it scheduled, a slot
/// freed): shared, so the tasks a worker spawns can set it.
#[derive(Debug, Clone, Default)]
pub struct Alarm(Arc<AlarmState>);

#[derive(Debug, Default)]
struct AlarmState {
    at: Mutex<Option<Instant>>,
    /// Interrupts a wait that began before the alarm was set.
    set: Notify,
}

impl Alarm {
    /// Wake the subscriber no later than `after` from now (the earliest
    /// of all times asked for wins).
    pub fn within(&self, after: Duration) {
        let at = Instant::now() + after;
        {
            let mut slot = self.0.at.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_some_and(|t| t <= at) {
                return;
            }
            *slot = Some(at);
        }
        self.0.set.notify_one();
    }

    fn peek(&self) -> Option<Instant> {
        *self.0.at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the alarm if it has rung by `now`.
    fn take_due(&self, now: Instant) -> bool {
        let mut slot = self.0.at.lock().unwrap_or_else(|e| e.into_inner());
        let due = slot.is_some_and(|t| t <= now);
        if due {
            *slot = None;
        }
        due
    }
}

/// One subscriber's view of the stream.
#[derive(Debug)]
pub struct Subscription {
    rx: watch::Receiver<Tick>,
    seen: Tick,
    topic: Topic,
    poll: Duration,
    alarm: Alarm,
    stats: Arc<WakeStats>,
}

impl Subscription {
    /// The subscriber's alarm, for tasks that schedule work for it.
    pub fn alarm(&self) -> Alarm {
        self.alarm.clone()
    }

    /// Whether news has arrived since the last wait returned: under load,
    /// commits land while the subscriber is still reading, which tells it
    /// to let the next batch gather a moment (see [`GATHER`]).
    pub fn has_news(&self) -> bool {
        let now = *self.rx.borrow();
        now.resyncs != self.seen.resyncs || self.topic.news(self.seen, now)
    }

    /// Waits for the next reason to read. News that arrived since the
    /// last call (while the subscriber was reading) returns at once, so
    /// nothing committed between a read and this wait is slept through.
    pub async fn wait(&mut self) -> Wake {
        let wake = self.next_wake().await;
        self.stats.count(wake);
        wake
    }

    async fn next_wake(&mut self) -> Wake {
        let poll_at = Instant::now() + self.poll;
        let mut bus_open = true;
        loop {
            if self.alarm.take_due(Instant::now()) {
                return Wake::Due;
            }
            let deadline = self.alarm.peek().map_or(poll_at, |t| t.min(poll_at));
            let alarm = Arc::clone(&self.alarm.0);
            tokio::select! {
                changed = self.rx.changed(), if bus_open => {
                    if changed.is_err() {
                        // The store is gone: only time can wake this subscriber.
                        bus_open = false;
                        continue;
                    }
                    let now = *self.rx.borrow_and_update();
                    let before = std::mem::replace(&mut self.seen, now);
                    if now.resyncs != before.resyncs {
                        return Wake::Resync;
                    }
                    if self.topic.news(before, now) {
                        return Wake::Committed;
                    }
                }
                // Set while waiting: look at the (earlier) time again.
                () = alarm.set.notified() => {}
                () = tokio::time::sleep_until(deadline) => return self.timed_out(),
            }
        }
    }

    fn timed_out(&self) -> Wake {
        if self.alarm.take_due(Instant::now()) {
            Wake::Due
        } else {
            Wake::Poll
        }
    }
}

#[cfg(test)]
mod tests {
    use settle_store::commits::Touched;

    use super::*;

    fn stream() -> (Arc<CommitBus>, CommitStream) {
        let bus = Arc::new(CommitBus::default());
        (Arc::clone(&bus), CommitStream::new(bus, Duration::from_secs(3600)))
    }

    #[tokio::test]
    async fn news_of_its_topic_wakes_a_subscriber_and_other_news_does_not() {
        let (bus, stream) = stream();
        let mut events = stream.subscribe(Topic::Events);
        bus.announce(Touched {
            events: false,
            jobs: true,
            positions: false,
            endpoints: false,
            changes: false,
        });
        bus.announce(Touched {
            events: true,
            jobs: false,
            positions: false,
            endpoints: false,
            changes: false,
        });
        assert_eq!(events.wait().await, Wake::Committed);
        // Both rings were taken in by that one wake.
        assert!(!events.rx.has_changed().unwrap());
    }

    #[tokio::test]
    async fn news_during_a_read_is_not_slept_through() {
        let (bus, stream) = stream();
        let mut jobs = stream.subscribe(Topic::Jobs);
        assert!(!jobs.has_news());
        // Rung before the subscriber waits (it was busy reading).
        bus.announce(Touched {
            events: false,
            jobs: true,
            positions: false,
            endpoints: false,
            changes: false,
        });
        assert!(jobs.has_news(), "it can tell it is behind");
        assert_eq!(jobs.wait().await, Wake::Committed);
        assert!(!jobs.has_news());
    }

    #[tokio::test]
    async fn its_own_commit_of_another_topic_is_no_news() {
        let (bus, stream) = stream();
        let events = stream.subscribe(Topic::Events);
        // The fan-out's own commit inserts jobs: no reason for it to wait
        // for more events to gather.
        bus.announce(Touched {
            events: false,
            jobs: true,
            positions: false,
            endpoints: false,
            changes: false,
        });
        assert!(!events.has_news());
        bus.announce(Touched {
            events: true,
            jobs: false,
            positions: false,
            endpoints: false,
            changes: false,
        });
        assert!(events.has_news());
    }

    #[tokio::test]
    async fn a_resync_wakes_every_topic() {
        let (bus, stream) = stream();
        let (mut a, mut b) = (stream.subscribe(Topic::Events), stream.subscribe(Topic::Jobs));
        bus.resync();
        assert_eq!(a.wait().await, Wake::Resync);
        assert_eq!(b.wait().await, Wake::Resync);
        assert_eq!(stream.stats().resync.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn an_alarm_set_by_another_task_wakes_the_subscriber() {
        let (_bus, stream) = stream();
        let mut sub = stream.subscribe(Topic::Jobs);
        let alarm = sub.alarm();
        tokio::spawn(async move { alarm.within(Duration::ZERO) });
        assert_eq!(sub.wait().await, Wake::Due);
    }

    #[tokio::test]
    async fn with_no_news_the_poll_interval_wakes_it() {
        let bus = Arc::new(CommitBus::default());
        let stream = CommitStream::new(Arc::clone(&bus), Duration::from_millis(5));
        let mut sub = stream.subscribe(Topic::Events);
        assert_eq!(sub.wait().await, Wake::Poll);
    }
}
