//! The SQL both backends share, run through sqlx's `Any` driver so that every
//! statement is written once. What differs is passed in: the [`Dialect`]
//! (row-lock syntax) and a [`WriteExecutor`] that decides how a write
//! transaction runs.

mod accounts;
mod api_keys;
pub mod bulk;
mod customers;
mod entries;
pub mod events;
mod idempotency;
pub mod list;
mod movement;
mod payments;
pub mod plans;
pub mod queue;
mod rbac;
mod rbac_store;
mod rows;
mod store_impl;
pub mod verify;
pub mod webhook_replays;
pub mod webhooks;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool};

use serde::Serialize;

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

    /// The `n`th bind parameter in a statement whose parameters are bound in
    /// order. SQLite gets an anonymous `?`: it looks named parameters (`$n`)
    /// up by a linear scan, which makes binding thousands of them quadratic.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".to_owned(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// One write transaction's body. It may run more than once (PostgreSQL
/// retries a transaction that lost a deadlock race), so it is `FnMut`.
pub type WriteJob = Box<dyn for<'c> FnMut(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<()>> + Send>;

/// Runs write jobs inside a transaction and commits them durably before
/// returning. The backend crates provide one each.
#[async_trait]
pub trait WriteExecutor: Send + Sync + 'static {
    async fn execute(&self, job: WriteJob) -> StoreResult<()>;
}

/// The [`crate::Store`] implementation both backends share.
pub struct SqlStore {
    dialect: Dialect,
    reads: AnyPool,
    writer: Arc<dyn WriteExecutor>,
    ids: Arc<IdGenerator>,
    latest_migration: i64,
}

impl SqlStore {
    /// `reads` serves every read; `writer` runs every write; the latest
    /// migration version is what readiness expects to find applied.
    pub fn new(dialect: Dialect, reads: AnyPool, writer: Arc<dyn WriteExecutor>, latest_migration: i64) -> Self {
        Self {
            dialect,
            reads,
            writer,
            ids: Arc::new(IdGenerator::new()),
            latest_migration,
        }
    }

    pub fn reads(&self) -> &AnyPool {
        &self.reads
    }

    /// Runs `op` as one write transaction for `ctx`. When the request holds
    /// an idempotency claim, the same transaction stores the result as the
    /// key's response, fenced by the claim's token: if the claim was taken
    /// over meanwhile, everything rolls back. There is never an effect
    /// without its record.
    async fn write<T, F>(&self, ctx: &WriteContext, op: F) -> StoreResult<T>
    where
        T: Serialize + Send + 'static,
        F: for<'c> Fn(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + Sync + 'static,
    {
        if ctx.idempotency.is_none() && ctx.audit.is_none() {
            return self.write_plain(op).await;
        }
        if let Some(claim) = &ctx.idempotency {
            claim.mark_started();
        }
        let (op, ctx, ids) = (Arc::new(op), ctx.clone(), Arc::clone(&self.ids));
        self.write_plain(move |conn| {
            let (op, ctx, ids) = (Arc::clone(&op), ctx.clone(), Arc::clone(&ids));
            Box::pin(async move {
                let value = op(&mut *conn).await?;
                let body = serde_json::to_vec(&value).map_err(|e| StoreError::Internal(e.to_string()))?;
                if let Some(draft) = &ctx.audit {
                    let object = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned));
                    rbac::insert_audit(&mut *conn, &ids, draft, object, "succeeded", 200, ctx.now_ms).await?;
                }
                if let Some(claim) = &ctx.idempotency
                    && !idempotency::complete(conn, claim, &StoredResponse { status: 200, body }).await?
                {
                    return Err(StoreError::ClaimLost);
                }
                Ok(value)
            })
        })
        .await
    }

    /// Runs `op` as one write transaction and hands back its result.
    async fn write_plain<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + Sync + 'static,
    {
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let out = Arc::clone(&slot);
        let job: WriteJob = Box::new(move |conn| {
            let fut = op(conn);
            let out = Arc::clone(&out);
            Box::pin(async move {
                let value = fut.await?;
                *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
                Ok(())
            })
        });
        self.writer.execute(job).await?;
        let value = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        value.ok_or_else(|| StoreError::Internal("write finished without a result".into()))
    }
}
