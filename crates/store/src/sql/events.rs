//! Events: each state change writes its event in the same transaction as
//! the change, carrying the object as it was after the change and a
//! sequence that orders the events of one object.

use serde::Serialize;
use settle_domain::ids::EventId;

use super::Tx;
use super::db::{Executor, query};
use super::rows::{self, EVENT_COLS};
use crate::context::WriteContext;
use crate::error::{StoreError, StoreResult};
use crate::ids::IdGenerator;
use crate::records::Event;

/// An event about to be written.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub event_type: &'static str,
    pub object_type: &'static str,
    pub object_id: Vec<u8>,
    pub sequence: i64,
    pub data: String,
    pub request_id: String,
    pub created: i64,
    pub traceparent: Option<String>,
}

/// The last sequence of an object's events (served by `events_object_id`).
pub const LAST_SEQUENCE_SQL: &str = "SELECT sequence FROM events WHERE object_id = $1 ORDER BY id DESC LIMIT 1";

pub async fn last_sequence(conn: &mut (impl Executor + ?Sized), object_id: &[u8]) -> StoreResult<i64> {
    let row = query(LAST_SEQUENCE_SQL)
        .bind(object_id.to_vec())
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(row) => row.try_get("sequence")?,
        None => 0,
    })
}

/// Builds the events of one object, numbered after `after`.
pub fn build<T: Serialize>(
    ids: &IdGenerator,
    ctx: &WriteContext,
    object_type: &'static str,
    object_id: Vec<u8>,
    after: i64,
    types: &[&'static str],
    object: &T,
) -> StoreResult<Vec<NewEvent>> {
    let data = serde_json::to_string(object).map_err(|e| StoreError::Internal(e.to_string()))?;
    Ok(types
        .iter()
        .enumerate()
        .map(|(i, event_type)| NewEvent {
            id: EventId::from_uuid(ids.next(ctx.now_ms)),
            event_type,
            object_type,
            object_id: object_id.clone(),
            sequence: after + i as i64 + 1,
            data: data.clone(),
            request_id: ctx.request_id.clone(),
            created: ctx.now_secs(),
            traceparent: ctx.trace.map(|t| t.header()),
        })
        .collect())
}

pub const INSERT_HEAD: &str =
    "INSERT INTO events (id, type, object_type, object_id, sequence, data, request_id, created, traceparent) VALUES";

pub async fn insert(conn: &mut (impl Executor + ?Sized), events: &[NewEvent]) -> StoreResult<()> {
    for e in events {
        query(format!("{INSERT_HEAD} ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
            .bind(e.id.to_bytes())
            .bind(e.event_type.to_owned())
            .bind(e.object_type.to_owned())
            .bind(e.object_id.clone())
            .bind(e.sequence)
            .bind(e.data.clone())
            .bind(e.request_id.clone())
            .bind(e.created)
            .bind(e.traceparent.clone())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The object an event is about.
pub struct Subject {
    pub object_type: &'static str,
    pub object_id: Vec<u8>,
    /// Created in this transaction, so it has no earlier events to count.
    pub new: bool,
}

impl Subject {
    /// An object created by this transaction.
    pub fn created(object_type: &'static str, object_id: Vec<u8>) -> Self {
        Self {
            object_type,
            object_id,
            new: true,
        }
    }

    /// An object that existed before this transaction.
    pub fn changed(object_type: &'static str, object_id: Vec<u8>) -> Self {
        Self {
            object_type,
            object_id,
            new: false,
        }
    }
}

/// Writes the events of a change to one object, after its existing ones.
pub async fn emit<T: Serialize>(
    conn: &mut (impl Executor + ?Sized),
    ids: &IdGenerator,
    ctx: &WriteContext,
    subject: Subject,
    types: &[&'static str],
    object: &T,
) -> StoreResult<()> {
    let after = if subject.new {
        0
    } else {
        last_sequence(&mut *conn, &subject.object_id).await?
    };
    let events = build(ids, ctx, subject.object_type, subject.object_id, after, types, object)?;
    insert(conn, &events).await
}

/// [`emit`] inside a write transaction, with its id generator and context.
pub async fn emit_in<T: Serialize>(
    tx: &mut Tx<'_>,
    subject: Subject,
    types: &[&'static str],
    object: &T,
) -> StoreResult<()> {
    let (ids, ctx) = (tx.ids, tx.ctx);
    emit(tx, ids, ctx, subject, types, object).await
}

/// The commit stream's page: events after a position, in position order
/// (served by `events_position`).
pub const AFTER_POSITION_SQL: &str = "SELECT id, type, data, sequence, position, request_id, created, traceparent \
     FROM events \
     WHERE position > $1 ORDER BY position LIMIT $2";

/// Up to `limit` events after `position`, in commit order.
pub async fn after_position(
    conn: &mut (impl Executor + ?Sized),
    position: i64,
    limit: u32,
) -> StoreResult<crate::list::Page<Event>> {
    let rows = query(AFTER_POSITION_SQL)
        .bind(position)
        .bind(i64::from(limit) + 1)
        .fetch_all(conn)
        .await?;
    let mut data = rows.iter().map(rows::event).collect::<StoreResult<Vec<_>>>()?;
    let has_more = data.len() > limit as usize;
    data.truncate(limit as usize);
    Ok(crate::list::Page { data, has_more })
}

/// The sequencer's step on PostgreSQL: numbers up to `most` committed
/// events without a position (the `number_events` function of migration
/// `0009`); returns how many.
pub async fn number(tx: &mut Tx<'_>, most: u32) -> StoreResult<u64> {
    let row = query("SELECT number_events($1) AS numbered")
        .bind(i64::from(most))
        .fetch_one(tx)
        .await?;
    let numbered: i64 = row.try_get("numbered")?;
    Ok(u64::try_from(numbered).unwrap_or(0))
}

/// The sequencer's other step on PostgreSQL: sends the ids of changed
/// objects the triggers left waiting (the `send_changes` function of
/// migration `0012`); returns how many sets of ids went out.
pub async fn send_changes<E: Executor + ?Sized>(ex: &mut E) -> StoreResult<u64> {
    let row = query("SELECT send_changes() AS sent").fetch_one(ex).await?;
    let sent: i64 = row.try_get("sent")?;
    Ok(u64::try_from(sent).unwrap_or(0))
}

pub async fn get<E: Executor + ?Sized>(ex: &mut E, id: EventId) -> StoreResult<Option<Event>> {
    rows::by_id(ex, "events", EVENT_COLS, id.to_bytes(), "", rows::event).await
}

/// The events with these ids, in id order (one primary-key lookup each).
pub async fn by_ids(
    pool: &mut (impl Executor + ?Sized),
    d: super::Dialect,
    ids: &[EventId],
) -> StoreResult<Vec<Event>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=ids.len()).map(|i| d.placeholder(i)).collect();
    let sql = format!(
        "SELECT {EVENT_COLS} FROM events WHERE id IN ({}) ORDER BY id",
        marks.join(", ")
    );
    let mut q = query(sql);
    for id in ids {
        q = q.bind(id.to_bytes());
    }
    let found = q.fetch_all(pool).await?;
    found.iter().map(rows::event).collect()
}
