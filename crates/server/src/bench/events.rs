//! `settle bench events`: events from commit to consumer, for the embedded
//! queue on SQLite and on PostgreSQL (with `DATABASE_URL`) and for NATS
//! JetStream (when NATS answers), in one run. Payments are created by
//! closed-loop clients while the fan-out worker consumes; then the backlog
//! drains and each event's commit-to-consume latency is read back (commit
//! time from the event's UUIDv7 id, consume time from its processed-message
//! record). The baseline is the same payment loop on the same database with
//! events switched off (a `BEFORE INSERT` trigger discards them, so no
//! event, no job, no consumer work), giving the cost of events as a ratio.
//!
//! Then a paced phase: one payment every 10 ms (100/s) for up to 5 s, each
//! timed from the moment `create_payment` returned (its COMMIT had) to the
//! fan-out's record of its `payment.succeeded` (the fan-out transaction's
//! time, in whole milliseconds). That is the latency a commit pays when
//! the consumer is idle, which a polling consumer sets by its interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use settle_core::Settle;
use settle_core::clock::SystemClock;
use settle_domain::account::NewAccount;
use settle_domain::ids::AccountId;
use settle_domain::metadata::Metadata;
use settle_domain::money::{Amount, Currency};
use settle_domain::payment::NewPayment;
use sqlx::{Executor, Row};

use super::load::closed_loop;
use super::target::Target;
use super::{LoadArgs, ratio};
use crate::config::{QueueBackend, QueueConfig};
use crate::queue::QueueRuntime;

/// What one configuration achieved.
struct Figures {
    label: String,
    payments_per_s: f64,
    events: usize,
    consumed_per_s: f64,
    p50_ms: i64,
    p99_ms: i64,
    /// Commit → consume with the consumer idle between payments.
    paced_p50_ms: f64,
    paced_p99_ms: f64,
    /// The same loop with events switched off (embedded runs only).
    without_events: Option<f64>,
}

pub async fn run(args: &LoadArgs, database_url: Option<String>, nats_url: &str) -> anyhow::Result<()> {
    println!(
        "settle bench events: {} clients, {} s of payments per run",
        args.clients, args.seconds
    );
    let runs = super::queue_configs(&database_url, nats_url).await;
    let mut all = Vec::new();
    for (url, backend) in runs {
        let target = Target::create(url).await?;
        let result = measure(args, &target, backend, nats_url).await;
        target.remove().await;
        all.push(result?);
    }
    println!(
        "  {:<28} {:>11} {:>8} {:>12} {:>8} {:>8} {:>10} {:>10}",
        "queue", "payments/s", "events", "consumed/s", "p50 ms", "p99 ms", "paced p50", "paced p99"
    );
    for f in &all {
        println!(
            "  {:<28} {:>11.0} {:>8} {:>12.0} {:>8} {:>8} {:>10.1} {:>10.1}",
            f.label, f.payments_per_s, f.events, f.consumed_per_s, f.p50_ms, f.p99_ms, f.paced_p50_ms, f.paced_p99_ms
        );
    }
    for f in all.iter().filter(|f| f.without_events.is_some()) {
        let off = f.without_events.unwrap_or_default();
        println!(
            "  {}: payments/s with events {:.0} vs without {:.0} = {}",
            f.label,
            f.payments_per_s,
            off,
            ratio(f.payments_per_s, off)
        );
    }
    Ok(())
}

fn payment(source: AccountId, destination: AccountId, usd: Currency) -> Option<NewPayment> {
    let amount = Amount::parse("amount", 1).ok()?;
    NewPayment::new(amount, usd, source, destination, None, true, None, Metadata::default()).ok()
}

/// Creates payments from `clients` loops for the configured time.
async fn pay(settle: &Settle, args: &LoadArgs, bank: AccountId, shops: &Arc<Vec<AccountId>>) -> f64 {
    let usd = Currency::parse("usd").unwrap_or_else(|_| unreachable!("usd is in the table"));
    let (settle, shops) = (settle.clone(), Arc::clone(shops));
    closed_loop(args.clients, args.duration(), move |c, _| {
        let (settle, shops) = (settle.clone(), Arc::clone(&shops));
        async move {
            let ctx = settle.context("bench", None);
            match payment(bank, shops[c % shops.len()], usd) {
                Some(new) => settle.create_payment(&ctx, new).await.is_ok(),
                None => false,
            }
        }
    })
    .await
    .rate()
}

/// The paced rate: one payment every this long.
const PACE: Duration = Duration::from_millis(10);

/// Unix time in milliseconds, with the fraction.
fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// One payment per [`PACE`] for `length`; returns each payment's id and
/// the time its write returned (committed).
async fn paced(settle: &Settle, length: Duration, bank: AccountId, shop: AccountId) -> Vec<(Vec<u8>, f64)> {
    let usd = Currency::parse("usd").unwrap_or_else(|_| unreachable!("usd is in the table"));
    let mut committed = Vec::new();
    let mut tick = tokio::time::interval(PACE);
    let end = Instant::now() + length;
    while Instant::now() < end {
        tick.tick().await;
        let ctx = settle.context("bench-paced", None);
        let Some(new) = payment(bank, shop, usd) else { break };
        if let Ok(p) = settle.create_payment(&ctx, new).await {
            committed.push((p.id.to_bytes(), unix_ms()));
        }
    }
    committed
}

