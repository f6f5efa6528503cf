//! Pool size against throughput and p99 at a fixed client count, on the
//! configured database (SQLite: the read pool; PostgreSQL: the one pool
//! reads and writes share), and a pooled connection against a new
//! connection per request, in one run. The mix is what a pool serves:
//! single reads (the read cache off, so every read needs a connection),
//! pages of 10 payments, and payment creates, 8:1:1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use settle_core::Settle;
use settle_core::cache::CacheOptions;
use settle_core::clock::SystemClock;
use settle_domain::account::NewAccount;
use settle_domain::ids::{AccountId, PaymentId};
use settle_domain::metadata::Metadata;
use settle_domain::money::Currency;
use settle_domain::payment::NewPayment;
use settle_store::ListQuery;
use sqlx::Connection;

use super::target::Target;
use super::{LoadArgs, ratio};

/// The pool sizes measured.
const SIZES: [u32; 7] = [1, 2, 4, 8, 16, 32, 64];

pub async fn run(args: &LoadArgs, database_url: Option<String>) -> anyhow::Result<()> {
    let target = Target::create(database_url).await?;
    let result = measure(args, &target).await;
    target.remove().await;
    result
}

/// What one run achieved: its rate and latency percentiles.
struct Measured {
    rate: f64,
    p50: Duration,
    p99: Duration,
    failed: u64,
}

