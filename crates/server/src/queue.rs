//! Starts the queue the configuration names and the workers that drain it:
//! the fan-out stage, the processor worker (when a processor is
//! configured), the outbox relay (with NATS), the sweep of old
//! processed-message records, the sequencer that numbers committed events
//! (PostgreSQL), and on PostgreSQL the listener that hears other
//! processes' commits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use settle_core::Settle;
use settle_core::operations::QueueHandles;
use settle_core::processor::ProcessorClient;
use settle_core::queue::{
    Backoff, Breaker, BreakerOptions, EMBEDDED_SUBSCRIPTIONS, EmbeddedQueue, JobQueue, RELAY_SUBSCRIPTIONS,
};
use settle_core::tls::OutgoingTls;
use settle_core::webhook::deliver::{DeliveryOptions, DeliveryWorker};
use settle_core::webhook::guard::GuardOptions;
use settle_core::webhook::handoff::Handoff;
use settle_core::workers::{ProcessorWorker, WorkerOptions, WorkerStats, run_change_sender, run_fanout, run_sequencer};
use settle_nats::{NatsOptions, NatsQueue, Relay};
use tokio::task::JoinHandle;

use crate::config::{QueueBackend, QueueConfig, WebhookConfig};

/// The queue of this process, ready to have its workers started.
pub struct QueueRuntime {
    config: QueueConfig,
    /// PostgreSQL's commit listener connects here (none on SQLite).
    listen_url: Option<String>,
    webhooks: WebhookConfig,
    queue: Arc<dyn JobQueue>,
    outbox: Arc<EmbeddedQueue>,
    nats: Option<Arc<NatsQueue>>,
    processor: Option<(ProcessorClient, Arc<Breaker>)>,
    stats: Arc<WorkerStats>,
    tls: OutgoingTls,
    /// New deliveries go from the fan-out to this process's delivery
    /// worker without a claim.
    handoff: Arc<Handoff>,
}

pub fn nats_options(config: &QueueConfig) -> NatsOptions {
    NatsOptions {
        url: config.nats_url.clone(),
        prefix: config.nats_prefix.clone(),
        ack_wait: config.lease,
        duplicate_window: Duration::from_secs(120),
    }
}

impl QueueRuntime {
    /// Subscribes the database's outbox for the chosen backend and attaches
    /// the queue to `settle` (for `/v1/queue` and `/metrics`).
    /// `listen_url` is where PostgreSQL's commit listener connects, so that
    /// other processes' commits wake this one's workers.
    pub async fn build(
        config: &QueueConfig,
        webhooks: &WebhookConfig,
        settle: &Settle,
        listen_url: Option<String>,
    ) -> anyhow::Result<Self> {
        let store = Arc::clone(settle.store());
        let outbox = Arc::new(EmbeddedQueue::new(Arc::clone(&store), settle.clock(), config.lease));
        let (queue, nats): (Arc<dyn JobQueue>, _) = match config.backend {
            QueueBackend::Embedded => {
                store
                    .register_consumers(EMBEDDED_SUBSCRIPTIONS)
                    .await
                    .context("cannot subscribe the embedded queue")?;
                (outbox.clone(), None)
            }
            QueueBackend::Nats => {
                store
                    .register_consumers(RELAY_SUBSCRIPTIONS)
                    .await
                    .context("cannot subscribe the outbox relay")?;
                let nats = Arc::new(
                    NatsQueue::connect(nats_options(config), Arc::clone(&store))
                        .await
                        .with_context(|| format!("cannot use NATS at {}", config.nats_url))?,
                );
                (nats.clone(), Some(nats))
            }
        };
        let tls = match &config.tls_extra_roots {
            Some(path) => OutgoingTls::with_extra_roots_file(path).map_err(anyhow::Error::msg)?,
            None => OutgoingTls::default(),
        };
        let processor = match &config.processor_url {
            Some(url) => Some((
                ProcessorClient::new(url, config.processor_timeout, &tls).map_err(anyhow::Error::msg)?,
                Arc::new(Breaker::new(BreakerOptions {
                    failures: config.breaker_failures,
                    cooldown: config.breaker_cooldown,
                })),
            )),
            None => None,
        };
        let stats = Arc::new(WorkerStats::default());
        settle.attach_queue(QueueHandles {
            queue: Arc::clone(&queue),
            breaker: processor.as_ref().map(|(_, b)| Arc::clone(b)),
            stats: Arc::clone(&stats),
        });
        Ok(Self {
            webhooks: webhooks.clone(),
            config: config.clone(),
            listen_url,
            queue,
            outbox,
            nats,
            processor,
            stats,
            handoff: Handoff::new(config.lease),
            tls,
        })
    }

    /// Puts dead letters (of one consumer, or all) back in the queue.
    pub async fn replay_dead(&self, settle: &Settle, consumer: Option<&str>) -> anyhow::Result<u64> {
        Ok(match &self.nats {
            Some(nats) => nats.replay_dead(consumer).await?,
            None => {
                settle
                    .store()
                    .replay_dead_jobs(consumer, settle.clock().now_ms())
                    .await?
            }
        })
    }

