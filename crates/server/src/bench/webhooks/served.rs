//! The phases that create payments through the HTTP API of a server run as
//! `settle serve` runs it (API, queue and every worker, the delivery worker
//! included), each on a fresh database: end to end, what an endpoint costs
//! payment creation, and paced commit → receipt latency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use settle_core::Settle;
use settle_core::clock::SystemClock;
use settle_domain::account::NewAccount;
use settle_domain::ids::AccountId;
use settle_domain::metadata::Metadata;
use settle_domain::money::Currency;
use settle_domain::webhook::NewWebhookEndpoint;
use sqlx::AnyPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::super::http::{Connections, Prepared};
use super::super::load::{Outcome, closed_loop};
use super::super::target::Target;
use super::Setup;
use crate::app::Application;
use crate::config::Config;

/// Funding accounts, one picked at random per payment, as `settle bench
/// payments` (and TPC-B's ten branches) do: on PostgreSQL one hot row would
/// make every payment wait for the one before.
const FUNDING_ACCOUNTS: usize = 10;
/// The paced phase: payments per second, seconds, and payments first sent
/// to open the worker's connection and warm its caches, not counted.
const PACED_PER_S: u32 = 100;
const PACED_SECONDS: u32 = 5;
const PACED_WARMUP: u32 = 20;

/// A running server on a fresh database, and what its clients need.
struct Served {
    target: Target,
    running: Running,
}

