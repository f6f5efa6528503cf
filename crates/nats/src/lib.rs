//! NATS JetStream as Settle's queue, for several processes sharing work.
//!
//! The database stays the outbox: the `events_enqueue` trigger gives every
//! committed event a `relay` job, and the [`Relay`] publishes those to the
//! events stream with the event id as `Nats-Msg-Id` (a retry inside the
//! broker's duplicate window is dropped there), marking a job done only
//! after the broker acknowledged it. Consumers are durable pull consumers
//! with explicit acks, redelivered after the ack wait. Server 2.9 has no
//! dead-letter queue, so a consumer that sees a message's delivery count
//! pass the bound moves it to a dead-letter stream itself and terminates
//! it; `settle queue replay` puts dead letters back.

mod attempts;
mod relay;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, stream};
use async_trait::async_trait;
use futures::StreamExt;
use settle_core::queue::{FANOUT, JobQueue, Message, PROCESSOR, QueueError, QueueResult, QueueSummary};
use settle_domain::ids::EventId;
use settle_store::Store;
use settle_store::queue::ConsumerBacklog;
use settle_store::records::Event;
use tokio::sync::OnceCell;

use crate::attempts::Attempts;

pub use relay::Relay;

/// The longest a claim holds a pull request open waiting for a message;
/// longer waits are cut into requests of this length.
const MAX_HELD_REQUEST: Duration = Duration::from_secs(30);

/// Where and how to use NATS.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    pub url: String,
    /// Names the streams (`<PREFIX>_EVENTS`, `<PREFIX>_DEAD`) and subjects
    /// (`<prefix>.events.<type>`), so several deployments (or test runs)
    /// can share one server.
    pub prefix: String,
    /// How long a delivered message may stay unacknowledged before the
    /// broker redelivers it (`SETTLE_QUEUE_LEASE`).
    pub ack_wait: Duration,
    /// Publishes with the same message id inside this window are dropped.
    pub duplicate_window: Duration,
}

impl NatsOptions {
    fn stream(&self) -> String {
        format!("{}_EVENTS", self.prefix.to_uppercase())
    }
    fn dead_stream(&self) -> String {
        format!("{}_DEAD", self.prefix.to_uppercase())
    }
    /// The subject an event of `event_type` is published on.
    pub fn subject(&self, event_type: &str) -> String {
        format!("{}.events.{event_type}", self.prefix)
    }
    fn dead_subject(&self, consumer: &str) -> String {
        format!("{}.dead.{consumer}", self.prefix)
    }
    /// The subjects each consumer takes, as the embedded subscriptions do.
    fn filter(&self, consumer: &str) -> String {
        match consumer {
            PROCESSOR => self.subject("payment.processing"),
            _ => format!("{}.events.>", self.prefix),
        }
    }
}

struct Streams {
    events: stream::Stream,
    dead: stream::Stream,
    consumers: HashMap<&'static str, PullConsumer>,
}

/// The JetStream queue. Connecting never blocks start-up: streams and
/// consumers are set up on first use and again after a failure, so Settle
/// keeps taking requests (and filling the outbox) while NATS is away.
pub struct NatsQueue {
    options: NatsOptions,
    js: jetstream::Context,
    store: Arc<dyn Store>,
    streams: OnceCell<Streams>,
    attempts: Attempts,
}

fn broker<E: std::fmt::Display>(e: E) -> QueueError {
    QueueError::Broker(e.to_string())
}

