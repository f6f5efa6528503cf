//! The SQL both backends share, run through sqlx's `Any` driver so that every
//! statement is written once. What differs is passed in: the [`Dialect`]
//! (row-lock syntax) and a [`WriteExecutor`] that decides how a write
//! transaction runs.

mod access_store;
mod account_store;
mod accounts;
mod api_keys;
pub mod bulk;
mod customers;
pub mod db;
mod entries;
mod event_store;
pub mod events;
mod idempotency;
mod idempotency_store;
pub mod list;
mod movement;
mod payment_store;
mod payments;
pub mod plans;
pub mod queue;
mod rbac;
mod rows;
pub mod sqlx_exec;
pub mod statements;
mod store;
pub mod tx;
pub mod verify;
pub mod webhook_replays;
mod webhook_store;
pub mod webhooks;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::Serialize;
use sqlx::AnyPool;

use self::db::{Executor, Reads, Value};
pub use self::tx::Tx;

use crate::commits::{CommitBus, Touched};
use crate::context::WriteContext;
use crate::error::{StoreError, StoreResult};
use crate::idempotency::StoredResponse;
use crate::ids::IdGenerator;

/// The few places SQLite and PostgreSQL really differ in the shared SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Row locks: PostgreSQL locks what it reads for the rest of the
    /// transaction; SQLite needs nothing, since its single writer already
    /// holds the database's write lock (`BEGIN IMMEDIATE`).
    pub fn lock_rows(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// A shared lock that only stops the row's deletion (or key change):
    /// taken on a customer that a new account or payment will refer to.
    pub fn lock_key_share(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR KEY SHARE",
        }
    }

    /// Row locks for a queue claim: PostgreSQL locks the rows it picks and
    /// skips those another transaction holds, so concurrent workers take
    /// different jobs instead of waiting on each other; SQLite needs nothing,
    /// since its single writer serialises claims.
    pub fn lock_skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// The rows of a multi-row `VALUES` list in which every row repeats the
    /// same `shared` values around one value of its own (one row per entry of
    /// `own`), and the values to bind, in placeholder order. `row` lays out a
    /// row's columns: `Some(i)` is `shared[i]`, `None` the row's own value.
    /// PostgreSQL numbers each shared value once (`$1`, `$2`, ..., the own
    /// values after them) and every row refers to it; SQLite's anonymous `?`
    /// binds in order of appearance, so each row binds its own copies.
    pub fn values_rows(self, row: &[Option<usize>], shared: &[Value], own: Vec<Value>) -> (String, Vec<Value>) {
        let mut rows = Vec::with_capacity(own.len());
        let mut binds = Vec::new();
        match self {
            Dialect::Postgres => {
                for k in 0..own.len() {
                    let marks: Vec<String> = row
                        .iter()
                        .map(|slot| format!("${}", slot.unwrap_or(shared.len() + k) + 1))
                        .collect();
                    rows.push(format!("({})", marks.join(", ")));
                }
                binds.extend_from_slice(shared);
                binds.extend(own);
            }
            Dialect::Sqlite => {
                for value in own {
                    for slot in row {
                        binds.push(slot.map_or_else(|| value.clone(), |i| shared[i].clone()));
                    }
                    rows.push(format!("({})", vec!["?"; row.len()].join(", ")));
                }
            }
        }
        (rows.join(", "), binds)
    }

    /// The `n`th bind parameter in a statement whose parameters are bound in
    /// order. SQLite gets an anonymous `?`: it looks named parameters (`$n`)
    /// up by a linear scan, which makes binding thousands of them quadratic.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".to_owned(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// The statements of one write that go together, as this dialect runs
    /// them. Each group's placeholders are numbered from `$1` over the whole
    /// group (a group's parts continue one another's numbering, as
    /// [`Dialect::placeholder`] hands them out over one build). SQLite runs
    /// each part as its own statement: in process, a statement costs no round
    /// trip. PostgreSQL runs them all as one statement of data-modifying
    /// CTEs, `WITH w0 AS (... RETURNING 1), ... SELECT 1 AS done`, each
    /// group's placeholders shifted past the values of the groups before it:
    /// one round trip, so the rows the transaction locked stay locked for as
    /// little time as possible.
    pub fn combine_writes(self, groups: Vec<Vec<db::Query>>) -> Vec<db::Query> {
        match self {
            Dialect::Sqlite => groups.into_iter().flatten().collect(),
            Dialect::Postgres if groups.iter().all(Vec::is_empty) => Vec::new(),
            Dialect::Postgres => {
                let mut ctes = Vec::new();
                let mut args = Vec::new();
                for group in groups {
                    let offset = args.len();
                    for part in group {
                        let sql = db::shift_placeholders(&part.sql, offset);
                        ctes.push(format!("w{} AS ({sql} RETURNING 1)", ctes.len()));
                        args.extend(part.args);
                    }
                }
                let sql = format!("WITH {} SELECT 1 AS done", ctes.join(", "));
                vec![db::Query { sql: sql.into(), args }]
            }
        }
    }

    /// Whether a new idempotency key is claimed outside the single write
    /// path, by one autocommitted insert on the read pool. True on
    /// PostgreSQL, where that insert claims a new key in one round trip (only
    /// an existing key needs a transaction); false on SQLite, whose writes
    /// all go through its single writer.
    pub fn claims_new_keys_outside_the_writer(self) -> bool {
        match self {
            Dialect::Sqlite => false,
            Dialect::Postgres => true,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// One write transaction's body, given the transaction's executor. It may
/// run more than once (PostgreSQL retries a transaction that lost a
/// deadlock race), so it is `FnMut`.
pub type WriteJob = Box<dyn for<'c> FnMut(&'c mut dyn Executor) -> BoxFuture<'c, StoreResult<()>> + Send>;

/// Runs write jobs inside a transaction and commits them durably before
/// returning. The backend crates provide one each.
#[async_trait]
pub trait WriteExecutor: Send + Sync + 'static {
    /// `deadline`: a job not begun by then answers
    /// [`StoreError::DeadlineExceeded`] without running.
    async fn execute(&self, job: WriteJob, deadline: Option<std::time::Instant>) -> StoreResult<()>;
}

