//! The consumers that run from the queue: the fan-out stage, which takes
//! every event, and the processor worker, which settles `processing`
//! payments with the external processor's answer. Each acknowledges a
//! message only after its effect and its processed-message record are
//! committed, so a crash at any point means a redelivery, never a loss,
//! and a redelivery is recognised, never applied twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use settle_domain::ids::PaymentId;
use settle_domain::payment::PaymentStatus;
use settle_store::queue::{ProcessedBy, ProcessorOutcome};

use crate::Settle;
use crate::commits::{GATHER, Topic};
use crate::processor::{ChargeResult, ProcessorClient};
use crate::queue::{Backoff, Breaker, FANOUT, JobQueue, Message, PROCESSOR};
use crate::webhook::handoff::Handoff;

/// How the workers wait and give up.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The longest an idle worker waits without news before looking again
    /// (the commit stream's safety net; news wakes it at once).
    pub poll: Duration,
    /// The most messages one claim takes.
    pub batch: usize,
    /// After this many deliveries a message goes to the dead letters.
    pub max_deliveries: u32,
}

/// Counters `/metrics` shows.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub fanout_processed: AtomicU64,
    pub charges_succeeded: AtomicU64,
    pub charges_declined: AtomicU64,
    pub charges_transient: AtomicU64,
    pub buried: AtomicU64,
}

async fn bury(queue: &dyn JobQueue, stats: &WorkerStats, message: Message) {
    let id = message.id();
    let consumer = message.consumer.clone();
    let error = format!("gave up after {} deliveries", message.deliveries);
    match queue.bury(message, &error).await {
        Ok(()) => {
            stats.buried.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%id, consumer, "message moved to the dead letters");
        }
        Err(e) => tracing::warn!(%id, error = %e, "could not move a message to the dead letters"),
    }
}

/// The fan-out stage: records each event as consumed, in batches. On the
/// embedded queue the job, the record and its removal share one
/// transaction, and an idle stage sleeps until events commit; from a
/// broker, the record is committed before the ack, and an idle stage
/// waits inside the broker's pull request for the next message.
/// On the embedded queue, new deliveries are leased to `handoff`'s
/// delivery worker as far as it has room (see [`crate::webhook::handoff`]).
pub async fn run_fanout(
    settle: Settle,
    queue: Arc<dyn JobQueue>,
    options: WorkerOptions,
    stats: Arc<WorkerStats>,
    handoff: Option<Arc<Handoff>>,
) {
    if queue.backend() == "embedded" {
        return drain_fanout(settle, options, stats, handoff).await;
    }
    let mut commits = settle.commits().subscribe(Topic::Events);
    loop {
        let claimed = if queue.pushes() {
            queue.claim_waiting(FANOUT, options.batch, &[], options.poll).await
        } else {
            queue.claim(FANOUT, options.batch, &[]).await
        };
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "fan-out could not claim; retrying");
                tokio::time::sleep(options.poll.min(RETRY_PAUSE)).await;
                continue;
            }
        };
        if claimed.is_empty() {
            if !queue.pushes() {
                commits.wait().await;
            }
            continue;
        }
        let mut live = Vec::with_capacity(claimed.len());
        for message in claimed {
            if message.deliveries > options.max_deliveries {
                bury(queue.as_ref(), &stats, message).await;
            } else {
                live.push(message);
            }
        }
        let ids: Vec<Vec<u8>> = live.iter().map(|m| m.id().to_bytes()).collect();
        let now = settle.clock.now_ms();
        match settle.store.fan_out_events(&ids, now).await {
            Ok(new) => {
                stats.fanout_processed.fetch_add(new, Ordering::Relaxed);
                if let Err(e) = queue.ack(live).await {
                    tracing::warn!(error = %e, "fan-out could not acknowledge; the messages will come back");
                }
            }
            Err(e) => tracing::warn!(error = %e, "fan-out could not record; the messages will come back"),
        }
    }
}

/// How long a worker pauses after a failed claim before trying again (or
/// its poll interval, if shorter): the database or broker is in trouble,
/// and hammering it helps nobody.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

