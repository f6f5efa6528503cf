//! PostgreSQL backend: one pool shared by reads and writes; each write is a
//! transaction on a pooled connection, with row locks (`FOR UPDATE`) taken
//! in one global order by the shared SQL. A transaction that still loses a
//! deadlock or serialization race is retried a few times before the client
//! sees a 503.

pub mod listener;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use settle_store::StoreError;
use settle_store::commits::CommitBus;
use settle_store::error::StoreResult;
use settle_store::pool::PoolStats;
use settle_store::sql::sqlx_exec::{SqlxConn, SqlxPool};
use settle_store::sql::{Dialect, SqlStore, WriteExecutor, WriteJob};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

/// The PostgreSQL schema, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

const MAX_ATTEMPTS: usize = 5;

#[derive(Debug, Clone)]
pub struct PostgresOptions {
    pub pool_size: u32,
    /// How long a request waits for a connection before it gets 503.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// Connects, applies pending migrations (under PostgreSQL's advisory lock, so
/// several processes starting together do not race), and returns the store.
pub async fn open(url: &str, options: &PostgresOptions) -> Result<SqlStore, StoreError> {
    sqlx::any::install_default_drivers();
    let bus = Arc::new(CommitBus::default());
    // Every connection names this store's writes (the triggers of
    // migration 0012 record it with the ids they changed), so its listener
    // can tell its own changes from other processes'. A session setting:
    // like LISTEN, it wants connections that are Settle's own for their
    // whole life (a transaction-pooling proxy would mix sessions).
    let set_origin = format!("SET settle.origin = '{}'", bus.origin());
    let pool = AnyPoolOptions::new()
        .max_connections(options.pool_size.max(1))
        .acquire_timeout(options.acquire_timeout)
        .after_connect(move |conn, _| {
            let set_origin = set_origin.clone();
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(set_origin)).await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let stats = Arc::new(PoolStats::new("database", options.pool_size.max(1)));
    let writer = PooledWriter {
        pool: pool.clone(),
        stats: Arc::clone(&stats),
    };
    let reads = Arc::new(SqlxPool {
        pool: pool.clone(),
        stats,
    });
    Ok(SqlStore::new(Dialect::Postgres, pool, reads, Arc::new(writer), latest).with_commit_bus(bus))
}

struct PooledWriter {
    pool: AnyPool,
    stats: Arc<PoolStats>,
}

#[async_trait]
impl WriteExecutor for PooledWriter {
    async fn execute(&self, job: WriteJob, deadline: Option<Instant>) -> StoreResult<()> {
        // On a task of its own: a caller that stops waiting (a client that
        // hung up) does not cut the transaction short, mid-COMMIT perhaps;
        // it commits or rolls back as a whole, and whatever the write
        // changed is dropped from the caches after it (SQLite's writer is
        // its own task already).
        let writer = PooledWriter {
            pool: self.pool.clone(),
            stats: Arc::clone(&self.stats),
        };
        tokio::spawn(async move { writer.run(job, deadline).await })
            .await
            .map_err(|e| StoreError::Internal(format!("a write transaction's task failed: {e}")))?
    }
}

impl PooledWriter {
    async fn run(&self, mut job: WriteJob, deadline: Option<Instant>) -> StoreResult<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let begin = async {
                Ok(match deadline {
                    None => self.pool.begin().await?,
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(StoreError::DeadlineExceeded);
                        }
                        // The statements of this transaction may take what is
                        // left of the request's budget, and no more; set with
                        // BEGIN in one round trip.
                        let ms = left.as_millis().max(1);
                        self.pool
                            .begin_with(sqlx::AssertSqlSafe(format!(
                                "BEGIN; SET LOCAL statement_timeout = {ms}"
                            )))
                            .await?
                    }
                })
            };
            // The wait for a connection, with BEGIN's round trip.
            let mut tx = self.stats.timed(begin).await?;
            let result = match job(&mut SqlxConn(&mut tx)).await {
                Ok(()) => tx.commit().await.map_err(StoreError::from),
                Err(e) => Err(e),
            };
            match result {
                Err(StoreError::Retry(reason)) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, %reason, "retrying a write transaction");
                    tokio::time::sleep(Duration::from_millis(2 << attempt)).await;
                }
                Err(StoreError::Retry(reason)) => return Err(StoreError::Unavailable(reason)),
                other => return other,
            }
        }
    }
}
