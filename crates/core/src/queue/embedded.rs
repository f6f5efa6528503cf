//! The queue in the application's own database: jobs written by the
//! outbox trigger in each event's transaction, claimed under a lease.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use settle_domain::ids::EventId;
use settle_store::Store;
use settle_store::queue::{JobClaim, LeasedJob};

use super::{JobQueue, Message, QueueError, QueueResult, QueueSummary, RELAY};
use crate::clock::Clock;

pub struct EmbeddedQueue {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    lease: Duration,
}

impl EmbeddedQueue {
    /// `lease` bounds how long a crashed worker's job waits before another
    /// worker takes it (`SETTLE_QUEUE_LEASE`).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, lease: Duration) -> Self {
        Self { store, clock, lease }
    }

    /// Leases raw jobs (the relay reads events itself).
    pub async fn claim_jobs(&self, consumer: &str, max: usize, skip_keys: &[String]) -> QueueResult<Vec<LeasedJob>> {
        let claim = JobClaim {
            consumer: consumer.to_owned(),
            max: u32::try_from(max).unwrap_or(u32::MAX),
            skip_keys: skip_keys.to_vec(),
            now_ms: self.clock.now_ms(),
            lease_ms: self.lease.as_millis() as u64,
            token: rand::random::<i64>(),
        };
        Ok(self.store.claim_jobs(&claim).await?)
    }
}

fn leased(message: Message) -> QueueResult<LeasedJob> {
    message
        .handle
        .downcast::<LeasedJob>()
        .map(|job| *job)
        .map_err(|_| QueueError::Broker("message was not claimed from the embedded queue".into()))
}

#[async_trait]
impl JobQueue for EmbeddedQueue {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn claim(&self, consumer: &str, max: usize, skip_keys: &[String]) -> QueueResult<Vec<Message>> {
        let jobs = self.claim_jobs(consumer, max, skip_keys).await?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<EventId> = jobs.iter().filter_map(|j| EventId::from_bytes(&j.message_id)).collect();
        let mut events = self.store.events_by_ids(&ids).await?.into_iter().peekable();
        let mut messages = Vec::with_capacity(jobs.len());
        let mut orphans = Vec::new();
        // Both lists are in id order: walk them together.
        for job in jobs {
            while events.peek().is_some_and(|e| e.id.to_bytes() < job.message_id) {
                events.next();
            }
            match events.next_if(|e| e.id.to_bytes() == job.message_id) {
                Some(event) => messages.push(Message {
                    consumer: job.consumer.clone(),
                    event,
                    key: job.key.clone(),
                    deliveries: job.deliveries,
                    enqueued_ms: job.created_ms,
                    handle: Box::new(job),
                }),
                None => orphans.push(job),
            }
        }
        // A job whose event is gone has nothing left to do.
        self.store.finish_jobs(&orphans).await?;
        Ok(messages)
    }

    async fn ack(&self, messages: Vec<Message>) -> QueueResult<()> {
        let jobs = messages.into_iter().map(leased).collect::<QueueResult<Vec<_>>>()?;
        self.store.finish_jobs(&jobs).await?;
        Ok(())
    }

    async fn retry(&self, message: Message, not_before_ms: u64, error: &str) -> QueueResult<()> {
        let job = leased(message)?;
        self.store.retry_job(&job, not_before_ms, error).await?;
        Ok(())
    }

    async fn bury(&self, message: Message, error: &str) -> QueueResult<()> {
        let job = leased(message)?;
        self.store.bury_job(&job, error, self.clock.now_ms()).await?;
        Ok(())
    }

    async fn summary(&self) -> QueueResult<QueueSummary> {
        let mut consumers = self.store.queue_backlog().await?;
        let relay = consumers
            .iter()
            .position(|c| c.consumer == RELAY)
            .map(|i| consumers.remove(i));
        Ok(QueueSummary {
            backend: self.backend(),
            relay_pending: relay.as_ref().map_or(0, |r| r.pending),
            relay_oldest_ms: relay.and_then(|r| r.oldest_created_ms),
            consumers,
            broker_error: None,
        })
    }
}
