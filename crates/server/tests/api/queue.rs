//! The embedded queue, on both databases: the outbox trigger makes one job
//! per subscribed consumer in the event's own transaction; claims lease
//! jobs (fenced by a token), skip busy keys, and hand expired leases on;
//! retries wait for their time; dead letters can be replayed; the
//! fan-out worker consumes every event; `/v1/queue` and `/metrics` show it.

use std::time::Duration;

use serde_json::json;
use settle_domain::account::NewAccount;
use settle_domain::metadata::Metadata;
use settle_domain::money::Currency;
use settle_store::Store;
use settle_store::queue::{JobClaim, LeasedJob, Subscription};
use sqlx::Row;

use crate::support::{TestApp, TestDb, both, eventually};

/// A single-integer query's answer, read outside the store.
pub(crate) async fn count(db: &TestDb, sql: &str) -> i64 {
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&db.reads)
        .await
        .unwrap();
    row.try_get::<i64, _>(0).unwrap()
}

fn claim(consumer: &str, now_ms: u64, skip: &[&str]) -> JobClaim {
    JobClaim {
        consumer: consumer.into(),
        max: 10,
        skip_keys: skip.iter().map(|s| s.to_string()).collect(),
        now_ms,
        lease_ms: 1_000,
        token: rand::random(),
    }
}

pub(crate) async fn open_account(store: &dyn Store, now_ms: u64, name: &str) {
    let ctx = settle_store::WriteContext {
        request_id: "test".into(),
        actor: None,
        now_ms,
        idempotency: None,
        audit: None,
        success_status: None,
        policy: None,
        deadline: None,
        trace: None,
    };
    let new = NewAccount::new(
        name.into(),
        Currency::parse("usd").unwrap(),
        false,
        None,
        Metadata::default(),
    )
    .unwrap();
    store.create_account(&ctx, new).await.unwrap();
}

both!(jobs_lease_retry_bury_and_replay, jobs_lease_retry_bury_and_replay_case);
async fn jobs_lease_retry_bury_and_replay_case(app: &TestApp) {
    // A database of its own, without the app's workers draining it.
    let db = TestDb::create(app.db.backend).await;
    let store = db.store.as_ref();
    let subs = [
        Subscription {
            consumer: "all",
            event_type: "*",
        },
        Subscription {
            consumer: "opened",
            event_type: "account.created",
        },
        Subscription {
            consumer: "paid",
            event_type: "payment.succeeded",
        },
    ];
    store.register_consumers(&subs).await.unwrap();
    let t0 = 1_800_000_000_000u64;
    open_account(store, t0, "a").await;
    // One job per subscribed consumer, none for the others.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM jobs WHERE consumer = 'all'").await, 1);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM jobs WHERE consumer = 'opened'").await,
        1
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM jobs WHERE consumer = 'paid'").await, 0);

    // A lease hides the job until it expires; then another worker gets it,
    // and the first holder's token no longer finishes anything.
    let first = store.claim_jobs(&claim("all", t0, &[])).await.unwrap();
    assert_eq!((first.len(), first[0].deliveries), (1, 1));
    assert!(store.claim_jobs(&claim("all", t0 + 999, &[])).await.unwrap().is_empty());
    let second = store.claim_jobs(&claim("all", t0 + 1_001, &[])).await.unwrap();
    assert_eq!((second.len(), second[0].deliveries), (1, 2));
    assert_eq!(
        store.finish_jobs(&first).await.unwrap(),
        0,
        "a lost lease finishes nothing"
    );

    // A retry waits for its time.
    store.retry_job(&second[0], t0 + 5_000, "try later").await.unwrap();
    assert!(
        store
            .claim_jobs(&claim("all", t0 + 4_999, &[]))
            .await
            .unwrap()
            .is_empty()
    );
    let third = store.claim_jobs(&claim("all", t0 + 5_000, &[])).await.unwrap();
    assert_eq!(third[0].deliveries, 3);

    // Burying moves it to the dead letters; replay brings it back.
    store.bury_job(&third[0], "gave up", t0 + 5_001).await.unwrap();
    let backlog = store.queue_backlog().await.unwrap();
    let all = backlog.iter().find(|b| b.consumer == "all").unwrap();
    assert_eq!((all.pending, all.dead), (0, 1));
    assert_eq!(store.replay_dead_jobs(Some("all"), t0 + 6_000).await.unwrap(), 1);
    let again = store.claim_jobs(&claim("all", t0 + 6_000, &[])).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(store.finish_jobs(&again).await.unwrap(), 1);

    // Unsubscribing stops new jobs for that consumer.
    store.register_consumers(&subs[..1]).await.unwrap();
    open_account(store, t0 + 7_000, "b").await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM jobs WHERE consumer = 'opened'").await,
        1
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM jobs WHERE consumer = 'all'").await, 1);

    // Processed-message records say whether a message was new.
    let id = vec![7u8; 16];
    assert_eq!(store.fan_out_events(std::slice::from_ref(&id), t0).await.unwrap(), 1);
    assert_eq!(store.fan_out_events(std::slice::from_ref(&id), t0).await.unwrap(), 0);
    assert_eq!(store.reap_processed(t0 + 1, 100).await.unwrap(), 1);
    assert_eq!(store.fan_out_events(&[id], t0).await.unwrap(), 1);
    db.drop_db().await;
}

