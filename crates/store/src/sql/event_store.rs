//! [`crate::EventStore`] for [`SqlStore`]: events and the queue.

use std::sync::Arc;

use async_trait::async_trait;
use settle_domain::ids::EventId;

use super::list::{FilterValue, fetch_page};
use super::rows::EVENT_COLS;
use super::store::spec;
use super::{SqlStore, events, queue, rows};
use crate::EventStore;
use crate::error::StoreResult;
use crate::list::{ListQuery, Page};
use crate::queue::{ConsumerBacklog, JobClaim, LeasedJob, Subscription};
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

    async fn register_consumers(&self, subs: &[Subscription]) -> StoreResult<()> {
        let subs = subs.to_vec();
        self.write_background(move |conn| {
            let subs = subs.clone();
            Box::pin(async move { queue::register(conn, &subs).await })
        })
        .await
    }

    async fn claim_jobs(&self, claim: &JobClaim) -> StoreResult<Vec<LeasedJob>> {
        let (d, claim) = (self.dialect, claim.clone());
        self.write_background(move |conn| {
            let claim = claim.clone();
            Box::pin(async move { queue::claim(conn, d, &claim).await })
        })
        .await
    }

    async fn finish_jobs(&self, jobs: &[LeasedJob]) -> StoreResult<u64> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let (d, jobs) = (self.dialect, jobs.to_vec());
        self.write_background(move |conn| {
            let jobs = jobs.clone();
            Box::pin(async move { queue::finish(conn, d, &jobs).await })
        })
        .await
    }

    async fn retry_job(&self, job: &LeasedJob, run_at_ms: u64, error: &str) -> StoreResult<()> {
        let (job, error) = (job.clone(), error.to_owned());
        self.write_background(move |conn| {
            let (job, error) = (job.clone(), error.clone());
            Box::pin(async move { queue::retry(conn, &job, run_at_ms, &error).await })
        })
        .await
    }

    async fn bury_job(&self, job: &LeasedJob, error: &str, now_ms: u64) -> StoreResult<()> {
        let (d, job, error) = (self.dialect, job.clone(), error.to_owned());
        self.write_background(move |conn| {
            let (job, error) = (job.clone(), error.clone());
            Box::pin(async move { queue::bury(conn, d, &job, &error, now_ms).await })
        })
        .await
    }

    async fn replay_dead_jobs(&self, consumer: Option<&str>, now_ms: u64) -> StoreResult<u64> {
        let consumer = consumer.map(str::to_owned);
        self.write_background(move |conn| {
            let consumer = consumer.clone();
            Box::pin(async move { queue::replay_dead(conn, consumer.as_deref(), now_ms).await })
        })
        .await
    }

    async fn queue_backlog(&self) -> StoreResult<Vec<ConsumerBacklog>> {
        queue::backlog(&mut self.reader()).await
    }

    async fn drain_fanout(&self, max: u32, now_ms: u64) -> StoreResult<u64> {
        let (d, ids) = (self.dialect, Arc::clone(&self.ids));
        self.write_background(move |conn| {
            let ids = Arc::clone(&ids);
            Box::pin(async move { queue::drain_fanout(conn, d, &ids, max, now_ms).await })
        })
        .await
    }

    async fn fan_out_events(&self, event_ids: &[Vec<u8>], now_ms: u64) -> StoreResult<u64> {
        if event_ids.is_empty() {
            return Ok(0);
        }
        let (d, ids, events) = (self.dialect, Arc::clone(&self.ids), event_ids.to_vec());
        self.write_background(move |conn| {
            let (ids, events) = (Arc::clone(&ids), events.clone());
            Box::pin(async move { queue::fan_out(conn, d, &ids, &events, now_ms).await })
        })
        .await
    }

    async fn reap_processed(&self, before_ms: u64, batch: u32) -> StoreResult<u64> {
        self.write_background(move |conn| Box::pin(async move { queue::reap_processed(conn, before_ms, batch).await }))
            .await
    }
}
