//! The embedded queue: jobs made by the `events_enqueue` trigger in each
//! event's own transaction, leased by moving `run_at` to the lease's end.
//! On PostgreSQL claims skip rows another worker holds (`SKIP LOCKED`), so
//! several processes share the work; on SQLite the single writer serialises
//! claims.

use super::Dialect;
use super::db::{Executor, query};
use crate::error::StoreResult;
use crate::ids::IdGenerator;
use crate::queue::{ConsumerBacklog, FANOUT_CONSUMER, JobClaim, LeasedJob, Subscription};

/// The ready jobs of one consumer, oldest first (served by `jobs_ready`).
pub fn ready_sql(d: Dialect, skip_keys: usize) -> String {
    let mut skip = String::new();
    if skip_keys > 0 {
        let marks: Vec<String> = (0..skip_keys).map(|i| format!("${}", i + 4)).collect();
        skip = format!(" AND (job_key IS NULL OR job_key NOT IN ({}))", marks.join(", "));
    }
    let lock = match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    format!(
        "SELECT consumer, message_id FROM jobs WHERE consumer = $1 AND run_at <= $2{skip} \
         ORDER BY run_at LIMIT $3{lock}"
    )
}

/// Leases up to `claim.max` ready jobs: their `run_at` moves to the end of
/// the lease and they get the claim's token.
pub async fn claim(conn: &mut (impl Executor + ?Sized), d: Dialect, claim: &JobClaim) -> StoreResult<Vec<LeasedJob>> {
    let first = 4 + claim.skip_keys.len();
    let sql = format!(
        "UPDATE jobs SET run_at = ${first}, deliveries = deliveries + 1, lease_token = ${} \
         WHERE (consumer, message_id) IN ({}) RETURNING message_id, job_key, deliveries, created",
        first + 1,
        ready_sql(d, claim.skip_keys.len())
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
        .fetch_all(conn)
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
/// nothing can run twice. Returns how many it took.
pub async fn drain_fanout(
    conn: &mut (impl Executor + ?Sized),
    d: Dialect,
    ids: &IdGenerator,
    max: u32,
    now_ms: u64,
) -> StoreResult<u64> {
    let consumer = FANOUT_CONSUMER;
    let sql = format!(
        "DELETE FROM jobs WHERE (consumer, message_id) IN ({}) RETURNING message_id",
        ready_sql(d, 0)
    );
    let rows = query(sql)
        .bind(consumer)
        .bind(now_ms as i64)
        .bind(i64::from(max))
        .fetch_all(&mut *conn)
        .await?;
    let message_ids = rows
        .iter()
        .map(|r| r.try_get::<Vec<u8>, _>("message_id"))
        .collect::<Result<Vec<_>, _>>()?;
    let taken = message_ids.len() as u64;
    fan_out(conn, d, ids, &message_ids, now_ms).await?;
    Ok(taken)
}

/// The fan-out's effect for consumed events: its processed-message
/// records, and a webhook delivery for each new event and matching
/// endpoint. Returns how many events were new.
pub async fn fan_out(
    conn: &mut (impl Executor + ?Sized),
    d: Dialect,
    ids: &IdGenerator,
    event_ids: &[Vec<u8>],
    now_ms: u64,
) -> StoreResult<u64> {
    let new = mark_all_processed(&mut *conn, d, FANOUT_CONSUMER, event_ids, now_ms).await?;
    super::webhooks::fan_out(conn, d, ids, &new, now_ms).await?;
    Ok(new.len() as u64)
}

/// Removes finished jobs; a job whose lease was lost stays for its new
/// holder. Jobs of one claim share consumer and token, so each claim's
/// jobs go in one statement.
pub async fn finish(conn: &mut (impl Executor + ?Sized), d: Dialect, jobs: &[LeasedJob]) -> StoreResult<u64> {
    let mut done = 0;
    let mut rest = jobs;
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
        done += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(done)
}

/// Gives a job back to run again not before `run_at_ms`.
pub async fn retry(
    conn: &mut (impl Executor + ?Sized),
    job: &LeasedJob,
    run_at_ms: u64,
    error: &str,
) -> StoreResult<()> {
    query(
        "UPDATE jobs SET run_at = $1, lease_token = NULL, last_error = $2 \
         WHERE consumer = $3 AND message_id = $4 AND lease_token = $5",
    )
    .bind(run_at_ms as i64)
    .bind(error.to_owned())
    .bind(job.consumer.clone())
    .bind(job.message_id.clone())
    .bind(job.token)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a job that used up its deliveries to the dead letters.
pub async fn bury(
    conn: &mut (impl Executor + ?Sized),
    d: Dialect,
    job: &LeasedJob,
    error: &str,
    now_ms: u64,
) -> StoreResult<()> {
    let moved = query(
        "INSERT INTO dead_jobs (consumer, message_id, job_key, deliveries, last_error, created, died) \
         SELECT consumer, message_id, job_key, deliveries, $1, created, $2 FROM jobs \
         WHERE consumer = $3 AND message_id = $4 AND lease_token = $5 \
         ON CONFLICT (consumer, message_id) DO NOTHING",
    )
    .bind(error.to_owned())
    .bind(now_ms as i64)
    .bind(job.consumer.clone())
    .bind(job.message_id.clone())
    .bind(job.token)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() > 0 {
        finish(conn, d, std::slice::from_ref(job)).await?;
    }
    Ok(())
}

/// Puts dead jobs (of one consumer, or all) back in the queue, ready now.
pub async fn replay_dead(conn: &mut (impl Executor + ?Sized), consumer: Option<&str>, now_ms: u64) -> StoreResult<u64> {
    let (filter, bind) = match consumer {
        Some(c) => (" WHERE consumer = $2", Some(c.to_owned())),
        None => ("", None),
    };
    let insert = format!(
        "INSERT INTO jobs (consumer, message_id, job_key, run_at, created) \
         SELECT consumer, message_id, job_key, $1, created FROM dead_jobs{filter} \
         ON CONFLICT (consumer, message_id) DO NOTHING"
    );
    let mut q = query(insert).bind(now_ms as i64);
    if let Some(c) = &bind {
        q = q.bind(c.clone());
    }
    let replayed = q.execute(&mut *conn).await?.rows_affected();
    let delete = match consumer {
        Some(_) => "DELETE FROM dead_jobs WHERE consumer = $1",
        None => "DELETE FROM dead_jobs",
    };
    let mut q = query(delete);
    if let Some(c) = bind {
        q = q.bind(c);
    }
    q.execute(conn).await?;
    Ok(replayed)
}

/// Makes the subscriptions exactly `subs`: adds missing ones first, then
/// drops consumers that are no longer wanted. Processes sharing a database
/// register the same set, so they never remove each other's rows.
pub async fn register(conn: &mut (impl Executor + ?Sized), subs: &[Subscription]) -> StoreResult<()> {
    for s in subs {
        query(
            "INSERT INTO queue_consumers (name, event_type) VALUES ($1, $2) \
             ON CONFLICT (name, event_type) DO NOTHING",
        )
        .bind(s.consumer.to_owned())
        .bind(s.event_type.to_owned())
        .execute(&mut *conn)
        .await?;
    }
    let rows = query("SELECT name, event_type FROM queue_consumers")
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let (name, event_type): (String, String) = (row.try_get("name")?, row.try_get("event_type")?);
        if !subs.iter().any(|s| s.consumer == name && s.event_type == event_type) {
            query("DELETE FROM queue_consumers WHERE name = $1 AND event_type = $2")
                .bind(name)
                .bind(event_type)
                .execute(&mut *conn)
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
    for chunk in message_ids.chunks(300) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("({}, {}, {})", d.placeholder(1), d.placeholder(i + 3), d.placeholder(2)))
            .collect();
        // SQLite's `?` binds in order of appearance, so each row binds its own copies.
        let sql = format!(
            "INSERT INTO processed_messages (consumer, message_id, processed) VALUES {} \
             ON CONFLICT (consumer, message_id) DO NOTHING RETURNING message_id",
            rows.join(", ")
        );
        let mut q = query(sql);
        match d {
            Dialect::Postgres => {
                q = q.bind(consumer.to_owned()).bind(now_ms as i64);
                for id in chunk {
                    q = q.bind(id.clone());
                }
            }
            Dialect::Sqlite => {
                for id in chunk {
                    q = q.bind(consumer.to_owned()).bind(id.clone()).bind(now_ms as i64);
                }
            }
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
pub async fn reap_processed(conn: &mut (impl Executor + ?Sized), before_ms: u64, batch: u32) -> StoreResult<u64> {
    let done = query(REAP_PROCESSED_SQL)
        .bind(before_ms as i64)
        .bind(i64::from(batch))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
