//! The commit stream: every committed event has a position in one
//! gap-free sequence in commit order (`GET /v1/events?after_position=`),
//! and workers wake on commits, not on their poll. Positions are checked
//! under writers that commit out of id order (PostgreSQL); wake-ups with
//! the poll set to a minute, so a worker that reacts did so because it was
//! told (the wake counters say which reason woke it, and the poll never
//! did); and a listener connection cut by the test's own proxy is noticed,
//! after which the workers read from their positions and miss nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use settle::config::{Config, QueueBackend};
use settle_core::Settle;
use settle_core::clock::{Clock, SystemClock};
use settle_core::commits::Topic;
use settle_store::Store;
use settle_store_postgres::PostgresOptions;

use crate::queue::{count, open_account};
use crate::support::{
    Backend, Proxy, TestApp, TestDb, both, delete_nats_streams, eventually, nats_available, nats_prefix, nats_url,
    postgres_available, run, run_config, runtime,
};

const UNCONSUMED: &str = "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM events e WHERE NOT EXISTS \
     (SELECT 1 FROM processed_messages m WHERE m.consumer = 'fanout' AND m.message_id = e.id)";

/// Waits until the fan-out has consumed every committed event.
async fn all_consumed(db: &TestDb, what: &str) {
    eventually(Duration::from_secs(30), what, || async {
        (count(db, UNCONSUMED).await == 0).then_some(())
    })
    .await;
}

/// A configuration whose safety-net poll never fires during a test.
fn deaf_poll() -> Config {
    let mut config = Config::default();
    config.queue.poll = Duration::from_secs(60);
    config
}

/// Inserts an event the way another writer would, inside `tx`; returns its id.
async fn insert_event(tx: &mut sqlx::AnyConnection, kind: &str) -> Vec<u8> {
    let id = settle_domain::ids::uuid_v7(SystemClock.now_ms(), rand::random::<u128>())
        .as_bytes()
        .to_vec();
    sqlx::query(
        "INSERT INTO events (id, type, object_type, object_id, sequence, data, request_id, created) \
         VALUES ($1, $2, 'test', $3, 1, '{}', 'test', $4)",
    )
    .bind(id.clone())
    .bind(kind.to_owned())
    .bind(rand::random::<[u8; 16]>().to_vec())
    .bind((SystemClock.now_ms() / 1000) as i64)
    .execute(&mut *tx)
    .await
    .unwrap();
    id
}

/// Follows the stream from position 0 through the service layer's commit
/// stream, as a streaming face would: read after the last position, wait
/// for a wake, again. Asserts every page continues exactly where the last
/// one stopped (no gap, no repeat); stops once `want` events of type
/// `kind` are in. Returns (position, id, type) in the order read.
async fn follow(settle: Settle, kind: &'static str, want: usize) -> Vec<(i64, Vec<u8>, String)> {
    let mut commits = settle.commits().subscribe(Topic::Positions);
    let mut seen = Vec::new();
    let mut last = 0;
    while seen
        .iter()
        .filter(|(_, _, t): &&(i64, Vec<u8>, String)| t == kind)
        .count()
        < want
    {
        let page = settle.events_after(last, 100).await.unwrap();
        for e in &page.data {
            assert_eq!(
                e.position,
                Some(last + 1),
                "the stream goes on from {last} without a gap"
            );
            last += 1;
            seen.push((last, e.id.to_bytes(), e.event_type.clone()));
        }
        if !page.has_more {
            commits.wait().await;
        }
    }
    seen
}

#[test]
fn positions_follow_commit_order_under_concurrency_postgres() {
    runtime().block_on(run(Backend::Postgres, positions_follow_commit_order_case));
}

