//! The [`Executor`]s over sqlx's `Any` driver: a transaction's connection
//! and the read pool. The only module of the shared SQL that names sqlx.

use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::any::{AnyArguments, AnyRow, AnyTypeInfoKind};
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Column, Row as _, ValueRef as _};

use super::db::{Executor, Fetch, Kind, Output, Query, Reads, Row, Value};
use crate::error::{StoreError, StoreResult};

/// A connection inside a transaction the backend opened.
pub struct SqlxConn<'c>(pub &'c mut AnyConnection);

/// The read pool: each statement takes a connection for its own duration,
/// its wait counted in `stats` (shared with the writer, which takes its
/// connections from the same pool).
#[derive(Clone)]
pub struct SqlxPool {
    pub pool: AnyPool,
    pub stats: std::sync::Arc<crate::pool::PoolStats>,
}

fn bound(query: &Query) -> sqlx::query::Query<'_, Any, AnyArguments> {
    let mut q = sqlx::query(AssertSqlSafe(query.sql.as_ref()));
    for value in &query.args {
        q = match value {
            Value::Null(Kind::Int) => q.bind(None::<i64>),
            Value::Null(Kind::Float) => q.bind(None::<f64>),
            Value::Null(Kind::Text) => q.bind(None::<String>),
            Value::Null(Kind::Bytes) => q.bind(None::<Vec<u8>>),
            Value::Int(i) => q.bind(*i),
            Value::Float(f) => q.bind(*f),
            Value::Text(t) => q.bind(t.clone()),
            Value::Bytes(b) => q.bind(b.clone()),
        };
    }
    q
}

fn value(row: &AnyRow, i: usize) -> StoreResult<Value> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null(Kind::Int));
    }
    let kind = raw.type_info().kind();
    Ok(match kind {
        AnyTypeInfoKind::Null => Value::Null(Kind::Int),
        AnyTypeInfoKind::Bool => Value::Int(i64::from(row.try_get::<bool, _>(i)?)),
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
            Value::Int(row.try_get::<i64, _>(i)?)
        }
        AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => Value::Float(row.try_get::<f64, _>(i)?),
        AnyTypeInfoKind::Text => Value::Text(row.try_get::<String, _>(i)?),
        AnyTypeInfoKind::Blob => Value::Bytes(row.try_get::<Vec<u8>, _>(i)?),
    })
}

fn rows(found: Vec<AnyRow>) -> StoreResult<Vec<Row>> {
    let Some(first) = found.first() else {
        return Ok(Vec::new());
    };
    let names: Arc<[String]> = first.columns().iter().map(|c| c.name().to_owned()).collect();
    found
        .iter()
        .map(|row| {
            let values = (0..names.len())
                .map(|i| value(row, i))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Row::new(Arc::clone(&names), values))
        })
        .collect()
}

async fn run<'e, E>(ex: E, query: Query, fetch: Fetch) -> StoreResult<Output>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let q = bound(&query);
    match fetch {
        Fetch::Nothing => {
            let done = q.execute(ex).await.map_err(StoreError::from)?;
            Ok(Output {
                rows: Vec::new(),
                rows_affected: done.rows_affected(),
            })
        }
        Fetch::Optional => {
            let found = q.fetch_optional(ex).await.map_err(StoreError::from)?;
            Ok(Output {
                rows: rows(found.into_iter().collect())?,
                rows_affected: 0,
            })
        }
        Fetch::All => {
            let found: Vec<AnyRow> = q.fetch(ex).try_collect().await.map_err(StoreError::from)?;
            Ok(Output {
                rows: rows(found)?,
                rows_affected: 0,
            })
        }
    }
}

#[async_trait]
impl Executor for SqlxConn<'_> {
    async fn run(&mut self, query: Query, fetch: Fetch) -> StoreResult<Output> {
        run(&mut *self.0, query, fetch).await
    }
}

#[async_trait]
impl Executor for SqlxPool {
    async fn run(&mut self, query: Query, fetch: Fetch) -> StoreResult<Output> {
        let mut conn = self
            .stats
            .timed(async { self.pool.acquire().await.map_err(StoreError::from) })
            .await?;
        run(&mut *conn, query, fetch).await
    }
}

#[async_trait]
impl Reads for SqlxPool {
    fn executor(&self) -> Box<dyn Executor> {
        Box::new(self.clone())
    }

    async fn hold(&self) -> StoreResult<Box<dyn std::any::Any + Send>> {
        Ok(Box::new(self.pool.acquire().await?))
    }

    fn pool(&self) -> crate::pool::PoolSnapshot {
        let idle = self.pool.num_idle() as u64;
        let open = u64::from(self.pool.size());
        self.stats.snapshot(open.saturating_sub(idle), idle)
    }
}
