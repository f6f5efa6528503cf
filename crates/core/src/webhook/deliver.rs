//! The delivery worker. It claims delivery jobs in batches, leaving aside
//! endpoints already at their in-flight limit or paused by their breaker
//! (see [`super::guard`]: only unreachable receivers are slowed or paused),
//! so a slow or dead receiver holds back only its own deliveries; a global
//! cap bounds all requests at once. A claimed batch is read in two
//! statements (its deliveries, its events), each event is serialized once
//! however many endpoints get it, and endpoints come signed-ready from
//! memory ([`super::signers`]). Each attempt is signed, sent on a kept-alive
//! connection with a timeout and no redirects, and its record handed to
//! [`super::recorder`], which writes the records of many attempts in one
//! transaction: delivered on a 2xx; the endpoint disabled on 410; otherwise
//! another attempt after the schedule's next delay (scaled by a random
//! factor in [0.8, 1.2], and at least the receiver's `Retry-After` up to a
//! day), or failed at its end.
//!
//! The worker sleeps until jobs commit (the commit stream), a slot frees,
//! a retry comes due or a breaker cools down; it never polls on a timer
//! except the stream's safety net.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use settle_domain::ids::{EventId, WebhookAttemptId, WebhookDeliveryId, WebhookEndpointId};
use settle_domain::webhook::{DeliveryStatus, EndpointStatus, RetrySchedule, WebhookAttempt, WebhookDelivery};
use settle_store::queue::{JobClaim, LeasedJob};
use settle_store::sql::webhooks::DELIVERY_CONSUMER;
use settle_store::webhooks::AttemptRecord;

use super::guard::{EndpointGuard, Gate, GuardOptions, Outcome};
use super::handoff::Handoff;
use super::recorder::Recorder;
use super::signers::{Signer, Signers};
use super::signing::signature;
use super::stats::AttemptOutcome;
use super::target;
use crate::Settle;
use crate::commits::{Alarm, GATHER, Topic};
use crate::tls::OutgoingTls;

/// Tunables of delivery, each with the SPEC default.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub schedule: RetrySchedule,
    pub timeout: Duration,
    /// Requests in flight to an endpoint at first: its limit grows from
    /// here, one per round of fast answers, up to `max_per_endpoint`.
    pub per_endpoint: usize,
    /// Requests in flight to one endpoint, at most.
    pub max_per_endpoint: usize,
    /// Requests in flight in all.
    pub global: usize,
    pub lease: Duration,
    pub allow_private_targets: bool,
    /// An endpoint whose attempts all failed for this long is disabled.
    pub disable_after: Duration,
    /// Each endpoint's breaker on transport failures: while open, its
    /// deliveries wait.
    pub guard: GuardOptions,
    /// Trust for https receivers.
    pub tls: OutgoingTls,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            schedule: RetrySchedule::default(),
            timeout: Duration::from_secs(15),
            per_endpoint: 4,
            max_per_endpoint: 64,
            global: 256,
            lease: Duration::from_secs(30),
            allow_private_targets: false,
            disable_after: Duration::from_secs(5 * 24 * 3600),
            guard: GuardOptions::default(),
            tls: OutgoingTls::default(),
        }
    }
}

const EXCERPT: usize = 4096;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The most jobs one claim takes.
const CLAIM_MAX: usize = 512;

/// Resolves names for outgoing webhook requests and refuses non-public
/// addresses at connection time (DNS may have changed since the URL was saved).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let t = target::Target {
                https: false,
                host,
                port: 0,
            };
            let addrs: Vec<SocketAddr> = target::resolve_public(&t)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// A claimed delivery with everything its attempt needs, read in bulk.
struct Ready {
    job: LeasedJob,
    delivery: WebhookDelivery,
    signer: Arc<Signer>,
    /// The event's JSON, shared by every endpoint that gets it.
    body: Bytes,
    /// The trace of the request that wrote the event, when traced.
    trace: Option<settle_trace::TraceContext>,
}

