//! The single SQLite writer, on a thread of its own that owns the only write
//! connection. Writes queue on a channel; the thread takes whatever has
//! queued (up to a batch size), opens one `BEGIN IMMEDIATE` transaction, runs
//! each write inside its own savepoint (a write that fails rolls back
//! alone), commits once, and only then answers every writer. A whole batch
//! runs on this thread: no hand-off per statement or row, statements
//! prepared once, and under load many payments share one fsync.
//!
//! When the storage fails (disk full, file read-only, I/O error, locked by
//! another process), the whole batch fails: every caller gets the error,
//! nothing is retried (a failed fsync leaves the file's state unknown to the
//! kernel's page cache, so retrying it could report a write that was lost),
//! and the connection is reopened for the next batch, so the writer
//! recovers by itself once the cause is gone.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::Connection;
use settle_store::StoreError;
use settle_store::error::StoreResult;
use settle_store::sql::{WriteExecutor, WriteJob};
use tokio::sync::{mpsc, oneshot};

use crate::connection::{self, Role};
use crate::exec::ConnExec;
use crate::fault::classify;

type Reply = oneshot::Sender<StoreResult<()>>;

/// Stack of the writer thread: Cedar policies are evaluated inside writes,
/// and their evaluation recurses (the same size as the runtime's workers).
const WRITER_STACK: usize = 16 * 1024 * 1024;

/// How long writes must pause before the writer hands its page cache back.
const IDLE_RELEASE: Duration = Duration::from_secs(30);

enum Work {
    Write(WriteJob, Reply, Option<Instant>),
    /// Hand the page cache back to the allocator (sent when writes pause).
    ReleaseMemory,
}

/// Hands jobs to the writer thread.
pub struct SqliteWriter {
    jobs: mpsc::Sender<Work>,
}

impl SqliteWriter {
    /// Opens the write connection on `file` and starts the writer thread.
    pub fn start(file: PathBuf, max_batch: usize) -> StoreResult<Self> {
        let conn = connection::open(&file, Role::Writer).map_err(|e| classify(&e).error)?;
        let max_batch = max_batch.max(1);
        let (jobs, rx) = mpsc::channel(max_batch * 4);
        let writer = Writer {
            file,
            conn: Some(conn),
            max_batch,
            last_write: Instant::now(),
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .stack_size(WRITER_STACK)
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(Self { jobs })
    }

    /// Asks the writer to hand its page cache back when it has nothing to do.
    pub fn release_memory(&self) {
        let _ = self.jobs.try_send(Work::ReleaseMemory);
    }
}

#[async_trait]
impl WriteExecutor for SqliteWriter {
    async fn execute(&self, job: WriteJob, deadline: Option<Instant>) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Work::Write(job, reply, deadline))
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?
    }
}

struct Writer {
    file: PathBuf,
    /// `None` after a storage fault, until a batch reopens it.
    conn: Option<Connection>,
    max_batch: usize,
    last_write: Instant,
}

