//! Writes delivery attempts in batches. Each finished request hands its
//! record over and its slot goes to the next delivery at once; one task
//! writes whatever has gathered as one transaction, so while a write is in
//! flight the next batch grows, and a thousand deliveries a second cost a
//! few transactions, not a thousand.
//!
//! A record still waiting here when the process dies is not lost work: its
//! job stays leased until the record's transaction removes it, so the
//! delivery is attempted again after the lease (at least once, with the
//! same `webhook-id`).

use std::sync::Arc;

use settle_domain::ids::WebhookEndpointId;
use settle_store::Store;
use settle_store::webhooks::AttemptRecord;
use tokio::sync::mpsc;

/// The most records one transaction writes.
const MAX_BATCH: usize = 1024;

/// The sending side, cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<(WebhookEndpointId, AttemptRecord)>,
}

impl Recorder {
    /// Starts the writing task. At most `capacity` records wait: past
    /// that, a finishing request waits for room (holding its slot), which
    /// slows claims down to what the database can record.
    pub fn start(store: Arc<dyn Store>, capacity: usize) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx }, tokio::spawn(write(store, rx)))
    }

    /// Hands a record over for the next batch.
    pub async fn record(&self, endpoint: WebhookEndpointId, record: AttemptRecord) {
        if self.tx.send((endpoint, record)).await.is_err() {
            tracing::warn!("the attempt recorder has stopped; the lease will bring the delivery back");
        }
    }
}

async fn write(store: Arc<dyn Store>, mut rx: mpsc::Receiver<(WebhookEndpointId, AttemptRecord)>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let records = std::mem::take(&mut batch);
        if records.len() > 1 {
            match store.record_webhook_attempts(records.clone()).await {
                Ok(()) => continue,
                // One bad record (a delivery deleted with its endpoint
                // while its request was out) must not send the rest again:
                // each on its own, so only that one fails.
                Err(e) => {
                    tracing::warn!(error = %e, attempts = records.len(), "a batch of attempts failed; recording them one by one")
                }
            }
        }
        for record in records {
            record_one(store.as_ref(), record).await;
        }
    }
}

async fn record_one(store: &dyn Store, record: (WebhookEndpointId, AttemptRecord)) {
    if let Err(e) = store.record_webhook_attempts(vec![record]).await {
        tracing::warn!(error = %e, "cannot record an attempt; its lease will bring the delivery back");
    }
}
