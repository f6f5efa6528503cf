//! Backlog drain: the delivery worker alone, started on a backlog of
//! pending deliveries and timed until the last one arrived.
//!
//! The backlog is built the fastest way that still leaves exactly what
//! payments would: one real payment is made, its `payment.succeeded`
//! event is copied in bulk with fresh ids (as if that many payments had
//! committed; the events trigger queues their jobs as for any event), and
//! the queue's own fan-out turns them into deliveries while every worker
//! but the delivery worker runs. Making the payments themselves would take
//! minutes at 100,000 and measure nothing more here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use settle_core::clock::{Clock, SystemClock};
use settle_core::secrets::MasterKeys;
use settle_core::{ServiceOptions, Settle};
use settle_domain::account::NewAccount;
use settle_domain::metadata::Metadata;
use settle_domain::money::{Amount, Currency};
use settle_domain::payment::NewPayment;
use settle_domain::webhook::NewWebhookEndpoint;
use settle_store::ids::IdGenerator;
use settle_store::sql::SqlStore;
use sqlx::AnyPool;
use tokio::task::JoinHandle;

use super::super::target::Target;
use super::Setup;
use super::receiver::count_deliveries;
use crate::config::Config;
use crate::queue::QueueRuntime;

/// Events per seeding statement.
const SEED_BATCH: u64 = 1000;
/// How long the fan-out may go without making a delivery before the
/// backlog is declared stuck.
const FANOUT_STALL: Duration = Duration::from_secs(60);

/// What one drain achieved.
pub struct Drain {
    pub deliveries: u64,
    pub arrived: u64,
    /// Seeding and fan-out, not measured.
    pub built_in: Duration,
    /// Deliveries per second from the worker's start to the last arrival;
    /// none unless every delivery arrived.
    pub rate: Option<f64>,
}

/// `args.backlog` deliveries (rounded up to a multiple of `endpoints`)
/// spread evenly over `endpoints` endpoints, on a fresh database.
pub async fn drain(s: &Setup<'_>, endpoints: usize) -> anyhow::Result<Drain> {
    let target = Target::create(s.database_url.clone()).await?;
    let config = s.config_for(&target);
    let result = drain_on(s, &config, &target, endpoints.max(1)).await;
    super::remove_streams(&config).await;
    target.remove().await;
    result
}

/// Aborts the workers it holds when dropped, on every way out.
struct Workers(Vec<JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &self.0 {
            w.abort();
        }
    }
}

async fn drain_on(s: &Setup<'_>, config: &Config, target: &Target, endpoints: usize) -> anyhow::Result<Drain> {
    let store = target.open_sql_store(config.db_pool_size).await?;
    let pool = store.reads().clone();
    let settle = settle(config, store)?;
    // Before the queue subscribes, so neither the endpoints' events nor the
    // template payment's make jobs: the backlog is the copies alone.
    let run = s.receiver.begin(false);
    for i in 0..endpoints {
        subscribe(&settle, s.receiver.url(run, i)).await?;
    }
    let template = template_event(&settle, &pool).await?;
    let runtime = QueueRuntime::build(&config.queue, &config.webhooks, &settle, config.commit_listener_url()).await?;

    let events = s.args.backlog.max(1).div_ceil(endpoints as u64);
    let deliveries = events * endpoints as u64;
    let building = Instant::now();
    seed_events(&pool, &template, events).await?;
    let mut workers = Workers(runtime.spawn_without_delivery(&settle));
    wait_for_backlog(&pool, deliveries).await?;
    let built_in = building.elapsed();

    let worker = runtime.delivery_worker(&settle).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    workers.0.push(tokio::spawn(worker.run()));
    let arrivals = s.receiver.wait(run, deliveries, &pool).await?;
    let rate = match arrivals.last {
        Some(last) if arrivals.count >= deliveries => {
            Some(deliveries as f64 / last.duration_since(started).as_secs_f64())
        }
        _ => None,
    };
    Ok(Drain {
        deliveries,
        arrived: arrivals.count,
        built_in,
        rate,
    })
}