async fn drain_fanout(settle: Settle, options: WorkerOptions, stats: Arc<WorkerStats>, handoff: Option<Arc<Handoff>>) {
    let batch = u32::try_from(options.batch).unwrap_or(u32::MAX);
    let mut commits = settle.commits().subscribe(Topic::Events);
    loop {
        let now = settle.clock.now_ms();
        let lease = handoff.as_ref().and_then(|h| h.lease(now));
        match settle.store.drain_fanout(batch, now, lease).await {
            Ok(drained) => {
                let n = drained.events;
                if let Some(h) = &handoff {
                    h.give(drained.leased);
                }
                stats.fanout_processed.fetch_add(n, Ordering::Relaxed);
                // A partial batch means the backlog is gone: sleep until
                // more commits (news that came during the drain returns at
                // once, after letting a batch gather). A full one means
                // more may be waiting.
                if n < u64::from(batch) {
                    if n > 0 && commits.has_news() {
                        tokio::time::sleep(GATHER).await;
                    }
                    commits.wait().await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "fan-out could not drain; retrying");
                tokio::time::sleep(options.poll.min(RETRY_PAUSE)).await;
            }
        }
    }
}

/// The most events one sequencer step numbers.
const SEQUENCER_BATCH: u32 = 10_000;

/// The sequencer: gives committed events their positions, in batches,
/// whenever events commit (on PostgreSQL; SQLite numbers them as it writes
/// them, and the step does nothing there). Every process runs one; the
/// store's counter row makes them take turns.
pub async fn run_sequencer(settle: Settle, poll: Duration) {
    let mut commits = settle.commits().subscribe(Topic::Events);
    loop {
        match settle.store.number_events(SEQUENCER_BATCH).await {
            Ok(n) if n >= u64::from(SEQUENCER_BATCH) => continue,
            Ok(_) => {
                commits.wait().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the sequencer could not number events; retrying");
                tokio::time::sleep(poll.min(RETRY_PAUSE)).await;
            }
        }
    }
}

/// How long a busy change sender lets changes gather between sends.
const CHANGES_GATHER: Duration = Duration::from_millis(2);

/// Tells other processes which cached objects changed, whenever this
/// process commits a change (on PostgreSQL; SQLite is served by one
/// process, and the step does nothing there). The triggers left the ids in
/// the database; one transaction per batch sends them, so money writes
/// never take NOTIFY's commit lock themselves. It runs apart from the
/// sequencer, whose steps wait for disk flushes: a change goes out about a
/// round trip after its commit. Its safety-net poll sends what a process
/// that died right after its commit left behind.
pub async fn run_change_sender(settle: Settle) {
    let mut commits = settle.commits().subscribe(Topic::Changes);
    loop {
        if let Err(e) = settle.store.send_changes().await {
            tracing::warn!(error = %e, "could not tell other processes which objects changed; retrying");
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        }
        // Commits landed while it sent: a busy writer. Let a batch gather,
        // so that it sends a notification every few milliseconds rather
        // than one per commit (each takes NOTIFY's lock); an idle one
        // sends at once.
        if commits.has_news() {
            tokio::time::sleep(CHANGES_GATHER).await;
        }
        commits.wait().await;
    }
}

/// Everything the processor worker needs.
pub struct ProcessorWorker {
    pub settle: Settle,
    pub queue: Arc<dyn JobQueue>,
    pub client: ProcessorClient,
    pub breaker: Arc<Breaker>,
    pub backoff: Backoff,
    pub options: WorkerOptions,
    pub stats: Arc<WorkerStats>,
    /// The earliest retry this worker handed back (Unix ms), so the wait
    /// after it ends when it is due rather than at the next poll.
    pub next_retry: std::sync::Mutex<Option<u64>>,
}