/// The top-level `id` of a JSON object, for the audit row: read without
/// building the rest of the document (this runs inside the write, on
/// SQLite on the writer's thread, for every audited write).
fn object_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<IdOnly>(body).ok()?.id? {
        serde_json::Value::String(id) => Some(id),
        _ => None,
    }
}

/// The [`crate::Store`] implementation both backends share.
pub struct SqlStore {
    dialect: Dialect,
    pool: AnyPool,
    reads: Arc<dyn Reads>,
    writer: Arc<dyn WriteExecutor>,
    ids: Arc<IdGenerator>,
    latest_migration: i64,
    /// Rung after each write that committed events or jobs.
    commits: Arc<CommitBus>,
}

impl SqlStore {
    /// `reads` serves every read of the store; `writer` runs every write;
    /// `pool` is a plain sqlx pool on the same database for tools that need
    /// the driver itself (benchmarks, tests' own checks); the latest
    /// migration version is what readiness expects to find applied.
    pub fn new(
        dialect: Dialect,
        pool: AnyPool,
        reads: Arc<dyn Reads>,
        writer: Arc<dyn WriteExecutor>,
        latest_migration: i64,
    ) -> Self {
        Self {
            dialect,
            pool,
            reads,
            writer,
            ids: Arc::new(IdGenerator::new()),
            latest_migration,
            commits: Arc::default(),
        }
    }

    /// Rings `bus` instead of a bell of its own: a backend that names its
    /// writes after the bus's origin makes the bus before the store.
    pub fn with_commit_bus(mut self, bus: Arc<CommitBus>) -> Self {
        self.commits = bus;
        self
    }

    /// The bell this store rings after each commit that added events or
    /// jobs; a listener for other processes' commits rings it too.
    pub fn commit_bus(&self) -> Arc<CommitBus> {
        Arc::clone(&self.commits)
    }

    /// A sqlx pool on the store's database, outside the store's own read
    /// and write paths: for benchmarks and tests that run their own SQL.
    pub fn reads(&self) -> &AnyPool {
        &self.pool
    }

    /// An [`Executor`] for the shared SQL's reads.
    pub fn reader(&self) -> Box<dyn Executor> {
        self.reads.executor()
    }

    /// Holds one read connection until the guard drops (see [`Reads::hold`]).
    pub async fn hold_read_connection(&self) -> StoreResult<Box<dyn std::any::Any + Send>> {
        self.reads.hold().await
    }

