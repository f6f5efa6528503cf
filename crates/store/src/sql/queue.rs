//! The embedded queue: jobs made by the `events_enqueue` trigger in each
//! event's own transaction, leased by moving `run_at` to the lease's end.
//! On PostgreSQL claims skip rows another worker holds (`SKIP LOCKED`), so
//! several processes share the work; on SQLite the single writer serialises
//! claims.

use super::db::{Executor, Value, query};
use super::{Dialect, Tx};
use crate::error::StoreResult;
use crate::queue::{ConsumerBacklog, FANOUT_CONSUMER, FanoutDrained, FanoutLease, JobClaim, LeasedJob, Subscription};

/// The ready jobs of one consumer, oldest first (served by `jobs_ready`).
pub fn ready_sql(d: Dialect, skip_keys: usize) -> String {
    let mut skip = String::new();
    if skip_keys > 0 {
        let marks: Vec<String> = (0..skip_keys).map(|i| format!("${}", i + 4)).collect();
        skip = format!(" AND (job_key IS NULL OR job_key NOT IN ({}))", marks.join(", "));
    }
    let lock = d.lock_skip_locked();
    format!(
        "SELECT consumer, message_id FROM jobs WHERE consumer = $1 AND run_at <= $2{skip} \
         ORDER BY run_at LIMIT $3{lock}"
    )
}

