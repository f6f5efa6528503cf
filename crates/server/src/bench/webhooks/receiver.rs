//! Where the bench's deliveries go, and how it learns they arrived: an
//! in-process HTTP server answering 200 at once, which notes each delivery
//! as it comes (on the bench's monotonic clock), or an external receiver
//! (`--receiver URL`, e.g. nginx answering 204), whose receipts the bench
//! cannot see: completion then comes from the store, polled every few
//! milliseconds, and receipt latency is not measured.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use sqlx::AnyPool;
use tokio::task::JoinHandle;

use super::super::http::{Connections, Prepared};
use super::super::load::closed_loop;

/// With nothing new arriving for this long, a wait gives up: longer than
/// a lease (30 s by default), after which a lost job is claimed again.
const STALL: Duration = Duration::from_secs(60);

pub enum Receiver {
    Local(Local),
    External { url: String, runs: AtomicU32 },
}

/// The in-process receiver.
pub struct Local {
    base: String,
    log: Shared,
    task: JoinHandle<()>,
}

type Shared = Arc<Mutex<Log>>;

/// Receipts of the current run: each delivery counted once (an expired
/// lease may send one twice), requests of other runs ignored.
#[derive(Default)]
struct Log {
    run: u32,
    seen: HashSet<String>,
    last: Option<Instant>,
    /// When set, the first arrival of each event's object (a payment id),
    /// to match receipts with the payments that caused them.
    objects: Option<HashMap<String, Instant>>,
}

/// How many deliveries of a run arrived, and when the last one did.
#[derive(Debug, Clone, Copy)]
pub struct Arrivals {
    pub count: u64,
    pub last: Option<Instant>,
}