/// Eight writers commit events after random pauses (so commits land out of
/// id order), while one transaction that wrote its event first stays open
/// until the reader has seen all of theirs.
async fn positions_follow_commit_order_case(app: &TestApp) {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 25;
    let mut held = app.db.reads.acquire().await.unwrap().detach();
    sqlx::query("BEGIN").execute(&mut held).await.unwrap();
    let held_id = insert_event(&mut held, "test.commit").await;

    let reader = tokio::spawn(follow(app.settle.clone(), "test.commit", WRITERS * ROUNDS + 1));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let pool = app.db.reads.clone();
            tokio::spawn(async move {
                let mut committed = Vec::new();
                for _ in 0..ROUNDS {
                    let mut tx = pool.begin().await.unwrap();
                    let id = insert_event(&mut tx, "test.commit").await;
                    tokio::time::sleep(Duration::from_micros(rand::random_range(0..3000))).await;
                    tx.commit().await.unwrap();
                    committed.push(id);
                }
                committed
            })
        })
        .collect();
    let mut by_writer = Vec::new();
    for w in writers {
        by_writer.push(w.await.unwrap());
    }
    // Every writer's event is readable while the first one is still open.
    let positions: HashMap<Vec<u8>, i64> = eventually(Duration::from_secs(30), "the writers' events", || async {
        let mut found = HashMap::new();
        let mut after = 0;
        loop {
            let page = app.get(&format!("/v1/events?after_position={after}&limit=100")).await;
            assert_eq!(page.status, 200, "{}", page.body);
            for e in page.body["data"].as_array().unwrap() {
                let id = settle_domain::ids::EventId::parse(e["id"].as_str().unwrap()).unwrap();
                after = e["position"].as_i64().unwrap();
                found.insert(id.to_bytes(), after);
            }
            if page.body["has_more"] != true {
                break;
            }
        }
        by_writer
            .iter()
            .flatten()
            .all(|id| found.contains_key(id))
            .then_some(found)
    })
    .await;
    sqlx::query("COMMIT").execute(&mut held).await.unwrap();
    let stream = reader.await.unwrap();

    let ids: Vec<&Vec<u8>> = stream.iter().map(|(_, id, _)| id).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "every event once");
    for written in by_writer.iter().flatten() {
        assert!(ids.contains(&written), "no committed event is missed");
    }
    // Commit order: each writer's events in the order it committed them,
    // and the held event, first by id, last by commit.
    for committed in &by_writer {
        let mine: Vec<i64> = committed.iter().map(|id| positions[id]).collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "a writer's commits keep their order"
        );
    }
    let (last_position, last_id, _) = stream.last().unwrap();
    assert_eq!(last_id, &held_id, "the transaction that committed last is read last");
    assert_eq!(*last_position, stream.len() as i64);
    assert!(
        by_writer.iter().flatten().all(|id| id > &held_id),
        "its id is older than every other: id order is not commit order"
    );
}

both!(events_page_in_commit_order, events_page_in_commit_order_case);
async fn events_page_in_commit_order_case(app: &TestApp) {
    for name in ["a", "b", "c", "d", "e"] {
        app.account(name, "usd", false).await;
    }
    // On PostgreSQL the sequencer numbers them just after their commits.
    eventually(Duration::from_secs(30), "five numbered events", || async {
        let page = app.get("/v1/events?after_position=0").await;
        (page.body["data"].as_array().map(Vec::len) == Some(5)).then_some(())
    })
    .await;
    let mut stream: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let page = app.get(&format!("/v1/events?after_position={after}&limit=2")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let data = page.body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        for e in data {
            assert_eq!(e["position"], after + 1, "ascending, no gap: {e}");
            after += 1;
            stream.push(e.clone());
        }
        if page.body["has_more"] != true {
            break;
        }
    }
    assert_eq!(stream.len(), 5);
    // One writer at a time: commit order is the newest-first list reversed.
    let newest_first = app.get("/v1/events?limit=100").await.body["data"]
        .as_array()
        .unwrap()
        .clone();
    let ids = |v: &[Value]| v.iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&stream), ids(&newest_first.into_iter().rev().collect::<Vec<_>>()));
    let one = app
        .get(&format!("/v1/events/{}", stream[2]["id"].as_str().unwrap()))
        .await;
    assert_eq!(one.body["position"], 3);

    for bad in [
        "after_position=-1",
        "after_position=x",
        "after_position=1&type=account.created",
        "after_position=1&limit=0",
    ] {
        let r = app.get(&format!("/v1/events?{bad}")).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
    }
}

both!(
    an_idle_worker_wakes_on_commit,
    an_idle_worker_wakes_on_commit_case,
    super::run_deaf
);
async fn run_deaf(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    run_config(backend, deaf_poll(), case).await;
}

/// A commit by another Settle process: its write, then its sequencer's
/// run, which numbers the new events and announces them (a payment's own
/// transaction sends no notification; see migration 0009).
async fn commit_elsewhere(other: &dyn Store, name: &str) {
    open_account(other, SystemClock.now_ms(), name).await;
    other.number_events(1_000).await.unwrap();
}

