//! What operators see of the queue: the backlog per consumer, relay lag,
//! dead letters, and the processor's breaker. `GET /v1/queue` and
//! `/metrics` both read [`QueueStatus`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::queue::{Breaker, JobQueue};
use crate::workers::WorkerStats;
use crate::{ServiceError, Settle};

/// The running queue and its workers, attached once at start-up.
#[derive(Clone)]
pub struct QueueHandles {
    pub queue: Arc<dyn JobQueue>,
    /// Absent when no processor is configured.
    pub breaker: Option<Arc<Breaker>>,
    pub stats: Arc<WorkerStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerStatus {
    pub consumer: String,
    pub pending: u64,
    /// Age of the oldest pending message, in milliseconds.
    pub oldest_pending_age_ms: u64,
    pub dead_letters: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RelayStatus {
    /// Committed outbox rows the broker has not acknowledged yet.
    pub pending: u64,
    /// How long the oldest of them has waited, in milliseconds.
    pub lag_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessorStatus {
    pub breaker: &'static str,
    pub breaker_opened: u64,
    pub breaker_closed: u64,
    pub charges_succeeded: u64,
    pub charges_declined: u64,
    pub charges_failed_transiently: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    pub object: &'static str,
    pub backend: &'static str,
    pub consumers: Vec<ConsumerStatus>,
    pub relay: RelayStatus,
    pub processor: Option<ProcessorStatus>,
    pub fanout_processed: u64,
    pub buried: u64,
    /// Set when the broker did not answer: the consumer figures are missing.
    pub broker_error: Option<String>,
}

impl Settle {
    /// Attaches the running queue; later calls are ignored.
    pub fn attach_queue(&self, handles: QueueHandles) {
        let _ = self.queue.set(handles);
    }

    pub async fn queue_status(&self) -> Result<QueueStatus, ServiceError> {
        let handles = self.queue.get().ok_or_else(|| {
            ServiceError::Store(settle_store::StoreError::Unavailable(
                "the queue is not running in this process".into(),
            ))
        })?;
        let summary = handles
            .queue
            .summary()
            .await
            .map_err(|e| ServiceError::Store(settle_store::StoreError::Unavailable(e.to_string())))?;
        let now = self.clock.now_ms() as i64;
        let age = |oldest: Option<i64>| oldest.map_or(0, |t| u64::try_from(now - t).unwrap_or(0));
        let stats = &handles.stats;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        Ok(QueueStatus {
            object: "queue",
            backend: summary.backend,
            consumers: summary
                .consumers
                .iter()
                .map(|c| ConsumerStatus {
                    consumer: c.consumer.clone(),
                    pending: c.pending,
                    oldest_pending_age_ms: age(c.oldest_created_ms),
                    dead_letters: c.dead,
                })
                .collect(),
            relay: RelayStatus {
                pending: summary.relay_pending,
                lag_ms: age(summary.relay_oldest_ms),
            },
            processor: handles.breaker.as_ref().map(|b| {
                let (opened, closed) = b.transitions();
                ProcessorStatus {
                    breaker: b.state().as_str(),
                    breaker_opened: opened,
                    breaker_closed: closed,
                    charges_succeeded: load(&stats.charges_succeeded),
                    charges_declined: load(&stats.charges_declined),
                    charges_failed_transiently: load(&stats.charges_transient),
                }
            }),
            fanout_processed: load(&stats.fanout_processed),
            buried: load(&stats.buried),
            broker_error: summary.broker_error,
        })
    }
}
