//! The single SQLite writer with group commit. Writes queue on a channel;
//! the task takes whatever has queued (up to a batch size), opens one
//! `BEGIN IMMEDIATE` transaction, runs each write inside its own savepoint
//! (so a write that fails rolls back alone), commits once, and only then
//! answers every writer. While one commit is waiting on the disk, the next
//! batch forms: under load many payments share one fsync, each still atomic.

use async_trait::async_trait;
use futures::FutureExt;
use settle_store::StoreError;
use settle_store::error::StoreResult;
use settle_store::sql::sqlx_exec::SqlxConn;
use settle_store::sql::{WriteExecutor, WriteJob};
use sqlx::pool::PoolConnection;
use sqlx::{Any, Executor};
use tokio::sync::{mpsc, oneshot};

type Reply = oneshot::Sender<StoreResult<()>>;

/// Hands jobs to the writer task.
pub struct SqliteWriter {
    jobs: mpsc::Sender<(WriteJob, Reply)>,
}

impl SqliteWriter {
    pub fn start(conn: PoolConnection<Any>, max_batch: usize) -> Self {
        let (jobs, rx) = mpsc::channel(max_batch * 4);
        tokio::spawn(run(conn, rx, max_batch));
        Self { jobs }
    }
}

#[async_trait]
impl WriteExecutor for SqliteWriter {
    async fn execute(&self, job: WriteJob) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((job, reply))
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?
    }
}

async fn run(mut conn: PoolConnection<Any>, mut rx: mpsc::Receiver<(WriteJob, Reply)>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        commit_batch(&mut conn, &mut batch).await;
        batch.clear();
    }
}

async fn commit_batch(conn: &mut PoolConnection<Any>, batch: &mut Vec<(WriteJob, Reply)>) {
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        let err = StoreError::from(e);
        for (_, reply) in batch.drain(..) {
            let _ = reply.send(Err(err.clone()));
        }
        return;
    }
    let mut results = Vec::with_capacity(batch.len());
    if let [(job, _)] = batch.as_mut_slice() {
        // A lone write needs no savepoint: if it fails, the whole
        // transaction is rolled back instead (two statements fewer).
        let result = run_alone(conn, job).await;
        let failed = result.is_err();
        results.push(result);
        if failed {
            let _ = conn.execute("ROLLBACK").await;
            for ((_, reply), result) in batch.drain(..).zip(results) {
                let _ = reply.send(result);
            }
            return;
        }
    } else {
        for (job, _) in batch.iter_mut() {
            results.push(run_in_savepoint(conn, job).await);
        }
    }
    let commit = conn.execute("COMMIT").await;
    if let Err(e) = commit {
        tracing::error!(error = %e, writes = batch.len(), "SQLite group commit failed");
        let _ = conn.execute("ROLLBACK").await;
        let err = StoreError::from(e);
        for r in results.iter_mut().filter(|r| r.is_ok()) {
            *r = Err(err.clone());
        }
    }
    for ((_, reply), result) in batch.drain(..).zip(results) {
        let _ = reply.send(result);
    }
}

/// Runs the only job of a batch, turning a panic into an error.
async fn run_alone(conn: &mut PoolConnection<Any>, job: &mut WriteJob) -> StoreResult<()> {
    let mut exec = SqlxConn(conn);
    match std::panic::AssertUnwindSafe(job(&mut exec)).catch_unwind().await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Internal("a write panicked".into())),
    }
}

/// Runs one job so that its failure (or panic) undoes only its own changes.
async fn run_in_savepoint(conn: &mut PoolConnection<Any>, job: &mut WriteJob) -> StoreResult<()> {
    conn.execute("SAVEPOINT job").await?;
    let mut exec = SqlxConn(conn);
    let outcome = std::panic::AssertUnwindSafe(job(&mut exec)).catch_unwind().await;
    let result = match outcome {
        Ok(result) => result,
        Err(_) => Err(StoreError::Internal("a write panicked".into())),
    };
    if result.is_err() {
        conn.execute("ROLLBACK TO SAVEPOINT job").await?;
    }
    conn.execute("RELEASE SAVEPOINT job").await?;
    result
}
