//! Payment create and read, each against a baseline measured in the same
//! run on the same machine:
//! - create: the raw baseline (SQLite: rusqlite on one thread, WAL,
//!   `synchronous=FULL`, prepared statements, one transfer per transaction:
//!   two balance `UPDATE`s and three `INSERT`s; PostgreSQL: pgbench's TPC-B,
//!   scale 10, at the same client count), then the store called directly,
//!   HTTP, and HTTP with an `Idempotency-Key`;
//! - read: `GET /v1/payments/{id}` against a bare axum handler that returns
//!   a fixed JSON body of the same size, over the same HTTP client.
//!
//! The queue and its workers run throughout, with no webhook endpoints.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use settle_core::Settle;
use settle_core::clock::SystemClock;
use settle_domain::account::NewAccount;
use settle_domain::ids::AccountId;
use settle_domain::metadata::Metadata;
use settle_domain::money::{Amount, Currency};
use settle_domain::payment::NewPayment;
use settle_store::ids::IdGenerator;

use super::http::{Connections, Prepared};
use super::load::closed_loop;
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

async fn measure(args: &LoadArgs, target: &Target) -> anyhow::Result<()> {
    let clients = args.clients.max(1);
    let store = target.open_store(Some(clients as u32 + 2)).await?;
    let settle = Settle::new(Arc::clone(&store), Arc::new(SystemClock));
    let ctx = settle.context("bench", None);
    let usd = Currency::parse("usd")?;
    let open =
        |name: &str, allow_negative| NewAccount::new(name.into(), usd, allow_negative, None, Metadata::default());
    // Ten funding accounts, one picked at random per payment, as TPC-B at
    // scale 10 updates one of ten branch rows.
    let mut banks = Vec::new();
    for i in 0..FUNDING_ACCOUNTS {
        banks.push(settle.create_account(&ctx, open(&format!("bank{i}"), true)?).await?.id);
    }
    let banks = Arc::new(banks);
    let mut shops = Vec::new();
    for i in 0..clients {
        shops.push(settle.create_account(&ctx, open(&format!("shop{i}"), false)?).await?.id);
    }
    let shops = Arc::new(shops);
    println!(
        "settle bench payments: {}, {clients} clients, {} s per measurement",
        target.backend(),
        args.seconds
    );

    let (baseline_name, baseline) = match (target.sqlite_file(), target.postgres_url()) {
        (Some(file), _) => ("raw SQL, one transaction per payment", {
            let (shops, duration) = (shops.to_vec(), args.duration());
            let banks = banks.to_vec();
            tokio::task::spawn_blocking(move || raw_sqlite(&file, &banks, &shops, duration)).await??
        }),
        (_, Some(url)) => (
            "pgbench TPC-B, scale 10, same clients",
            pgbench(&url, clients, args.seconds)?,
        ),
        _ => bail!("no database"),
    };
    println!("  {baseline_name:<44} {baseline:>9.0}/s  1.00× (baseline)");

    let direct = {
        let (settle, banks, shops) = (settle.clone(), Arc::clone(&banks), Arc::clone(&shops));
        closed_loop(clients, args.duration(), move |c, _| {
            let (settle, bank, shop) = (settle.clone(), pick(&banks), shops[c]);
            async move {
                let ctx = settle.context("bench", None);
                let Ok(new) = payment(bank, shop, usd) else {
                    return false;
                };
                settle.create_payment(&ctx, new).await.is_ok()
            }
        })
        .await
    };
    report("store.create_payment, called directly", &direct, baseline);

    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    };
    let mut config = config;
    config.webhooks.master_key = Some(settle_core::secrets::MasterKeys::generate_text());
    let app = Application::with_store(&config, Arc::clone(&store), Arc::new(SystemClock)).await?;
    let addr = app.local_addr()?;
    let (_, secret) = settle.create_api_key(&ctx, None, "bench".into(), "admin", None).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let mut rates = Vec::new();
    for with_key in [false, true] {
        let conns = Arc::new(Connections::open(addr, clients).await?);
        // Each client's request to each funding account, built once.
        let mut prepared = Vec::with_capacity(clients);
        for shop in shops.iter() {
            let mut mine = Vec::with_capacity(banks.len());
            for bank in banks.iter() {
                let body = serde_json::json!({
                    "amount": 1, "currency": "usd", "source": bank.to_string(), "destination": shop.to_string()
                });
                mine.push(
                    Prepared::post_json("/v1/payments", &body)?.header("authorization", format!("Bearer {secret}")),
                );
            }
            prepared.push(mine);
        }
        let (prepared, host) = (Arc::new(prepared), Arc::new(addr.to_string()));
        let outcome = closed_loop(clients, args.duration(), move |c, seq| {
            let (conns, prepared, host) = (Arc::clone(&conns), Arc::clone(&prepared), Arc::clone(&host));
            async move {
                let mine = &prepared[c];
                let request = &mine[rand::random_range(0..mine.len())];
                if with_key {
                    let keyed = request.clone().header("idempotency-key", format!("bench-{c}-{seq}"));
                    conns.send(c, &host, &keyed).await
                } else {
                    conns.send(c, &host, request).await
                }
            }
        })
        .await;
        rates.push(outcome.rate());
        let label = if with_key {
            "HTTP POST /v1/payments + Idempotency-Key"
        } else {
            "HTTP POST /v1/payments"
        };
        report(label, &outcome, baseline);
    }
    println!(
        "  idempotency record cost: with key / without = {}",
        ratio(rates[1], rates[0])
    );
    reads(addr, &secret, clients, args.duration()).await?;
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}