/// The service as `settle serve` builds it over `store`, webhooks attached.
fn settle(config: &Config, store: SqlStore) -> anyhow::Result<Settle> {
    let options = ServiceOptions {
        commit_poll: config.queue.poll,
        ..ServiceOptions::default()
    };
    let settle = Settle::with_options(Arc::new(store), Arc::new(SystemClock), options);
    let keys = MasterKeys::parse(config.webhooks.master_key.as_deref().unwrap_or_default()).context("master key")?;
    settle.attach_webhooks(config.webhooks.setup(keys));
    Ok(settle)
}

async fn subscribe(settle: &Settle, url: String) -> anyhow::Result<()> {
    let new = NewWebhookEndpoint::new(url, vec!["payment.succeeded".into()], None, Metadata::default())?;
    settle
        .create_webhook_endpoint(&settle.context("bench", None), new)
        .await?;
    Ok(())
}

/// Makes one payment and returns the id of its `payment.succeeded` event.
async fn template_event(settle: &Settle, pool: &AnyPool) -> anyhow::Result<Vec<u8>> {
    let ctx = settle.context("bench", None);
    let usd = Currency::parse("usd")?;
    let open = |name: &str, negative| NewAccount::new(name.into(), usd, negative, None, Metadata::default());
    let bank = settle.create_account(&ctx, open("bank", true)?).await?.id;
    let shop = settle.create_account(&ctx, open("shop", false)?).await?.id;
    let new = NewPayment::new(
        Amount::parse("amount", 1)?,
        usd,
        bank,
        shop,
        None,
        true,
        None,
        Metadata::default(),
    )?;
    settle.create_payment(&ctx, new).await?;
    sqlx::query_scalar("SELECT id FROM events WHERE type = 'payment.succeeded'")
        .fetch_optional(pool)
        .await?
        .context("the template payment wrote no payment.succeeded event")
}

/// `count` copies of event `template` with fresh ids, in one transaction
/// through the store's tool pool.
async fn seed_events(pool: &AnyPool, template: &[u8], count: u64) -> anyhow::Result<()> {
    let ids = IdGenerator::new();
    let mut tx = pool.begin().await?;
    let mut left = count;
    while left > 0 {
        let n = left.min(SEED_BATCH);
        let rows: Vec<String> = (0..n).map(|i| format!("(${})", i + 2)).collect();
        let sql = format!(
            "INSERT INTO events (id, type, object_type, object_id, sequence, data, request_id, created) \
             SELECT v.column1, e.type, e.object_type, e.object_id, e.sequence, e.data, e.request_id, e.created \
             FROM events e CROSS JOIN (VALUES {}) AS v WHERE e.id = $1",
            rows.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(template.to_vec());
        let now = SystemClock.now_ms();
        for _ in 0..n {
            q = q.bind(ids.next(now).as_bytes().to_vec());
        }
        q.execute(&mut *tx).await.context("cannot seed events")?;
        left -= n;
    }
    tx.commit().await?;
    Ok(())
}

/// Waits until the fan-out made every delivery and (PostgreSQL) the
/// sequencer numbered every event, so that neither works during the drain.
async fn wait_for_backlog(pool: &AnyPool, deliveries: u64) -> anyhow::Result<()> {
    let mut moved = Instant::now();
    let mut seen = 0;
    loop {
        let pending = count_deliveries(pool, "pending").await?;
        let unnumbered: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE position IS NULL")
            .fetch_one(pool)
            .await?;
        if pending >= deliveries && unnumbered == 0 {
            return Ok(());
        }
        if pending != seen {
            (seen, moved) = (pending, Instant::now());
        } else if moved.elapsed() > FANOUT_STALL {
            bail!("the fan-out made {pending} of {deliveries} deliveries, then nothing for a minute");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