impl NatsQueue {
    /// Starts connecting (in the background if NATS is not there yet).
    pub async fn connect(options: NatsOptions, store: Arc<dyn Store>) -> QueueResult<Self> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            // Back within two seconds of NATS returning, however long it was away.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100u64.saturating_mul(1 << attempts.min(5))).min(Duration::from_secs(2))
            })
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(Duration::from_secs(5)))
            .connect(options.url.as_str())
            .await
            .map_err(broker)?;
        let js = jetstream::new(client);
        Ok(Self {
            options,
            js,
            store,
            streams: OnceCell::new(),
            attempts: Attempts::default(),
        })
    }

    pub fn options(&self) -> &NatsOptions {
        &self.options
    }

    pub(crate) fn context(&self) -> &jetstream::Context {
        &self.js
    }

    async fn streams(&self) -> QueueResult<&Streams> {
        self.streams.get_or_try_init(|| self.set_up()).await
    }

    async fn set_up(&self) -> QueueResult<Streams> {
        let o = &self.options;
        let events = self
            .js
            .get_or_create_stream(stream::Config {
                name: o.stream(),
                subjects: vec![format!("{}.events.>", o.prefix)],
                duplicate_window: o.duplicate_window,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(broker)?;
        let dead = self
            .js
            .get_or_create_stream(stream::Config {
                name: o.dead_stream(),
                subjects: vec![format!("{}.dead.>", o.prefix)],
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(broker)?;
        let mut consumers = HashMap::new();
        for name in [FANOUT, PROCESSOR] {
            let consumer = events
                .get_or_create_consumer(
                    name,
                    pull::Config {
                        durable_name: Some(name.to_owned()),
                        filter_subject: o.filter(name),
                        ack_policy: AckPolicy::Explicit,
                        ack_wait: o.ack_wait,
                        deliver_policy: DeliverPolicy::All,
                        max_deliver: -1,
                        max_ack_pending: 10_000,
                        ..Default::default()
                    },
                )
                .await
                .map_err(broker)?;
            consumers.insert(name, consumer);
        }
        Ok(Streams {
            events,
            dead,
            consumers,
        })
    }

    /// Deletes this prefix's streams (tests clean up after themselves).
    pub async fn delete_streams(&self) -> QueueResult<()> {
        for name in [self.options.stream(), self.options.dead_stream()] {
            let _ = self.js.delete_stream(name).await;
        }
        Ok(())
    }

    /// Publishes the dead letters of `consumer` (or all) again as fresh
    /// messages, so every consumer sees them once more (processed-message
    /// records keep that harmless), and removes them from the dead stream.
    pub async fn replay_dead(&self, consumer: Option<&str>) -> QueueResult<u64> {
        let streams = self.streams().await?;
        let mut dead = streams.dead.clone();
        let last = dead.info().await.map_err(broker)?.state.last_sequence;
        let filter = match consumer {
            Some(c) => self.options.dead_subject(c),
            None => format!("{}.dead.>", self.options.prefix),
        };
        let mut replayed = 0;
        let mut seq = 1;
        while seq <= last {
            let Ok(msg) = dead.direct_get_next_for_subject(filter.as_str(), Some(seq)).await else {
                break;
            };
            let subject = msg
                .headers
                .get("Settle-Subject")
                .map(|v| v.to_string())
                .ok_or_else(|| broker("dead letter without its subject"))?;
            let mut headers = HeaderMap::new();
            headers.insert(
                "Nats-Msg-Id",
                format!("replay-{}-{}", msg.sequence, msg.time.unix_timestamp()).as_str(),
            );
            self.js
                .publish_with_headers(subject, headers, msg.payload.clone())
                .await
                .map_err(broker)?
                .await
                .map_err(broker)?;
            dead.delete_message(msg.sequence).await.map_err(broker)?;
            replayed += 1;
            seq = msg.sequence + 1;
        }
        Ok(replayed)
    }
}

/// Parses an event as the relay published it.
fn decode(payload: &[u8]) -> QueueResult<Event> {
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(broker)?;
    let id = v["id"]
        .as_str()
        .and_then(EventId::parse)
        .ok_or_else(|| broker("message without an event id"))?;
    Ok(Event {
        id,
        event_type: v["type"].as_str().unwrap_or_default().to_owned(),
        data: v["data"].clone(),
        sequence: v["sequence"].as_i64().unwrap_or_default(),
        position: v["position"].as_i64(),
        request_id: v["request_id"].as_str().map(str::to_owned),
        created: v["created"].as_i64().unwrap_or_default(),
        traceparent: None,
    })
}

/// The messages of one pull request, as consumers see them: those of a
/// busy key are handed back for a moment and unreadable ones terminated.
async fn take(
    consumer: &str,
    attempts: &Attempts,
    mut batch: impl futures::Stream<Item = Result<jetstream::Message, impl std::fmt::Display>> + Unpin,
    skip_keys: &[String],
) -> QueueResult<Vec<Message>> {
    let mut out = Vec::new();
    // A request lost with the connection would wait forever: give up on it
    // and take what arrived. Held-open requests expire on the broker's side
    // well before this.
    let limit = Duration::from_secs(5) + MAX_HELD_REQUEST;
    while let Ok(Some(next)) = tokio::time::timeout(limit, batch.next()).await {
        let msg = next.map_err(broker)?;
        let info = msg.info().map_err(broker)?;
        let by_broker = u32::try_from(info.delivered).unwrap_or(u32::MAX);
        let sequence = info.stream_sequence;
        let published = (info.published.unix_timestamp_nanos() / 1_000_000) as i64;
        let key = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Settle-Key"))
            .map(|v| v.to_string());
        if let Some(k) = &key
            && skip_keys.contains(k)
        {
            // Its key is busy: back in a moment, without holding anything up.
            msg.ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await
                .map_err(broker)?;
            continue;
        }
        let deliveries = attempts.delivered(consumer, sequence, by_broker);
        let event = match decode(&msg.payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable message terminated");
                msg.ack_with(AckKind::Term).await.map_err(broker)?;
                attempts.forget(consumer, sequence);
                continue;
            }
        };
        let mut message = Message::new(consumer.to_owned(), event, deliveries, published, Box::new(msg));
        message.key = key;
        out.push(message);
    }
    Ok(out)
}

fn nats_message(message: Message) -> QueueResult<jetstream::Message> {
    message
        .into_handle()
        .downcast::<jetstream::Message>()
        .map(|m| *m)
        .map_err(|_| broker("message was not claimed from NATS"))
}

#[async_trait]
impl JobQueue for NatsQueue {
    fn backend(&self) -> &'static str {
        "nats"
    }

    async fn claim(&self, consumer: &str, max: usize, skip_keys: &[String]) -> QueueResult<Vec<Message>> {
        let pull = self.pull(consumer).await?;
        let batch = pull.fetch().max_messages(max).messages().await.map_err(broker)?;
        take(consumer, &self.attempts, batch, skip_keys).await
    }

    fn pushes(&self) -> bool {
        true
    }

    /// One pull request for a single message, which the broker holds open
    /// until a message arrives (its push is the wake-up) or `wait` passes;
    /// then whatever else is ready, without waiting. A request for one
    /// message is complete once it is answered, so nothing is left in
    /// flight to be redelivered after the ack wait.
    async fn claim_waiting(
        &self,
        consumer: &str,
        max: usize,
        skip_keys: &[String],
        wait: Duration,
    ) -> QueueResult<Vec<Message>> {
        let pull = self.pull(consumer).await?;
        let first = pull
            .batch()
            .max_messages(1)
            .expires(wait.clamp(Duration::from_millis(10), MAX_HELD_REQUEST))
            .messages()
            .await
            .map_err(broker)?;
        let mut out = take(consumer, &self.attempts, first, skip_keys).await?;
        if out.is_empty() || max <= 1 {
            return Ok(out);
        }
        let rest = pull.fetch().max_messages(max - 1).messages().await.map_err(broker)?;
        out.extend(take(consumer, &self.attempts, rest, skip_keys).await?);
        Ok(out)
    }

    async fn ack(&self, messages: Vec<Message>) -> QueueResult<()> {
        for message in messages {
            let consumer = message.consumer.clone();
            let msg = nats_message(message)?;
            msg.ack().await.map_err(broker)?;
            if let Ok(info) = msg.info() {
                self.attempts.forget(&consumer, info.stream_sequence);
            }
        }
        Ok(())
    }

    async fn retry(&self, message: Message, not_before_ms: u64, _error: &str) -> QueueResult<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let delay = Duration::from_millis(not_before_ms.saturating_sub(now));
        nats_message(message)?
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(broker)
    }

    async fn bury(&self, message: Message, error: &str) -> QueueResult<()> {
        let consumer = message.consumer.clone();
        let msg = nats_message(message)?;
        let mut headers = HeaderMap::new();
        headers.insert("Settle-Subject", msg.subject.as_str());
        headers.insert("Settle-Error", error);
        let info = msg.info().map_err(broker)?;
        headers.insert(
            "Nats-Msg-Id",
            format!("dead-{consumer}-{}", info.stream_sequence).as_str(),
        );
        self.js
            .publish_with_headers(self.options.dead_subject(&consumer), headers, msg.payload.clone())
            .await
            .map_err(broker)?
            .await
            .map_err(broker)?;
        msg.ack_with(AckKind::Term).await.map_err(broker)?;
        self.attempts.forget(&consumer, info.stream_sequence);
        Ok(())
    }

    async fn summary(&self) -> QueueResult<QueueSummary> {
        // The relay's backlog lives in the database and matters most when
        // the broker is away, so it is reported even then.
        let relay = self
            .store
            .queue_backlog()
            .await?
            .into_iter()
            .find(|b| b.consumer == settle_core::queue::RELAY);
        let (consumers, broker_error) = match self.consumer_backlogs().await {
            Ok(c) => (c, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        Ok(QueueSummary {
            backend: self.backend(),
            consumers,
            relay_pending: relay.as_ref().map_or(0, |r| r.pending),
            relay_oldest_ms: relay.and_then(|r| r.oldest_created_ms),
            broker_error,
        })
    }
}

impl NatsQueue {
    async fn pull(&self, consumer: &str) -> QueueResult<&PullConsumer> {
        self.streams()
            .await?
            .consumers
            .get(consumer)
            .ok_or_else(|| broker(format!("no consumer named {consumer}")))
    }

    async fn consumer_backlogs(&self) -> QueueResult<Vec<ConsumerBacklog>> {
        let streams = self.streams().await?;
        let mut consumers = Vec::new();
        for name in [FANOUT, PROCESSOR] {
            let Some(pull) = streams.consumers.get(name) else {
                continue;
            };
            let mut pull = pull.clone();
            let info = pull.info().await.map_err(broker)?.clone();
            let pending = info.num_pending + info.num_ack_pending as u64;
            let mut oldest = None;
            if pending > 0 {
                let next = streams
                    .events
                    .direct_get_next_for_subject(self.options.filter(name), Some(info.ack_floor.stream_sequence + 1))
                    .await;
                if let Ok(m) = next {
                    oldest = Some((m.time.unix_timestamp_nanos() / 1_000_000) as i64);
                }
            }
            let dead = streams.dead.clone();
            let dead_count = dead
                .info_with_subjects(self.options.dead_subject(name))
                .await
                .map_err(broker)?
                .next()
                .await
                .and_then(Result::ok)
                .map_or(0, |(_, n)| n as u64);
            consumers.push(ConsumerBacklog {
                consumer: name.to_owned(),
                pending,
                oldest_created_ms: oldest,
                dead: dead_count,
            });
        }
        Ok(consumers)
    }
}
