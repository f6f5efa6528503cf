//! Webhook replays: an endpoint's events of a time range delivered again
//! as new deliveries, or (a recovery) its deliveries of a time range that
//! failed for good made pending again; a page at a time, each page
//! committed with the cursor past it so a crash neither repeats nor skips
//! one.

use settle_domain::DomainError;
use settle_domain::ids::{WebhookDeliveryId, WebhookEndpointId, WebhookReplayId};
use settle_domain::webhook::{EndpointStatus, WebhookReplay};

use super::Tx;
use super::db::{Executor, Row, query};
use super::webhooks::{NewDelivery, bytes_id, get_endpoint, insert_deliveries, lock_endpoint, make_failed_pending};
use crate::error::{StoreError, StoreResult};

pub const REPLAY_COLS: &str = "id, endpoint_id, since_ms, until_ms, failed_only, status, deliveries, created";
/// The consumer that works through replays, a page of events at a time.
pub const REPLAY_CONSUMER: &str = "webhook_replays";
/// Recoveries have a consumer of their own: a process that knows only
/// replays never claims one (it would send every event of the range).
pub const RECOVERY_CONSUMER: &str = "webhook_recoveries";

pub fn replay(row: &Row) -> StoreResult<WebhookReplay> {
    let (since, until): (i64, i64) = (row.try_get("since_ms")?, row.try_get("until_ms")?);
    let failed_only: i64 = row.try_get("failed_only")?;
    Ok(WebhookReplay {
        id: bytes_id(row, "id", WebhookReplayId::from_bytes)?,
        endpoint: bytes_id(row, "endpoint_id", WebhookEndpointId::from_bytes)?,
        since: since / 1000,
        until: until / 1000,
        failed_only: failed_only != 0,
        status: row.try_get("status")?,
        deliveries: row.try_get("deliveries")?,
        created: row.try_get("created")?,
    })
}

/// Starts a replay of `endpoint`'s events created in `[since_ms, until_ms)`
/// (or, `failed_only`, of its deliveries that failed for good then),
/// the endpoint held meanwhile, and queues its first page.
pub async fn create(
    tx: &mut Tx<'_>,
    endpoint: WebhookEndpointId,
    since_ms: i64,
    until_ms: i64,
    failed_only: bool,
) -> StoreResult<WebhookReplay> {
    let r = WebhookReplay {
        id: WebhookReplayId::from_uuid(tx.next_id()),
        endpoint,
        since: since_ms / 1000,
        until: until_ms / 1000,
        failed_only,
        status: "running".into(),
        deliveries: 0,
        created: tx.ctx.now_secs(),
    };
    let endpoint = lock_endpoint(&mut *tx, r.endpoint).await?;
    // Its deliveries would wait for an endpoint that takes none.
    if endpoint.status == EndpointStatus::Disabled {
        return Err(StoreError::Domain(DomainError::InvalidState(
            "The endpoint is disabled: enable it before sending its deliveries again.".into(),
        )));
    }
    query(
        "INSERT INTO webhook_replays (id, endpoint_id, since_ms, until_ms, failed_only, status, deliveries, created) \
         VALUES ($1, $2, $3, $4, $5, 'running', 0, $6)",
    )
    .bind(r.id.to_bytes())
    .bind(r.endpoint.to_bytes())
    .bind(since_ms)
    .bind(until_ms)
    .bind(i64::from(failed_only))
    .bind(r.created)
    .execute(&mut *tx)
    .await?;
    query("INSERT INTO jobs (consumer, message_id, run_at, created) VALUES ($1, $2, $3, $3)")
        .bind(
            if failed_only {
                RECOVERY_CONSUMER
            } else {
                REPLAY_CONSUMER
            }
            .to_owned(),
        )
        .bind(r.id.to_bytes())
        .bind(r.created * 1000)
        .execute(tx)
        .await?;
    Ok(r)
}

