//! `settle bench webhooks`: webhook deliveries per second to a local
//! receiver that answers 200 at once, with 1, 10 and 100 endpoints, and each
//! delivery's commit-to-receipt latency, for the embedded queue on SQLite
//! and on PostgreSQL (with `DATABASE_URL`) and for NATS JetStream (when NATS
//! answers), in one run. Closed-loop clients create payments while the
//! fan-out and delivery workers run; then the backlog drains until every
//! delivery (payments × endpoints, one `payment.succeeded` each) has reached
//! the receiver. Commit time comes from the event's UUIDv7 id in the body,
//! receipt time from the receiver's clock (the same clock). That latency,
//! under a burst, is mostly time in the backlog; so after the drain a paced
//! phase sends payments at about 100 deliveries/s (under every row's
//! capacity) and reports the delivery path's own p50/p99.
//!
//! The baseline is the same receiver hammered by a plain HTTP client with as
//! many requests in flight as the delivery worker's global cap: what the
//! receiver, loopback and an HTTP client can do on this machine with no
//! database, no queue and no signing. Deliveries per second are printed as a
//! ratio to that ceiling, so the figure says how much of it Settle's
//! delivery path keeps.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use settle_core::Settle;
use settle_core::clock::{Clock, SystemClock};
use settle_core::secrets::MasterKeys;
use settle_core::webhook::deliver::DeliveryOptions;
use settle_domain::account::NewAccount;
use settle_domain::ids::{AccountId, EventId, v7_unix_ms};
use settle_domain::metadata::Metadata;
use settle_domain::money::{Amount, Currency};
use settle_domain::payment::NewPayment;
use settle_domain::webhook::NewWebhookEndpoint;
use tokio::task::JoinHandle;

use super::load::{Outcome, closed_loop};
use super::target::Target;
use super::{LoadArgs, ratio};
use crate::config::{QueueBackend, QueueConfig, WebhookConfig};
use crate::queue::QueueRuntime;

const ENDPOINTS: [usize; 3] = [1, 10, 100];
/// How long the backlog may take to reach the receiver after the payments stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// The paced phase's delivery rate, well under every row's capacity, and length.
const PACED_DELIVERIES_PER_S: f64 = 100.0;
const PACED_SECONDS: f64 = 3.0;

/// What one configuration and endpoint count achieved.
struct Figures {
    label: String,
    endpoints: usize,
    /// Seconds of payments.
    seconds: f64,
    /// From the last payment to the last receipt.
    drain: Duration,
    payments_per_s: f64,
    expected: u64,
    deliveries: usize,
    deliveries_per_s: f64,
    /// Under the closed-loop burst: mostly time spent in the backlog.
    p50_ms: i64,
    p99_ms: i64,
    /// With payments paced below capacity: the delivery path itself.
    paced_p50_ms: i64,
    paced_p99_ms: i64,
}

