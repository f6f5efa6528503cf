//! The write cost of each secondary index: the same bulk insert of payments
//! (with their ledger entries and refunds) on a fresh database with every
//! index, with each index dropped in turn, and with none, in one run.

use super::ratio;
use super::target::Target;
use crate::seed::{SeedArgs, seed};

/// The indexes a payment write maintains, each serving a list filter.
const INDEXES: [&str; 6] = [
    "payments_status_id",
    "payments_customer_id",
    "payments_source_id",
    "payments_destination_id",
    "refunds_payment_id",
    "ledger_entries_account_id",
];

async fn rate(database_url: Option<String>, drop: &[&str], payments: usize) -> anyhow::Result<f64> {
    let target = Target::create(database_url).await?;
    let result = async {
        let store = target.open_sql_store(None).await?;
        for index in drop {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {index}")))
                .execute(store.reads())
                .await?;
        }
        let args = SeedArgs {
            accounts: 1_000,
            customers: 500,
            payments,
            refund_fraction: 0.05,
            batch: 10_000,
            seed: 7,
            days: 365,
            verify: false,
        };
        let now_ms = settle_core::clock::Clock::now_ms(&settle_core::clock::SystemClock);
        let seeded = seed(&store, &args, now_ms).await?;
        Ok::<f64, anyhow::Error>(seeded.payments as f64 / seeded.elapsed.as_secs_f64())
    }
    .await;
    target.remove().await;
    result
}

pub async fn run(payments: usize, database_url: Option<String>) -> anyhow::Result<()> {
    let backend = if database_url.is_some() { "postgres" } else { "sqlite" };
    let all = rate(database_url.clone(), &[], payments).await?;
    let mut lines = vec![format!(
        "  {:<42} {:>9.0}/s  {:>7}  (baseline)",
        "all indexes", all, "1.00×"
    )];
    for index in INDEXES {
        let without = rate(database_url.clone(), &[index], payments).await?;
        lines.push(format!(
            "  {:<42} {:>9.0}/s  {:>7}  → {index} costs {:+.0}% write time",
            format!("without {index}"),
            without,
            ratio(without, all),
            (without / all - 1.0) * 100.0
        ));
    }
    let none = rate(database_url, &INDEXES, payments).await?;
    lines.push(format!(
        "  {:<42} {:>9.0}/s  {:>7}  → all six cost {:+.0}% write time",
        "no secondary indexes",
        none,
        ratio(none, all),
        (none / all - 1.0) * 100.0
    ));
    eprintln!();
    println!("settle bench indexes: {backend}, {payments} payments per run (bulk, with entries and refunds)");
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
