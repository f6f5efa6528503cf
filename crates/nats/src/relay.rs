//! The outbox relay: moves committed events from the database to the
//! events stream. A job is finished only after the broker acknowledged its
//! publish, so a crash or an unreachable broker means a later publish of
//! the same message id, which the broker drops as a duplicate inside its
//! window (and consumers' processed-message records absorb after it).

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use settle_core::clock::Clock;
use settle_core::commits::{CommitStream, GATHER, Topic};
use settle_core::queue::{Backoff, EmbeddedQueue, JobQueue, RELAY};

use crate::NatsQueue;

pub struct Relay {
    pub outbox: Arc<EmbeddedQueue>,
    pub nats: Arc<NatsQueue>,
    pub clock: Arc<dyn Clock>,
    /// Wakes the relay when events commit (here, or in another process
    /// sharing the database); its poll is the safety net.
    pub commits: CommitStream,
    pub poll: Duration,
    pub batch: usize,
    pub backoff: Backoff,
}

impl Relay {
    pub async fn run(self) {
        let mut failures = 0u32;
        let mut commits = self.commits.subscribe(Topic::Events);
        loop {
            let claimed = match self.outbox.claim(RELAY, self.batch, &[]).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "relay could not read the outbox; retrying");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                commits.wait().await;
                continue;
            }
            // Commits kept coming while this batch was read: let the next gather.
            let gather = claimed.len() < self.batch && commits.has_news();
            // Publish the whole batch, then wait for every acknowledgement.
            let mut pending = Vec::with_capacity(claimed.len());
            for message in claimed {
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", message.id().to_string().as_str());
                let subject = self.nats.options().subject(&message.event.event_type);
                let body = serde_json::to_vec(&message.event).unwrap_or_default();
                let sent = self
                    .nats
                    .context()
                    .publish_with_headers(subject, headers, body.into())
                    .await;
                pending.push((message, sent));
            }
            let (mut done, mut failed) = (Vec::new(), Vec::new());
            for (message, sent) in pending {
                let acked = match sent {
                    Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match acked {
                    Ok(()) => done.push(message),
                    Err(e) => failed.push((message, e)),
                }
            }
            if let Err(e) = self.outbox.ack(done).await {
                tracing::warn!(error = %e, "relay could not mark events sent; they will be sent again");
            }
            if failed.is_empty() {
                failures = 0;
                if gather {
                    tokio::time::sleep(GATHER).await;
                }
                continue;
            }
            failures = failures.saturating_add(1);
            let delay = self.backoff.delay(failures);
            tracing::warn!(count = failed.len(), error = %failed[0].1, "broker did not acknowledge; retrying");
            let at = self.clock.now_ms().saturating_add(delay.as_millis() as u64);
            for (message, error) in failed {
                if let Err(e) = self.outbox.retry(message, at, &error).await {
                    tracing::warn!(error = %e, "relay could not reschedule; the lease will bring it back");
                }
            }
            tokio::time::sleep(delay.min(self.poll * 10)).await;
        }
    }
}
