//! The read cache, each figure against a baseline measured in the same run:
//! - a read of one payment with authentication, cached and not, against a
//!   bare axum handler answering a fixed body of the same size;
//! - payment creates with the cache on against the cache off (the writes
//!   pay for invalidation only), alternated twice to even out drift;
//! - the hit ratio on a Zipf(1.1) mix over 100,000 objects with the cache
//!   sized for 10% of them, against the ideal (the share of reads that
//!   fall on the 10% most popular);
//! - on PostgreSQL, how long a second process serves the old state after a
//!   commit (the notification's way to its cache), p50/p99.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use settle_core::Settle;
use settle_core::cache::{CacheOptions, CacheStatus, Cacheable, ObjectCache};
use settle_core::clock::SystemClock;
use settle_domain::account::NewAccount;
use settle_domain::customer::{CustomerPatch, NewCustomer};
use settle_domain::metadata::Metadata;
use settle_domain::money::Currency;
use settle_store::Store;
use sqlx::{Connection, Executor};

use super::http::{Connections, Prepared};
use super::load::{Outcome, closed_loop};
use super::target::Target;
use super::{LoadArgs, ratio};
use crate::app::Application;
use crate::config::Config;

pub async fn run(args: &LoadArgs, database_url: Option<String>) -> anyhow::Result<()> {
    let target = Target::create(database_url).await?;
    let result = measure(args, &target).await;
    target.remove().await;
    result
}

/// A served app on `store` with the cache on or off.
struct Served {
    addr: SocketAddr,
    settle: Settle,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve(store: &Arc<dyn Store>, cache: bool, database_url: Option<String>) -> anyhow::Result<Served> {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url,
        ..Config::default()
    };
    config.cache.enabled = cache;
    config.webhooks.master_key = Some(settle_core::secrets::MasterKeys::generate_text());
    let app = Application::with_store(&config, Arc::clone(store), Arc::new(SystemClock)).await?;
    let addr = app.local_addr()?;
    let settle = app.settle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Ok(Served {
        addr,
        settle,
        stop,
        server,
    })
}