    /// Starts the workers; abort the handles to stop them (a job they held
    /// comes back after its lease).
    pub fn spawn(&self, settle: &Settle) -> Vec<JoinHandle<()>> {
        let mut tasks = self.spawn_without_delivery(settle);
        tasks.extend(self.spawn_delivery(settle));
        tasks
    }

    /// Every worker but webhook delivery: deliveries pile up as pending, so
    /// a benchmark can time the delivery worker alone on a backlog.
    pub fn spawn_without_delivery(&self, settle: &Settle) -> Vec<JoinHandle<()>> {
        let c = &self.config;
        let options = WorkerOptions {
            poll: c.poll,
            batch: 256,
            max_deliveries: c.max_deliveries,
        };
        let backoff = Backoff {
            base: c.retry_base,
            max: c.retry_max,
        };
        let mut tasks = vec![
            tokio::spawn(run_sequencer(settle.clone(), c.poll)),
            tokio::spawn(run_change_sender(settle.clone())),
        ];
        tasks.push(tokio::spawn(run_fanout(
            settle.clone(),
            Arc::clone(&self.queue),
            options.clone(),
            Arc::clone(&self.stats),
            Some(Arc::clone(&self.handoff)),
        )));
        if let Some((client, breaker)) = &self.processor {
            let worker = ProcessorWorker {
                settle: settle.clone(),
                queue: Arc::clone(&self.queue),
                client: client.clone(),
                breaker: Arc::clone(breaker),
                backoff,
                options: WorkerOptions {
                    batch: c.processor_concurrency,
                    ..options.clone()
                },
                stats: Arc::clone(&self.stats),
                next_retry: std::sync::Mutex::default(),
            };
            tasks.push(tokio::spawn(worker.run()));
        } else {
            tracing::info!("no SETTLE_PROCESSOR_URL: payments from processor-backed accounts wait in the queue");
        }
        if let Some(nats) = &self.nats {
            let relay = Relay {
                outbox: Arc::clone(&self.outbox),
                nats: Arc::clone(nats),
                clock: settle.clock(),
                commits: settle.commits().clone(),
                poll: c.poll,
                batch: 256,
                backoff: Backoff {
                    base: Duration::from_millis(100),
                    max: Duration::from_secs(5),
                },
            };
            tasks.push(tokio::spawn(relay.run()));
        }
        tasks.push(tokio::spawn(settle_core::webhook::deliver::run_replays(
            settle.clone(),
            c.lease,
        )));
        if let Some(url) = &self.listen_url {
            // Other processes' commits, heard on a connection of its own.
            tasks.push(tokio::spawn(settle_store_postgres::listener::listen(
                url.clone(),
                settle.store().commit_bus(),
                LISTENER_RETRY,
            )));
        }
        tasks.push(tokio::spawn(reap_processed(settle.clone(), c.processed_retention)));
        tasks
    }

    /// The webhook delivery worker `settle serve` runs, not started.
    pub fn delivery_worker(&self, settle: &Settle) -> Result<DeliveryWorker, String> {
        DeliveryWorker::new(
            settle.clone(),
            delivery_options(&self.webhooks, &self.config, self.tls.clone()),
        )
        .map(|worker| worker.with_handoff(Arc::clone(&self.handoff)))
    }

    /// Starts the webhook delivery worker; none (said in the log) if it cannot.
    fn spawn_delivery(&self, settle: &Settle) -> Option<JoinHandle<()>> {
        match self.delivery_worker(settle) {
            Ok(worker) => Some(tokio::spawn(worker.run())),
            Err(e) => {
                tracing::error!(error = %e, "webhook deliveries cannot start");
                None
            }
        }
    }
}

/// The delivery worker's settings from the configuration, as `settle serve`
/// runs it; settings the configuration does not name keep their defaults.
pub fn delivery_options(w: &WebhookConfig, queue: &QueueConfig, tls: OutgoingTls) -> DeliveryOptions {
    DeliveryOptions {
        schedule: w.retry_schedule.clone(),
        timeout: w.timeout,
        per_endpoint: DeliveryOptions::default().per_endpoint.min(w.max_in_flight),
        max_per_endpoint: w.max_in_flight,
        lease: queue.lease,
        allow_private_targets: w.allow_private_targets,
        disable_after: w.disable_after,
        guard: GuardOptions {
            window: w.breaker_window,
            min_requests: w.breaker_min_requests,
            failure_percent: w.breaker_failure_percent,
            cooldown: w.breaker_cooldown,
        },
        tls,
        ..DeliveryOptions::default()
    }
}

/// How long the commit listener waits before connecting again.
const LISTENER_RETRY: Duration = Duration::from_millis(250);

/// Forgets processed-message records older than any redelivery can be.
async fn reap_processed(settle: Settle, retention: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let before = settle.clock().now_ms().saturating_sub(retention.as_millis() as u64);
        match settle.store().reap_processed(before, 1000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "reaped old processed-message records"),
            Err(e) => tracing::warn!(error = %e, "processed-message reaper failed; retrying next round"),
        }
    }
}
