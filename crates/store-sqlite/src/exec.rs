//! Runs the shared SQL on a rusqlite connection, on the calling thread: no
//! hand-off per statement or per row. Statements are prepared once per
//! connection and cached; values bind by their `$N` number, since SQLite
//! itself numbers `$N` parameters by first appearance.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, Type, ValueRef};
use rusqlite::{Connection, Statement, ToSql};
use settle_store::StoreError;
use settle_store::error::StoreResult;
use settle_store::sql::db::{Executor, Fetch, Kind, Output, Query, Row, Value};

use crate::fault::classify;

/// One connection as an [`Executor`]. It remembers the first storage fault
/// a statement met, so the writer fails the whole batch even if the write
/// that met it swallowed the error.
pub(crate) struct ConnExec<'c> {
    conn: &'c mut Connection,
    fault: Option<StoreError>,
}

impl<'c> ConnExec<'c> {
    pub fn new(conn: &'c mut Connection) -> Self {
        Self { conn, fault: None }
    }

    /// The first storage fault met, if any.
    pub fn fault(&self) -> Option<&StoreError> {
        self.fault.as_ref()
    }

    /// Runs one statement now, on this thread.
    pub fn run_now(&mut self, query: &Query, fetch: Fetch) -> StoreResult<Output> {
        execute(self.conn, query, fetch).map_err(|e| {
            let sorted = classify(&e);
            if sorted.fault && self.fault.is_none() {
                self.fault = Some(sorted.error.clone());
            }
            sorted.error
        })
    }
}

#[async_trait]
impl Executor for ConnExec<'_> {
    async fn run(&mut self, query: Query, fetch: Fetch) -> StoreResult<Output> {
        self.run_now(&query, fetch)
    }
}

fn execute(conn: &Connection, query: &Query, fetch: Fetch) -> rusqlite::Result<Output> {
    let mut stmt = conn.prepare_cached(&query.sql)?;
    bind(&mut stmt, &query.args)?;
    let names: Option<Arc<[String]>> = match fetch {
        Fetch::Nothing => None,
        Fetch::Optional | Fetch::All => Some(stmt.column_names().into_iter().map(str::to_owned).collect()),
    };
    let width = stmt.column_count();
    let mut found = Vec::new();
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next()? {
        let Some(names) = &names else { continue };
        let values = (0..width)
            .map(|i| row.get_ref(i).and_then(|v| value(i, v)))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        found.push(Row::new(Arc::clone(names), values));
        if fetch == Fetch::Optional {
            break;
        }
    }
    drop(rows);
    let rows_affected = match fetch {
        Fetch::Nothing => conn.changes(),
        Fetch::Optional | Fetch::All => 0,
    };
    Ok(Output {
        rows: found,
        rows_affected,
    })
}

/// Binds `args` to `stmt`: a `$N` (or `?N`) parameter takes `args[N - 1]`,
/// an anonymous `?` the next value in order.
fn bind(stmt: &mut Statement<'_>, args: &[Value]) -> rusqlite::Result<()> {
    for index in 1..=stmt.parameter_count() {
        let slot = match stmt.parameter_name(index) {
            None => index,
            Some(name) => name
                .get(1..)
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_owned()))?,
        };
        let value = slot
            .checked_sub(1)
            .and_then(|i| args.get(i))
            .ok_or(rusqlite::Error::InvalidParameterCount(slot, args.len()))?;
        stmt.raw_bind_parameter(index, Bound(value))?;
    }
    Ok(())
}

/// A value bound without a copy on the Rust side.
struct Bound<'a>(&'a Value);

impl ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null(_) => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Float(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

fn value(column: usize, v: ValueRef<'_>) -> rusqlite::Result<Value> {
    Ok(match v {
        ValueRef::Null => Value::Null(Kind::Int),
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(column, Type::Text, Box::new(e)))?
                .to_owned(),
        ),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    })
}