    /// Runs `op` as one write transaction for `ctx`. When the request holds
    /// an idempotency claim, the same transaction stores the result as the
    /// key's response, with the status the calling face reported
    /// (`ctx.success_status`), fenced by the claim's token: if the claim was
    /// taken over meanwhile, everything rolls back. There is never an effect
    /// without its record.
    async fn write<T, F>(&self, ctx: &WriteContext, op: F) -> StoreResult<T>
    where
        T: Serialize + Send + 'static,
        F: for<'t, 'c> Fn(&'t mut Tx<'c>) -> BoxFuture<'t, StoreResult<T>> + Send + Sync + 'static,
    {
        if ctx.idempotency.is_none() && ctx.audit.is_none() {
            return self.write_plain(ctx, op).await;
        }
        if let Some(claim) = &ctx.idempotency {
            claim.mark_started();
        }
        let op = Arc::new(op);
        self.write_plain(ctx, move |tx| {
            let op = Arc::clone(&op);
            Box::pin(async move {
                let value = op(&mut *tx).await?;
                let body = serde_json::to_vec(&value).map_err(|e| StoreError::Internal(e.to_string()))?;
                let status = tx.ctx.success_status;
                if let Some(draft) = &tx.ctx.audit {
                    let object = object_id(&body);
                    let row = rbac::audit_row(tx.ids, draft, object, "succeeded", status.unwrap_or(0), tx.ctx.now_ms);
                    // Rides with the write's last statement (one round trip
                    // fewer on PostgreSQL while the rows are locked).
                    tx.defer(vec![row]);
                }
                if let Some(claim) = &tx.ctx.idempotency {
                    let status = status.ok_or_else(|| {
                        StoreError::Internal("a write with an idempotency key must say its success status".into())
                    })?;
                    if !idempotency::complete(&mut *tx, claim, &StoredResponse { status, body }).await? {
                        return Err(StoreError::ClaimLost);
                    }
                }
                Ok(value)
            })
        })
        .await
    }

    /// A write of the store's own (start-up, background upkeep) that no
    /// request asked for: no idempotency, no audit; times come from the
    /// operation's arguments.
    async fn write_background<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'t, 'c> Fn(&'t mut Tx<'c>) -> BoxFuture<'t, StoreResult<T>> + Send + Sync + 'static,
    {
        self.write_plain(&WriteContext::background(), op).await
    }

    /// The transaction's spans: its statements, then its COMMIT (timed
    /// from the statements' end to the writer's answer, so on SQLite it
    /// includes waiting for the batch it was committed with).
    fn trace_commit(&self, trace: &settle_trace::TraceContext, (began, done): (u64, u64), committed: bool) {
        if began == 0 {
            return;
        }
        let system = match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgresql",
        };
        let tx = settle_trace::record_span(
            trace,
            "db.transaction",
            settle_trace::SpanKind::Client,
            (began, done),
            vec![("db.system.name", system.into())],
        );
        settle_trace::record_span(
            &tx,
            "db.commit",
            settle_trace::SpanKind::Client,
            (done, settle_trace::now_unix_nanos()),
            vec![
                ("db.system.name", system.into()),
                ("settle.committed", i64::from(committed).into()),
            ],
        );
    }

    /// Runs `op` as one write transaction and hands back its result.
    async fn write_plain<T, F>(&self, ctx: &WriteContext, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'t, 'c> Fn(&'t mut Tx<'c>) -> BoxFuture<'t, StoreResult<T>> + Send + Sync + 'static,
    {
        type Done<T> = (T, Touched);
        let slot: Arc<Mutex<Option<Done<T>>>> = Arc::new(Mutex::new(None));
        let out = Arc::clone(&slot);
        let (invalidation, job_done) = Invalidation::new(Arc::clone(&self.commits));
        let ctx_deadline = ctx.deadline;
        let (dialect, ids, ctx) = (self.dialect, Arc::clone(&self.ids), Arc::new(ctx.clone()));
        let counter = statements::current();
        let op = Arc::new(op);
        // When a sampled trace asks: when the transaction began and when
        // its statements were done (its COMMIT follows), in Unix ns.
        let traced = ctx.trace.filter(|t| t.sampled && settle_trace::enabled());
        let times: Option<Arc<Mutex<(u64, u64)>>> = traced.map(|_| Arc::default());
        let job_times = times.clone();
        let job: WriteJob = Box::new(move |exec| {
            let (out, named, ids, ctx, counter, op, times) = (
                Arc::clone(&out),
                Arc::clone(&job_done),
                Arc::clone(&ids),
                Arc::clone(&ctx),
                counter.clone(),
                Arc::clone(&op),
                job_times.clone(),
            );
            Box::pin(async move {
                let began = times.as_ref().map(|_| settle_trace::now_unix_nanos());
                let mut tx = Tx::new(exec, dialect, &ids, &ctx, counter);
                let value = op(&mut tx).await?;
                tx.flush().await?;
                if let (Some(began), Some(times)) = (began, &times) {
                    *times.lock().unwrap_or_else(|e| e.into_inner()) = (began, settle_trace::now_unix_nanos());
                }
                // Named before COMMIT (a retried attempt adds its own): if
                // the commit's outcome is unknown, or nobody waits for it
                // any more, these still go (see `Invalidation`).
                named
                    .0
                    .ids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(tx.take_changed());
                *out.lock().unwrap_or_else(|e| e.into_inner()) = Some((value, tx.touched()));
                Ok(())
            })
        });
        let executed = self.writer.execute(job, ctx_deadline).await;
        if let (Some(trace), Some(times)) = (traced, &times) {
            let times = *times.lock().unwrap_or_else(|e| e.into_inner());
            self.trace_commit(&trace, times, executed.is_ok());
        }
        // Only now: `execute` returns once COMMIT has, so whoever wakes
        // finds what it was woken for. Cached copies go before the writer
        // hears back, so its next read cannot meet the old state here.
        let changed = invalidation.run().await;
        executed?;
        let value = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (value, touched) = value.ok_or_else(|| StoreError::Internal("write finished without a result".into()))?;
        self.commits.announce(Touched {
            changes: !changed.is_empty(),
            ..touched
        });
        Ok(value)
    }
}

