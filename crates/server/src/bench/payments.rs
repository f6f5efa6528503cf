//! Payment-create throughput, four ways in one run on one database:
//! the raw baseline (SQLite: one `BEGIN IMMEDIATE` transaction per payment
//! with the same statements; PostgreSQL: pgbench's TPC-B at the same client
//! count), the store called directly, HTTP, and HTTP with an
//! `Idempotency-Key` (the record costs one claim and one update).

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
use sqlx::{Connection, Executor};

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
    let bank = settle.create_account(&ctx, open("bank", true)?).await?.id;
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
        (Some(file), _) => (
            "raw SQL, one transaction per payment",
            raw_sqlite(&file, bank, &shops, args.duration()).await?,
        ),
        (_, Some(url)) => ("pgbench TPC-B, same clients", pgbench(&url, clients, args.seconds)?),
        _ => bail!("no database"),
    };
    println!("  {baseline_name:<44} {baseline:>9.0}/s  1.00× (baseline)");

    let direct = {
        let (settle, shops) = (settle.clone(), Arc::clone(&shops));
        closed_loop(clients, args.duration(), move |c, _| {
            let (settle, shops) = (settle.clone(), Arc::clone(&shops));
            async move {
                let ctx = settle.context("bench", None);
                let Ok(new) = payment(bank, shops[c], usd) else {
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
    let base = format!("http://{}", app.local_addr()?);
    let (_, secret) = settle.create_api_key(&ctx, None, "bench".into(), "admin", None).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients * 2).build()?;

    let mut rates = Vec::new();
    for with_key in [false, true] {
        let (http, base, secret, shops) = (http.clone(), base.clone(), secret.clone(), Arc::clone(&shops));
        let outcome = closed_loop(clients, args.duration(), move |c, seq| {
            let (http, base, secret) = (http.clone(), base.clone(), secret.clone());
            let body = serde_json::json!({
                "amount": 1, "currency": "usd", "source": bank.to_string(), "destination": shops[c].to_string()
            });
            async move {
                let mut req = http.post(format!("{base}/v1/payments")).bearer_auth(secret).json(&body);
                if with_key {
                    req = req.header("idempotency-key", format!("bench-{c}-{seq}"));
                }
                matches!(req.send().await, Ok(r) if r.status().is_success())
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
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
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

fn payment(source: AccountId, destination: AccountId, usd: Currency) -> Result<NewPayment, settle_domain::DomainError> {
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

/// The same writes as a payment (balances, payment, entries, its two
/// events), as plain SQL on one connection, one durable transaction each:
/// what SQLite does without group commit.
async fn raw_sqlite(file: &Path, bank: AccountId, shops: &[AccountId], duration: Duration) -> anyhow::Result<f64> {
    let mut conn = sqlx::AnyConnection::connect(&format!("sqlite://{}", file.display())).await?;
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = FULL").await?;
    conn.execute("PRAGMA busy_timeout = 5000").await?;
    let ids = IdGenerator::new();
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < duration {
        let shop = shops[done as usize % shops.len()];
        let now_ms = started.elapsed().as_millis() as u64 + 1_800_000_000_000;
        let pay = ids.next(now_ms).as_bytes().to_vec();
        conn.execute("BEGIN IMMEDIATE").await?;
        sqlx::query("UPDATE accounts SET balance = balance - $1 WHERE id = $2")
            .bind(1i64)
            .bind(bank.to_bytes())
            .execute(&mut conn)
            .await?;
        sqlx::query("UPDATE accounts SET balance = balance + $1 WHERE id = $2")
            .bind(1i64)
            .bind(shop.to_bytes())
            .execute(&mut conn)
            .await?;
        sqlx::query(
            "INSERT INTO payments (id, amount, currency, source_id, destination_id, customer_id, status, amount_captured, \
             amount_refunded, description, metadata, version, created) \
             VALUES ($1, 1, 'usd', $2, $3, NULL, 'succeeded', 1, 0, NULL, '{}', 1, $4)",
        )
        .bind(pay.clone())
        .bind(bank.to_bytes())
        .bind(shop.to_bytes())
        .bind((now_ms / 1000) as i64)
        .execute(&mut conn)
        .await?;
        sqlx::query(
            "INSERT INTO ledger_entries (id, account_id, amount, payment_id, refund_id, created) \
             VALUES ($1, $2, -1, $3, NULL, $4), ($5, $6, 1, $7, NULL, $8)",
        )
        .bind(ids.next(now_ms).as_bytes().to_vec())
        .bind(bank.to_bytes())
        .bind(pay.clone())
        .bind((now_ms / 1000) as i64)
        .bind(ids.next(now_ms).as_bytes().to_vec())
        .bind(shop.to_bytes())
        .bind(pay.clone())
        .bind((now_ms / 1000) as i64)
        .execute(&mut conn)
        .await?;
        // The payment's two events, as the store writes them.
        let data = format!(
            "{{\"id\":\"pay\",\"object\":\"payment\",\"amount\":1,\"status\":\"succeeded\",\"padding\":\"{}\"}}",
            "x".repeat(300)
        );
        for (seq, kind) in [(1i64, "payment.created"), (2, "payment.succeeded")] {
            sqlx::query(
                "INSERT INTO events (id, type, object_type, object_id, sequence, data, request_id, created) \
                 VALUES ($1, $2, 'payment', $3, $4, $5, 'bench', $6)",
            )
            .bind(ids.next(now_ms).as_bytes().to_vec())
            .bind(kind)
            .bind(pay.clone())
            .bind(seq)
            .bind(data.clone())
            .bind((now_ms / 1000) as i64)
            .execute(&mut conn)
            .await?;
        }
        conn.execute("COMMIT").await?;
        done += 1;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// pgbench's TPC-B on the benchmark's own database, at the same client count.
fn pgbench(url: &str, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let init = std::process::Command::new("pgbench")
        .args(["-i", "-q", "-s", "1", url])
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