/// How many funding accounts the payments debit.
const FUNDING_ACCOUNTS: usize = 10;

/// One of `accounts`, at random.
fn pick(accounts: &[AccountId]) -> AccountId {
    accounts[rand::random_range(0..accounts.len())]
}

fn report(label: &str, outcome: &super::load::Outcome, baseline: f64) {
    let failed = if outcome.failed > 0 {
        format!("  ({} failed)", outcome.failed)
    } else {
        String::new()
    };
    println!(
        "  {label:<44} {:>9.0}/s  {}{failed}",
        outcome.rate(),
        ratio(outcome.rate(), baseline)
    );
}

/// A settled payment of 1 from `source` to `destination`.
pub(super) fn payment(
    source: AccountId,
    destination: AccountId,
    usd: Currency,
) -> Result<NewPayment, settle_domain::DomainError> {
    NewPayment::new(
        Amount::parse("amount", 1)?,
        usd,
        source,
        destination,
        None,
        true,
        None,
        Metadata::default(),
    )
}

/// One transfer per transaction, as plain SQL on one rusqlite connection
/// with prepared statements: two balance updates, the payment, its two
/// ledger entries, and a durable commit each. What SQLite itself can do for
/// one writer without group commit.
fn raw_sqlite(file: &Path, banks: &[AccountId], shops: &[AccountId], duration: Duration) -> anyhow::Result<f64> {
    let conn = rusqlite::Connection::open(file)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
    let ids = IdGenerator::new();
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < duration {
        let (bank, shop) = (pick(banks), shops[done as usize % shops.len()]);
        let now_ms = started.elapsed().as_millis() as u64 + 1_800_000_000_000;
        let created = (now_ms / 1000) as i64;
        let pay = ids.next(now_ms).as_bytes().to_vec();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut debit = conn.prepare_cached("UPDATE accounts SET balance = balance - ?1 WHERE id = ?2")?;
        debit.execute(rusqlite::params![1i64, bank.to_bytes().to_vec()])?;
        let mut credit = conn.prepare_cached("UPDATE accounts SET balance = balance + ?1 WHERE id = ?2")?;
        credit.execute(rusqlite::params![1i64, shop.to_bytes().to_vec()])?;
        let mut payment = conn.prepare_cached(
            "INSERT INTO payments (id, amount, currency, source_id, destination_id, customer_id, status, \
             amount_captured, amount_refunded, description, metadata, version, created) \
             VALUES (?1, 1, 'usd', ?2, ?3, NULL, 'succeeded', 1, 0, NULL, '{}', 1, ?4)",
        )?;
        payment.execute(rusqlite::params![
            pay,
            bank.to_bytes().to_vec(),
            shop.to_bytes().to_vec(),
            created
        ])?;
        let mut entry = conn.prepare_cached(
            "INSERT INTO ledger_entries (id, account_id, amount, payment_id, refund_id, created) \
             VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
        )?;
        for (account, amount) in [(bank, -1i64), (shop, 1)] {
            entry.execute(rusqlite::params![
                ids.next(now_ms).as_bytes().to_vec(),
                account.to_bytes().to_vec(),
                amount,
                pay,
                created
            ])?;
        }
        conn.execute_batch("COMMIT")?;
        done += 1;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// `GET /v1/payments/{id}` against a bare axum handler answering a fixed
/// body of the same size, on the same client and connection count.
async fn reads(addr: SocketAddr, secret: &str, clients: usize, duration: Duration) -> anyhow::Result<()> {
    let (id, body) = super::http::newest_payment(addr, secret).await?;
    let (bare_addr, bare_server) = super::http::bare_handler(body).await?;

    let get = |addr: SocketAddr, request: Prepared| async move {
        let conns = Arc::new(Connections::open(addr, clients).await?);
        let (request, host) = (Arc::new(request), Arc::new(addr.to_string()));
        anyhow::Ok(
            closed_loop(clients, duration, move |c, _| {
                let (conns, request, host) = (Arc::clone(&conns), Arc::clone(&request), Arc::clone(&host));
                async move { conns.send(c, &host, &request).await }
            })
            .await,
        )
    };
    let baseline = get(bare_addr, Prepared::get("/payment")).await?;
    println!(
        "  {:<44} {:>9.0}/s  1.00× (baseline)",
        "bare axum handler, fixed JSON",
        baseline.rate()
    );
    let read = Prepared::get(format!("/v1/payments/{id}")).header("authorization", format!("Bearer {secret}"));
    let settle = get(addr, read).await?;
    report("HTTP GET /v1/payments/{id}", &settle, baseline.rate());
    bare_server.abort();
    Ok(())
}

/// pgbench's TPC-B on the benchmark's own database, at the same client count.
fn pgbench(url: &str, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let init = std::process::Command::new("pgbench")
        .args(["-i", "-q", "-s", "10", url])
        .output();
    let init = init.context("pgbench is not installed (Debian: postgresql-client / postgresql)")?;
    if !init.status.success() {
        bail!("pgbench -i failed: {}", String::from_utf8_lossy(&init.stderr));
    }
    let jobs = clients.clamp(1, 2).to_string();
    let out = std::process::Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            &jobs,
            "-T",
            &seconds.to_string(),
            url,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .with_context(|| format!("no tps in pgbench output: {text}"))
}