pub async fn run(
    args: &LoadArgs,
    database_url: Option<String>,
    pool_size: Option<u32>,
    nats_url: &str,
) -> anyhow::Result<()> {
    let receiver = Receiver::start().await?;
    let webhooks = WebhookConfig {
        master_key: Some(MasterKeys::generate_text()),
        allow_private_targets: true,
        ..WebhookConfig::default()
    };
    let global = DeliveryOptions::default().global;
    println!(
        "settle bench webhooks: {} payment clients; receiver at {} answers 200 at once",
        args.clients, receiver.base
    );
    println!(
        "  delivery settings: {} in flight per endpoint (default), {} in all, timeout {} s, retry schedule default",
        webhooks.max_in_flight,
        global,
        webhooks.timeout.as_secs()
    );
    println!(
        "  database pool: {}, as `settle serve` has it",
        pool_size.map_or("the store's default size".to_owned(), |n| format!("{n} connections"))
    );
    let ceiling = ceiling(&receiver, global, args.duration()).await?;
    println!(
        "  ceiling: plain HTTP client, {global} requests in flight for {} s: {ceiling:.0} requests/s",
        args.seconds
    );

    let configs = super::queue_configs(&database_url, nats_url).await;
    let mut all = Vec::new();
    let mut run_no = 0u32;
    for (url, backend) in configs {
        for endpoints in ENDPOINTS {
            run_no += 1;
            let target = Target::create(url.clone()).await?;
            let result = measure(
                &Run {
                    args,
                    payments_for: payments_for(args.duration(), endpoints),
                    pool_size,
                    backend,
                    nats_url,
                    webhooks: &webhooks,
                    endpoints,
                    no: run_no,
                },
                &target,
                &receiver,
            )
            .await;
            target.remove().await;
            let figures = result?;
            if figures.deliveries < figures.expected as usize {
                println!(
                    "  {} with {} endpoints: only {} of {} deliveries arrived within {} s after the last payment",
                    figures.label,
                    endpoints,
                    figures.deliveries,
                    figures.expected,
                    DRAIN_TIMEOUT.as_secs()
                );
            }
            all.push(figures);
        }
    }
    receiver.task.abort();

    println!(
        "  {:<28} {:>9} {:>5} {:>11} {:>10} {:>8} {:>12} {:>10} {:>8} {:>8} {:>10} {:>10}",
        "queue",
        "endpoints",
        "pay s",
        "payments/s",
        "deliveries",
        "drain s",
        "deliveries/s",
        "vs ceiling",
        "p50 ms",
        "p99 ms",
        "paced p50",
        "paced p99"
    );
    for f in &all {
        println!(
            "  {:<28} {:>9} {:>5.1} {:>11.0} {:>10} {:>8.1} {:>12.0} {:>10} {:>8} {:>8} {:>10} {:>10}",
            f.label,
            f.endpoints,
            f.seconds,
            f.payments_per_s,
            f.deliveries,
            f.drain.as_secs_f64(),
            f.deliveries_per_s,
            ratio(f.deliveries_per_s, ceiling),
            f.p50_ms,
            f.p99_ms,
            f.paced_p50_ms,
            f.paced_p99_ms
        );
    }
    Ok(())
}

/// A hundred endpoints turn each payment into a hundred deliveries: a tenth
/// of the time of payments keeps that row's drain within reach.
fn payments_for(duration: Duration, endpoints: usize) -> Duration {
    if endpoints >= 100 { duration / 10 } else { duration }
}

/// One receipt at the local receiver.
struct Receipt {
    /// Which benchmark run the URL belonged to (0: the ceiling).
    run: u32,
    at_ms: i64,
    /// The `webhook-id` header: the delivery.
    delivery: String,
    /// The body's `id`: the event.
    event: String,
}

type Log = Arc<Mutex<Vec<Receipt>>>;

