//! The queue every slow or unreliable piece of work goes through. Events
//! enter it from the transactional outbox (the `events_enqueue` trigger),
//! so nothing committed can miss it; consumers take messages under a lease
//! and acknowledge them after their effect is committed. Delivery is at
//! least once; consumers make it exactly once in effect with a
//! processed-message record written in the same transaction as the effect.
//!
//! Two backends sit behind [`JobQueue`]: [`EmbeddedQueue`] (the jobs table
//! in the same database, the default) and NATS JetStream (`settle-nats`).

mod backoff;
mod breaker;
mod embedded;

use std::any::Any;

use async_trait::async_trait;
use serde::Serialize;
use settle_domain::ids::EventId;
use settle_store::StoreError;
use settle_store::queue::{ConsumerBacklog, Subscription};
use settle_store::records::Event;

pub use backoff::Backoff;
pub use breaker::{Breaker, BreakerOptions, BreakerState};
pub use embedded::EmbeddedQueue;

/// Takes every event: the fan-out stage (webhook deliveries hang off it).
pub const FANOUT: &str = settle_store::queue::FANOUT_CONSUMER;
/// Takes `payment.processing` events and calls the external processor.
pub const PROCESSOR: &str = "processor";
/// Moves committed outbox rows to an external broker.
pub const RELAY: &str = "relay";

/// What the in-database queue subscribes when it is the queue.
pub const EMBEDDED_SUBSCRIPTIONS: &[Subscription] = &[
    Subscription {
        consumer: FANOUT,
        event_type: "*",
    },
    Subscription {
        consumer: PROCESSOR,
        event_type: "payment.processing",
    },
];

/// What the database subscribes when a broker is the queue: only the relay.
pub const RELAY_SUBSCRIPTIONS: &[Subscription] = &[Subscription {
    consumer: RELAY,
    event_type: "*",
}];

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("queue broker: {0}")]
    Broker(String),
}

pub type QueueResult<T> = Result<T, QueueError>;

/// A message handed to a consumer under a lease.
pub struct Message {
    pub consumer: String,
    pub event: Event,
    /// Jobs of one key (e.g. one webhook endpoint) can be held back together.
    pub key: Option<String>,
    /// How many times it has been handed out, this time included.
    pub deliveries: u32,
    /// When it entered the queue (Unix ms).
    pub enqueued_ms: i64,
    /// The backend's handle for acknowledging it.
    pub(crate) handle: Box<dyn Any + Send + Sync>,
}

impl Message {
    /// For backends outside this crate.
    pub fn new(
        consumer: String,
        event: Event,
        deliveries: u32,
        enqueued_ms: i64,
        handle: Box<dyn Any + Send + Sync>,
    ) -> Self {
        Self {
            consumer,
            event,
            key: None,
            deliveries,
            enqueued_ms,
            handle,
        }
    }

    pub fn id(&self) -> EventId {
        self.event.id
    }

    /// The backend's handle, for backends outside this crate.
    pub fn into_handle(self) -> Box<dyn Any + Send + Sync> {
        self.handle
    }

    pub fn handle(&self) -> &(dyn Any + Send + Sync) {
        self.handle.as_ref()
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("consumer", &self.consumer)
            .field("event", &self.event.id)
            .field("deliveries", &self.deliveries)
            .finish()
    }
}

/// What operators watch: each consumer's backlog and dead letters, and
/// how far the relay to a broker lags behind commits.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    pub backend: &'static str,
    pub consumers: Vec<ConsumerBacklog>,
    /// Outbox rows committed but not yet acknowledged by the broker.
    pub relay_pending: u64,
    /// When the oldest of those was committed (Unix ms).
    pub relay_oldest_ms: Option<i64>,
    /// Why the broker's side is missing from this summary, if it is.
    pub broker_error: Option<String>,
}

/// A queue backend. Every method is safe to call from many workers.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    /// Leases up to `max` ready messages of `consumer`, leaving aside
    /// messages whose key is in `skip_keys`. May return fewer, or none.
    async fn claim(&self, consumer: &str, max: usize, skip_keys: &[String]) -> QueueResult<Vec<Message>>;
    /// Whether the backend itself pushes new messages to a waiting claim
    /// ([`JobQueue::claim_waiting`]). When false, an idle consumer waits on
    /// the commit stream instead.
    fn pushes(&self) -> bool {
        false
    }
    /// [`JobQueue::claim`], but with nothing ready, waits up to `wait` for
    /// the first message to arrive. Backends that do not push answer at once.
    async fn claim_waiting(
        &self,
        consumer: &str,
        max: usize,
        skip_keys: &[String],
        wait: std::time::Duration,
    ) -> QueueResult<Vec<Message>> {
        let _ = wait;
        self.claim(consumer, max, skip_keys).await
    }
    /// Acknowledges messages whose effect is committed.
    async fn ack(&self, messages: Vec<Message>) -> QueueResult<()>;
    /// Hands a message back to run again not before `not_before_ms`.
    async fn retry(&self, message: Message, not_before_ms: u64, error: &str) -> QueueResult<()>;
    /// Moves a message that used up its deliveries to the dead letters.
    async fn bury(&self, message: Message, error: &str) -> QueueResult<()>;
    async fn summary(&self) -> QueueResult<QueueSummary>;
}