both!(claims_skip_busy_keys, claims_skip_busy_keys_case);
async fn claims_skip_busy_keys_case(app: &TestApp) {
    let db = TestDb::create(app.db.backend).await;
    let t0 = 1_800_000_000_000i64;
    for (i, key) in ["stuck", "stuck", "healthy", "other"].iter().enumerate() {
        sqlx::query(
            "INSERT INTO jobs (consumer, message_id, job_key, run_at, created) VALUES ('deliver', $1, $2, $3, $3)",
        )
        .bind(vec![i as u8; 16])
        .bind(key.to_string())
        .bind(t0 + i as i64)
        .execute(&db.reads)
        .await
        .unwrap();
    }
    let got: Vec<LeasedJob> = db
        .store
        .claim_jobs(&claim("deliver", t0 as u64 + 10, &["stuck", "other"]))
        .await
        .unwrap();
    let keys: Vec<_> = got.iter().map(|j| j.key.clone().unwrap()).collect();
    assert_eq!(
        keys,
        ["healthy"],
        "jobs of a busy key stay put and do not block the rest"
    );
    let rest = db
        .store
        .claim_jobs(&claim("deliver", t0 as u64 + 10, &[]))
        .await
        .unwrap();
    assert_eq!(rest.len(), 3);
    db.drop_db().await;
}

both!(fanout_consumes_every_event, fanout_consumes_every_event_case);
async fn fanout_consumes_every_event_case(app: &TestApp) {
    let shop = app.account("shop", "usd", false).await;
    let bank = app.account("bank", "usd", true).await;
    for i in 0..40 {
        let r = app
            .post(
                "/v1/payments",
                json!({"amount": 100 + i, "currency": "usd", "source": bank, "destination": shop}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let events = count(&app.db, "SELECT COUNT(*) FROM events").await;
    assert_eq!(events, 2 + 40 * 2);
    eventually(Duration::from_secs(30), "every event consumed", || async {
        let done = count(
            &app.db,
            "SELECT COUNT(*) FROM processed_messages WHERE consumer = 'fanout'",
        )
        .await;
        (done == events).then_some(())
    })
    .await;
    let unmatched = count(
        &app.db,
        "SELECT COUNT(*) FROM events e WHERE NOT EXISTS \
         (SELECT 1 FROM processed_messages p WHERE p.consumer = 'fanout' AND p.message_id = e.id)",
    )
    .await;
    assert_eq!(unmatched, 0);
    let status = eventually(Duration::from_secs(10), "an empty backlog", || async {
        let r = app.get("/v1/queue").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let pending: u64 = r.body["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["pending"].as_u64().unwrap())
            .sum();
        (pending == 0).then_some(r.body)
    })
    .await;
    assert_eq!(status["backend"], "embedded");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(&format!("settle_events_consumed_total {events}")),
        "{text}"
    );
    assert!(text.contains("settle_queue_relay_lag_seconds 0"), "{text}");
    // Viewers may not read the queue summary; developers may.
    let viewer = app.key("viewer").await;
    let r = app.call(reqwest::Method::GET, "/v1/queue", Some(&viewer), None).await;
    assert_eq!(r.status, 403);
    let developer = app.key("developer").await;
    let r = app
        .call(reqwest::Method::GET, "/v1/queue", Some(&developer), None)
        .await;
    assert_eq!(r.status, 200);
}
