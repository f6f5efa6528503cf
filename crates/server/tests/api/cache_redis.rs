//! The read cache's shared tier on Redis, seen from outside: two processes
//! (on PostgreSQL, two stores on one database; on SQLite, which one process
//! serves, two apps on one store) read one cold payment a thousand times
//! and the database is read once for the cluster (the lease); a change on
//! one reaches reads on the other; and Redis stopping, hanging or being
//! killed under load never fails a request, never brings an old state
//! back when it returns, and is used again by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use settle::config::Config;
use settle_core::clock::SystemClock;

use crate::support::{
    Backend, PrivateRedis, Resp, TestApp, TestDb, both, free_port, redis_available, redis_url, run_config,
};

fn statements(r: &Resp) -> u64 {
    r.headers["settle-statements"].to_str().unwrap().parse().unwrap()
}

fn config(redis: String, timeout_ms: u64) -> Config {
    let mut config = Config::default();
    config.webhooks.allow_private_targets = true;
    config.redis_url = Some(redis);
    config.redis.timeout = Duration::from_millis(timeout_ms);
    config.redis.breaker_cooldown = Duration::from_millis(200);
    config
}

/// A second app as another process would be: its own store on the same
/// PostgreSQL database, or another app on the same SQLite store.
async fn second(app: &TestApp, config: Config) -> TestApp {
    let db = match app.db.backend {
        Backend::Postgres => app.db.another_process().await.unwrap(),
        Backend::Sqlite => app.db.same_store(),
    };
    let other = TestApp::spawn_config(db, Arc::new(SystemClock), config).await;
    other.listening().await;
    other
}

async fn get_as(app: &TestApp, key: &str, path: &str) -> Resp {
    app.call(Method::GET, path, Some(key), None).await
}

async fn held_payment(app: &TestApp) -> String {
    crate::cache::held_payment(app).await.0
}

async fn shared_metric(app: &TestApp, event: &str) -> u64 {
    app.metric(&format!(
        "settle_cache_shared_events_total{{tier=\"redis\",event=\"{event}\"}}"
    ))
    .await
}

async fn run_redis(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    if redis_available() {
        run_config(backend, config(redis_url(), 200), case).await;
    }
}

both!(
    one_read_for_the_cluster,
    one_read_for_the_cluster_case,
    super::run_redis
);
async fn one_read_for_the_cluster_case(app: &TestApp) {
    app.listening().await;
    let other = second(app, config(redis_url(), 200)).await;
    let payment = held_payment(app).await;
    let path = format!("/v1/payments/{payment}");
    // Both keys' caches warm, on something else.
    get_as(app, &app.admin_key, "/v1/events?limit=1").await;
    get_as(&other, &app.admin_key, "/v1/events?limit=1").await;

    let results: Vec<Resp> = futures::stream::iter(0..1000u32)
        .map(|i| {
            let (app, other, path, key) = (app, &other, &path, &app.admin_key);
            async move {
                let target = if i.is_multiple_of(2) { app } else { other };
                get_as(target, key, path).await
            }
        })
        .buffer_unordered(250)
        .collect()
        .await;
    let mut read = 0;
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.body);
        read += statements(r);
    }
    assert_eq!(read, 1, "one database read for 1,000 readers in two processes");
    // The process that did not read took the other's fill from Redis,
    // waiting for the lease holder or finding the fill already there.
    let shared_hits = shared_metric(app, "hit").await + shared_metric(&other, "hit").await;
    assert!(shared_hits >= 1, "the process that did not read took the other's fill");

    // A capture on one process is seen by the other and never undone.
    let r = app.post(&format!("{path}/capture"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = get_as(&other, &app.admin_key, &path).await;
        if r.body["status"] == "succeeded" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the capture never reached the other process"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..50 {
        other.settle.cache().flush_all();
        let r = get_as(&other, &app.admin_key, &path).await;
        assert_eq!(r.body["status"], "succeeded", "an older state came back: {}", r.body);
    }
    assert!(shared_metric(app, "invalidation").await >= 1);
    other.finish().await;
}

#[test]
fn redis_stopping_hanging_or_dying_never_fails_a_request_sqlite() {
    crate::support::runtime().block_on(redis_faults(Backend::Sqlite));
}

