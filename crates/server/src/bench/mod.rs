//! `settle bench`: benchmarks that need Settle's internals, each printing
//! rates and ratios against a baseline measured in the same run on the same
//! machine. Nothing here asserts a time; the figures go to README.

mod load;
mod payments;
mod target;

use std::time::Duration;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Payment-create throughput: raw baseline (SQLite: one transaction per
    /// payment; PostgreSQL: pgbench TPC-B), the store called directly, HTTP,
    /// and HTTP with an Idempotency-Key.
    Payments(LoadArgs),
}

/// How hard and how long to push.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
}

impl LoadArgs {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.seconds.max(1))
    }
}

/// Runs a benchmark on a fresh database: SQLite in a temporary directory,
/// or, with `DATABASE_URL`, a new database on that PostgreSQL server,
/// dropped afterwards.
pub async fn run(command: BenchCommand, database_url: Option<String>) -> anyhow::Result<()> {
    match command {
        BenchCommand::Payments(args) => payments::run(&args, database_url).await,
    }
}

/// `rate / base` as `1.23×`.
pub fn ratio(rate: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}×", rate / base)
    } else {
        "n/a".into()
    }
}