/// With the poll at a minute, a commit is consumed because it was
/// announced: after it, the fan-out has consumed it and no worker has yet
/// been woken by its poll. On PostgreSQL, a commit by another process
/// (a second store on the same database) is heard through LISTEN/NOTIFY.
async fn an_idle_worker_wakes_on_commit_case(app: &TestApp) {
    let wakes = app.settle.commits().stats();
    all_consumed(&app.db, "the start-up events").await;
    let committed = wakes.committed.load(Ordering::Relaxed);
    open_account(app.store().as_ref(), SystemClock.now_ms(), "here").await;
    all_consumed(&app.db, "a commit of this process").await;
    assert!(wakes.committed.load(Ordering::Relaxed) > committed);

    if let Some(url) = &app.db.url {
        let other: Arc<dyn Store> = Arc::new(
            settle_store_postgres::open(url, &PostgresOptions::default())
                .await
                .unwrap(),
        );
        commit_elsewhere(other.as_ref(), "elsewhere").await;
        all_consumed(&app.db, "a commit of another process").await;
    }
    assert_eq!(wakes.poll.load(Ordering::Relaxed), 0, "no worker waited for its poll");
    let m = app.metric("settle_commit_wakes_total{reason=\"poll\"}").await;
    assert_eq!(m, 0);
}

#[test]
fn a_cut_listener_is_noticed_and_nothing_is_missed_postgres() {
    if !postgres_available() {
        return;
    }
    runtime().block_on(async {
        let db = TestDb::create(Backend::Postgres).await;
        let url = db.url.clone().unwrap();
        let upstream = "127.0.0.1:5432".parse().unwrap();
        let proxy = Proxy::start(upstream).await;
        let mut config = deaf_poll();
        config.webhooks.allow_private_targets = true;
        config.database_url = Some(url.clone());
        config.database_listen_url = Some(url.replace("127.0.0.1:5432", &proxy.addr.to_string()));
        let app = TestApp::spawn_config(db, Arc::new(SystemClock), config).await;
        let outcome =
            futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(cut_listener_case(&app, &proxy, &url))).await;
        drop(proxy);
        app.finish().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
}

const LISTENING: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_stat_activity \
     WHERE datname = current_database() AND query LIKE 'LISTEN%'";

async fn cut_listener_case(app: &TestApp, proxy: &Proxy, url: &str) {
    let wakes = app.settle.commits().stats();
    let other = settle_store_postgres::open(url, &PostgresOptions::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(30), "the listener", || async {
        (count(&app.db, LISTENING).await == 1).then_some(())
    })
    .await;
    commit_elsewhere(&other, "before").await;
    all_consumed(&app.db, "a commit heard through the proxy").await;

    let resyncs = wakes.resync.load(Ordering::Relaxed);
    proxy.cut();
    eventually(Duration::from_secs(30), "the cut noticed", || async {
        (wakes.resync.load(Ordering::Relaxed) > resyncs).then_some(())
    })
    .await;
    for i in 0..5 {
        commit_elsewhere(&other, &format!("during {i}")).await;
    }
    let noticed = wakes.resync.load(Ordering::Relaxed);
    proxy.restore();
    all_consumed(&app.db, "the commits made while the listener was away").await;
    assert!(
        wakes.resync.load(Ordering::Relaxed) > noticed,
        "the listener came back and said so"
    );
    let processed = count(
        &app.db,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM processed_messages WHERE consumer = 'fanout'",
    )
    .await;
    assert_eq!(
        processed,
        count(&app.db, "SELECT CAST(COUNT(*) AS BIGINT) FROM events").await
    );
    assert_eq!(wakes.poll.load(Ordering::Relaxed), 0, "the poll never had to step in");
}

both!(nats_consumers_wake_on_commit, nats_consumers_wake_on_commit_case);
/// With NATS as the queue and the poll at a minute: the relay wakes on the
/// commit, the fan-out on the broker's push.
async fn nats_consumers_wake_on_commit_case(app: &TestApp) {
    if !nats_available() {
        return;
    }
    let prefix = nats_prefix();
    let mut config = deaf_poll();
    config.queue.backend = QueueBackend::Nats;
    config.queue.nats_url = nats_url();
    config.queue.nats_prefix = prefix.clone();
    let db = TestDb::create(app.db.backend).await;
    let n = TestApp::spawn_config(db, Arc::new(SystemClock), config).await;
    let bank = n.account("bank", "usd", true).await;
    let shop = n.account("shop", "usd", false).await;
    n.post(
        "/v1/payments",
        json!({"amount": 100, "currency": "usd", "source": bank, "destination": shop}),
    )
    .await;
    all_consumed(&n.db, "events through NATS").await;
    let polls = n.settle.commits().stats().poll.load(Ordering::Relaxed);
    n.finish().await;
    delete_nats_streams(&prefix).await;
    assert_eq!(polls, 0, "no worker waited for its poll");
}
