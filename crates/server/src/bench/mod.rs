//! `settle bench`: benchmarks that need Settle's internals, each printing
//! rates and ratios against a baseline measured in the same run on the same
//! machine. Nothing here asserts a time; the figures go to README.

mod auth;
mod cache;
mod depth;
mod events;
mod expand;
mod grpc_page;
mod http;
mod indexes;
mod load;
mod payments;
mod pools;
mod surge;
mod target;
mod webhooks;

use std::time::Duration;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Payment-create throughput: raw baseline (SQLite: one transaction per
    /// payment; PostgreSQL: pgbench TPC-B), the store called directly, HTTP,
    /// and HTTP with an Idempotency-Key.
    Payments(LoadArgs),
    /// Authorization cost per request against an unauthenticated route.
    Auth(LoadArgs),
    /// Throughput and p99 against the database pool size (1 to 64) at a
    /// fixed client count, and a pooled connection against a new one per
    /// request.
    Pools(PoolArgs),
    /// The read cache: a cached read against a bare handler, payment
    /// creates with the cache on against off, the hit ratio on a Zipf mix
    /// against the ideal, and (PostgreSQL) staleness seen by another process.
    Cache(LoadArgs),
    /// Events from commit to consumer (rate, p50/p99 latency) on the
    /// embedded queue (SQLite; PostgreSQL with DATABASE_URL) and NATS
    /// JetStream (NATS_URL), and payment throughput with events vs without.
    Events(LoadArgs),
    /// A page of 100 payments plain, with `expand[]` of its customer,
    /// source and destination, the same through GraphQL, and fetched the
    /// N+1 way: pages/s, p50/p99 and SQL statements per page.
    Expand(LoadArgs),
    /// The faces compared on that page: REST, GraphQL and gRPC (the same
    /// run as `expand`).
    Faces(LoadArgs),
    /// Webhook delivery against the receiver's raw rate: end to end from
    /// payments through HTTP, payment cost of an endpoint, backlog drain to
    /// 1 and 10 endpoints, and paced commit → receipt p50/p99, on the
    /// embedded queue (SQLite; PostgreSQL with DATABASE_URL) and NATS.
    Webhooks(webhooks::WebhookArgs),
    /// Page cost at depth on the configured (already seeded) database:
    /// keyset vs OFFSET at the start, 1M and 9M, with and without filters.
    Depth {
        /// Runs per figure (the median is printed).
        #[arg(long, default_value_t = 15)]
        runs: usize,
    },
    /// Write cost of each secondary index: bulk inserts with every index,
    /// with each one dropped in turn, and with none.
    Indexes {
        #[arg(long, default_value_t = 100_000)]
        payments: usize,
    },
    /// A 10× surge, open loop: the saturating rate of a realistic mix, then
    /// 1×, 10× and 1× again; goodput, admitted p99, shed share, other 5xx,
    /// recovery time and peak RSS per phase and class, and a ledger check
    /// that shedding lost or doubled no payment.
    Surge(surge::SurgeArgs),
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

/// `settle bench pools`: many clients, so that small pools queue.
#[derive(Debug, Clone, Args)]
pub struct PoolArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds per pool size.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
}

impl PoolArgs {
    fn load(&self) -> LoadArgs {
        LoadArgs {
            clients: self.clients,
            seconds: self.seconds,
        }
    }
}

impl LoadArgs {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.seconds.max(1))
    }
}

/// Runs a benchmark on a fresh database: SQLite in a temporary directory,
/// or, with `DATABASE_URL`, a new database on that PostgreSQL server,
/// dropped afterwards.
pub async fn run(command: BenchCommand, config: &crate::config::Config) -> anyhow::Result<()> {
    match command {
        BenchCommand::Payments(args) => payments::run(&args, config.database_url.clone()).await,
        BenchCommand::Auth(args) => auth::run(&args, config.database_url.clone()).await,
        BenchCommand::Pools(args) => pools::run(&args.load(), config.database_url.clone()).await,
        BenchCommand::Cache(args) => cache::run(&args, config.database_url.clone()).await,
        BenchCommand::Events(args) => events::run(&args, config.database_url.clone(), &config.queue.nats_url).await,
        BenchCommand::Webhooks(args) => webhooks::run(&args, config).await,
        BenchCommand::Expand(args) | BenchCommand::Faces(args) => expand::run(&args, config.database_url.clone()).await,
        BenchCommand::Depth { runs } => {
            let store = crate::app::open_sql_store(config).await?;
            depth::run(&store, runs).await
        }
        BenchCommand::Indexes { payments } => indexes::run(payments, config.database_url.clone()).await,
        BenchCommand::Surge(args) => surge::run(&args, config.database_url.clone()).await,
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

/// The queue setups a queue benchmark compares, in order: embedded on
/// SQLite, embedded on PostgreSQL (with a database URL), and NATS JetStream
/// on that database (when NATS answers; said so when it does not).
async fn queue_configs(
    database_url: &Option<String>,
    nats_url: &str,
) -> Vec<(Option<String>, crate::config::QueueBackend)> {
    use crate::config::QueueBackend;
    let mut configs = vec![(None, QueueBackend::Embedded)];
    if database_url.is_some() {
        configs.push((database_url.clone(), QueueBackend::Embedded));
    }
    let nats_up = tokio::net::TcpStream::connect(nats_url.trim_start_matches("nats://"))
        .await
        .is_ok();
    if nats_up {
        configs.push((database_url.clone(), QueueBackend::Nats));
    } else {
        println!("  (NATS at {nats_url} does not answer: the NATS runs are skipped)");
    }
    configs
}