/// Waits until the fan-out has consumed every committed event.
async fn drained(pool: &sqlx::AnyPool) -> anyhow::Result<()> {
    let unconsumed = "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM events e WHERE NOT EXISTS \
         (SELECT 1 FROM processed_messages m WHERE m.consumer = 'fanout' AND m.message_id = e.id)";
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left: i64 = sqlx::query(unconsumed).fetch_one(pool).await?.try_get("n")?;
        if left == 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{left} events were never consumed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// p50 and p99 of commit → consume for the paced payments.
async fn paced_latency(pool: &sqlx::AnyPool, committed: &[(Vec<u8>, f64)]) -> anyhow::Result<(f64, f64)> {
    let rows = sqlx::query(
        "SELECT e.object_id AS object_id, m.processed AS processed FROM events e \
         JOIN processed_messages m ON m.consumer = 'fanout' AND m.message_id = e.id \
         WHERE e.type = 'payment.succeeded'",
    )
    .fetch_all(pool)
    .await?;
    let mut consumed = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        consumed.insert(
            row.try_get::<Vec<u8>, _>("object_id")?,
            row.try_get::<i64, _>("processed")?,
        );
    }
    let mut latencies: Vec<f64> = committed
        .iter()
        .filter_map(|(id, at)| consumed.get(id).map(|done| (*done as f64 - at).max(0.0)))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: usize| latencies.get(latencies.len() * p / 100).copied().unwrap_or_default();
    Ok((pct(50), pct(99)))
}

fn pool_url(target: &Target) -> String {
    match (target.sqlite_file(), target.postgres_url()) {
        (Some(file), _) => format!("sqlite://{}", file.display()),
        (_, Some(url)) => url,
        _ => String::new(),
    }
}

async fn measure(args: &LoadArgs, target: &Target, backend: QueueBackend, nats_url: &str) -> anyhow::Result<Figures> {
    let store = target.open_store(Some(args.clients as u32 + 4)).await?;
    let settle = Settle::new(Arc::clone(&store), Arc::new(SystemClock));
    let prefix = format!("bench{:x}", rand::random::<u32>());
    let queue = QueueConfig {
        backend,
        nats_url: nats_url.to_owned(),
        nats_prefix: prefix.clone(),
        ..QueueConfig::default()
    };
    let runtime = QueueRuntime::build(&queue, &crate::config::WebhookConfig::default(), &settle, None).await?;
    let workers = runtime.spawn(&settle);
    let ctx = settle.context("bench", None);
    let usd = Currency::parse("usd")?;
    let open = |name: &str, neg| NewAccount::new(name.into(), usd, neg, None, Metadata::default());
    let bank = settle.create_account(&ctx, open("bank", true)?).await?.id;
    let mut shops = Vec::new();
    for i in 0..args.clients.max(1) {
        shops.push(settle.create_account(&ctx, open(&format!("shop{i}"), false)?).await?.id);
    }
    let shops = Arc::new(shops);
    let label = format!(
        "{} on {}",
        match backend {
            QueueBackend::Embedded => "embedded",
            QueueBackend::Nats => "NATS JetStream",
        },
        target.backend()
    );

    let payments_per_s = pay(&settle, args, bank, &shops).await;
    let pool = sqlx::AnyPool::connect(&pool_url(target)).await?;
    drained(&pool).await?;
    let rows = sqlx::query(
        "SELECT e.id AS id, m.processed AS processed FROM events e \
         JOIN processed_messages m ON m.consumer = 'fanout' AND m.message_id = e.id",
    )
    .fetch_all(&pool)
    .await?;
    let mut latencies = Vec::with_capacity(rows.len());
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for row in &rows {
        let id: Vec<u8> = row.try_get("id")?;
        let processed: i64 = row.try_get("processed")?;
        let committed = id.iter().take(6).fold(0i64, |acc, b| (acc << 8) | i64::from(*b));
        first = first.min(committed);
        last = last.max(processed);
        latencies.push(processed - committed);
    }
    latencies.sort_unstable();
    let pct = |p: usize| latencies.get(latencies.len() * p / 100).copied().unwrap_or_default();
    let span = Duration::from_millis(u64::try_from(last - first).unwrap_or(1).max(1));
    let committed = paced(&settle, args.duration().min(Duration::from_secs(5)), bank, shops[0]).await;
    drained(&pool).await?;
    let (paced_p50_ms, paced_p99_ms) = paced_latency(&pool, &committed).await?;
    for w in workers {
        w.abort();
    }
    if backend == QueueBackend::Nats {
        let client = async_nats::connect(nats_url).await.context("NATS")?;
        let js = async_nats::jetstream::new(client);
        for suffix in ["EVENTS", "DEAD"] {
            let _ = js.delete_stream(format!("{}_{suffix}", prefix.to_uppercase())).await;
        }
    }
    let without_events = match backend {
        QueueBackend::Embedded => {
            discard_events(&pool, target).await?;
            Some(pay(&settle, args, bank, &shops).await)
        }
        QueueBackend::Nats => None,
    };
    pool.close().await;
    Ok(Figures {
        label,
        payments_per_s,
        events: rows.len(),
        consumed_per_s: rows.len() as f64 / span.as_secs_f64(),
        p50_ms: pct(50),
        p99_ms: pct(99),
        paced_p50_ms,
        paced_p99_ms,
        without_events,
    })
}

/// Switches events off for the baseline: every insert into `events` is
/// silently dropped, so the outbox trigger never fires either.
async fn discard_events(pool: &sqlx::AnyPool, target: &Target) -> anyhow::Result<()> {
    let statements: &[&str] = match target {
        Target::Sqlite { .. } => {
            &["CREATE TRIGGER bench_discard_events BEFORE INSERT ON events BEGIN SELECT RAISE(IGNORE); END"]
        }
        Target::Postgres { .. } => &[
            "CREATE FUNCTION bench_discard_events() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
            "CREATE TRIGGER bench_discard_events BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION bench_discard_events()",
        ],
    };
    for sql in statements {
        pool.execute(*sql).await?;
    }
    Ok(())
}
