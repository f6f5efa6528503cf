//! Webhook endpoints, deliveries and attempts, and the fan-out that turns
//! consumed events into deliveries in the consumer's own transaction.

use settle_domain::ids::{EventId, WebhookAttemptId, WebhookDeliveryId, WebhookEndpointId, WebhookReplayId};
use settle_domain::metadata::Metadata;
use settle_domain::webhook::{
    DeliveryStatus, EnabledEvents, EndpointPatch, EndpointStatus, NewWebhookEndpoint, WebhookAttempt, WebhookDelivery,
    WebhookEndpoint,
};

use super::Tx;
use super::db::{Executor, Row, query};
use super::events::{self, Subject};
use super::store::check_version;
use crate::context::WriteContext;
use crate::error::{StoreError, StoreResult};
use crate::records::Deleted;
use crate::webhooks::{AttemptRecord, SealedSecrets};

/// The consumer that attempts deliveries; its jobs are keyed by endpoint.
pub const DELIVERY_CONSUMER: &str = "webhooks";

pub const ENDPOINT_COLS: &str =
    "id, url, enabled_events, description, metadata, status, disabled_reason, version, created";
pub const DELIVERY_COLS: &str = "id, endpoint_id, event_id, status, attempts, next_attempt, last_status, created";
pub const ATTEMPT_COLS: &str =
    "id, delivery_id, duration_ms, request_id, response_status, response_excerpt, error, created";

fn corrupt(col: &str) -> StoreError {
    StoreError::Internal(format!("stored webhook {col} is not valid"))
}

pub(super) fn bytes_id<T>(row: &Row, col: &str, parse: fn(&[u8]) -> Option<T>) -> StoreResult<T> {
    let b: Vec<u8> = row.try_get(col)?;
    parse(&b).ok_or_else(|| corrupt(col))
}

pub fn endpoint(row: &Row) -> StoreResult<WebhookEndpoint> {
    let events: String = row.try_get("enabled_events")?;
    let events: Vec<String> = serde_json::from_str(&events).map_err(|_| corrupt("enabled_events"))?;
    let metadata: String = row.try_get("metadata")?;
    let status: String = row.try_get("status")?;
    Ok(WebhookEndpoint {
        id: bytes_id(row, "id", WebhookEndpointId::from_bytes)?,
        url: row.try_get("url")?,
        enabled_events: EnabledEvents::new(events).map_err(|_| corrupt("enabled_events"))?,
        description: row.try_get("description")?,
        metadata: Metadata::from_json(&metadata).map_err(|_| corrupt("metadata"))?,
        status: EndpointStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        disabled_reason: row.try_get("disabled_reason")?,
        version: row.try_get("version")?,
        created: row.try_get("created")?,
    })
}

pub fn delivery(row: &Row) -> StoreResult<WebhookDelivery> {
    let status: String = row.try_get("status")?;
    Ok(WebhookDelivery {
        id: bytes_id(row, "id", WebhookDeliveryId::from_bytes)?,
        endpoint: bytes_id(row, "endpoint_id", WebhookEndpointId::from_bytes)?,
        event: bytes_id(row, "event_id", EventId::from_bytes)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        attempts: row.try_get("attempts")?,
        next_attempt: row.try_get("next_attempt")?,
        last_status: row.try_get("last_status")?,
        created: row.try_get("created")?,
    })
}

pub fn attempt(row: &Row) -> StoreResult<WebhookAttempt> {
    Ok(WebhookAttempt {
        id: bytes_id(row, "id", WebhookAttemptId::from_bytes)?,
        delivery: bytes_id(row, "delivery_id", WebhookDeliveryId::from_bytes)?,
        duration_ms: row.try_get("duration_ms")?,
        request_id: row.try_get("request_id")?,
        response_status: row.try_get("response_status")?,
        response_excerpt: row.try_get("response_excerpt")?,
        error: row.try_get("error")?,
        created: row.try_get("created")?,
    })
}