/// `op(client, sequence)` from `clients` tasks for `duration`, timing each.
async fn timed<F, Fut>(clients: usize, duration: Duration, op: F) -> Measured
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients.max(1))
        .map(|client| {
            let op = Arc::clone(&op);
            tokio::spawn(async move {
                let (mut times, mut failed, mut seq) = (Vec::new(), 0u64, 0u64);
                while started.elapsed() < duration {
                    let at = Instant::now();
                    if op(client, seq).await {
                        times.push(at.elapsed());
                    } else {
                        failed += 1;
                    }
                    seq += 1;
                }
                (times, failed)
            })
        })
        .collect();
    let (mut times, mut failed) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((t, f)) = task.await {
            times.extend(t);
            failed += f;
        }
    }
    let elapsed = started.elapsed();
    times.sort();
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Measured {
        rate: times.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
        failed,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn measure(args: &LoadArgs, target: &Target) -> anyhow::Result<()> {
    let clients = args.clients.max(1);
    println!(
        "settle bench pools: {}, {clients} clients, {} s per pool size, mix 8 reads : 1 page : 1 create",
        target.backend(),
        args.seconds
    );
    // The accounts and payments every run reads, made once.
    let (accounts, payments) = {
        let store = target.open_store(None).await?;
        let settle = Settle::new(store, Arc::new(SystemClock));
        let ctx = settle.context("bench", None);
        let usd = Currency::parse("usd")?;
        let bank = settle
            .create_account(
                &ctx,
                NewAccount::new("bank".into(), usd, true, None, Metadata::default())?,
            )
            .await?
            .id;
        let mut shops = Vec::new();
        for i in 0..clients {
            let new = NewAccount::new(format!("shop{i}"), usd, false, None, Metadata::default())?;
            shops.push(settle.create_account(&ctx, new).await?.id);
        }
        let mut payments = Vec::new();
        for i in 0..1_000 {
            let shop = shops[i % shops.len()];
            payments.push(settle.create_payment(&ctx, payment(bank, shop)?).await?.id);
        }
        (Arc::new((bank, shops)), Arc::new(payments))
    };

    println!("  {:>9} {:>11} {:>10} {:>10}", "pool", "requests/s", "p50 ms", "p99 ms");
    let mut best = (0u32, 0.0f64);
    for size in SIZES {
        let store = target.open_store(Some(size)).await?;
        let options = settle_core::ServiceOptions {
            cache: CacheOptions {
                enabled: false,
                ..CacheOptions::default()
            },
            // This measures the pool under 64 clients, not the admission
            // limit that would shed some of them.
            admission: settle_core::admission::AdmissionOptions {
                concurrency: settle_core::admission::ConcurrencyOptions {
                    enabled: false,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..settle_core::ServiceOptions::default()
        };
        let settle = Settle::with_options(store, Arc::new(SystemClock), options);
        let (accounts, payments) = (Arc::clone(&accounts), Arc::clone(&payments));
        let m = timed(clients, args.duration(), move |client, seq| {
            let (settle, accounts, payments) = (settle.clone(), Arc::clone(&accounts), Arc::clone(&payments));
            async move { mixed(&settle, &accounts, &payments, client, seq).await }
        })
        .await;
        let failed = if m.failed > 0 {
            format!("  ({} failed)", m.failed)
        } else {
            String::new()
        };
        println!(
            "  {size:>9} {:>11.0} {:>10.2} {:>10.2}{failed}",
            m.rate,
            ms(m.p50),
            ms(m.p99)
        );
        if m.rate > best.1 {
            best = (size, m.rate);
        }
    }
    println!("  highest throughput at pool size {} ({:.0}/s)", best.0, best.1);
    pooled_or_not(target, clients, args.duration(), &payments).await
}

/// One request of the mix.
async fn mixed(
    settle: &Settle,
    accounts: &(AccountId, Vec<AccountId>),
    payments: &[PaymentId],
    client: usize,
    seq: u64,
) -> bool {
    match seq % 10 {
        8 => settle.list_payments(&ListQuery::first(10)).await.is_ok(),
        9 => match payment(accounts.0, accounts.1[client % accounts.1.len()]) {
            Ok(new) => settle.create_payment(&settle.context("bench", None), new).await.is_ok(),
            Err(_) => false,
        },
        _ => {
            let id = payments[(client * 7919 + seq as usize) % payments.len()];
            settle.payment(Some(id)).await.is_ok()
        }
    }
}

fn payment(source: AccountId, destination: AccountId) -> anyhow::Result<NewPayment> {
    Ok(super::payments::payment(source, destination, Currency::parse("usd")?)?)
}

/// One read by id with a kept connection against a connection opened (and
/// closed) for each read: what a pool saves.
async fn pooled_or_not(
    target: &Target,
    clients: usize,
    duration: Duration,
    payments: &Arc<Vec<PaymentId>>,
) -> anyhow::Result<()> {
    const SQL: &str = "SELECT amount FROM payments WHERE id = $1";
    let pooled = {
        let store = target.open_sql_store(Some(clients as u32)).await?;
        let pool = store.reads().clone();
        let payments = Arc::clone(payments);
        timed(clients, duration, move |client, seq| {
            let (pool, payments) = (pool.clone(), Arc::clone(&payments));
            async move {
                let id = payments[(client * 7919 + seq as usize) % payments.len()];
                sqlx::query(SQL).bind(id.to_bytes()).fetch_one(&pool).await.is_ok()
            }
        })
        .await
    };
    let url = match (target.postgres_url(), target.sqlite_file()) {
        (Some(url), _) => url,
        (_, Some(file)) => format!("sqlite://{}", file.display()),
        _ => anyhow::bail!("no database"),
    };
    let fresh = {
        let payments = Arc::clone(payments);
        let url = Arc::new(url);
        timed(clients, duration, move |client, seq| {
            let (url, payments) = (Arc::clone(&url), Arc::clone(&payments));
            async move {
                let id = payments[(client * 7919 + seq as usize) % payments.len()];
                let Ok(mut conn) = sqlx::AnyConnection::connect(&url).await else {
                    return false;
                };
                let ok = sqlx::query(SQL).bind(id.to_bytes()).fetch_one(&mut conn).await.is_ok();
                let _ = conn.close().await;
                ok
            }
        })
        .await
    };
    println!(
        "  one read, pooled connection:           {:>9.0}/s  p99 {:>7.2} ms  1.00× (baseline)",
        pooled.rate,
        ms(pooled.p99)
    );
    println!(
        "  one read, new connection per request:  {:>9.0}/s  p99 {:>7.2} ms  {}",
        fresh.rate,
        ms(fresh.p99),
        ratio(fresh.rate, pooled.rate)
    );
    if fresh.failed > 0 {
        println!("  ({} reads could not connect)", fresh.failed);
    }
    Ok(())
}