/// Leases up to `claim.max` ready jobs: their `run_at` moves to the end of
/// the lease and they get the claim's token.
pub async fn claim(tx: &mut Tx<'_>, claim: JobClaim) -> StoreResult<Vec<LeasedJob>> {
    let first = 4 + claim.skip_keys.len();
    let sql = format!(
        "UPDATE jobs SET run_at = ${first}, deliveries = deliveries + 1, lease_token = ${} \
         WHERE (consumer, message_id) IN ({}) RETURNING message_id, job_key, deliveries, created",
        first + 1,
        ready_sql(tx.dialect, claim.skip_keys.len())
    );
    let mut q = query(sql)
        .bind(claim.consumer.clone())
        .bind(claim.now_ms as i64)
        .bind(i64::from(claim.max));
    for key in &claim.skip_keys {
        q = q.bind(key.clone());
    }
    let rows = q
        .bind(claim.now_ms.saturating_add(claim.lease_ms) as i64)
        .bind(claim.token)
        .fetch_all(tx)
        .await?;
    let mut jobs = rows
        .iter()
        .map(|row| {
            let deliveries: i64 = row.try_get("deliveries")?;
            Ok(LeasedJob {
                consumer: claim.consumer.clone(),
                message_id: row.try_get("message_id")?,
                key: row.try_get("job_key")?,
                deliveries: u32::try_from(deliveries).unwrap_or(u32::MAX),
                token: claim.token,
                created_ms: row.try_get("created")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    jobs.sort_by(|a, b| a.message_id.cmp(&b.message_id));
    Ok(jobs)
}

/// Takes up to `max` ready fan-out jobs and applies them, in one
/// transaction: the fan-out's whole effect is in this database, so the
/// job, the effect and the record commit together, no lease is needed and
/// nothing can run twice. New deliveries are leased to the caller as
/// `lease` allows.
pub async fn drain_fanout(
    tx: &mut Tx<'_>,
    max: u32,
    now_ms: u64,
    lease: Option<FanoutLease>,
) -> StoreResult<FanoutDrained> {
    let consumer = FANOUT_CONSUMER;
    let sql = format!(
        "DELETE FROM jobs WHERE (consumer, message_id) IN ({}) RETURNING message_id",
        ready_sql(tx.dialect, 0)
    );
    let rows = query(sql)
        .bind(consumer)
        .bind(now_ms as i64)
        .bind(i64::from(max))
        .fetch_all(&mut *tx)
        .await?;
    let message_ids = rows
        .iter()
        .map(|r| r.try_get::<Vec<u8>, _>("message_id"))
        .collect::<Result<Vec<_>, _>>()?;
    let events = message_ids.len() as u64;
    let d = tx.dialect;
    let new = mark_all_processed(&mut *tx, d, FANOUT_CONSUMER, &message_ids, now_ms).await?;
    let leased = super::webhooks::fan_out(tx, &new, now_ms, lease).await?;
    Ok(FanoutDrained { events, leased })
}

/// The fan-out's effect for consumed events: its processed-message
/// records, and a webhook delivery for each new event and matching
/// endpoint. Returns how many events were new.
pub async fn fan_out(tx: &mut Tx<'_>, event_ids: Vec<Vec<u8>>, now_ms: u64) -> StoreResult<u64> {
    let d = tx.dialect;
    let new = mark_all_processed(&mut *tx, d, FANOUT_CONSUMER, &event_ids, now_ms).await?;
    super::webhooks::fan_out(tx, &new, now_ms, None).await?;
    Ok(new.len() as u64)
}

/// Removes finished jobs; a job whose lease was lost stays for its new
/// holder. Jobs of one claim share consumer and token, so each claim's
/// jobs go in one statement.
pub async fn finish(tx: &mut Tx<'_>, jobs: Vec<LeasedJob>) -> StoreResult<u64> {
    let d = tx.dialect;
    let mut done = 0;
    let mut rest = &jobs[..];
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take_while(|j| j.consumer == first.consumer && j.token == first.token)
            .count()
            .min(500);
        let (batch, tail) = rest.split_at(same);
        rest = tail;
        let marks: Vec<String> = (0..batch.len()).map(|i| d.placeholder(i + 3)).collect();
        let sql = format!(
            "DELETE FROM jobs WHERE consumer = {} AND lease_token = {} AND message_id IN ({})",
            d.placeholder(1),
            d.placeholder(2),
            marks.join(", ")
        );
        let mut q = query(sql).bind(first.consumer.clone()).bind(first.token);
        for job in batch {
            q = q.bind(job.message_id.clone());
        }
        done += q.execute(&mut *tx).await?.rows_affected();
    }
    Ok(done)
}

/// Gives a job back to run again not before `run_at_ms`.
pub async fn retry(tx: &mut Tx<'_>, job: LeasedJob, run_at_ms: u64, error: String) -> StoreResult<()> {
    query(
        "UPDATE jobs SET run_at = $1, lease_token = NULL, last_error = $2 \
         WHERE consumer = $3 AND message_id = $4 AND lease_token = $5",
    )
    .bind(run_at_ms as i64)
    .bind(error)
    .bind(job.consumer)
    .bind(job.message_id)
    .bind(job.token)
    .execute(tx)
    .await?;
    Ok(())
}

/// Moves a job that used up its deliveries to the dead letters.
pub async fn bury(tx: &mut Tx<'_>, job: LeasedJob, error: String, now_ms: u64) -> StoreResult<()> {
    let moved = query(
        "INSERT INTO dead_jobs (consumer, message_id, job_key, deliveries, last_error, created, died) \
         SELECT consumer, message_id, job_key, deliveries, $1, created, $2 FROM jobs \
         WHERE consumer = $3 AND message_id = $4 AND lease_token = $5 \
         ON CONFLICT (consumer, message_id) DO NOTHING",
    )
    .bind(error)
    .bind(now_ms as i64)
    .bind(job.consumer.clone())
    .bind(job.message_id.clone())
    .bind(job.token)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() > 0 {
        finish(tx, vec![job]).await?;
    }
    Ok(())
}

/// Puts dead jobs (of one consumer, or all) back in the queue, ready now.
pub async fn replay_dead(tx: &mut Tx<'_>, consumer: Option<String>, now_ms: u64) -> StoreResult<u64> {
    let filter = match consumer {
        Some(_) => " WHERE consumer = $2",
        None => "",
    };
    let insert = format!(
        "INSERT INTO jobs (consumer, message_id, job_key, run_at, created) \
         SELECT consumer, message_id, job_key, $1, created FROM dead_jobs{filter} \
         ON CONFLICT (consumer, message_id) DO NOTHING"
    );
    let mut q = query(insert).bind(now_ms as i64);
    if let Some(c) = &consumer {
        q = q.bind(c.clone());
    }
    let replayed = q.execute(&mut *tx).await?.rows_affected();
    let delete = match consumer {
        Some(_) => "DELETE FROM dead_jobs WHERE consumer = $1",
        None => "DELETE FROM dead_jobs",
    };
    let mut q = query(delete);
    if let Some(c) = consumer {
        q = q.bind(c);
    }
    q.execute(tx).await?;
    Ok(replayed)
}

/// Makes the subscriptions exactly `subs`: adds missing ones first, then
/// drops consumers that are no longer wanted. Processes sharing a database
/// register the same set, so they never remove each other's rows.
pub async fn register(tx: &mut Tx<'_>, subs: Vec<Subscription>) -> StoreResult<()> {
    for s in &subs {
        query(
            "INSERT INTO queue_consumers (name, event_type) VALUES ($1, $2) \
             ON CONFLICT (name, event_type) DO NOTHING",
        )
        .bind(s.consumer.to_owned())
        .bind(s.event_type.to_owned())
        .execute(&mut *tx)
        .await?;
    }
    let rows = query("SELECT name, event_type FROM queue_consumers")
        .fetch_all(&mut *tx)
        .await?;
    for row in rows {
        let (name, event_type): (String, String) = (row.try_get("name")?, row.try_get("event_type")?);
        if !subs.iter().any(|s| s.consumer == name && s.event_type == event_type) {
            query("DELETE FROM queue_consumers WHERE name = $1 AND event_type = $2")
                .bind(name)
                .bind(event_type)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Each consumer's backlog and dead letters.
pub async fn backlog(pool: &mut (impl Executor + ?Sized)) -> StoreResult<Vec<ConsumerBacklog>> {
    let mut out: Vec<ConsumerBacklog> = Vec::new();
    let pending =
        query("SELECT consumer, CAST(COUNT(*) AS BIGINT) AS n, MIN(created) AS oldest FROM jobs GROUP BY consumer")
            .fetch_all(pool)
            .await?;
    for row in pending {
        let n: i64 = row.try_get("n")?;
        out.push(ConsumerBacklog {
            consumer: row.try_get("consumer")?,
            pending: u64::try_from(n).unwrap_or(0),
            oldest_created_ms: row.try_get("oldest")?,
            dead: 0,
        });
    }
    let dead = query("SELECT consumer, CAST(COUNT(*) AS BIGINT) AS n FROM dead_jobs GROUP BY consumer")
        .fetch_all(pool)
        .await?;
    for row in dead {
        let consumer: String = row.try_get("consumer")?;
        let n: i64 = row.try_get("n")?;
        let n = u64::try_from(n).unwrap_or(0);
        match out.iter_mut().find(|b| b.consumer == consumer) {
            Some(b) => b.dead = n,
            None => out.push(ConsumerBacklog {
                consumer,
                dead: n,
                ..ConsumerBacklog::default()
            }),
        }
    }
    out.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    Ok(out)
}

/// Records a batch of messages as handled in one statement per 300;
/// returns the ones that were new.
pub async fn mark_all_processed(
    conn: &mut (impl Executor + ?Sized),
    d: Dialect,
    consumer: &str,
    message_ids: &[Vec<u8>],
    now_ms: u64,
) -> StoreResult<Vec<Vec<u8>>> {
    let mut new = Vec::new();
    // Each row is (consumer, its message, the time): the consumer and the
    // time are shared by every row.
    let shared: [Value; 2] = [consumer.into(), (now_ms as i64).into()];
    for chunk in message_ids.chunks(300) {
        let own = chunk.iter().map(|id| id.clone().into()).collect();
        let (rows, binds) = d.values_rows(&[Some(0), None, Some(1)], &shared, own);
        let sql = format!(
            "INSERT INTO processed_messages (consumer, message_id, processed) VALUES {rows} \
             ON CONFLICT (consumer, message_id) DO NOTHING RETURNING message_id"
        );
        let mut q = query(sql);
        for value in binds {
            q = q.bind(value);
        }
        for row in q.fetch_all(&mut *conn).await? {
            new.push(row.try_get::<Vec<u8>, _>("message_id")?);
        }
    }
    Ok(new)
}

pub const REAP_PROCESSED_SQL: &str = "DELETE FROM processed_messages WHERE (consumer, message_id) IN \
     (SELECT consumer, message_id FROM processed_messages WHERE processed < $1 ORDER BY processed LIMIT $2)";

/// Forgets processed-message records older than any redelivery can be.
pub async fn reap_processed(tx: &mut Tx<'_>, before_ms: u64, batch: u32) -> StoreResult<u64> {
    let done = query(REAP_PROCESSED_SQL)
        .bind(before_ms as i64)
        .bind(i64::from(batch))
        .execute(tx)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::super::Dialect;
    use super::super::db::Value;

    /// The processed-message rows each backend ran before the layout moved
    /// behind [`Dialect::values_rows`].
    #[test]
    fn processed_rows_keep_each_backends_sql() {
        let shared: [Value; 2] = ["fanout".into(), 7i64.into()];
        let own = || vec![Value::from(vec![1u8]), Value::from(vec![2u8])];
        let (rows, binds) = Dialect::Postgres.values_rows(&[Some(0), None, Some(1)], &shared, own());
        assert_eq!(rows, "($1, $3, $2), ($1, $4, $2)");
        assert_eq!(
            binds,
            [shared[0].clone(), shared[1].clone(), own()[0].clone(), own()[1].clone()]
        );
        let (rows, binds) = Dialect::Sqlite.values_rows(&[Some(0), None, Some(1)], &shared, own());
        assert_eq!(rows, "(?, ?, ?), (?, ?, ?)");
        let (a, b) = (own()[0].clone(), own()[1].clone());
        assert_eq!(
            binds,
            [
                shared[0].clone(),
                a,
                shared[1].clone(),
                shared[0].clone(),
                b,
                shared[1].clone()
            ]
        );
    }
}