impl Receiver {
    /// The in-process receiver, or `external` as given.
    pub async fn start(external: Option<String>) -> anyhow::Result<Self> {
        if let Some(url) = external {
            return Ok(Receiver::External {
                url,
                runs: AtomicU32::new(0),
            });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the receiver")?;
        let base = format!("http://{}/hook", listener.local_addr()?);
        let log: Shared = Arc::default();
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(Arc::clone(&log));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("the bench receiver stopped: {e}");
            }
        });
        Ok(Receiver::Local(Local { base, log, task }))
    }

    pub fn describe(&self) -> String {
        match self {
            Receiver::Local(local) => format!("in-process receiver at {} answering 200 at once", local.base),
            Receiver::External { url, .. } => {
                format!("external receiver at {url}; completion read from the store every few ms, no receipt latency")
            }
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Receiver::Local(_))
    }

    /// Starts a run: its endpoints' URLs carry its number, so requests
    /// still in flight from an earlier run are not counted in this one.
    /// `track_objects` keeps each payment's arrival time (local only).
    pub fn begin(&self, track_objects: bool) -> u32 {
        match self {
            Receiver::Local(local) => {
                let mut log = local.lock();
                let run = log.run + 1;
                *log = Log {
                    run,
                    objects: track_objects.then(HashMap::new),
                    ..Log::default()
                };
                run
            }
            Receiver::External { runs, .. } => runs.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// Endpoint `endpoint` of run `run`: the base URL with a query string
    /// of its own (run 0: the ceiling's requests, never counted).
    pub fn url(&self, run: u32, endpoint: usize) -> String {
        let base = match self {
            Receiver::Local(local) => local.base.as_str(),
            Receiver::External { url, .. } => url.as_str(),
        };
        let join = if base.contains('?') { '&' } else { '?' };
        format!("{base}{join}run={run}&endpoint={endpoint}")
    }

    /// The receiver's own rate: `connections` keep-alive connections, each
    /// sending the next request as soon as the last answered, for
    /// `duration`, with a body shaped like a delivery's.
    pub async fn ceiling(&self, connections: usize, duration: Duration) -> anyhow::Result<f64> {
        let url = reqwest::Url::parse(&self.url(0, 0)).context("receiver URL")?;
        if url.scheme() != "http" {
            bail!("the ceiling's client speaks plain http only: {url}");
        }
        let host = url.host_str().context("receiver URL without a host")?.to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
            .await?
            .next()
            .with_context(|| format!("{host} does not resolve"))?;
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let request = Prepared::post_json(path, &sample_event())?.header("webhook-id", "msg_ceiling");
        let conns = Arc::new(Connections::open(addr, connections).await?);
        let (request, host) = (Arc::new(request), Arc::new(format!("{host}:{port}")));
        let outcome = closed_loop(connections, duration, move |c, _| {
            let (conns, request, host) = (Arc::clone(&conns), Arc::clone(&request), Arc::clone(&host));
            async move { conns.send(c, &host, &request).await }
        })
        .await;
        if outcome.ok == 0 {
            bail!("the receiver answered no request with a 2xx");
        }
        Ok(outcome.rate())
    }

    /// Waits until `expected` deliveries of run `run` arrived (in process)
    /// or are recorded delivered (external; `pool` is the store's), or until
    /// nothing moved for a minute. The last arrival is when the receiver
    /// got it, or, external, when the store was seen to have them all.
    pub async fn wait(&self, run: u32, expected: u64, pool: &AnyPool) -> anyhow::Result<Arrivals> {
        match self {
            Receiver::Local(local) => Ok(local.wait(run, expected).await),
            Receiver::External { .. } => wait_in_store(pool, expected).await,
        }
    }

    /// Each tracked payment's first arrival (local only), for the run that
    /// tracks them.
    pub fn objects(&self) -> HashMap<String, Instant> {
        match self {
            Receiver::Local(local) => local.lock().objects.take().unwrap_or_default(),
            Receiver::External { .. } => HashMap::new(),
        }
    }

    pub fn stop(&self) {
        if let Receiver::Local(local) = self {
            local.task.abort();
        }
    }
}

impl Local {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn arrivals(&self, run: u32) -> Arrivals {
        let log = self.lock();
        if log.run != run {
            return Arrivals { count: 0, last: None };
        }
        Arrivals {
            count: log.seen.len() as u64,
            last: log.last,
        }
    }

    /// Reads the log every few ms: the time of completion is the last
    /// receipt's, noted by the handler, so the poll's period does not
    /// blur it.
    async fn wait(&self, run: u32, expected: u64) -> Arrivals {
        let mut moved = Instant::now();
        let mut seen = 0;
        loop {
            let now = self.arrivals(run);
            if now.count >= expected || moved.elapsed() > STALL {
                return now;
            }
            if now.count != seen {
                (seen, moved) = (now.count, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[derive(serde::Deserialize)]
struct Tag {
    run: u32,
}

/// The body's `data.object.id`: the payment a `payment.*` event is about.
#[derive(serde::Deserialize)]
struct Delivered {
    data: DeliveredData,
}

#[derive(serde::Deserialize)]
struct DeliveredData {
    object: DeliveredObject,
}

#[derive(serde::Deserialize)]
struct DeliveredObject {
    id: String,
}

async fn receive(State(log): State<Shared>, Query(tag): Query<Tag>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    if tag.run == 0 || tag.run != log.run {
        return StatusCode::OK;
    }
    let delivery = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !log.seen.insert(delivery.to_owned()) {
        return StatusCode::OK;
    }
    log.last = Some(at);
    if let Some(objects) = &mut log.objects
        && let Ok(d) = serde_json::from_slice::<Delivered>(&body)
    {
        objects.entry(d.data.object.id).or_insert(at);
    }
    StatusCode::OK
}

/// Counts deliveries in the store until none is pending and `expected`
/// were delivered. Pending ones are counted through the (endpoint,
/// status) index, so a poll costs little once few are left, which is when
/// it must be frequent; the delivered are counted only when none is
/// pending.
async fn wait_in_store(pool: &AnyPool, expected: u64) -> anyhow::Result<Arrivals> {
    let mut moved = Instant::now();
    let mut last_seen = (u64::MAX, 0);
    loop {
        let pending = count_deliveries(pool, "pending").await?;
        let delivered = if pending == 0 {
            count_deliveries(pool, "delivered").await?
        } else {
            0
        };
        let at = Instant::now();
        if pending == 0 && delivered >= expected {
            return Ok(Arrivals {
                count: delivered,
                last: Some(at),
            });
        }
        if (pending, delivered) != last_seen {
            (last_seen, moved) = ((pending, delivered), at);
        } else if moved.elapsed() > STALL {
            let delivered = count_deliveries(pool, "delivered").await?;
            return Ok(Arrivals {
                count: delivered,
                last: None,
            });
        }
        // A twentieth of the time the rest takes at 5,000/s, between 2 ms
        // and 200 ms: rare polls while many are left, frequent at the end.
        let pause = Duration::from_micros(pending.saturating_mul(10))
            .clamp(Duration::from_millis(2), Duration::from_millis(200));
        tokio::time::sleep(pause).await;
    }
}

pub async fn count_deliveries(pool: &AnyPool, status: &str) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE status = $1 \
         AND endpoint_id IN (SELECT id FROM webhook_endpoints)",
    )
    .bind(status.to_owned())
    .fetch_one(pool)
    .await
    .context("cannot count deliveries")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A `payment.succeeded` event as the delivery worker sends it, for the
/// ceiling's requests to weigh what a delivery weighs.
fn sample_event() -> serde_json::Value {
    serde_json::json!({
        "object": "event",
        "id": "evt_0193a2b4c5d67e8f9a0b1c2d3e4f5a6b",
        "type": "payment.succeeded",
        "data": { "object": {
            "object": "payment",
            "id": "pay_0193a2b4c5d67e8f9a0b1c2d3e4f5a6b",
            "amount": 1,
            "currency": "usd",
            "source": "acct_0193a2b4c5d67e8f9a0b1c2d3e4f5a6b",
            "destination": "acct_0193a2b4c5d67e8f9a0b1c2d3e4f5a6c",
            "customer": null,
            "status": "succeeded",
            "amount_captured": 1,
            "amount_refunded": 0,
            "description": null,
            "metadata": {},
            "version": 1,
            "created": 1_800_000_000
        }},
        "sequence": 2,
        "position": 12345,
        "request_id": "req_0193a2b4c5d67e8f",
        "created": 1_800_000_000
    })
}