/// An in-process HTTP server answering 200 to every POST, noting when.
struct Receiver {
    base: String,
    log: Log,
    task: JoinHandle<()>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the receiver")?;
        let base = format!("http://{}", listener.local_addr()?);
        let log: Log = Arc::default();
        let router = axum::Router::new()
            .route("/hook/{run}/{endpoint}", axum::routing::post(receive))
            .with_state(Arc::clone(&log));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("the bench receiver stopped: {e}");
            }
        });
        Ok(Self { base, log, task })
    }

    fn url(&self, run: u32, endpoint: usize) -> String {
        format!("{}/hook/{run}/{endpoint}", self.base)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Receipt>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The receipts of one run, the first of each delivery only (a lease
    /// that ran out may send one twice).
    fn take(&self, run: u32) -> Vec<Receipt> {
        let all = std::mem::take(&mut *self.lock());
        let mut seen = HashSet::new();
        all.into_iter()
            .filter(|r| r.run == run && seen.insert(r.delivery.clone()))
            .collect()
    }
}

#[derive(serde::Deserialize)]
struct EventBody {
    id: String,
}

async fn receive(
    State(log): State<Log>,
    Path((run, _)): Path<(u32, u32)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at_ms = now_ms();
    let delivery = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let event = serde_json::from_slice::<EventBody>(&body)
        .map(|b| b.id)
        .unwrap_or_default();
    log.lock().unwrap_or_else(|e| e.into_inner()).push(Receipt {
        run,
        at_ms,
        delivery,
        event,
    });
    StatusCode::OK
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The receiver's rate under a plain client with `in_flight` requests
/// outstanding, each a body shaped like a delivery's.
async fn ceiling(receiver: &Receiver, in_flight: usize, duration: Duration) -> anyhow::Result<f64> {
    let http = reqwest::Client::builder()
        .build()
        .context("cannot build the HTTP client")?;
    let url = Arc::new(receiver.url(0, 0));
    let outcome = closed_loop(in_flight, duration, move |client, seq| {
        let (http, url) = (http.clone(), Arc::clone(&url));
        async move {
            let body = format!(r#"{{"id":"evt_{client}_{seq}","type":"payment.succeeded"}}"#);
            http.post(url.as_str())
                .header("content-type", "application/json")
                .header("webhook-id", format!("msg_{client}_{seq}"))
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    receiver.take(0);
    Ok(outcome.rate())
}

/// One measurement's settings.
struct Run<'a> {
    args: &'a LoadArgs,
    payments_for: Duration,
    pool_size: Option<u32>,
    backend: QueueBackend,
    nats_url: &'a str,
    webhooks: &'a WebhookConfig,
    endpoints: usize,
    /// Tags this run's URLs, so late receipts of another run are not counted.
    no: u32,
}

/// Creates payments from `clients` loops for `duration`.
async fn pay(
    settle: &Settle,
    clients: usize,
    duration: Duration,
    bank: AccountId,
    shops: &Arc<Vec<AccountId>>,
) -> Outcome {
    let (settle, shops) = (settle.clone(), Arc::clone(shops));
    closed_loop(clients, duration, move |c, _| {
        let (settle, shops) = (settle.clone(), Arc::clone(&shops));
        async move { pay_one(&settle, bank, shops[c % shops.len()]).await }
    })
    .await
}

/// One payment of 0.01 USD from `bank` to `shop`, in a context of its own:
/// the context carries the write's time, which stamps the event id that
/// latency is measured from.
async fn pay_one(settle: &Settle, bank: AccountId, shop: AccountId) -> bool {
    let ctx = settle.context("bench", None);
    let new = Currency::parse("usd").ok().and_then(|usd| {
        let amount = Amount::parse("amount", 1).ok()?;
        NewPayment::new(amount, usd, bank, shop, None, true, None, Metadata::default()).ok()
    });
    match new {
        Some(new) => settle.create_payment(&ctx, new).await.is_ok(),
        None => false,
    }
}

async fn measure(run: &Run<'_>, target: &Target, receiver: &Receiver) -> anyhow::Result<Figures> {
    let clients = run.args.clients.max(1);
    // The pool a server would have: payment clients and 64 deliveries in
    // flight share it, as they do in `settle serve`.
    let store = target.open_store(run.pool_size).await?;
    let settle = Settle::new(Arc::clone(&store), Arc::new(SystemClock));
    // As app.rs does: webhooks attached before the queue starts its workers.
    let keys = MasterKeys::parse(run.webhooks.master_key.as_deref().unwrap_or_default()).context("master key")?;
    settle.attach_webhooks(run.webhooks.setup(keys));
    let prefix = format!("bench{:x}", rand::random::<u32>());
    let queue = QueueConfig {
        backend: run.backend,
        nats_url: run.nats_url.to_owned(),
        nats_prefix: prefix.clone(),
        ..QueueConfig::default()
    };
    let runtime = QueueRuntime::build(&queue, run.webhooks, &settle, None).await?;
    let ctx = settle.context("bench", None);
    for i in 0..run.endpoints {
        let new = NewWebhookEndpoint::new(
            receiver.url(run.no, i),
            vec!["payment.succeeded".into()],
            None,
            Metadata::default(),
        )?;
        settle
            .create_webhook_endpoint(&ctx, new)
            .await
            .context("cannot create a webhook endpoint")?;
    }
    let usd = Currency::parse("usd")?;
    let open = |name: &str, neg| NewAccount::new(name.into(), usd, neg, None, Metadata::default());
    let bank = settle.create_account(&ctx, open("bank", true)?).await?.id;
    let mut shops = Vec::new();
    for i in 0..clients {
        shops.push(settle.create_account(&ctx, open(&format!("shop{i}"), false)?).await?.id);
    }
    let shops = Arc::new(shops);
    let label = format!(
        "{} on {}",
        match run.backend {
            QueueBackend::Embedded => "embedded",
            QueueBackend::Nats => "NATS JetStream",
        },
        target.backend()
    );
    let workers = runtime.spawn(&settle);

    let started_ms = i64::try_from(SystemClock.now_ms()).unwrap_or(i64::MAX);
    let outcome = pay(&settle, clients, run.payments_for, bank, &shops).await;
    let paid_ms = i64::try_from(SystemClock.now_ms()).unwrap_or(i64::MAX);
    let expected = outcome.ok * run.endpoints as u64;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while (receiver.lock().iter().filter(|r| r.run == run.no).count() as u64) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let receipts = receiver.take(run.no);

    // Latency without a backlog: payments paced so that deliveries come at
    // about PACED_DELIVERIES_PER_S, whatever the number of endpoints.
    let per_s = (PACED_DELIVERIES_PER_S / run.endpoints as f64).max(1.0);
    let count = (per_s * PACED_SECONDS).ceil() as u64;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s));
    let mut paced_ok = 0u64;
    for _ in 0..count {
        ticker.tick().await;
        if pay_one(&settle, bank, shops[0]).await {
            paced_ok += 1;
        }
    }
    let paced_expected = paced_ok * run.endpoints as u64;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while (receiver.lock().iter().filter(|r| r.run == run.no).count() as u64) < paced_expected
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let paced = receiver.take(run.no);
    if (paced.len() as u64) < paced_expected {
        println!(
            "  {label}: only {} of {paced_expected} paced deliveries arrived",
            paced.len()
        );
    }
    let (paced_latencies, _) = latencies(&paced, started_ms)?;
    for w in workers {
        w.abort();
    }
    if run.backend == QueueBackend::Nats {
        let client = async_nats::connect(run.nats_url).await.context("NATS")?;
        let js = async_nats::jetstream::new(client);
        for suffix in ["EVENTS", "DEAD"] {
            let _ = js.delete_stream(format!("{}_{suffix}", prefix.to_uppercase())).await;
        }
    }

    let (latencies, last) = latencies(&receipts, started_ms)?;
    let pct = |l: &[i64], p: usize| l.get(l.len() * p / 100).copied().unwrap_or_default();
    let span = Duration::from_millis(u64::try_from(last - started_ms).unwrap_or(1).max(1));
    Ok(Figures {
        label,
        endpoints: run.endpoints,
        seconds: run.payments_for.as_secs_f64(),
        drain: Duration::from_millis(u64::try_from(last - paid_ms).unwrap_or(0)),
        payments_per_s: outcome.rate(),
        expected,
        deliveries: receipts.len(),
        deliveries_per_s: receipts.len() as f64 / span.as_secs_f64(),
        p50_ms: pct(&latencies, 50),
        p99_ms: pct(&latencies, 99),
        paced_p50_ms: pct(&paced_latencies, 50),
        paced_p99_ms: pct(&paced_latencies, 99),
    })
}

/// Each receipt's commit-to-receipt time (commit from the event's UUIDv7
/// id), sorted, and the last receipt's time (at least `since_ms`).
fn latencies(receipts: &[Receipt], since_ms: i64) -> anyhow::Result<(Vec<i64>, i64)> {
    let mut out = Vec::with_capacity(receipts.len());
    let mut last = since_ms;
    for r in receipts {
        let event = EventId::parse(&r.event).with_context(|| format!("`{}` is not an event id", r.event))?;
        let committed = i64::try_from(v7_unix_ms(event.uuid())).unwrap_or(i64::MAX);
        out.push(r.at_ms - committed);
        last = last.max(r.at_ms);
    }
    out.sort_unstable();
    Ok((out, last))
}