/// What the claim loop does with a claimed job.
enum Admission {
    /// A slot is free: send now.
    Start(Ready),
    /// Held in the endpoint's line for its next free slot.
    InLine,
    /// No room: back to the queue.
    Back(LeasedJob),
}

pub struct DeliveryWorker {
    settle: Settle,
    http: reqwest::Client,
    options: DeliveryOptions,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    /// Jobs claimed for an endpoint already at its cap, leased to this
    /// process and started as its requests finish, without another claim.
    /// At most one cap's worth per endpoint, so none waits longer than one
    /// request (bounded by the timeout) and its lease holds.
    waiting: Mutex<HashMap<String, VecDeque<Ready>>>,
    /// Each endpoint's breaker and concurrency; shared with the delivery
    /// stats, which read the breakers for operators.
    guards: Arc<Mutex<HashMap<String, Arc<EndpointGuard>>>>,
    signers: Arc<Signers>,
    recorder: Option<Recorder>,
    handoff: Option<Arc<Handoff>>,
    /// Wakes the claim loop when a slot frees, a retry comes due or a
    /// breaker cools down: times only this process knows.
    alarm: Alarm,
}

/// Aborts a helper task when the worker that started it is dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl DeliveryWorker {
    pub fn new(settle: Settle, options: DeliveryOptions) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(options.tls.client_config()?)
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Endpoints often share a host (one receiver, many paths): keep
            // as many idle connections as requests can be in flight.
            .pool_max_idle_per_host(options.global)
            .tcp_nodelay(true)
            .connector_layer(crate::outgoing::WEBHOOKS.count_connections())
            .user_agent(concat!("settle-webhooks/", env!("CARGO_PKG_VERSION")));
        if !options.allow_private_targets {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Self {
            settle,
            http,
            options,
            in_flight: Arc::default(),
            waiting: Mutex::default(),
            guards: Arc::default(),
            signers: Arc::default(),
            recorder: None,
            handoff: None,
            alarm: Alarm::default(),
        })
    }

    /// Takes new deliveries straight from this process's fan-out.
    pub fn with_handoff(mut self, handoff: Arc<Handoff>) -> Self {
        self.handoff = Some(handoff);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Ready>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job`, then the endpoint's waiting jobs one after another while
    /// its breaker stays closed and its limit still has room for this slot;
    /// holds one of the endpoint's slots throughout.
    async fn work(self: Arc<Self>, key: String, mut job: Ready) {
        let guard = self.guard(&key);
        let handed_back = loop {
            self.attempt(job).await;
            // `flowing`, not `gate`: asking the gate would start a trial.
            let flowing = guard.flowing();
            // Both locks, in the claim loop's order, so a job put in line
            // while this slot is being given up is never stranded.
            let mut map = self.lock();
            let mut waiting = self.waiting();
            let held = map.get(&key).copied().unwrap_or(0);
            // A limit shrunk by transport failures gives up slots as their
            // requests finish.
            let keep = flowing.is_some_and(|limit| held <= limit);
            if keep && let Some(next) = waiting.get_mut(&key).and_then(VecDeque::pop_front) {
                job = next;
                continue;
            }
            let left = held.saturating_sub(1);
            if left == 0 {
                map.remove(&key);
            } else {
                map.insert(key.clone(), left);
            }
            // Breaker open, or no slot left to take the line: back to the
            // queue. Otherwise the endpoint's other slots work through it.
            break if flowing.is_none() || left == 0 {
                waiting.remove(&key).unwrap_or_default()
            } else {
                VecDeque::new()
            };
        };
        let now = self.settle.clock.now_ms();
        for ready in handed_back {
            let _ = self
                .settle
                .store
                .retry_job(&ready.job, now, "endpoint breaker open")
                .await;
        }
        // A slot is free: jobs handed back for want of one can go now.
        self.alarm.within(Duration::ZERO);
    }

    fn guard(&self, key: &str) -> Arc<EndpointGuard> {
        let mut map = self.guards.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(key.to_owned()).or_insert_with(|| {
            Arc::new(EndpointGuard::new(
                self.options.guard,
                self.options.per_endpoint,
                self.options.max_per_endpoint,
                Instant::now(),
            ))
        }))
    }

    /// Each known endpoint's gate now. Asking turns a cooled-down breaker
    /// half-open: every trial granted must be run or abandoned.
    fn gates(&self) -> HashMap<String, Gate> {
        let map = self.guards.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.iter().map(|(key, g)| (key.clone(), g.gate(now))).collect()
    }

    pub async fn run(mut self) {
        self.settle.delivery_stats().watch_breakers(Arc::clone(&self.guards));
        let (recorder, writing) = Recorder::start(Arc::clone(&self.settle.store), self.options.global);
        self.recorder = Some(recorder);
        let following = tokio::spawn(Arc::clone(&self.signers).follow(self.settle.commits().clone()));
        let _helpers = AbortOnDrop(vec![writing, following]);
        let mut handed_rx = self.handoff.as_ref().and_then(|h| h.receiver());
        let this = Arc::new(self);
        let mut commits = this
            .settle
            .commits()
            .subscribe_with_alarm(Topic::Jobs, this.alarm.clone());
        let mut handed: Vec<LeasedJob> = Vec::new();
        // Whether this round follows a full claim or a hand-over at once,
        // rather than a wake.
        let mut again = false;
        loop {
            if let Some(rx) = handed_rx.as_mut() {
                while let Ok(more) = rx.try_recv() {
                    handed.extend(more);
                }
            }
            let total: usize = {
                let map = this.lock();
                let held: usize = this.waiting().values().map(VecDeque::len).sum();
                map.values().sum::<usize>() + held
            };
            let room = this.options.global.saturating_sub(total);
            if room == 0 {
                this.offer(0);
                // A finishing request rings the alarm.
                wait(&mut commits, handed_rx.as_mut(), &mut handed).await;
                continue;
            }
            // Only now: asking turns a cooled-down breaker half-open, and
            // every trial it grants must be run or abandoned below.
            let gates = this.gates();
            let cap_of = |key: &str| match gates.get(key) {
                Some(Gate::Send(limit)) => *limit,
                Some(Gate::Trial) => 1,
                Some(Gate::Wait) => 0,
                None => this.options.per_endpoint,
            };
            // Endpoints paused by their breaker or at their limit sit out
            // the claim; the others can take a slot's and a line's worth.
            let (skip_keys, free_known) = {
                let map = this.lock();
                let waiting = this.waiting();
                let mut skip = Vec::new();
                let mut free = 0;
                for (key, gate) in &gates {
                    let cap = cap_of(key);
                    let held = map.get(key).copied().unwrap_or(0);
                    let line = waiting.get(key).map_or(0, VecDeque::len);
                    if *gate == Gate::Wait || held >= cap {
                        skip.push(key.clone());
                    } else {
                        free += (cap - held) + cap.saturating_sub(line);
                    }
                }
                (skip, free)
            };
            // Room for endpoints this worker has not seen yet, too.
            let max = room.min(free_known + this.options.per_endpoint).min(CLAIM_MAX);
            // Deliveries the fan-out handed over go first, without a claim.
            let from_fanout = !handed.is_empty();
            if !from_fanout && again && free_known == 0 && !gates.is_empty() {
                // Straight after a full claim every known endpoint is busy:
                // claiming now would walk their whole backlog (skipped by
                // key) to find none. A freed slot or new jobs wake us.
                again = false;
                this.offer(0);
                wait(&mut commits, handed_rx.as_mut(), &mut handed).await;
                continue;
            }
            again = false;
            let jobs = if from_fanout {
                std::mem::take(&mut handed)
            } else {
                let claim = JobClaim {
                    consumer: DELIVERY_CONSUMER.to_owned(),
                    max: u32::try_from(max).unwrap_or(u32::MAX),
                    skip_keys,
                    now_ms: this.settle.clock.now_ms(),
                    lease_ms: this.options.lease.as_millis() as u64,
                    token: rand::random(),
                };
                match this.settle.store.claim_jobs(&claim).await {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        tracing::warn!(error = %e, "delivery worker could not claim; retrying");
                        Vec::new()
                    }
                }
            };
            let claimed = jobs.len();
            this.offer(max.saturating_sub(claimed));
            let ready = this.prepare(jobs).await;
            // A claim may hold several jobs of one endpoint: beyond its limit
            // and its line, they go back at once.
            let mut started = 0;
            let mut tried: HashSet<String> = HashSet::new();
            for job in ready {
                let key = job.job.key.clone().unwrap_or_default();
                let trial = gates.get(&key) == Some(&Gate::Trial);
                let cap = cap_of(&key);
                let admission = this.admit(&key, cap, trial, job);
                match admission {
                    Admission::Start(job) => {
                        if trial {
                            tried.insert(key.clone());
                        }
                        started += 1;
                        tokio::spawn(Arc::clone(&this).work(key, job));
                    }
                    Admission::InLine => {}
                    Admission::Back(job) => {
                        let now = this.settle.clock.now_ms();
                        let _ = this
                            .settle
                            .store
                            .retry_job(&job, now, "endpoint at its in-flight limit")
                            .await;
                    }
                }
            }
            let now = Instant::now();
            for (key, _) in gates.iter().filter(|(k, g)| **g == Gate::Trial && !tried.contains(*k)) {
                this.guard(key).abandon_trial(now);
            }
            if from_fanout || (claimed >= max && started > 0) {
                // Handed over, or a full claim: more may be ready in the queue.
                again = true;
                continue;
            }
            if started > 0 && commits.has_news() {
                // Under load: let the next claim gather more than one commit's jobs.
                tokio::time::sleep(GATHER).await;
            }
            wait(&mut commits, handed_rx.as_mut(), &mut handed).await;
        }
    }

    /// Tells the fan-out how many new deliveries this worker can take now.
    fn offer(&self, room: usize) {
        if let Some(handoff) = &self.handoff {
            handoff.set_room(room);
        }
    }

    /// At its limit, a job waits in the endpoint's line for the next free
    /// slot if there is room (not behind a breaker's trial); otherwise it
    /// goes back to the queue.
    fn admit(&self, key: &str, cap: usize, trial: bool, job: Ready) -> Admission {
        let mut map = self.lock();
        let n = map.entry(key.to_owned()).or_insert(0);
        if *n < cap {
            *n += 1;
            return Admission::Start(job);
        }
        if *n == 0 {
            map.remove(key);
        }
        let mut waiting = self.waiting();
        let line = waiting.entry(key.to_owned()).or_default();
        if !trial && line.len() < cap {
            line.push_back(job);
            Admission::InLine
        } else {
            if line.is_empty() {
                waiting.remove(key);
            }
            Admission::Back(job.job)
        }
    }

    /// Reads what a claimed batch needs in bulk: its deliveries in one
    /// statement, its endpoints from memory (the missing ones in one
    /// more), its events in one, each serialized once. Jobs with nothing
    /// left to send (delivered meanwhile, endpoint deleted or disabled)
    /// are finished; on a failed read the batch waits for its lease.
    async fn prepare(&self, jobs: Vec<LeasedJob>) -> Vec<Ready> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let store = &self.settle.store;
        let mut done = Vec::new();
        let mut claimed = Vec::with_capacity(jobs.len());
        for job in jobs {
            match WebhookDeliveryId::from_bytes(&job.message_id) {
                Some(id) => claimed.push((id, job)),
                None => done.push(job),
            }
        }
        let ids: Vec<WebhookDeliveryId> = claimed.iter().map(|(id, _)| *id).collect();
        let deliveries: HashMap<WebhookDeliveryId, WebhookDelivery> = match store.webhook_deliveries(&ids).await {
            Ok(found) => found.into_iter().map(|d| (d.id, d)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read claimed deliveries; their leases will bring them back");
                return Vec::new();
            }
        };
        let mut endpoint_ids: Vec<WebhookEndpointId> = deliveries.values().map(|d| d.endpoint).collect();
        endpoint_ids.sort_unstable();
        endpoint_ids.dedup();
        let signers = match self.signers.get(&self.settle, &endpoint_ids).await {
            Ok(signers) => signers,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read endpoints; the leases will bring their deliveries back");
                return Vec::new();
            }
        };
        // An endpoint missing from the signers could not have its secret
        // opened (a master key rotated out): its deliveries wait for their
        // lease, never finished. A deleted endpoint's deliveries are gone
        // with it, and a disabled one's have nothing to send.
        let sendable = |d: &WebhookDelivery| {
            d.status == DeliveryStatus::Pending
                && signers
                    .get(&d.endpoint)
                    .is_none_or(|s| s.endpoint.status == EndpointStatus::Enabled)
        };
        let mut event_ids: Vec<EventId> = deliveries.values().filter(|d| sendable(d)).map(|d| d.event).collect();
        event_ids.sort_unstable();
        event_ids.dedup();
        let bodies: HashMap<EventId, (Bytes, Option<settle_trace::TraceContext>)> =
            match store.events_by_ids(&event_ids).await {
                Ok(events) => events
                    .into_iter()
                    .filter_map(|e| {
                        let trace = e.traceparent.as_deref().and_then(settle_trace::TraceContext::parse);
                        serde_json::to_vec(&e)
                            .ok()
                            .map(|body| (e.id, (Bytes::from(body), trace)))
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read events; the leases will bring their deliveries back");
                    return Vec::new();
                }
            };
        let mut ready = Vec::with_capacity(claimed.len());
        for (id, job) in claimed {
            let Some(delivery) = deliveries.get(&id).filter(|d| sendable(d)) else {
                // Delivered, failed or gone; or its endpoint deleted or
                // disabled: nothing to send (a replay can resend later).
                done.push(job);
                continue;
            };
            let (Some(signer), Some((body, trace))) = (signers.get(&delivery.endpoint), bodies.get(&delivery.event))
            else {
                tracing::warn!(delivery = %id, "cannot load a delivery's event or open its endpoint's secret; retrying after the lease");
                continue;
            };
            ready.push(Ready {
                job,
                delivery: delivery.clone(),
                signer: Arc::clone(signer),
                body: body.clone(),
                trace: *trace,
            });
        }
        if !done.is_empty() {
            let _ = store.finish_jobs(&done).await;
        }
        ready
    }

    /// One attempt of a claimed delivery: sent, and its outcome given to
    /// the endpoint's guard and to the recorder.
    async fn attempt(&self, ready: Ready) {
        let Ready {
            job: _,
            delivery,
            signer,
            body,
            trace,
        } = ready;
        let id = delivery.id;
        let endpoint = &signer.endpoint;
        let now_ms = self.settle.clock.now_ms();
        let timestamp = (now_ms / 1000) as i64;
        let message_id = id.to_string();
        let request_id = format!("req_wh_{}", uuid_suffix());
        // Continues the trace of the request that wrote the event, and
        // hands it on to the receiver as this attempt's `traceparent`.
        let mut span = match &trace {
            Some(parent) => {
                let mut span = settle_trace::Span::start("webhook.deliver", settle_trace::SpanKind::Client, parent);
                if span.is_recording() {
                    span.attr("settle.endpoint", endpoint.id.to_string());
                    span.attr("settle.delivery", id.to_string());
                    span.attr("settle.attempt", delivery.attempts + 1);
                    // Without its query: receivers put tokens there.
                    let url = endpoint.url.split(['?', '#']).next().unwrap_or_default();
                    span.attr("url.full", url.to_owned());
                }
                span
            }
            None => settle_trace::Span::none(),
        };
        let traceparent = span.context().map(|c| c.header());
        let started = Instant::now();
        let literal_refused = match (self.options.allow_private_targets, target::parse(&endpoint.url)) {
            (true, _) => None,
            (false, Ok(t)) => t
                .host
                .parse::<std::net::IpAddr>()
                .ok()
                .filter(|ip| !target::is_public(*ip))
                .map(|ip| target::TargetError::Private(ip).to_string()),
            (false, Err(e)) => Some(e.to_string()),
        };
        let sent = match literal_refused {
            Some(refused) => Err(refused),
            None => crate::outgoing::WEBHOOKS
                .track(
                    self.http
                        .post(&endpoint.url)
                        .headers(traceparent_header(traceparent.as_deref()))
                        .header("content-type", "application/json")
                        .header("webhook-id", &message_id)
                        .header("webhook-timestamp", timestamp.to_string())
                        .header(
                            "webhook-signature",
                            signature(&signer.keys(now_ms), &message_id, timestamp, &body),
                        )
                        .header("request-id", &request_id)
                        .body(body)
                        .send(),
                )
                .await
                .map_err(describe),
        };
        let (response_status, excerpt, error, retry_after) = match sent {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let mut kept = Vec::new();
                while kept.len() < EXCERPT {
                    match response.chunk().await {
                        Ok(Some(chunk)) => kept.extend_from_slice(&chunk[..chunk.len().min(EXCERPT - kept.len())]),
                        _ => break,
                    }
                }
                (
                    Some(i64::from(status)),
                    Some(String::from_utf8_lossy(&kept).into_owned()),
                    None,
                    retry_after,
                )
            }
            Err(error) => (None, None, Some(error), None),
        };
        if let Some(status) = response_status {
            span.attr("http.response.status_code", status);
        }
        if let Some(e) = &error {
            span.fail(e.clone());
        } else if response_status.is_some_and(|s| !(200..300).contains(&s)) {
            span.fail("the receiver answered with an error status");
        }
        span.end();
        let attempts = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
        let delivered = response_status.is_some_and(|s| (200..300).contains(&s));
        let gone = response_status == Some(410);
        let next = if delivered || gone {
            None
        } else {
            self.options.schedule.after(attempts).map(|d| {
                let jittered = d.mul_f64(rand::rng().random_range(0.8..=1.2));
                let wait = retry_after.map_or(jittered, |r| jittered.max(r.min(MAX_RETRY_AFTER)));
                now_ms.saturating_add(wait.as_millis() as u64)
            })
        };
        // Any status line is an answer: only a request that got none
        // (timeout, connection, TLS, DNS, refused target) counts against
        // the endpoint's health. Its schedule alone paces its 5xx.
        let outcome = if response_status.is_some() {
            Outcome::Answered
        } else {
            Outcome::Unreachable
        };
        if let Some(at) = next {
            self.alarm.within(Duration::from_millis(at.saturating_sub(now_ms)));
        }
        if self
            .guard(&endpoint.id.to_string())
            .record(outcome, started, Instant::now())
        {
            self.alarm.within(self.options.guard.cooldown);
            tracing::warn!(
                endpoint = %endpoint.id,
                cooldown_ms = self.options.guard.cooldown.as_millis() as u64,
                "webhook endpoint unreachable too often; its deliveries pause"
            );
        }
        let status = match (delivered, next) {
            (true, _) => DeliveryStatus::Delivered,
            (false, Some(_)) => DeliveryStatus::Pending,
            (false, None) => DeliveryStatus::Failed,
        };
        let finished_ms = self.settle.clock.now_ms();
        // From the event's commit (its id's time) to this 2xx, for a first
        // attempt only: a retry's time is the schedule's, not Settle's.
        let receipt = (delivered && delivery.attempts == 0 && !delivery.replayed).then(|| {
            let committed = settle_domain::ids::v7_unix_ms(delivery.event.uuid());
            finished_ms.saturating_sub(committed) as f64 / 1000.0
        });
        let outcome = match status {
            DeliveryStatus::Delivered => AttemptOutcome::Delivered,
            DeliveryStatus::Pending => AttemptOutcome::Retrying,
            DeliveryStatus::Failed => AttemptOutcome::Failed,
        };
        self.settle.delivery_stats().record(
            endpoint.id,
            outcome,
            started.elapsed().as_secs_f64(),
            receipt,
            finished_ms,
        );
        let record = AttemptRecord {
            attempt: WebhookAttempt {
                id: WebhookAttemptId::from_uuid(settle_domain::ids::uuid_v7(now_ms, rand::random::<u128>())),
                delivery: id,
                duration_ms: started.elapsed().as_millis() as i64,
                request_id,
                response_status,
                response_excerpt: excerpt,
                error,
                created: timestamp,
            },
            status,
            next_attempt_ms: next,
            disable_endpoint: gone.then(|| "the endpoint answered 410 Gone".to_owned()),
            disable_after_ms: self.options.disable_after.as_millis() as u64,
            now_ms,
        };
        match &self.recorder {
            Some(recorder) => recorder.record(endpoint.id, record).await,
            None => {
                if let Err(e) = self
                    .settle
                    .store
                    .record_webhook_attempts(vec![(endpoint.id, record)])
                    .await
                {
                    tracing::warn!(error = %e, delivery = %id, "cannot record an attempt; the lease will bring it back");
                }
            }
        }
    }
}

/// `traceparent` for a receiver, when the attempt is traced.
pub(crate) fn traceparent_header(value: Option<&str>) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(v) = value.and_then(|v| reqwest::header::HeaderValue::from_str(v).ok()) {
        headers.insert("traceparent", v);
    }
    headers
}

/// Sleeps until jobs commit (or the worker's alarm rings) or the fan-out
/// hands deliveries over.
async fn wait(
    commits: &mut crate::commits::Subscription,
    handed_rx: Option<&mut tokio::sync::mpsc::UnboundedReceiver<Vec<LeasedJob>>>,
    handed: &mut Vec<LeasedJob>,
) {
    match handed_rx {
        Some(rx) => {
            tokio::select! {
                _ = commits.wait() => {}
                got = rx.recv() => handed.extend(got.unwrap_or_default()),
            }
        }
        None => {
            commits.wait().await;
        }
    }
}

fn uuid_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Says why a request got no answer, without the URL (which may carry a token).
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "the receiver did not answer in time".into()
    } else if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(refused) = s.downcast_ref::<target::TargetError>() {
                return refused.to_string();
            }
            if let Some(tls) = tls_cause(s) {
                return format!("TLS handshake failed: {tls}");
            }
            source = s.source();
        }
        "cannot connect to the receiver".into()
    } else {
        "the request failed".into()
    }
}

/// rustls reaches us inside io::Errors (nested), whose `source` skips the
/// wrapped error itself, so unwrap them by hand.
fn tls_cause<'a>(mut e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        e = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// Works through replays a page at a time. A page and its cursor commit
/// together, so a crash resumes where it stopped (after the lease). Idle,
/// it sleeps until jobs commit (a new replay queues one).
pub async fn run_replays(settle: Settle, lease: Duration) {
    use settle_store::sql::webhook_replays::{RECOVERY_CONSUMER, REPLAY_CONSUMER};
    let mut commits = settle.commits().subscribe(Topic::Jobs);
    loop {
        let mut jobs = Vec::new();
        for consumer in [REPLAY_CONSUMER, RECOVERY_CONSUMER] {
            let claim = JobClaim {
                consumer: consumer.to_owned(),
                max: 1,
                skip_keys: Vec::new(),
                now_ms: settle.clock.now_ms(),
                lease_ms: lease.as_millis() as u64,
                token: rand::random(),
            };
            jobs.extend(settle.store.claim_jobs(&claim).await.unwrap_or_default());
        }
        if jobs.is_empty() {
            commits.wait().await;
            continue;
        }
        for job in jobs {
            let Some(id) = settle_domain::ids::WebhookReplayId::from_bytes(&job.message_id) else {
                let _ = settle.store.finish_jobs(std::slice::from_ref(&job)).await;
                continue;
            };
            match settle.store.run_webhook_replay(id, 500, settle.clock.now_ms()).await {
                Ok(true) => {}
                // More pages: hand the job back at once for the next one.
                Ok(false) => {
                    let _ = settle.store.retry_job(&job, settle.clock.now_ms(), "next page").await;
                }
                Err(e) => tracing::warn!(error = %e, replay = %id, "a replay page failed; it resumes after the lease"),
            }
        }
    }
}
