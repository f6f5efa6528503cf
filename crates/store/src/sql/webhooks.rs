//! Webhook endpoints, deliveries and attempts, and the fan-out that turns
//! consumed events into deliveries in the consumer's own transaction.

use settle_domain::ids::{EventId, WebhookAttemptId, WebhookDeliveryId, WebhookEndpointId, WebhookReplayId};
use settle_domain::metadata::Metadata;
use settle_domain::webhook::{
    DeliveryStatus, EnabledEvents, EndpointPatch, EndpointStatus, NewWebhookEndpoint, TEST_EVENT, WebhookAttempt,
    WebhookDelivery, WebhookEndpoint,
};

use super::Tx;
use super::db::{Executor, Row, query};
use super::events::{self, Subject};
use super::store::check_version;
use crate::commits::Touched;
use crate::context::WriteContext;
use crate::error::{StoreError, StoreResult};
use crate::queue::{FanoutLease, LeasedJob};
use crate::records::Deleted;
use crate::webhooks::{AttemptRecord, SealedSecrets};

/// The consumer that attempts deliveries; its jobs are keyed by endpoint.
pub const DELIVERY_CONSUMER: &str = "webhooks";

pub const ENDPOINT_COLS: &str =
    "id, url, enabled_events, description, metadata, status, disabled_reason, version, created";
pub const DELIVERY_COLS: &str =
    "id, endpoint_id, event_id, event_type, status, attempts, next_attempt, last_status, created, replay_id";
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
        event_type: row.try_get("event_type")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        attempts: row.try_get("attempts")?,
        next_attempt: row.try_get("next_attempt")?,
        last_status: row.try_get("last_status")?,
        created: row.try_get("created")?,
        replayed: row.try_get::<Option<Vec<u8>>, _>("replay_id")?.is_some(),
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

/// A `webhook_endpoint.test` event about the endpoint (held meanwhile) and
/// its one delivery, to this endpoint only, due now. The event is like any
/// other (listed, relayed, numbered in the commit stream); no fan-out
/// sends it anywhere else, because no subscription matches its type.
pub async fn send_test(tx: &mut Tx<'_>, id: WebhookEndpointId) -> StoreResult<WebhookDelivery> {
    let e = lock_endpoint(&mut *tx, id).await?;
    if e.status == EndpointStatus::Disabled {
        return Err(StoreError::Domain(settle_domain::DomainError::InvalidState(
            "The endpoint is disabled: enable it before sending a test event.".into(),
        )));
    }
    let (ids, ctx) = (tx.ids, tx.ctx);
    let after = events::last_sequence(&mut *tx, &e.id.to_bytes()).await?;
    let built = events::build(ids, ctx, "webhook_endpoint", e.id.to_bytes(), after, &[TEST_EVENT], &e)?;
    events::insert(&mut *tx, &built).await?;
    let event = built
        .first()
        .ok_or_else(|| StoreError::Internal("a test event was not built".into()))?;
    let new = NewDelivery {
        id: WebhookDeliveryId::from_uuid(tx.ids.next(ctx.now_ms)),
        endpoint: e.id,
        event: event.id.to_bytes(),
        event_type: TEST_EVENT.to_owned(),
    };
    insert_deliveries(&mut *tx, std::slice::from_ref(&new), None, ctx.now_ms, None).await?;
    get_delivery(&mut *tx, new.id).await?.ok_or(StoreError::NotFound {
        what: "webhook delivery",
        param: None,
    })
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
    tx.touch(Touched::ENDPOINTS);
    tx.changed(e.id.uuid());
    let subject = Subject::changed("webhook_endpoint", e.id.to_bytes());
    events::emit_in(tx, subject, &["webhook_endpoint.updated"], &e).await?;
    Ok(e)
}

