//! The handle a write job receives: its transaction's connection together
//! with everything a write needs from its surroundings (the dialect, the id
//! generator, the write context), so an operation's body is one call.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use async_trait::async_trait;

use super::Dialect;
use super::db::{Executor, Fetch, Output, Query};
use crate::commits::Touched;
use crate::context::WriteContext;
use crate::error::StoreResult;
use crate::ids::IdGenerator;

/// One write transaction, open. Statements run through it like through any
/// [`Executor`], and are counted for the request that queued the write.
pub struct Tx<'c> {
    exec: &'c mut dyn Executor,
    pub dialect: Dialect,
    pub ids: &'c IdGenerator,
    pub ctx: &'c WriteContext,
    counter: Option<Arc<AtomicU64>>,
    /// Writes whose results nobody reads, held back to go with the next
    /// statement or the end of the transaction ([`Tx::defer`]).
    deferred: Vec<Vec<Query>>,
    /// What the transaction's statements inserted that waiters care about,
    /// announced once it has committed.
    touched: Touched,
    /// Objects this transaction changed or removed, whose cached copies
    /// must go once it has committed.
    changed: Vec<uuid::Uuid>,
}

impl<'c> Tx<'c> {
    pub fn new(
        exec: &'c mut dyn Executor,
        dialect: Dialect,
        ids: &'c IdGenerator,
        ctx: &'c WriteContext,
        counter: Option<Arc<AtomicU64>>,
    ) -> Self {
        Self {
            exec,
            dialect,
            ids,
            ctx,
            counter,
            deferred: Vec::new(),
            touched: Touched::default(),
            changed: Vec::new(),
        }
    }

    /// Holds back `parts` (placeholders numbered from `$1` over the group)
    /// until the transaction runs its next statement or ends; then every
    /// group held back goes as the dialect combines writes (one statement on
    /// PostgreSQL). Order is kept: anything run later sees these writes.
    pub fn defer(&mut self, parts: Vec<Query>) {
        if !parts.is_empty() {
            self.deferred.push(parts);
        }
    }

    /// Runs what [`Tx::defer`] held back. The write runner calls it before
    /// commit; a statement run through the transaction calls it first.
    pub async fn flush(&mut self) -> StoreResult<()> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let groups = std::mem::take(&mut self.deferred);
        for statement in self.dialect.combine_writes(groups) {
            // Counted here: it does not pass through `Query`'s methods.
            super::statements::record(self.counter.as_ref());
            self.run_noting(statement, Fetch::Nothing).await?;
        }
        Ok(())
    }

    /// Runs one statement on the connection, noting what it inserted.
    async fn run_noting(&mut self, query: Query, fetch: Fetch) -> StoreResult<Output> {
        let touched = Touched::by_statement(&query.sql);
        let out = self.exec.run(query, fetch).await?;
        self.touched = self.touched.merge(touched);
        Ok(out)
    }

    /// Says what this transaction changed beyond what its statements show
    /// (a webhook endpoint's change), announced with the rest at commit.
    pub fn touch(&mut self, touched: Touched) {
        self.touched = self.touched.merge(touched);
    }

    /// Says that this transaction changes or removes the object `id`
    /// (rows are written by statements built in many places; the write
    /// itself knows what it touched): its cached copies are dropped, here
    /// and in every process, once the transaction has committed.
    pub fn changed(&mut self, id: uuid::Uuid) {
        // Duplicates go when the write is over (a seed batch names
        // thousands of accounts: no search per name).
        self.changed.push(id);
    }

    /// The objects named by [`Tx::changed`], taken for announcing.
    pub fn take_changed(&mut self) -> Vec<uuid::Uuid> {
        std::mem::take(&mut self.changed)
    }

    /// What this transaction's statements have inserted so far.
    pub fn touched(&self) -> Touched {
        self.touched
    }

    /// A new time-ordered id at the write's time.
    pub fn next_id(&self) -> uuid::Uuid {
        self.ids.next(self.ctx.now_ms)
    }
}

#[async_trait]
impl Executor for Tx<'_> {
    async fn run(&mut self, query: Query, fetch: Fetch) -> StoreResult<Output> {
        self.flush().await?;
        self.run_noting(query, fetch).await
    }

    fn request_counter(&self) -> Option<&Arc<AtomicU64>> {
        self.counter.as_ref()
    }
}
