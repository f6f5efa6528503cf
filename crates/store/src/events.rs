//! Events and the queue that carries them to consumers: the contract, and its record types (queue types live in [`crate::queue`]).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use settle_domain::ids::EventId;

use crate::commits::CommitBus;
use crate::error::StoreResult;
use crate::list::{ListQuery, Page};
use crate::queue::{ConsumerBacklog, FanoutDrained, FanoutLease, JobClaim, LeasedJob, Subscription};

/// Events can be filtered by type or by the object they are about.
#[derive(Debug, Clone)]
pub enum EventFilter {
    Type(String),
    /// The object's 16-byte id.
    Object(Vec<u8>),
}

/// A state change as it was recorded: `data.object` is the object after it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "object", rename = "event")]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: serde_json::Value,
    /// Orders the events of one object: 1, 2, 3...
    pub sequence: i64,
    /// Orders all events by commit, without gaps: 1, 2, 3... On SQLite
    /// given as the event is written; on PostgreSQL by the sequencer just
    /// after its transaction commits (until then `None`).
    pub position: Option<i64>,
    pub request_id: Option<String>,
    pub created: i64,
    /// The trace context of the write that made it (never shown: it is
    /// the deliveries' parent, sent to receivers as their own span's).
    #[serde(skip)]
    pub traceparent: Option<String>,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    async fn event(&self, id: EventId) -> StoreResult<Option<Event>>;
    async fn list_events(&self, q: &ListQuery<EventFilter>) -> StoreResult<Page<Event>>;
    /// The events with these ids that exist, in id order.
    async fn events_by_ids(&self, ids: &[EventId]) -> StoreResult<Vec<Event>>;
    /// Up to `limit` events after `position`, in commit order (ascending
    /// positions): the commit stream a reader follows from its last position.
    async fn events_after(&self, position: i64, limit: u32) -> StoreResult<Page<Event>>;
    /// Gives up to `most` committed events without a position theirs, in
    /// one transaction; returns how many. PostgreSQL's sequencer step (see
    /// its migration `0009`); SQLite numbers events as it writes them, so
    /// there it does nothing.
    async fn number_events(&self, most: u32) -> StoreResult<u64>;
    /// Tells other processes which cached objects changed: PostgreSQL's
    /// triggers leave the ids of changed rows in the database, for the
    /// change sender to send after the commit (see its migration `0012`);
    /// returns how many sets of ids went out. SQLite is served by one
    /// process, so there it does nothing.
    async fn send_changes(&self) -> StoreResult<u64>;
    /// The bell rung after every commit that added events or jobs.
    fn commit_bus(&self) -> Arc<CommitBus>;

    /// Makes the queue's subscriptions exactly `subs`; run at start-up.
    async fn register_consumers(&self, subs: &[Subscription]) -> StoreResult<()>;
    /// Leases ready jobs of one consumer.
    async fn claim_jobs(&self, claim: &JobClaim) -> StoreResult<Vec<LeasedJob>>;
    /// Removes finished jobs still held under their lease; returns how many.
    async fn finish_jobs(&self, jobs: &[LeasedJob]) -> StoreResult<u64>;
    /// Puts a job back to run not before `run_at_ms`.
    async fn retry_job(&self, job: &LeasedJob, run_at_ms: u64, error: &str) -> StoreResult<()>;
    /// Moves a job that used up its deliveries to the dead letters.
    async fn bury_job(&self, job: &LeasedJob, error: &str, now_ms: u64) -> StoreResult<()>;
    /// Requeues dead jobs (of one consumer, or all); returns how many.
    async fn replay_dead_jobs(&self, consumer: Option<&str>, now_ms: u64) -> StoreResult<u64>;
    /// Each consumer's backlog and dead letters.
    async fn queue_backlog(&self) -> StoreResult<Vec<ConsumerBacklog>>;
    /// Takes up to `max` ready fan-out jobs and applies them (processed
    /// records, webhook deliveries) in one transaction, leasing new
    /// deliveries to the caller as `lease` allows.
    async fn drain_fanout(&self, max: u32, now_ms: u64, lease: Option<FanoutLease>) -> StoreResult<FanoutDrained>;
    /// Applies the fan-out to events consumed from a broker, once each;
    /// returns how many were new.
    async fn fan_out_events(&self, event_ids: &[Vec<u8>], now_ms: u64) -> StoreResult<u64>;
    /// Forgets processed-message records older than `before_ms`; returns how many.
    async fn reap_processed(&self, before_ms: u64, batch: u32) -> StoreResult<u64>;
}