/// Works through one page of a replay: a delivery for each matching event
/// after the cursor, and the cursor past them, in one transaction (so a
/// crash repeats no page and skips none). True when the replay is done.
pub async fn run_page(tx: &mut Tx<'_>, id: WebhookReplayId, page: u32, now_ms: u64) -> StoreResult<bool> {
    let row = query(format!(
        "SELECT endpoint_id, since_ms, until_ms, failed_only, cursor, status FROM webhook_replays WHERE id = $1{}",
        tx.dialect.lock_rows()
    ))
    .bind(id.to_bytes())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        finish_replay_job(&mut *tx, id).await?;
        return Ok(true);
    };
    let status: String = row.try_get("status")?;
    let endpoint = match get_endpoint(&mut *tx, bytes_id(&row, "endpoint_id", WebhookEndpointId::from_bytes)?).await? {
        // Disabled meanwhile: what it would queue would wait for nothing.
        Some(e) if status == "running" && e.status == EndpointStatus::Enabled => e,
        _ => return advance(tx, id, None, 0, true).await,
    };
    let (since, until): (i64, i64) = (row.try_get("since_ms")?, row.try_get("until_ms")?);
    let cursor: Option<Vec<u8>> = row.try_get("cursor")?;
    let failed_only: i64 = row.try_get("failed_only")?;
    let upper = settle_domain::ids::min_uuid_at_ms(until.max(0) as u64)
        .to_be_bytes()
        .to_vec();
    if failed_only != 0 {
        return recover_page(tx, id, endpoint.id, (since, until), cursor, page, now_ms).await;
    }
    let (sql, lower) = match cursor {
        Some(c) => (
            "SELECT id, type FROM events WHERE id > $1 AND id < $2 ORDER BY id LIMIT $3",
            c,
        ),
        None => (
            "SELECT id, type FROM events WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3",
            settle_domain::ids::min_uuid_at_ms(since.max(0) as u64)
                .to_be_bytes()
                .to_vec(),
        ),
    };
    let events = query(sql)
        .bind(lower)
        .bind(upper)
        .bind(i64::from(page))
        .fetch_all(&mut *tx)
        .await?;
    let mut new = Vec::new();
    let mut last = None;
    for e in &events {
        let (event_id, event_type): (Vec<u8>, String) = (e.try_get("id")?, e.try_get("type")?);
        if endpoint.enabled_events.matches(&event_type) {
            new.push(NewDelivery {
                id: WebhookDeliveryId::from_uuid(tx.ids.next(now_ms)),
                endpoint: endpoint.id,
                event: event_id.clone(),
                event_type,
            });
        }
        last = Some(event_id);
    }
    let made = new.len() as i64;
    insert_deliveries(&mut *tx, &new, Some(id), now_ms, None).await?;
    let done = events.len() < page as usize;
    advance(tx, id, last, made, done).await
}

/// One page of a recovery: the endpoint's deliveries that failed for good
/// at a time in `[since_ms, until_ms)`, from the cursor on (inclusive),
/// made pending with an attempt due now (only those still `failed` when
/// updated: one retried meanwhile is left to its retry), and the cursor
/// past them; a few statements per page, however many it holds.
#[allow(clippy::too_many_arguments)]
async fn recover_page(
    tx: &mut Tx<'_>,
    id: WebhookReplayId,
    endpoint: WebhookEndpointId,
    (since_ms, until_ms): (i64, i64),
    cursor: Option<Vec<u8>>,
    page: u32,
    now_ms: u64,
) -> StoreResult<bool> {
    let rows = query(
        "SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'failed' AND id >= $2 \
         AND failed_at >= $3 AND failed_at < $4 ORDER BY id LIMIT $5",
    )
    .bind(endpoint.to_bytes())
    .bind(cursor.unwrap_or_else(|| vec![0u8; 16]))
    .bind(since_ms)
    .bind(until_ms)
    .bind(i64::from(page))
    .fetch_all(&mut *tx)
    .await?;
    let ids = rows
        .iter()
        .map(|r| bytes_id(r, "id", WebhookDeliveryId::from_bytes))
        .collect::<StoreResult<Vec<_>>>()?;
    let recovered = make_failed_pending(&mut *tx, &ids, endpoint, now_ms).await?;
    let done = ids.len() < page as usize;
    // The cursor is inclusive on the next page: one past the last id.
    let next = ids.last().map(|last| {
        let after = last.uuid().as_u128().saturating_add(1);
        after.to_be_bytes().to_vec()
    });
    advance(tx, id, next, recovered as i64, done).await
}

/// Moves a replay's cursor past its page, counts what the page made, and
/// when it is `done` says so and removes its job; answers `done`.
async fn advance(
    tx: &mut Tx<'_>,
    id: WebhookReplayId,
    cursor: Option<Vec<u8>>,
    made: i64,
    done: bool,
) -> StoreResult<bool> {
    query(
        "UPDATE webhook_replays SET cursor = COALESCE($1, cursor), deliveries = deliveries + $2, status = $3 \
         WHERE id = $4",
    )
    .bind(cursor)
    .bind(made)
    .bind(if done { "done" } else { "running" })
    .bind(id.to_bytes())
    .execute(&mut *tx)
    .await?;
    if done {
        finish_replay_job(&mut *tx, id).await?;
    }
    Ok(done)
}

/// Removes the replay's job, whichever consumer holds it.
async fn finish_replay_job(conn: &mut (impl Executor + ?Sized), id: WebhookReplayId) -> StoreResult<()> {
    query("DELETE FROM jobs WHERE consumer IN ($1, $2) AND message_id = $3")
        .bind(REPLAY_CONSUMER.to_owned())
        .bind(RECOVERY_CONSUMER.to_owned())
        .bind(id.to_bytes())
        .execute(conn)
        .await?;
    Ok(())
}