pub async fn insert_endpoint(
    conn: &mut (impl Executor + ?Sized),
    e: &WebhookEndpoint,
    secret: &[u8],
) -> StoreResult<()> {
    query(
        "INSERT INTO webhook_endpoints (id, url, enabled_events, description, metadata, status, disabled_reason, \
         secret, version, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.id.to_bytes())
    .bind(e.url.clone())
    .bind(serde_json::to_string(&e.enabled_events.to_list()).map_err(|e| StoreError::Internal(e.to_string()))?)
    .bind(e.description.clone())
    .bind(e.metadata.to_json())
    .bind(e.status.as_str().to_owned())
    .bind(e.disabled_reason.clone())
    .bind(secret.to_vec())
    .bind(e.version)
    .bind(e.created)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_endpoint<E: Executor + ?Sized>(
    ex: &mut E,
    id: WebhookEndpointId,
) -> StoreResult<Option<WebhookEndpoint>> {
    super::rows::by_id(ex, "webhook_endpoints", ENDPOINT_COLS, id.to_bytes(), "", endpoint).await
}

/// Reads an endpoint and holds it until the transaction ends.
pub async fn lock_endpoint(tx: &mut Tx<'_>, id: WebhookEndpointId) -> StoreResult<WebhookEndpoint> {
    let lock = tx.dialect.lock_rows();
    super::rows::by_id(tx, "webhook_endpoints", ENDPOINT_COLS, id.to_bytes(), lock, endpoint)
        .await?
        .ok_or(StoreError::NotFound {
            what: "webhook endpoint",
            param: None,
        })
}

/// Saves the editable fields and bumps the version.
pub async fn save_endpoint(conn: &mut (impl Executor + ?Sized), e: &WebhookEndpoint) -> StoreResult<()> {
    query(
        "UPDATE webhook_endpoints SET url = $1, enabled_events = $2, description = $3, metadata = $4, status = $5, \
         disabled_reason = $6, version = $7 WHERE id = $8",
    )
    .bind(e.url.clone())
    .bind(serde_json::to_string(&e.enabled_events.to_list()).map_err(|e| StoreError::Internal(e.to_string()))?)
    .bind(e.description.clone())
    .bind(e.metadata.to_json())
    .bind(e.status.as_str().to_owned())
    .bind(e.disabled_reason.clone())
    .bind(e.version)
    .bind(e.id.to_bytes())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_endpoint(conn: &mut (impl Executor + ?Sized), id: WebhookEndpointId) -> StoreResult<bool> {
    let done = query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id.to_bytes())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn secrets<E: Executor + ?Sized>(ex: &mut E, id: WebhookEndpointId) -> StoreResult<Option<SealedSecrets>> {
    let row = query("SELECT secret, previous_secret, previous_secret_expires FROM webhook_endpoints WHERE id = $1")
        .bind(id.to_bytes())
        .fetch_optional(ex)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let previous: Option<Vec<u8>> = row.try_get("previous_secret")?;
    let expires: Option<i64> = row.try_get("previous_secret_expires")?;
    Ok(Some(SealedSecrets {
        current: row.try_get("secret")?,
        previous: previous.zip(expires),
    }))
}

/// Adds an endpoint signing with `sealed_secret` and writes
/// `webhook_endpoint.created`.
pub async fn create_endpoint(
    tx: &mut Tx<'_>,
    new: NewWebhookEndpoint,
    sealed_secret: Vec<u8>,
) -> StoreResult<WebhookEndpoint> {
    let e = WebhookEndpoint {
        id: WebhookEndpointId::from_uuid(tx.next_id()),
        url: new.url,
        enabled_events: new.enabled_events,
        description: new.description,
        metadata: new.metadata,
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        version: 1,
        created: tx.ctx.now_secs(),
    };
    insert_endpoint(&mut *tx, &e, &sealed_secret).await?;
    let subject = Subject::created("webhook_endpoint", e.id.to_bytes());
    events::emit_in(tx, subject, &["webhook_endpoint.created"], &e).await?;
    Ok(e)
}

/// Applies `patch` to the endpoint (held) if the version is still
/// `if_version` (when given) and writes `webhook_endpoint.updated`.
pub async fn update_endpoint(
    tx: &mut Tx<'_>,
    id: WebhookEndpointId,
    patch: EndpointPatch,
    if_version: Option<i64>,
) -> StoreResult<WebhookEndpoint> {
    let mut e = lock_endpoint(&mut *tx, id).await?;
    check_version(if_version, e.version)?;
    patch.apply(&mut e)?;
    e.version += 1;
    save_endpoint(&mut *tx, &e).await?;
    let subject = Subject::changed("webhook_endpoint", e.id.to_bytes());
    events::emit_in(tx, subject, &["webhook_endpoint.updated"], &e).await?;
    Ok(e)
}

/// Deletes the endpoint (held first) and writes `webhook_endpoint.deleted`
/// carrying the endpoint as it was.
pub async fn remove_endpoint(tx: &mut Tx<'_>, id: WebhookEndpointId) -> StoreResult<Deleted> {
    let e = lock_endpoint(&mut *tx, id).await?;
    delete_endpoint(&mut *tx, id).await?;
    let subject = Subject::changed("webhook_endpoint", e.id.to_bytes());
    events::emit_in(tx, subject, &["webhook_endpoint.deleted"], &e).await?;
    Ok(Deleted {
        id: id.to_string(),
        object: "webhook_endpoint",
        deleted: true,
    })
}

/// Replaces the signing secret; the old one keeps signing until `grace_until_ms`.
pub async fn rotate_secret(
    tx: &mut Tx<'_>,
    id: WebhookEndpointId,
    sealed: Vec<u8>,
    grace_until_ms: i64,
) -> StoreResult<WebhookEndpoint> {
    let mut e = lock_endpoint(&mut *tx, id).await?;
    query(
        "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires = $1, secret = $2, \
         version = version + 1 WHERE id = $3",
    )
    .bind(grace_until_ms)
    .bind(sealed)
    .bind(id.to_bytes())
    .execute(tx)
    .await?;
    e.version += 1;
    Ok(e)
}

/// Swaps an endpoint's sealed secrets for the same secrets sealed under
/// another master key, only if they are still the ones `read` holds: a
/// rotation in between wins, and the caller reads again. False if it lost.
pub async fn reseal_secrets(
    tx: &mut Tx<'_>,
    id: WebhookEndpointId,
    read: SealedSecrets,
    resealed: SealedSecrets,
) -> StoreResult<bool> {
    let sql = if read.previous.is_some() {
        "UPDATE webhook_endpoints SET secret = $1, previous_secret = $2 \
         WHERE id = $3 AND secret = $4 AND previous_secret = $5"
    } else {
        "UPDATE webhook_endpoints SET secret = $1, previous_secret = $2 \
         WHERE id = $3 AND secret = $4 AND previous_secret IS NULL"
    };
    let mut query = query(sql)
        .bind(resealed.current)
        .bind(resealed.previous.map(|(s, _)| s))
        .bind(id.to_bytes())
        .bind(read.current);
    if let Some((previous, _)) = read.previous {
        query = query.bind(previous);
    }
    Ok(query.execute(tx).await?.rows_affected() == 1)
}

/// Creates a delivery (and its job) for every enabled endpoint that wants
/// each of `event_ids`, in the caller's transaction.
pub async fn fan_out(tx: &mut Tx<'_>, event_ids: &[Vec<u8>], now_ms: u64) -> StoreResult<u64> {
    if event_ids.is_empty() {
        return Ok(0);
    }
    let endpoints = query(format!(
        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE status = 'enabled'"
    ))
    .fetch_all(&mut *tx)
    .await?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    let endpoints = endpoints.iter().map(endpoint).collect::<StoreResult<Vec<_>>>()?;
    let marks: Vec<String> = (1..=event_ids.len()).map(|i| tx.dialect.placeholder(i)).collect();
    let mut q = query(format!(
        "SELECT id, type FROM events WHERE id IN ({})",
        marks.join(", ")
    ));
    for id in event_ids {
        q = q.bind(id.clone());
    }
    let events = q.fetch_all(&mut *tx).await?;
    let mut made = 0;
    for row in &events {
        let (event_id, event_type): (Vec<u8>, String) = (row.try_get("id")?, row.try_get("type")?);
        for e in endpoints.iter().filter(|e| e.enabled_events.matches(&event_type)) {
            let id = WebhookDeliveryId::from_uuid(tx.ids.next(now_ms));
            insert_delivery(&mut *tx, id, e.id, &event_id, None, now_ms).await?;
            made += 1;
        }
    }
    Ok(made)
}

pub(super) async fn insert_delivery(
    conn: &mut (impl Executor + ?Sized),
    id: WebhookDeliveryId,
    endpoint: WebhookEndpointId,
    event_id: &[u8],
    replay: Option<WebhookReplayId>,
    now_ms: u64,
) -> StoreResult<()> {
    query(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, attempts, next_attempt, replay_id, created) \
         VALUES ($1, $2, $3, 'pending', 0, $4, $5, $6)",
    )
    .bind(id.to_bytes())
    .bind(endpoint.to_bytes())
    .bind(event_id.to_vec())
    .bind((now_ms / 1000) as i64)
    .bind(replay.map(|r| r.to_bytes()))
    .bind((now_ms / 1000) as i64)
    .execute(&mut *conn)
    .await?;
    schedule(conn, id, endpoint, now_ms).await
}

/// Queues a delivery's next attempt at `at_ms` (or moves the queued one).
pub async fn schedule(
    conn: &mut (impl Executor + ?Sized),
    id: WebhookDeliveryId,
    endpoint: WebhookEndpointId,
    at_ms: u64,
) -> StoreResult<()> {
    query(
        "INSERT INTO jobs (consumer, message_id, job_key, run_at, created) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (consumer, message_id) DO UPDATE SET run_at = $4, lease_token = NULL",
    )
    .bind(DELIVERY_CONSUMER.to_owned())
    .bind(id.to_bytes())
    .bind(endpoint.to_string())
    .bind(at_ms as i64)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_delivery<E: Executor + ?Sized>(
    ex: &mut E,
    id: WebhookDeliveryId,
) -> StoreResult<Option<WebhookDelivery>> {
    super::rows::by_id(ex, "webhook_deliveries", DELIVERY_COLS, id.to_bytes(), "", delivery).await
}

/// Records an attempt and the delivery's new state in one transaction,
/// and disables the endpoint (with its `webhook_endpoint.disabled` event)
/// on a 410 or once it has failed continuously for `disable_after_ms`.
pub async fn record_attempt(tx: &mut Tx<'_>, endpoint: WebhookEndpointId, r: AttemptRecord) -> StoreResult<()> {
    let a = &r.attempt;
    query(format!(
        "INSERT INTO webhook_attempts ({ATTEMPT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(a.id.to_bytes())
    .bind(a.delivery.to_bytes())
    .bind(a.duration_ms)
    .bind(a.request_id.clone())
    .bind(a.response_status)
    .bind(a.response_excerpt.clone())
    .bind(a.error.clone())
    .bind(a.created)
    .execute(&mut *tx)
    .await?;
    query(
        "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, next_attempt = $2, last_status = $3 \
         WHERE id = $4",
    )
    .bind(r.status.as_str().to_owned())
    .bind(r.next_attempt_ms.map(|ms| (ms / 1000) as i64))
    .bind(a.response_status)
    .bind(a.delivery.to_bytes())
    .execute(&mut *tx)
    .await?;
    let mut disable = r.disable_endpoint.clone();
    if r.status == DeliveryStatus::Delivered {
        // Only when set: a healthy endpoint's row is then neither written
        // nor locked, so its concurrent deliveries do not queue on it.
        query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL")
            .bind(endpoint.to_bytes())
            .execute(&mut *tx)
            .await?;
    } else {
        let row = query(
            "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2 \
             RETURNING failing_since",
        )
        .bind(r.now_ms as i64)
        .bind(endpoint.to_bytes())
        .fetch_optional(&mut *tx)
        .await?;
        let since: Option<i64> = match row {
            Some(row) => row.try_get("failing_since")?,
            None => None,
        };
        if let Some(since) = since
            && disable.is_none()
            && (r.now_ms as i64).saturating_sub(since) >= r.disable_after_ms as i64
        {
            disable = Some(format!(
                "every attempt failed for {} s",
                (r.now_ms as i64 - since) / 1000
            ));
        }
    }
    if let Some(reason) = disable {
        disable_endpoint(&mut *tx, endpoint, &reason, r.now_ms).await?;
    }
    match r.next_attempt_ms {
        Some(at) => schedule(tx, a.delivery, endpoint, at).await,
        None => {
            query("DELETE FROM jobs WHERE consumer = $1 AND message_id = $2")
                .bind(DELIVERY_CONSUMER.to_owned())
                .bind(a.delivery.to_bytes())
                .execute(tx)
                .await?;
            Ok(())
        }
    }
}

/// Disables an enabled endpoint and says why in a `webhook_endpoint.disabled` event.
/// Written by the webhooks worker, not a request: the event's request id
/// names the endpoint, and its time is the attempt's.
async fn disable_endpoint(tx: &mut Tx<'_>, id: WebhookEndpointId, reason: &str, now_ms: u64) -> StoreResult<()> {
    let mut e = lock_endpoint(&mut *tx, id).await?;
    if e.status == EndpointStatus::Disabled {
        return Ok(());
    }
    e.status = EndpointStatus::Disabled;
    e.disabled_reason = Some(reason.to_owned());
    e.version += 1;
    save_endpoint(&mut *tx, &e).await?;
    let ctx = WriteContext {
        request_id: format!("webhooks_{id}"),
        actor: None,
        now_ms,
        idempotency: None,
        audit: None,
        success_status: None,
        policy: None,
    };
    let ids = tx.ids;
    let subject = Subject::changed("webhook_endpoint", id.to_bytes());
    events::emit(tx, ids, &ctx, subject, &["webhook_endpoint.disabled"], &e).await
}

/// Makes a delivery pending again with an attempt due now (manual retry).
pub async fn retry_now(tx: &mut Tx<'_>, id: WebhookDeliveryId, now_ms: u64) -> StoreResult<WebhookDelivery> {
    let sql = format!(
        "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE id = $1{}",
        tx.dialect.lock_rows()
    );
    let row = query(sql).bind(id.to_bytes()).fetch_optional(&mut *tx).await?;
    let mut del = match row {
        Some(row) => delivery(&row)?,
        None => {
            return Err(StoreError::NotFound {
                what: "webhook delivery",
                param: None,
            });
        }
    };
    del.status = DeliveryStatus::Pending;
    del.next_attempt = Some((now_ms / 1000) as i64);
    query("UPDATE webhook_deliveries SET status = 'pending', next_attempt = $1 WHERE id = $2")
        .bind(del.next_attempt)
        .bind(id.to_bytes())
        .execute(&mut *tx)
        .await?;
    schedule(tx, id, del.endpoint, now_ms).await?;
    Ok(del)
}