/// The objects a write named as changed, dropped from every cache once the
/// write is over, however it ended: also when its commit's outcome is
/// unknown (a connection lost after COMMIT was sent) and when its caller
/// stopped waiting (a client that hung up: the write goes on without it).
/// Dropping too much costs a database read; too little would serve an old
/// state, and this process's listener skips the notifications of its own
/// writes. The caller's half normally drops them; if the caller is gone,
/// whichever half goes last does, the job's half going only after the
/// executor is done with the job (after its COMMIT).
struct Invalidation {
    named: Arc<Named>,
    job: std::sync::Weak<JobDone>,
}

/// What both halves share.
struct Named {
    ids: Mutex<Vec<uuid::Uuid>>,
    abandoned: std::sync::atomic::AtomicBool,
    bus: Arc<CommitBus>,
    /// The caller's runtime: the job's half may go on a thread outside it
    /// (SQLite's writer is a plain thread).
    runtime: Option<tokio::runtime::Handle>,
}

/// The job's half: dropped with the job.
struct JobDone(Arc<Named>);

impl Named {
    fn take(&self) -> Vec<uuid::Uuid> {
        let mut ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Drops what was named, on a task of its own (nobody awaits it).
    fn spawn_drop(&self) {
        let ids = self.take();
        if ids.is_empty() {
            return;
        }
        if let Some(runtime) = &self.runtime {
            let bus = Arc::clone(&self.bus);
            runtime.spawn(async move { bus.changed(&ids).await });
        }
    }
}

impl Invalidation {
    fn new(bus: Arc<CommitBus>) -> (Self, Arc<JobDone>) {
        let named = Arc::new(Named {
            ids: Mutex::default(),
            abandoned: std::sync::atomic::AtomicBool::new(false),
            bus,
            runtime: tokio::runtime::Handle::try_current().ok(),
        });
        let job = Arc::new(JobDone(Arc::clone(&named)));
        let this = Self {
            named,
            job: Arc::downgrade(&job),
        };
        (this, job)
    }

    /// Drops them now and returns them. On a task of its own, so a caller
    /// that stops waiting halfway does not stop it.
    async fn run(self) -> Vec<uuid::Uuid> {
        let ids = self.named.take();
        if !ids.is_empty() {
            let (bus, named) = (Arc::clone(&self.named.bus), ids.clone());
            let _ = tokio::spawn(async move { bus.changed(&named).await }).await;
        }
        ids
    }
}

impl Drop for Invalidation {
    fn drop(&mut self) {
        self.named.abandoned.store(true, std::sync::atomic::Ordering::SeqCst);
        // The job is gone already (or going: its half then finds nothing).
        if self.job.upgrade().is_none() {
            self.named.spawn_drop();
        }
    }
}

impl Drop for JobDone {
    fn drop(&mut self) {
        if self.0.abandoned.load(std::sync::atomic::Ordering::SeqCst) {
            self.0.spawn_drop();
        }
    }
}