#[test]
fn redis_stopping_hanging_or_dying_never_fails_a_request_postgres() {
    if crate::support::postgres_available() {
        crate::support::runtime().block_on(redis_faults(Backend::Postgres));
    }
}

/// Reads of `paths` (and payments between two accounts) from both apps
/// until told to stop; counts answers other than 200.
fn load(apps: [Arc<TestApp>; 2], key: String, paths: Vec<String>, pay: (String, String)) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let served = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (apps, key, paths, pay) = (apps.clone(), key.clone(), paths.clone(), pay.clone());
        let (stop, failures, served) = (Arc::clone(&stop), Arc::clone(&failures), Arc::clone(&served));
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let app = &apps[(i + worker) % 2];
                let r = if i % 5 == 4 {
                    app.call(
                        Method::POST,
                        "/v1/payments",
                        Some(&key),
                        Some(json!({"amount": 1, "currency": "usd", "source": pay.0, "destination": pay.1})),
                    )
                    .await
                } else {
                    if i.is_multiple_of(7) {
                        app.settle.cache().flush_all();
                    }
                    get_as(app, &key, &paths[i % paths.len()]).await
                };
                if r.status != 200 {
                    eprintln!("load: {} {}", r.status, r.body);
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                served.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    Load {
        stop,
        failures,
        served,
        tasks,
    }
}

struct Load {
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
    served: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        (
            self.served.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn redis_faults(backend: Backend) {
    if !redis_available() {
        return;
    }
    let port = free_port();
    let redis = PrivateRedis::start(port);
    let app = Arc::new(
        TestApp::spawn_config(
            TestDb::create(backend).await,
            Arc::new(SystemClock),
            config(redis.url(), 50),
        )
        .await,
    );
    app.listening().await;
    let other = Arc::new(second(&app, config(redis.url(), 50)).await);
    let key = app.admin_key.clone();
    let payment = held_payment(&app).await;
    let path = format!("/v1/payments/{payment}");
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop2", "usd", false).await;

    // Filled by one, served from Redis to the other.
    assert_eq!(get_as(&app, &key, &path).await.status, 200);
    assert_eq!(get_as(&other, &key, &path).await.status, 200);
    assert!(shared_metric(&other, "hit").await >= 1);

    let load = load(
        [Arc::clone(&app), Arc::clone(&other)],
        key.clone(),
        vec![
            path.clone(),
            format!("/v1/accounts/{bank}"),
            format!("/v1/accounts/{shop}"),
        ],
        (bank.clone(), shop.clone()),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Redis hangs: the capture's invalidation there cannot be made.
    redis.signal("STOP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = app.post(&format!("{path}/capture"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    until("the other process seeing the capture", async || {
        get_as(&other, &key, &path).await.body["status"] == "succeeded"
    })
    .await;
    assert!(shared_metric(&other, "skipped").await + shared_metric(&other, "error").await >= 1);

    // Redis answers again, still holding the payment as it was: a new epoch
    // first, so the old entry is never served.
    redis.signal("CONT");
    until("a new epoch", async || {
        shared_metric(&app, "epoch").await >= 1 && shared_metric(&other, "epoch").await >= 1
    })
    .await;
    for target in [&app, &other] {
        for _ in 0..20 {
            target.settle.cache().flush_all();
            let r = get_as(target, &key, &path).await;
            assert_eq!(
                r.body["status"], "succeeded",
                "an old state came back from Redis: {}",
                r.body
            );
        }
    }

    // Redis dies and comes back empty, under load: used again by itself.
    redis.signal("KILL");
    drop(redis);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let redis = PrivateRedis::start(port);
    let before = shared_metric(&other, "hit").await + shared_metric(&app, "hit").await;
    until("shared hits after the restart", async || {
        shared_metric(&other, "hit").await + shared_metric(&app, "hit").await > before
    })
    .await;

    let (served, failed) = load.finish().await;
    assert!(served > 50, "the load ran ({served} requests)");
    assert_eq!(failed, 0, "{failed} of {served} requests failed while Redis was down");
    let r = get_as(&other, &key, &path).await;
    assert_eq!(r.body["status"], "succeeded");
    drop(redis);
    let other = Arc::try_unwrap(other).ok().expect("the load is over");
    other.finish().await;
    let app = Arc::try_unwrap(app).ok().expect("the load is over");
    app.finish().await;
}
