//! [`crate::EventStore`] for [`SqlStore`]: events and the queue.

use std::sync::Arc;

use async_trait::async_trait;
use settle_domain::ids::EventId;

use super::list::{FilterValue, fetch_page};
use super::rows::EVENT_COLS;
use super::store::spec;
use super::{SqlStore, events, queue, rows};
use crate::EventStore;
use crate::commits::{CommitBus, Touched};
use crate::error::StoreResult;
use crate::list::{ListQuery, Page};
use crate::queue::{ConsumerBacklog, FanoutDrained, FanoutLease, JobClaim, LeasedJob, Subscription};
use crate::records::{Event, EventFilter};

#[async_trait]
impl EventStore for SqlStore {
    async fn event(&self, id: EventId) -> StoreResult<Option<Event>> {
        events::get(&mut self.reader(), id).await
    }

    async fn list_events(&self, q: &ListQuery<EventFilter>) -> StoreResult<Page<Event>> {
        let filter = q.filter.as_ref().map(|f| match f {
            EventFilter::Type(t) => ("type", FilterValue::Text(t.clone())),
            EventFilter::Object(o) => ("object_id", FilterValue::Bytes(o.clone())),
        });
        fetch_page(&mut self.reader(), spec("events", EVENT_COLS, q, filter), rows::event).await
    }

    async fn events_by_ids(&self, ids: &[EventId]) -> StoreResult<Vec<Event>> {
        events::by_ids(&mut self.reader(), self.dialect, ids).await
    }

    async fn events_after(&self, position: i64, limit: u32) -> StoreResult<Page<Event>> {
        events::after_position(&mut self.reader(), position, limit).await
    }

    async fn number_events(&self, most: u32) -> StoreResult<u64> {
        if self.dialect == super::Dialect::Sqlite {
            return Ok(0);
        }
        let numbered = self
            .write_background(move |tx| Box::pin(events::number(tx, most)))
            .await?;
        if numbered > 0 {
            self.commits.announce(Touched::POSITIONS);
        }
        Ok(numbered)
    }

    async fn send_changes(&self) -> StoreResult<u64> {
        if self.dialect == super::Dialect::Sqlite {
            return Ok(0);
        }
        // One statement, its own transaction (autocommit on the shared
        // pool): one round trip, where the write path's BEGIN and COMMIT
        // would add two to every change's way to other processes.
        events::send_changes(&mut *self.reader()).await
    }

    fn commit_bus(&self) -> Arc<CommitBus> {
        SqlStore::commit_bus(self)
    }

    async fn register_consumers(&self, subs: &[Subscription]) -> StoreResult<()> {
        let subs = subs.to_vec();
        self.write_background(move |tx| Box::pin(queue::register(tx, subs.clone())))
            .await
    }

    async fn claim_jobs(&self, claim: &JobClaim) -> StoreResult<Vec<LeasedJob>> {
        let claim = claim.clone();
        self.write_background(move |tx| Box::pin(queue::claim(tx, claim.clone())))
            .await
    }

    async fn finish_jobs(&self, jobs: &[LeasedJob]) -> StoreResult<u64> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let jobs = jobs.to_vec();
        self.write_background(move |tx| Box::pin(queue::finish(tx, jobs.clone())))
            .await
    }

    async fn retry_job(&self, job: &LeasedJob, run_at_ms: u64, error: &str) -> StoreResult<()> {
        let (job, error) = (job.clone(), error.to_owned());
        self.write_background(move |tx| Box::pin(queue::retry(tx, job.clone(), run_at_ms, error.clone())))
            .await
    }

    async fn bury_job(&self, job: &LeasedJob, error: &str, now_ms: u64) -> StoreResult<()> {
        let (job, error) = (job.clone(), error.to_owned());
        self.write_background(move |tx| Box::pin(queue::bury(tx, job.clone(), error.clone(), now_ms)))
            .await
    }

    async fn replay_dead_jobs(&self, consumer: Option<&str>, now_ms: u64) -> StoreResult<u64> {
        let consumer = consumer.map(str::to_owned);
        self.write_background(move |tx| Box::pin(queue::replay_dead(tx, consumer.clone(), now_ms)))
            .await
    }

    async fn queue_backlog(&self) -> StoreResult<Vec<ConsumerBacklog>> {
        queue::backlog(&mut self.reader()).await
    }

    async fn drain_fanout(&self, max: u32, now_ms: u64, lease: Option<FanoutLease>) -> StoreResult<FanoutDrained> {
        self.write_background(move |tx| Box::pin(queue::drain_fanout(tx, max, now_ms, lease)))
            .await
    }

    async fn fan_out_events(&self, event_ids: &[Vec<u8>], now_ms: u64) -> StoreResult<u64> {
        if event_ids.is_empty() {
            return Ok(0);
        }
        let event_ids = event_ids.to_vec();
        self.write_background(move |tx| Box::pin(queue::fan_out(tx, event_ids.clone(), now_ms)))
            .await
    }

    async fn reap_processed(&self, before_ms: u64, batch: u32) -> StoreResult<u64> {
        self.write_background(move |tx| Box::pin(queue::reap_processed(tx, before_ms, batch)))
            .await
    }
}