impl Writer {
    /// Hands the page cache back once writes have paused for a while; a busy
    /// writer keeps it.
    fn release_memory_if_idle(&self) {
        if self.last_write.elapsed() < IDLE_RELEASE {
            return;
        }
        if let Some(conn) = &self.conn {
            let _ = conn.release_memory();
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Work>) {
        let mut batch: Vec<(WriteJob, Reply)> = Vec::with_capacity(self.max_batch);
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            while let Some(work) = next.take() {
                match work {
                    // Checked before the batch opens: refusing a write
                    // inside a batch would fail its neighbours too.
                    Work::Write(_, reply, Some(deadline)) if Instant::now() >= deadline => {
                        let _ = reply.send(Err(StoreError::DeadlineExceeded));
                    }
                    Work::Write(job, reply, _) => batch.push((job, reply)),
                    Work::ReleaseMemory => self.release_memory_if_idle(),
                }
                if batch.len() < self.max_batch {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                if let Some(fault) = self.commit(&mut batch) {
                    fail_waiting(&mut rx, &fault);
                }
                self.last_write = Instant::now();
            }
        }
    }

    /// The open connection, reopened first if a fault closed it.
    fn connection(&mut self) -> StoreResult<&mut Connection> {
        if self.conn.is_none() {
            let conn = connection::open(&self.file, Role::Writer).map_err(|e| classify(&e).error)?;
            tracing::info!(file = %self.file.display(), "SQLite write connection reopened");
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::Internal("the write connection vanished".into()))
    }

    /// Commits a batch and answers its writers; gives back the storage fault
    /// that failed it, if one did.
    fn commit(&mut self, batch: &mut Vec<(WriteJob, Reply)>) -> Option<StoreError> {
        let outcome = self.run_batch(batch);
        let mut fault = None;
        let results = match outcome {
            Ok(results) => results,
            Err(error) => {
                if matches!(error, StoreError::StorageFault(_)) {
                    tracing::error!(%error, writes = batch.len(), "SQLite batch failed; reopening the connection");
                    self.conn = None;
                    fault = Some(error.clone());
                } else if let Some(conn) = &self.conn {
                    rollback(conn);
                }
                vec![Err(error); batch.len()]
            }
        };
        for ((_, reply), result) in batch.drain(..).zip(results) {
            let _ = reply.send(result);
        }
        fault
    }

    /// Runs and commits one batch. `Err` fails every write of the batch;
    /// `Ok` carries each write's own result (a failed write rolled back
    /// alone). A storage fault anywhere fails the batch.
    fn run_batch(&mut self, batch: &mut [(WriteJob, Reply)]) -> StoreResult<Vec<StoreResult<()>>> {
        let conn = self.connection()?;
        control(conn, "BEGIN IMMEDIATE")?;
        let lone = batch.len() == 1;
        let mut results = Vec::with_capacity(batch.len());
        for (job, _) in batch.iter_mut() {
            if !lone {
                control(conn, "SAVEPOINT job")?;
            }
            let mut exec = ConnExec::new(conn);
            let result = run_job(job, &mut exec);
            if let Some(fault) = exec.fault() {
                return Err(fault.clone());
            }
            if conn.is_autocommit() {
                // SQLite ended the transaction itself (it does on some
                // errors): what ran before is gone, so the batch fails.
                return Err(StoreError::StorageFault(
                    "SQLite rolled the transaction back on its own".into(),
                ));
            }
            if !lone {
                if result.is_err() {
                    control(conn, "ROLLBACK TO SAVEPOINT job")?;
                }
                control(conn, "RELEASE SAVEPOINT job")?;
            }
            results.push(result);
        }
        if lone && results.iter().any(Result::is_err) {
            // A lone write needs no savepoint: its failure rolls back the
            // whole transaction instead (two statements fewer).
            rollback(conn);
            return Ok(results);
        }
        if let Err(e) = control(conn, "COMMIT") {
            // Whatever the cause, the connection is reopened: a failed
            // commit is never retried.
            return Err(match e {
                StoreError::StorageFault(cause) => StoreError::StorageFault(cause),
                other => StoreError::StorageFault(format!("the commit failed: {other}")),
            });
        }
        Ok(results)
    }
}

/// Fails every write already waiting when a batch met a storage fault: it
/// would meet the same one (a lock held by another process would make each
/// batch wait out the busy timeout in turn). Writes queued after this get a
/// fresh try on a reopened connection.
fn fail_waiting(rx: &mut mpsc::Receiver<Work>, fault: &StoreError) {
    let mut failed = 0usize;
    for _ in 0..rx.len() {
        match rx.try_recv() {
            Ok(Work::Write(_, reply, _)) => {
                let _ = reply.send(Err(fault.clone()));
                failed += 1;
            }
            Ok(Work::ReleaseMemory) => {}
            Err(_) => break,
        }
    }
    if failed > 0 {
        tracing::warn!(failed, "writes waiting behind a storage fault failed with it");
    }
}

/// A transaction-control statement (not counted as one of the write's),
/// prepared once: a batch runs a savepoint pair per write.
fn control(conn: &Connection, sql: &str) -> StoreResult<()> {
    let run = || conn.prepare_cached(sql)?.raw_execute();
    run().map(drop).map_err(|e| classify(&e).error)
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// Runs a job to completion on this thread, turning a panic into an error.
fn run_job(job: &mut WriteJob, exec: &mut ConnExec<'_>) -> StoreResult<()> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| block_on(job(exec)))) {
        Ok(result) => result,
        Err(_) => Err(StoreError::Internal("a write panicked".into())),
    }
}

/// Drives a future on the current thread. A write's statements complete
/// synchronously here, so this normally polls once; if a write ever awaits
/// something else, the thread sleeps until that wakes it.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}