impl Served {
    async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

async fn measure(args: &LoadArgs, target: &Target) -> anyhow::Result<()> {
    let clients = args.clients.max(1);
    let store = target.open_store(Some(clients as u32 + 2)).await?;
    let on = serve(&store, true, target.postgres_url()).await?;
    let off = serve(&store, false, target.postgres_url()).await?;
    let settle = on.settle.clone();
    let ctx = settle.context("bench", None);
    let usd = Currency::parse("usd")?;
    let open = |name: &str, negative| NewAccount::new(name.into(), usd, negative, None, Metadata::default());
    let bank = settle.create_account(&ctx, open("bank", true)?).await?.id;
    let mut shops = Vec::new();
    for i in 0..clients {
        shops.push(settle.create_account(&ctx, open(&format!("shop{i}"), false)?).await?.id);
    }
    let (_, secret) = settle.create_api_key(&ctx, None, "bench".into(), "admin", None).await?;
    println!(
        "settle bench cache: {}, {clients} clients, {} s per measurement",
        target.backend(),
        args.seconds
    );

    // Creates first, so the reads below have a payment to read.
    let creates: Vec<Prepared> = shops
        .iter()
        .map(|shop| {
            let body = serde_json::json!({
                "amount": 1, "currency": "usd", "source": bank.to_string(), "destination": shop.to_string()
            });
            Prepared::post_json("/v1/payments", &body).map(|p| p.header("authorization", format!("Bearer {secret}")))
        })
        .collect::<anyhow::Result<_>>()?;
    let creates = Arc::new(creates);
    let (mut with_cache, mut without) = (Vec::new(), Vec::new());
    let url = target.postgres_url();
    // Alternated (off, on; on, off; ...): the tables grow and their rows
    // churn as the runs go, so whichever ran second would lose a little.
    for round in 0..6 {
        for cache_on in [round % 2 == 1, round % 2 == 0] {
            // Off means none of the cache's cost: on PostgreSQL its change
            // triggers (the notifications other processes hear) are off too.
            change_triggers(url.as_deref(), cache_on).await?;
            let (addr, runs) = if cache_on {
                (on.addr, &mut with_cache)
            } else {
                (off.addr, &mut without)
            };
            runs.push(hammer(addr, clients, args.duration(), Arc::clone(&creates)).await?);
        }
    }
    change_triggers(url.as_deref(), true).await?;
    let mean = |runs: &[Outcome]| runs.iter().map(Outcome::rate).sum::<f64>() / runs.len() as f64;
    let (off_rate, on_rate) = (mean(&without), mean(&with_cache));
    println!(
        "  {:<46} {off_rate:>9.0}/s  1.00× (baseline)",
        "POST /v1/payments, cache off"
    );
    println!(
        "  {:<46} {on_rate:>9.0}/s  {}",
        "POST /v1/payments, cache on",
        ratio(on_rate, off_rate)
    );

    reads(&on, &off, &secret, clients, args.duration()).await?;
    zipf_hit_ratio().await;
    match target.postgres_url() {
        Some(url) => staleness(&settle, &url).await?,
        None => println!(
            "  staleness in another process: none to measure (one process serves a SQLite database; \
             its commits drop their entries before the writer hears back)"
        ),
    }
    on.finish().await;
    off.finish().await;
    Ok(())
}

/// Turns PostgreSQL's triggers that record changed ids for other processes
/// (migrations 0011 and 0012) on or off.
async fn change_triggers(url: Option<&str>, on: bool) -> anyhow::Result<()> {
    let Some(url) = url else { return Ok(()) };
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let verb = if on { "ENABLE" } else { "DISABLE" };
    for (table, triggers) in [
        ("accounts", ["accounts_changed", "accounts_removed"]),
        ("customers", ["customers_changed", "customers_removed"]),
        ("payments", ["payments_changed", "payments_removed"]),
        (
            "webhook_endpoints",
            ["webhook_endpoints_changed", "webhook_endpoints_removed"],
        ),
    ] {
        for trigger in triggers {
            conn.execute(sqlx::AssertSqlSafe(format!(
                "ALTER TABLE {table} {verb} TRIGGER {trigger}"
            )))
            .await?;
        }
    }
    let _ = conn.close().await;
    Ok(())
}

/// Sends the clients' requests (client `c` sends `requests[c % len]`) for
/// `duration`.
async fn hammer(
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
    requests: Arc<Vec<Prepared>>,
) -> anyhow::Result<Outcome> {
    let conns = Arc::new(Connections::open(addr, clients).await?);
    let host = Arc::new(addr.to_string());
    Ok(closed_loop(clients, duration, move |c, _| {
        let (conns, requests, host) = (Arc::clone(&conns), Arc::clone(&requests), Arc::clone(&host));
        async move { conns.send(c, &host, &requests[c % requests.len()]).await }
    })
    .await)
}

/// `GET /v1/payments/{id}` with the cache off and on, against a bare axum
/// handler answering the same body.
async fn reads(on: &Served, off: &Served, secret: &str, clients: usize, duration: Duration) -> anyhow::Result<()> {
    let (id, body) = super::http::newest_payment(on.addr, secret).await?;
    let (bare_addr, bare_server) = super::http::bare_handler(body).await?;
    let one = |request: Prepared| Arc::new(vec![request]);
    let read = Prepared::get(format!("/v1/payments/{id}")).header("authorization", format!("Bearer {secret}"));
    // Interleaved, three rounds, means: a neighbour's burst lands on all
    // three lines rather than on whichever ran during it.
    let slice = duration / 3;
    let (mut bare, mut cold, mut cached) = (0.0, 0.0, 0.0);
    for _ in 0..3 {
        bare += hammer(bare_addr, clients, slice, one(Prepared::get("/payment")))
            .await?
            .rate()
            / 3.0;
        cold += hammer(off.addr, clients, slice, one(read.clone())).await?.rate() / 3.0;
        cached += hammer(on.addr, clients, slice, one(read.clone())).await?.rate() / 3.0;
    }
    println!(
        "  {:<46} {bare:>9.0}/s  1.00× (baseline)",
        "bare axum handler, fixed JSON"
    );
    for (label, rate) in [
        ("GET /v1/payments/{id}, cache off", cold),
        ("GET /v1/payments/{id}, cached", cached),
    ] {
        println!("  {label:<46} {rate:>9.0}/s  {}", ratio(rate, bare));
    }
    bare_server.abort();
    Ok(())
}

/// An object of a payment's size for the hit-ratio run.
#[derive(Clone, Serialize)]
struct Synthetic {
    id: u64,
    padding: &'static str,
}

impl Cacheable for Synthetic {
    const KIND: &'static str = "synthetic";
    fn version(&self) -> Option<i64> {
        Some(1)
    }
}

const PADDING: &str = "a payment's JSON is about this long once its fields, its metadata and its ids are written out; \
    the hit ratio depends on how many such objects fit in the bytes the cache may hold, so the synthetic objects \
    carry as many bytes as a real one does, give or take the few characters of this sentence and its neighbours \
    that round it up to a typical size of a little over five hundred bytes in all, counting the id field too.";

/// Zipf(1.1) over 100,000 objects, the cache sized for 10% of them: the
/// hit ratio over a million reads after a warm-up, against the share of
/// reads that fall on the 10% most popular objects.
async fn zipf_hit_ratio() {
    const OBJECTS: usize = 100_000;
    const EXPONENT: f64 = 1.1;
    let weights: Vec<f64> = (1..=OBJECTS).map(|k| (k as f64).powf(-EXPONENT)).collect();
    let total: f64 = weights.iter().sum();
    let ideal = weights[..OBJECTS / 10].iter().sum::<f64>() / total;
    let mut cdf = Vec::with_capacity(OBJECTS);
    let mut sum = 0.0;
    for w in &weights {
        sum += w / total;
        cdf.push(sum);
    }
    let sample = |cdf: &[f64]| {
        let u: f64 = rand::random();
        cdf.partition_point(|p| *p < u).min(OBJECTS - 1)
    };
    let entry_bytes = serde_json::to_vec(&Synthetic {
        id: 0,
        padding: PADDING,
    })
    .map(|j| j.len() * 2 + 256)
    .unwrap_or(1024) as u64;
    let cache = ObjectCache::new(CacheOptions {
        max_bytes: entry_bytes * (OBJECTS as u64 / 10),
        xfetch_beta: 0.0,
        ..CacheOptions::default()
    });
    let read = |rank: usize| {
        let cache = Arc::clone(&cache);
        async move {
            let id = uuid::Uuid::from_u128(rank as u128 + 1);
            let object = Synthetic {
                id: rank as u64,
                padding: PADDING,
            };
            cache
                .read(id, move || async move { Ok(Some(object)) })
                .await
                .ok()
                .flatten()
                .map(|r| r.status)
        }
    };
    for _ in 0..300_000 {
        read(sample(&cdf)).await;
    }
    let (mut hits, reads) = (0u64, 1_000_000u64);
    let started = Instant::now();
    for _ in 0..reads {
        if read(sample(&cdf)).await == Some(CacheStatus::Hit) {
            hits += 1;
        }
    }
    let measured = hits as f64 / reads as f64;
    println!(
        "  Zipf(1.1), 100,000 objects, cache for 10%: hit ratio {:.3}, ideal {ideal:.3}: {} ({:.0} reads/s in one task)",
        measured,
        ratio(measured, ideal),
        reads as f64 / started.elapsed().as_secs_f64()
    );
}

/// A second process on the same PostgreSQL database keeps a customer
/// cached; this one renames it, and the other reads until it sees the new
/// name: the time from the commit's answer to the first read showing it.
async fn staleness(settle: &Settle, url: &str) -> anyhow::Result<()> {
    let other_store: Arc<dyn Store> = Arc::new(
        settle_store_postgres::open(url, &settle_store_postgres::PostgresOptions::default())
            .await
            .context("a second store")?,
    );
    let other = serve(&other_store, true, Some(url.to_owned())).await?;
    let ctx = settle.context("bench", None);
    let customer = settle
        .create_customer(&ctx, NewCustomer::new(Some("n0".into()), None, Metadata::default())?)
        .await?;
    // Its listener's first connection flushes its cache: let it happen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut seen = Vec::new();
    for i in 1..=300 {
        let name = format!("n{i}");
        other.settle.read_customer(Some(customer.id)).await?;
        let patch = CustomerPatch::new(Some(Some(name.clone())), None, None)?;
        settle
            .update_customer(&settle.context("bench", None), Some(customer.id), patch, None)
            .await?;
        let committed = Instant::now();
        loop {
            let read = other.settle.read_customer(Some(customer.id)).await?;
            let shown: serde_json::Value = serde_json::from_slice(&read.json)?;
            if shown["name"] == name.as_str() {
                seen.push(committed.elapsed());
                break;
            }
            if committed.elapsed() > Duration::from_secs(10) {
                anyhow::bail!("the other process never saw the change");
            }
            tokio::task::yield_now().await;
        }
    }
    seen.sort();
    let at = |q: f64| seen[((seen.len() as f64 * q) as usize).min(seen.len() - 1)];
    println!(
        "  staleness in another process after a commit ({} commits): p50 {:.2} ms, p99 {:.2} ms",
        seen.len(),
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0
    );
    other.finish().await;
    Ok(())
}
