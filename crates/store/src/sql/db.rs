//! The layer every SQL statement goes through: statements with their bound
//! values, rows of plain values, and the [`Executor`] a backend provides to
//! run them. The shared SQL never touches a driver type, so a backend may
//! execute it however suits it (sqlx's pool today; SQLite may run a whole
//! transaction on one thread), and every statement is counted on the way
//! (see [`super::statements`]).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use async_trait::async_trait;

use crate::error::{StoreError, StoreResult};

/// The kind of a value, kept for `NULL` so a backend can bind a typed null
/// (PostgreSQL refuses an untyped one for a `bytea` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Text,
    Bytes,
}

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null(Kind),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// Types with a [`Kind`], so `None` of them binds as a typed null.
pub trait Typed {
    const KIND: Kind;
}

macro_rules! value_from {
    ($($t:ty => $kind:ident, $conv:expr;)*) => {
        $(
            impl From<$t> for Value {
                fn from(v: $t) -> Value {
                    #[allow(clippy::redundant_closure_call)]
                    Value::$kind(($conv)(v))
                }
            }
            impl Typed for $t {
                const KIND: Kind = Kind::$kind;
            }
        )*
    };
}

value_from! {
    i64 => Int, |v| v;
    i32 => Int, i64::from;
    u32 => Int, i64::from;
    bool => Int, i64::from;
    f64 => Float, |v| v;
    String => Text, |v| v;
    Vec<u8> => Bytes, |v| v;
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl Typed for &str {
    const KIND: Kind = Kind::Text;
}

impl<T: Into<Value> + Typed> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null(T::KIND), Into::into)
    }
}

/// Decoding a column's value into a Rust type.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl FromValue for i32 {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).and_then(|i| i32::try_from(i).ok())
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).map(|i| i != 0)
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null(_) => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One row of a result, columns by name.
#[derive(Debug, Clone)]
pub struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub fn new(names: Arc<[String]>, values: Vec<Value>) -> Self {
        Self { names, values }
    }

    /// The column `col` as `T`; a missing column or a value of another type
    /// is an internal error (the SQL and its decoder disagree).
    pub fn try_get<T: FromValue, C: AsRef<str>>(&self, col: C) -> StoreResult<T> {
        let col = col.as_ref();
        let value = self
            .names
            .iter()
            .position(|n| n == col)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::Internal(format!("no column `{col}` in the row")))?;
        T::from_value(value).ok_or_else(|| {
            StoreError::Internal(format!(
                "column `{col}` holds {value:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// What running a statement returned.
#[derive(Debug, Default)]
pub struct Output {
    pub rows: Vec<Row>,
    pub rows_affected: u64,
}

/// How many rows a statement's caller wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// None: the statement is run for its effect.
    Nothing,
    /// At most one (the rest is not read).
    Optional,
    All,
}

/// A statement and its bound values, in placeholder order.
#[derive(Debug, Clone)]
pub struct Query {
    pub sql: Cow<'static, str>,
    pub args: Vec<Value>,
}

/// A statement to bind values to: `query("... $1 ...").bind(x).fetch_one(ex)`.
pub fn query(sql: impl Into<Cow<'static, str>>) -> Query {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

/// `sql` with every `$N` placeholder outside string literals renumbered
/// `$(N + offset)`: a statement written on its own, joined into a larger one
/// after other statements' values.
pub fn shift_placeholders(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.char_indices().peekable();
    let mut quoted = false;
    while let Some((_, c)) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c != '$' || quoted {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(&(_, d)) = chars.peek() {
            if !d.is_ascii_digit() {
                break;
            }
            digits.push(d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(n) => {
                out.push('$');
                out.push_str(&(n + offset).to_string());
            }
            Err(_) => out.push('$'),
        }
    }
    out
}

/// The effect of a statement run for its effect.
#[derive(Debug, Clone, Copy)]
pub struct Done(u64);

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.0
    }
}

impl Query {
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Every statement passes here: counted, then run by the executor.
    async fn run<E: Executor + ?Sized>(self, ex: &mut E, fetch: Fetch) -> StoreResult<Output> {
        super::statements::record(ex.request_counter());
        ex.run(self, fetch).await
    }

    pub async fn execute<E: Executor + ?Sized>(self, ex: &mut E) -> StoreResult<Done> {
        Ok(Done(self.run(ex, Fetch::Nothing).await?.rows_affected))
    }

    pub async fn fetch_all<E: Executor + ?Sized>(self, ex: &mut E) -> StoreResult<Vec<Row>> {
        Ok(self.run(ex, Fetch::All).await?.rows)
    }

    pub async fn fetch_optional<E: Executor + ?Sized>(self, ex: &mut E) -> StoreResult<Option<Row>> {
        Ok(self.run(ex, Fetch::Optional).await?.rows.into_iter().next())
    }

    pub async fn fetch_one<E: Executor + ?Sized>(self, ex: &mut E) -> StoreResult<Row> {
        self.fetch_optional(ex)
            .await?
            .ok_or_else(|| StoreError::Internal("a statement that returns a row returned none".into()))
    }
}

/// Runs statements: a transaction's connection, or the read pool. The one
/// place a backend's driver meets the shared SQL.
#[async_trait]
pub trait Executor: Send {
    async fn run(&mut self, query: Query, fetch: Fetch) -> StoreResult<Output>;

    /// The statement counter of the request this executor works for, when
    /// it runs on another task than the request (a queued write).
    fn request_counter(&self) -> Option<&Arc<AtomicU64>> {
        None
    }
}

#[async_trait]
impl<E: Executor + ?Sized> Executor for Box<E> {
    async fn run(&mut self, query: Query, fetch: Fetch) -> StoreResult<Output> {
        (**self).run(query, fetch).await
    }

    fn request_counter(&self) -> Option<&Arc<AtomicU64>> {
        (**self).request_counter()
    }
}

/// Where reads outside any write transaction run. Each backend decides how:
/// PostgreSQL takes a pooled connection per statement; SQLite runs the
/// statement on the calling thread, on a connection of its own read pool,
/// so a read costs no hand-off to another thread.
#[async_trait]
pub trait Reads: Send + Sync + 'static {
    /// An executor for one or more reads; each statement is autocommitted.
    fn executor(&self) -> Box<dyn Executor>;

    /// Takes one connection out of the pool until the returned guard drops,
    /// as a long-running read would: how the tests exhaust the pool to see
    /// the 503 every other reader then gets.
    async fn hold(&self) -> StoreResult<Box<dyn std::any::Any + Send>>;

    /// The pool now, for `/metrics`.
    fn pool(&self) -> crate::pool::PoolSnapshot;
}

#[cfg(test)]
mod tests {
    use super::shift_placeholders;

    #[test]
    fn placeholders_shift_outside_string_literals_only() {
        assert_eq!(
            shift_placeholders("INSERT INTO t VALUES ($1, '$2', $10, $)", 3),
            "INSERT INTO t VALUES ($4, '$2', $13, $)"
        );
        assert_eq!(shift_placeholders("SELECT $1", 0), "SELECT $1");
    }
}
