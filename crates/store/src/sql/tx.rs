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
    /// What the transaction's statements inserted that waiters care about,
    /// announced once it has committed.
    touched: Touched,
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
            touched: Touched::default(),
        }
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
        let touched = Touched::by_statement(&query.sql);
        let out = self.exec.run(query, fetch).await?;
        self.touched = self.touched.merge(touched);
        Ok(out)
    }

    fn request_counter(&self) -> Option<&Arc<AtomicU64>> {
        self.counter.as_ref()
    }
}