/// Deletes the endpoint (held first) and writes `webhook_endpoint.deleted`
/// carrying the endpoint as it was.
pub async fn remove_endpoint(tx: &mut Tx<'_>, id: WebhookEndpointId) -> StoreResult<Deleted> {
    let e = lock_endpoint(&mut *tx, id).await?;
    delete_endpoint(&mut *tx, id).await?;
    tx.touch(Touched::ENDPOINTS);
    tx.changed(id.uuid());
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
    .execute(&mut *tx)
    .await?;
    tx.touch(Touched::ENDPOINTS);
    tx.changed(id.uuid());
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
    let swapped = query.execute(&mut *tx).await?.rows_affected() == 1;
    if swapped {
        tx.touch(Touched::ENDPOINTS);
    }
    Ok(swapped)
}

/// Creates a delivery (and its job) for every enabled endpoint that wants
/// each of `event_ids`, in the caller's transaction; the first ones, as
/// `lease` allows, are leased to the caller.
pub async fn fan_out(
    tx: &mut Tx<'_>,
    event_ids: &[Vec<u8>],
    now_ms: u64,
    lease: Option<FanoutLease>,
) -> StoreResult<Vec<LeasedJob>> {
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    let endpoints = query(format!(
        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE status = 'enabled'"
    ))
    .fetch_all(&mut *tx)
    .await?;
    if endpoints.is_empty() {
        return Ok(Vec::new());
    }
    let endpoints = endpoints.iter().map(endpoint).collect::<StoreResult<Vec<_>>>()?;
    let started = settle_trace::enabled().then(settle_trace::now_unix_nanos);
    let mut traced = Vec::new();
    let mut new = Vec::new();
    for chunk in event_ids.chunks(CHUNK) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| tx.dialect.placeholder(i)).collect();
        let mut q = query(format!(
            "SELECT id, type, traceparent FROM events WHERE id IN ({})",
            marks.join(", ")
        ));
        for id in chunk {
            q = q.bind(id.clone());
        }
        for row in q.fetch_all(&mut *tx).await? {
            let (event_id, event_type): (Vec<u8>, String) = (row.try_get("id")?, row.try_get("type")?);
            let before = new.len();
            for e in endpoints.iter().filter(|e| e.enabled_events.matches(&event_type)) {
                new.push(NewDelivery {
                    id: WebhookDeliveryId::from_uuid(tx.ids.next(now_ms)),
                    endpoint: e.id,
                    event: event_id.clone(),
                    event_type: event_type.clone(),
                });
            }
            if started.is_some() {
                let parent: Option<String> = row.try_get("traceparent")?;
                if let Some(parent) = parent.as_deref().and_then(settle_trace::TraceContext::parse) {
                    traced.push((parent, event_type, (new.len() - before) as i64));
                }
            }
        }
    }
    if let Some(start) = started {
        let end = settle_trace::now_unix_nanos();
        for (parent, event_type, deliveries) in traced {
            settle_trace::record_span(
                &parent,
                "webhook.fan_out",
                settle_trace::SpanKind::Consumer,
                (start, end),
                vec![
                    ("settle.event_type", event_type.into()),
                    ("settle.deliveries", deliveries.into()),
                ],
            );
        }
    }
    let most = lease.map_or(0, |l| (l.most as usize).min(new.len()));
    let (leased, queued) = new.split_at(most);
    if let Some(lease) = lease.filter(|_| most > 0) {
        insert_deliveries(&mut *tx, leased, None, now_ms, Some(lease)).await?;
    }
    insert_deliveries(tx, queued, None, now_ms, None).await?;
    let leased = leased
        .iter()
        .map(|n| LeasedJob {
            consumer: DELIVERY_CONSUMER.to_owned(),
            message_id: n.id.to_bytes(),
            key: Some(n.endpoint.to_string()),
            deliveries: 1,
            token: lease.map_or(0, |l| l.token),
            created_ms: now_ms as i64,
        })
        .collect();
    Ok(leased)
}