impl ProcessorWorker {
    /// Claims `processing` payments while the breaker lets calls through,
    /// and works on up to `options.batch` of them at once.
    pub async fn run(self) {
        let this = Arc::new(self);
        let mut commits = this.settle.commits().subscribe(Topic::Events);
        let pushes = this.queue.pushes();
        loop {
            let room = match this.breaker.permits() {
                None => this.options.batch,
                Some(0) => {
                    let wait = this.breaker.wait().clamp(Duration::from_millis(5), this.options.poll);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Some(trial) => trial,
            };
            let claimed = if pushes && room > 1 {
                this.queue.claim_waiting(PROCESSOR, room, &[], this.options.poll).await
            } else {
                this.queue.claim(PROCESSOR, room, &[]).await
            };
            let claimed = match claimed {
                Ok(claimed) => claimed,
                // Treated as nothing claimed, so a breaker trial is given
                // back rather than left pending.
                Err(e) => {
                    tracing::warn!(error = %e, "processor worker could not claim; retrying");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                if room == 1 {
                    this.breaker.abandon_trial();
                }
                // A broker that pushes has waited already. Retries this
                // worker scheduled ring the alarm (see `later`).
                if !pushes || room == 1 {
                    this.wait_for_news(&mut commits).await;
                }
                continue;
            }
            let work = claimed.into_iter().map(|m| {
                let this = Arc::clone(&this);
                tokio::spawn(async move { this.handle(m).await })
            });
            for task in work.collect::<Vec<_>>() {
                let _ = task.await;
            }
        }
    }

    /// Sleeps until a payment commits or a retry this worker scheduled is
    /// due (whichever comes first, and at the latest the poll interval).
    async fn wait_for_news(&self, commits: &mut crate::commits::Subscription) {
        let due = self.next_retry.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(at_ms) = due {
            let now = self.settle.clock.now_ms();
            commits.alarm().within(Duration::from_millis(at_ms.saturating_sub(now)));
        }
        commits.wait().await;
    }

    async fn handle(&self, message: Message) {
        if message.deliveries > self.options.max_deliveries {
            return bury(self.queue.as_ref(), &self.stats, message).await;
        }
        let id = message.event.data["object"]["id"].as_str().and_then(PaymentId::parse);
        let Some(id) = id else {
            return bury(self.queue.as_ref(), &self.stats, message).await;
        };
        let payment = match self.settle.store.payment(id).await {
            Ok(Some(p)) => p,
            Ok(None) => return bury(self.queue.as_ref(), &self.stats, message).await,
            Err(e) => return self.later(message, &e.to_string()).await,
        };
        if payment.status != PaymentStatus::Processing {
            // Concluded by an earlier delivery whose acknowledgement was lost.
            return self.ack(message).await;
        }
        // The charge continues the trace of the request that made the payment.
        let mut span = match message
            .event
            .traceparent
            .as_deref()
            .and_then(settle_trace::TraceContext::parse)
        {
            Some(parent) => {
                let mut span = settle_trace::Span::start("processor.charge", settle_trace::SpanKind::Client, &parent);
                span.attr("settle.payment", id.to_string());
                span
            }
            None => settle_trace::Span::none(),
        };
        let traceparent = span.context().map(|c| c.header());
        let outcome = match self.client.charge(&payment, traceparent.as_deref()).await {
            ChargeResult::Succeeded => {
                self.stats.charges_succeeded.fetch_add(1, Ordering::Relaxed);
                ProcessorOutcome::Succeeded
            }
            ChargeResult::Declined(reason) => {
                self.stats.charges_declined.fetch_add(1, Ordering::Relaxed);
                tracing::info!(payment = %id, reason, "the processor declined a charge");
                ProcessorOutcome::Declined
            }
            ChargeResult::Transient(error) => {
                self.stats.charges_transient.fetch_add(1, Ordering::Relaxed);
                self.breaker.failure();
                span.fail(error.clone());
                span.end();
                return self.later(message, &error).await;
            }
        };
        self.breaker.success();
        let done = ProcessedBy {
            consumer: PROCESSOR.to_owned(),
            message_id: message.id().to_bytes(),
        };
        // The payment's conclusion (and its events) join the same trace.
        let ctx = settle_trace::within(span.context(), async {
            self.settle.context(&format!("queue_{}", message.id()), None)
        })
        .await;
        let concluded = self.settle.store.conclude_payment(&ctx, &done, id, outcome).await;
        span.end();
        match concluded {
            Ok(_) => self.ack(message).await,
            Err(e) => self.later(message, &e.to_string()).await,
        }
    }

    async fn ack(&self, message: Message) {
        if let Err(e) = self.queue.ack(vec![message]).await {
            tracing::warn!(error = %e, "processor worker could not acknowledge; the message will come back");
        }
    }

    async fn later(&self, message: Message, error: &str) {
        let delay = self.backoff.delay(message.deliveries);
        let at = self.settle.clock.now_ms().saturating_add(delay.as_millis() as u64);
        if let Err(e) = self.queue.retry(message, at, error).await {
            tracing::warn!(error = %e, "could not reschedule a charge; it comes back after its lease");
            return;
        }
        let mut next = self.next_retry.lock().unwrap_or_else(|e| e.into_inner());
        *next = Some(next.map_or(at, |t| t.min(at)));
    }
}
