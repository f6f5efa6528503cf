//! The read pool. A read runs on the calling thread, on a connection taken
//! from the pool for that one statement: no hand-off to another thread and
//! back per statement or row, which on a 2-core machine cost more than the
//! reads themselves. A semaphore bounds the connections; a caller that finds
//! none free waits asynchronously, up to the acquire timeout, then gets 503.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::Connection;
use settle_store::StoreError;
use settle_store::error::StoreResult;
use settle_store::pool::PoolStats;
use settle_store::sql::db::{Executor, Fetch, Output, Query, Reads};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connection::{self, Role};
use crate::exec::ConnExec;
use crate::fault::classify;

/// How long a read connection stays unused before its page cache is handed
/// back to the allocator (the memory a load run leaves behind).
const IDLE_RELEASE: Duration = Duration::from_secs(30);

/// The SQLite read pool.
#[derive(Clone)]
pub struct SqliteReads {
    inner: Arc<Pool>,
}

struct Pool {
    file: PathBuf,
    idle: Mutex<Vec<(Connection, Instant)>>,
    permits: Arc<Semaphore>,
    size: usize,
    acquire_timeout: Duration,
    stats: PoolStats,
}

impl SqliteReads {
    /// A pool of at most `size` connections on `file`, opened as needed.
    pub fn new(file: PathBuf, size: u32, acquire_timeout: Duration) -> Self {
        let size = size.max(1) as usize;
        Self {
            inner: Arc::new(Pool {
                file,
                idle: Mutex::new(Vec::with_capacity(size)),
                permits: Arc::new(Semaphore::new(size)),
                size,
                acquire_timeout,
                stats: PoolStats::new("reads", size as u32),
            }),
        }
    }

    /// A handle that releases idle memory without keeping the pool open.
    pub(crate) fn releaser(&self) -> IdleReleaser {
        IdleReleaser(Arc::downgrade(&self.inner))
    }
}

/// Hands the page cache of connections unused for a while back to the
/// allocator; called periodically so memory falls back after a load.
pub(crate) struct IdleReleaser(Weak<Pool>);

impl IdleReleaser {
    /// False once the pool is gone.
    pub fn release(&self) -> bool {
        let Some(pool) = self.0.upgrade() else {
            return false;
        };
        let idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        for (conn, last_used) in idle.iter() {
            if last_used.elapsed() >= IDLE_RELEASE {
                let _ = conn.release_memory();
            }
        }
        true
    }
}

impl Pool {
    async fn permit(self: &Arc<Self>) -> StoreResult<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            self.stats.record_immediate();
            return Ok(permit);
        }
        let wait = async {
            match tokio::time::timeout(self.acquire_timeout, Arc::clone(&self.permits).acquire_owned()).await {
                Ok(Ok(permit)) => Ok(permit),
                Ok(Err(_)) => Err(StoreError::Unavailable("the SQLite read pool is closed".into())),
                Err(_) => Err(StoreError::Unavailable(
                    "timed out waiting for a database connection".into(),
                )),
            }
        };
        self.stats.timed(wait).await
    }

    fn take(&self) -> StoreResult<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some((conn, _)) => Ok(conn),
            None => connection::open(&self.file, Role::Reader).map_err(|e| classify(&e).error),
        }
    }

    fn give_back(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((conn, Instant::now()));
    }
}

#[async_trait]
impl Reads for SqliteReads {
    fn executor(&self) -> Box<dyn Executor> {
        Box::new(ReadExec {
            pool: Arc::clone(&self.inner),
        })
    }

    async fn hold(&self) -> StoreResult<Box<dyn std::any::Any + Send>> {
        Ok(Box::new(self.inner.permit().await?))
    }

    fn pool(&self) -> settle_store::pool::PoolSnapshot {
        let pool = &self.inner;
        let in_use = pool.size.saturating_sub(pool.permits.available_permits()) as u64;
        let idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        pool.stats.snapshot(in_use, idle)
    }
}

/// Reads through the pool, one connection per statement.
struct ReadExec {
    pool: Arc<Pool>,
}

#[async_trait]
impl Executor for ReadExec {
    async fn run(&mut self, query: Query, fetch: Fetch) -> StoreResult<Output> {
        let permit = self.pool.permit().await?;
        let mut conn = self.pool.take()?;
        let mut exec = ConnExec::new(&mut conn);
        let result = exec.run_now(&query, fetch);
        // A connection that met a storage fault is dropped; the next read
        // opens a fresh one.
        if exec.fault().is_none() {
            self.pool.give_back(conn);
        }
        drop(permit);
        result
    }
}