/// Rows per multi-row statement: a few thousand bind parameters at most.
const CHUNK: usize = 250;

/// A delivery to create: one event for one endpoint.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: WebhookDeliveryId,
    pub endpoint: WebhookEndpointId,
    pub event: Vec<u8>,
    pub event_type: String,
}

/// `n` rows of `cols` bind parameters each, numbered in order from `$1`.
fn value_rows(d: super::Dialect, n: usize, cols: usize) -> String {
    (0..n)
        .map(|r| {
            let marks: Vec<String> = (1..=cols).map(|c| d.placeholder(r * cols + c)).collect();
            format!("({})", marks.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `n` bind parameters for an `IN` list, numbered from `$first`.
fn in_list(d: super::Dialect, first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| d.placeholder(i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Creates pending deliveries, each with its job due now (or leased, as
/// a claim would leave it): two statements per [`CHUNK`] deliveries,
/// however many.
pub(super) async fn insert_deliveries(
    tx: &mut Tx<'_>,
    new: &[NewDelivery],
    replay: Option<WebhookReplayId>,
    now_ms: u64,
    lease: Option<FanoutLease>,
) -> StoreResult<()> {
    let (run_at, token, handed) = match lease {
        Some(l) => (l.until_ms as i64, Some(l.token), 1i64),
        None => (now_ms as i64, None, 0),
    };
    let d = tx.dialect;
    let now_s = (now_ms / 1000) as i64;
    for chunk in new.chunks(CHUNK) {
        let mut q = query(format!(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, status, attempts, next_attempt, \
             replay_id, created) VALUES {}",
            value_rows(d, chunk.len(), 9)
        ));
        for n in chunk {
            q = q
                .bind(n.id.to_bytes())
                .bind(n.endpoint.to_bytes())
                .bind(n.event.clone())
                .bind(n.event_type.clone())
                .bind("pending")
                .bind(0i64)
                .bind(now_s)
                .bind(replay.map(|r| r.to_bytes()))
                .bind(now_s);
        }
        q.execute(&mut *tx).await?;
        let mut q = query(format!(
            "INSERT INTO jobs (consumer, message_id, job_key, run_at, created, lease_token, deliveries) VALUES {}",
            value_rows(d, chunk.len(), 7)
        ));
        for n in chunk {
            q = q
                .bind(DELIVERY_CONSUMER)
                .bind(n.id.to_bytes())
                .bind(n.endpoint.to_string())
                .bind(run_at)
                .bind(now_ms as i64)
                .bind(token)
                .bind(handed);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
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
    insert_attempts(&mut *tx, &[a]).await?;
    query(
        "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, next_attempt = $2, last_status = $3, \
         failed_at = $4 WHERE id = $5",
    )
    .bind(r.status.as_str().to_owned())
    .bind(r.next_attempt_ms.map(|ms| (ms / 1000) as i64))
    .bind(a.response_status)
    // When it failed for good: a recovery finds it by that time.
    .bind((r.status == DeliveryStatus::Failed).then_some(r.now_ms as i64))
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
        // Written only when it starts failing: later failures leave the
        // row as it is.
        query("UPDATE webhook_endpoints SET failing_since = $1 WHERE id = $2 AND failing_since IS NULL")
            .bind(r.now_ms as i64)
            .bind(endpoint.to_bytes())
            .execute(&mut *tx)
            .await?;
        let row = query("SELECT failing_since FROM webhook_endpoints WHERE id = $1")
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

/// Inserts attempts (at most [`CHUNK`]) in one statement.
async fn insert_attempts(tx: &mut Tx<'_>, attempts: &[&WebhookAttempt]) -> StoreResult<()> {
    let mut q = query(format!(
        "INSERT INTO webhook_attempts ({ATTEMPT_COLS}) VALUES {}",
        value_rows(tx.dialect, attempts.len(), 8)
    ));
    for a in attempts {
        q = q
            .bind(a.id.to_bytes())
            .bind(a.delivery.to_bytes())
            .bind(a.duration_ms)
            .bind(a.request_id.clone())
            .bind(a.response_status)
            .bind(a.response_excerpt.clone())
            .bind(a.error.clone())
            .bind(a.created);
    }
    q.execute(tx).await?;
    Ok(())
}

/// Records a batch of attempts in the caller's transaction. Deliveries
/// that arrived (the common case) go together: their attempts in one
/// statement, their new state in one per status code answered, their
/// jobs' removal in one, and only endpoints marked failing are written.
/// Anything else (a retry to schedule, a failure, a 410) goes one by one
/// through [`record_attempt`].
pub async fn record_attempts(tx: &mut Tx<'_>, records: Vec<(WebhookEndpointId, AttemptRecord)>) -> StoreResult<()> {
    let (arrived, other): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|(_, r)| r.status == DeliveryStatus::Delivered && r.disable_endpoint.is_none());
    for (endpoint, r) in other {
        record_attempt(&mut *tx, endpoint, r).await?;
    }
    let d = tx.dialect;
    for chunk in arrived.chunks(CHUNK) {
        let attempts: Vec<&WebhookAttempt> = chunk.iter().map(|(_, r)| &r.attempt).collect();
        insert_attempts(&mut *tx, &attempts).await?;
        let mut codes: Vec<Option<i64>> = chunk.iter().map(|(_, r)| r.attempt.response_status).collect();
        codes.sort_unstable();
        codes.dedup();
        for code in codes {
            let ids: Vec<Vec<u8>> = chunk
                .iter()
                .filter(|(_, r)| r.attempt.response_status == code)
                .map(|(_, r)| r.attempt.delivery.to_bytes())
                .collect();
            let mut q = query(format!(
                "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, next_attempt = NULL, \
                 last_status = {} WHERE id IN ({})",
                d.placeholder(1),
                in_list(d, 2, ids.len())
            ))
            .bind(code);
            for id in ids {
                q = q.bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        let mut endpoints: Vec<Vec<u8>> = chunk.iter().map(|(e, _)| e.to_bytes()).collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        let mut q = query(format!(
            "UPDATE webhook_endpoints SET failing_since = NULL WHERE failing_since IS NOT NULL AND id IN ({})",
            in_list(d, 1, endpoints.len())
        ));
        for id in endpoints {
            q = q.bind(id);
        }
        q.execute(&mut *tx).await?;
        let mut q = query(format!(
            "DELETE FROM jobs WHERE consumer = {} AND message_id IN ({})",
            d.placeholder(1),
            in_list(d, 2, chunk.len())
        ))
        .bind(DELIVERY_CONSUMER);
        for (_, r) in chunk {
            q = q.bind(r.attempt.delivery.to_bytes());
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Deliveries by id, one statement per [`CHUNK`]; missing ones are left out.
pub async fn deliveries_by_ids<E: Executor + ?Sized>(
    ex: &mut E,
    d: super::Dialect,
    ids: &[WebhookDeliveryId],
) -> StoreResult<Vec<WebhookDelivery>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut q = query(format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE id IN ({})",
            in_list(d, 1, chunk.len())
        ));
        for id in chunk {
            q = q.bind(id.to_bytes());
        }
        for row in q.fetch_all(&mut *ex).await? {
            out.push(delivery(&row)?);
        }
    }
    Ok(out)
}

/// Endpoints with their sealed signing secrets, in one statement; missing
/// ones are left out.
pub async fn signing_endpoints<E: Executor + ?Sized>(
    ex: &mut E,
    d: super::Dialect,
    ids: &[WebhookEndpointId],
) -> StoreResult<Vec<(WebhookEndpoint, SealedSecrets)>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut q = query(format!(
            "SELECT {ENDPOINT_COLS}, secret, previous_secret, previous_secret_expires FROM webhook_endpoints \
             WHERE id IN ({})",
            in_list(d, 1, chunk.len())
        ));
        for id in chunk {
            q = q.bind(id.to_bytes());
        }
        for row in q.fetch_all(&mut *ex).await? {
            let previous: Option<Vec<u8>> = row.try_get("previous_secret")?;
            let expires: Option<i64> = row.try_get("previous_secret_expires")?;
            let sealed = SealedSecrets {
                current: row.try_get("secret")?,
                previous: previous.zip(expires),
            };
            out.push((endpoint(&row)?, sealed));
        }
    }
    Ok(out)
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
    tx.touch(Touched::ENDPOINTS);
    tx.changed(e.id.uuid());
    let ctx = WriteContext {
        request_id: format!("webhooks_{id}"),
        now_ms,
        ..WriteContext::background()
    };
    let ids = tx.ids;
    let subject = Subject::changed("webhook_endpoint", id.to_bytes());
    events::emit(tx, ids, &ctx, subject, &["webhook_endpoint.disabled"], &e).await
}

/// Deliveries waiting for an attempt, per endpoint (by id, as text): the
/// delivery jobs, which exist only while a delivery is pending, so this
/// reads the backlog and nothing that was delivered.
pub async fn backlog(conn: &mut (impl Executor + ?Sized)) -> StoreResult<Vec<(String, i64)>> {
    let rows = query("SELECT job_key, COUNT(*) AS pending FROM jobs WHERE consumer = $1 GROUP BY job_key")
        .bind(DELIVERY_CONSUMER)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            let key: Option<String> = r.try_get("job_key")?;
            Ok((key.unwrap_or_default(), r.try_get("pending")?))
        })
        .collect()
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
    make_pending(tx, id, del.endpoint, now_ms).await?;
    Ok(del)
}

/// Those of `ids` still `failed` made pending, each with its attempt
/// queued at `now_ms`, in two statements per [`CHUNK`]; returns how many.
/// A delivery retried meanwhile is no longer `failed` and is left alone,
/// so its lease is not taken from the worker sending it.
pub async fn make_failed_pending(
    tx: &mut Tx<'_>,
    ids: &[WebhookDeliveryId],
    endpoint: WebhookEndpointId,
    now_ms: u64,
) -> StoreResult<usize> {
    let d = tx.dialect;
    let mut made = 0;
    for chunk in ids.chunks(CHUNK) {
        let mut q = query(format!(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt = $1 \
             WHERE status = 'failed' AND id IN ({}) RETURNING id",
            in_list(d, 2, chunk.len())
        ))
        .bind((now_ms / 1000) as i64);
        for id in chunk {
            q = q.bind(id.to_bytes());
        }
        let pending: Vec<Vec<u8>> = q
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        if pending.is_empty() {
            continue;
        }
        made += pending.len();
        let mut q = query(format!(
            "INSERT INTO jobs (consumer, message_id, job_key, run_at, created) VALUES {} \
             ON CONFLICT (consumer, message_id) DO UPDATE SET run_at = excluded.run_at, lease_token = NULL",
            value_rows(d, pending.len(), 5)
        ));
        for id in pending {
            q = q
                .bind(DELIVERY_CONSUMER)
                .bind(id)
                .bind(endpoint.to_string())
                .bind(now_ms as i64)
                .bind(now_ms as i64);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(made)
}

/// A delivery pending again with its next attempt queued at `now_ms`
/// (a manual retry).
pub async fn make_pending(
    tx: &mut Tx<'_>,
    id: WebhookDeliveryId,
    endpoint: WebhookEndpointId,
    now_ms: u64,
) -> StoreResult<()> {
    query("UPDATE webhook_deliveries SET status = 'pending', next_attempt = $1 WHERE id = $2")
        .bind((now_ms / 1000) as i64)
        .bind(id.to_bytes())
        .execute(&mut *tx)
        .await?;
    schedule(tx, id, endpoint, now_ms).await
}