struct Running {
    config: Config,
    /// The store's tool pool, to count deliveries.
    pool: AnyPool,
    settle: Settle,
    addr: SocketAddr,
    secret: String,
    banks: Vec<AccountId>,
    /// One destination per client.
    shops: Vec<AccountId>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Served {
    async fn start(s: &Setup<'_>) -> anyhow::Result<Self> {
        let target = Target::create(s.database_url.clone()).await?;
        match launch(s, &target).await {
            Ok(running) => Ok(Self { target, running }),
            Err(e) => {
                target.remove().await;
                Err(e)
            }
        }
    }

    /// An endpoint at `url` for `event` (`*`: every event).
    async fn subscribe(&self, url: String, event: &str) -> anyhow::Result<()> {
        let settle = &self.running.settle;
        let new = NewWebhookEndpoint::new(url, vec![event.to_owned()], None, Metadata::default())?;
        settle
            .create_webhook_endpoint(&settle.context("bench", None), new)
            .await
            .context("cannot create a webhook endpoint")?;
        Ok(())
    }

    /// `POST /v1/payments` from `clients` keep-alive connections, each
    /// sending the next as soon as the last answered, for `duration`; and
    /// when the first was sent.
    async fn pay(&self, clients: usize, duration: Duration) -> anyhow::Result<(Instant, Outcome)> {
        let r = &self.running;
        let conns = Arc::new(Connections::open(r.addr, clients).await?);
        // Each client's request to each funding account, built once.
        let mut requests = Vec::with_capacity(clients);
        for c in 0..clients {
            let mine = r
                .banks
                .iter()
                .map(|bank| self.payment_request(*bank, r.shops[c % r.shops.len()]))
                .collect::<anyhow::Result<Vec<_>>>()?;
            requests.push(mine);
        }
        let (requests, host) = (Arc::new(requests), Arc::new(r.addr.to_string()));
        let started = Instant::now();
        let outcome = closed_loop(clients, duration, move |c, _| {
            let (conns, requests, host) = (Arc::clone(&conns), Arc::clone(&requests), Arc::clone(&host));
            async move {
                let mine = &requests[c];
                conns.send(c, &host, &mine[rand::random_range(0..mine.len())]).await
            }
        })
        .await;
        Ok((started, outcome))
    }

    fn payment_request(&self, bank: AccountId, shop: AccountId) -> anyhow::Result<Prepared> {
        let body = serde_json::json!({
            "amount": 1, "currency": "usd", "source": bank.to_string(), "destination": shop.to_string()
        });
        Ok(Prepared::post_json("/v1/payments", &body)?
            .header("authorization", format!("Bearer {}", self.running.secret)))
    }

    /// One payment through `http`: its id, and when its response had
    /// arrived whole (its commit had happened by then).
    async fn pay_one(&self, http: &reqwest::Client) -> anyhow::Result<(String, Instant)> {
        let r = &self.running;
        let bank = r.banks[rand::random_range(0..r.banks.len())];
        let body = serde_json::json!({
            "amount": 1, "currency": "usd", "source": bank.to_string(), "destination": r.shops[0].to_string()
        });
        let response = http
            .post(format!("http://{}/v1/payments", r.addr))
            .bearer_auth(&r.secret)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let returned = Instant::now();
        let payment: serde_json::Value = serde_json::from_slice(&response)?;
        let id = payment["id"].as_str().context("a payment without an id")?.to_owned();
        Ok((id, returned))
    }

    /// Stops the server (its workers with it) and removes the database.
    async fn stop(self) {
        let r = self.running;
        let _ = r.stop.send(());
        let _ = r.server.await;
        r.pool.close().await;
        super::remove_streams(&r.config).await;
        self.target.remove().await;
    }
}

async fn launch(s: &Setup<'_>, target: &Target) -> anyhow::Result<Running> {
    let config = s.config_for(target);
    let store = target.open_sql_store(config.db_pool_size).await?;
    let pool = store.reads().clone();
    let app = Application::with_store(&config, Arc::new(store), Arc::new(SystemClock)).await?;
    let addr = app.local_addr()?;
    let settle = app.settle().clone();
    let ctx = settle.context("bench", None);
    let (_, secret) = settle.create_api_key(&ctx, None, "bench".into(), "admin", None).await?;
    let usd = Currency::parse("usd")?;
    let open = |name: String, negative| NewAccount::new(name, usd, negative, None, Metadata::default());
    let mut banks = Vec::with_capacity(FUNDING_ACCOUNTS);
    for i in 0..FUNDING_ACCOUNTS {
        banks.push(settle.create_account(&ctx, open(format!("bank{i}"), true)?).await?.id);
    }
    let mut shops = Vec::new();
    for i in 0..s.args.load.clients.max(1) {
        shops.push(settle.create_account(&ctx, open(format!("shop{i}"), false)?).await?.id);
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Ok(Running {
        config,
        pool,
        settle,
        addr,
        secret,
        banks,
        shops,
        stop,
        server,
    })
}

/// Runs `phase` on a fresh server, then stops it whatever happened.
async fn on_server<T>(s: &Setup<'_>, phase: impl AsyncFnOnce(&Served) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let served = Served::start(s).await?;
    let result = phase(&served).await;
    served.stop().await;
    result
}

/// Payments made as fast as the clients can while their deliveries go out.
pub struct EndToEnd {
    pub payments: u64,
    pub failed: u64,
    pub arrived: u64,
    /// Payments per second from the first payment to the last receipt;
    /// none unless every payment's delivery arrived.
    pub rate: Option<f64>,
}

/// One endpoint for `payment.succeeded`; `clients` create payments for
/// the bench's seconds; then wait for every delivery.
pub async fn end_to_end(s: &Setup<'_>) -> anyhow::Result<EndToEnd> {
    on_server(s, async |served: &Served| {
        let run = s.receiver.begin(false);
        served.subscribe(s.receiver.url(run, 0), "payment.succeeded").await?;
        let (started, outcome) = served.pay(s.args.load.clients.max(1), s.args.load.duration()).await?;
        let arrivals = s.receiver.wait(run, outcome.ok, &served.running.pool).await?;
        let rate = match arrivals.last {
            Some(last) if arrivals.count >= outcome.ok => {
                Some(outcome.ok as f64 / last.duration_since(started).as_secs_f64())
            }
            _ => None,
        };
        Ok(EndToEnd {
            payments: outcome.ok,
            failed: outcome.failed,
            arrived: arrivals.count,
            rate,
        })
    })
    .await
}

/// Payment creation with no endpoint, then (on another fresh database)
/// with one endpoint subscribed to every event and its deliveries going
/// out meanwhile: payments per second of each.
pub async fn create_cost(s: &Setup<'_>) -> anyhow::Result<(f64, f64)> {
    let mut rates = [0.0; 2];
    for (rate, subscribed) in rates.iter_mut().zip([false, true]) {
        *rate = on_server(s, async |served: &Served| {
            if subscribed {
                let run = s.receiver.begin(false);
                served.subscribe(s.receiver.url(run, 0), "*").await?;
            }
            let (_, outcome) = served.pay(s.args.load.clients.max(1), s.args.load.duration()).await?;
            Ok(outcome.rate())
        })
        .await?;
    }
    Ok((rates[0], rates[1]))
}

/// Commit → receipt latencies of the paced phase, in ms.
pub struct Paced {
    pub sent: usize,
    pub latencies_ms: Vec<f64>,
}

impl Paced {
    /// The `p`th percentile (0–100), if any receipt was matched.
    pub fn percentile(&self, p: usize) -> Option<f64> {
        let l = &self.latencies_ms;
        l.get((l.len() * p / 100).min(l.len().saturating_sub(1))).copied()
    }
}

/// About `PACED_PER_S` payments a second, one at a time, each timed from
/// its response (client's clock) to its delivery's arrival at the
/// in-process receiver (the same process's monotonic clock).
pub async fn paced(s: &Setup<'_>) -> anyhow::Result<Paced> {
    on_server(s, async |served: &Served| {
        let run = s.receiver.begin(true);
        served.subscribe(s.receiver.url(run, 0), "payment.succeeded").await?;
        let http = reqwest::Client::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1) / PACED_PER_S);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent = Vec::new();
        for _ in 0..PACED_WARMUP + PACED_PER_S * PACED_SECONDS {
            tick.tick().await;
            sent.push(served.pay_one(&http).await?);
        }
        s.receiver.wait(run, sent.len() as u64, &served.running.pool).await?;
        let arrived = s.receiver.objects();
        let measured = &sent[PACED_WARMUP as usize..];
        let mut latencies_ms: Vec<f64> = measured
            .iter()
            .filter_map(|(id, returned)| arrived.get(id).map(|at| signed_ms(*returned, *at)))
            .collect();
        latencies_ms.sort_by(f64::total_cmp);
        Ok(Paced {
            sent: measured.len(),
            latencies_ms,
        })
    })
    .await
}

/// `to - from` in ms, negative when the delivery arrived before the
/// response did (both happen after the commit).
fn signed_ms(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(from.duration_since(to).as_secs_f64() * 1000.0),
    }
}
