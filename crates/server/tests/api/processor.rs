//! Payments from processor-backed accounts, against `settle processor-sim`:
//! with half the calls failing and latency spikes past the client timeout,
//! every payment still ends `succeeded` or `failed` exactly once, matching
//! what the processor recorded under the payment's own charge key, which
//! took effect once; the breaker opens while the processor is down and
//! closes after. And two `settle` processes on one PostgreSQL share the
//! work without ever calling for the same payment at the same time.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use settle::config::Config;
use settle_core::clock::SystemClock;
use sqlx::Row;

use crate::support::{
    Backend, Server, Sim, TestApp, TestDb, both, create_pg_database, drop_pg_database, eventually, free_port,
    postgres_available, temp_dir, wait_ready,
};

async fn get_json(http: &reqwest::Client, url: &str, key: &str) -> Value {
    http.get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post_json(http: &reqwest::Client, url: &str, key: &str, body: Value) -> Value {
    let r = http.post(url).bearer_auth(key).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Every payment from `source`, once none is still `processing`.
async fn concluded(http: &reqwest::Client, base: &str, key: &str, source: &str, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(90), "every payment concluded", || async {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{base}/v1/payments?limit=100&source={source}");
            if let Some(a) = &after {
                url.push_str(&format!("&starting_after={a}"));
            }
            let page = get_json(http, &url, key).await;
            let data = page["data"].as_array().unwrap().clone();
            after = data.last().map(|p| p["id"].as_str().unwrap().to_owned());
            all.extend(data);
            if page["has_more"] != true {
                break;
            }
        }
        let open = all.iter().filter(|p| p["status"] == "processing").count();
        (all.len() == n && open == 0).then_some(all)
    })
    .await
}

/// Each payment's final status is what the processor recorded for its
/// charge key, which took effect exactly once; nothing was called twice at
/// the same time.
async fn check_against_processor(sim: &Sim, payments: &[Value]) -> (i64, usize) {
    let stats = sim.stats().await;
    assert_eq!(
        stats["concurrent_duplicates"], 0,
        "a charge was in flight twice at once"
    );
    let charges = stats["charges"].as_object().unwrap();
    let mut succeeded = 0;
    let mut declined = 0;
    for p in payments {
        let id = p["id"].as_str().unwrap();
        let charge = &charges[&format!("settle_charge_{id}")];
        assert_eq!(charge["effects"], 1, "{id}");
        assert_eq!(charge["amount"], p["amount"], "{id}");
        match (p["status"].as_str().unwrap(), charge["status"].as_str().unwrap()) {
            ("succeeded", "succeeded") => succeeded += p["amount"].as_i64().unwrap(),
            ("failed", "declined") => declined += 1,
            (ours, theirs) => panic!("{id}: settle says {ours}, the processor says {theirs}"),
        }
    }
    assert_eq!(charges.len(), payments.len(), "one charge key per payment");
    (succeeded, declined)
}

both!(
    processor_settles_each_payment_once,
    processor_settles_each_payment_once_case
);
async fn processor_settles_each_payment_once_case(app: &TestApp) {
    let sim = Sim::start(&[
        "--latency-ms",
        "5",
        "--failure-rate",
        "1.0",
        "--decline-rate",
        "0.2",
        "--spike-rate",
        "0.1",
        "--spike-ms",
        "400",
        "--seed",
        "7",
    ]);
    let mut config = Config::default();
    config.queue.processor_url = Some(sim.url.clone());
    config.queue.processor_timeout = Duration::from_millis(200);
    config.queue.breaker_failures = 3;
    config.queue.breaker_cooldown = Duration::from_millis(300);
    config.queue.retry_base = Duration::from_millis(20);
    config.queue.retry_max = Duration::from_millis(300);
    config.queue.poll = Duration::from_millis(10);
    config.queue.max_deliveries = 10_000;
    let db = TestDb::create(app.db.backend).await;
    let p = TestApp::spawn_config(db, Arc::new(SystemClock), config).await;

    let r = p
        .post(
            "/v1/accounts",
            json!({"name": "card", "currency": "usd", "processor": true, "allow_negative": true}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.body["processor"].clone()), (200, json!(true)));
    let card = r.id();
    let r = p
        .post(
            "/v1/accounts",
            json!({"name": "no", "currency": "usd", "processor": true}),
        )
        .await;
    r.assert_error(400, "invalid_request_error", "parameter_invalid");
    let shop = p.account("shop", "usd", false).await;
    let r = p
        .post(
            "/v1/payments",
            json!({"amount": 5, "currency": "usd", "source": card, "destination": shop, "capture": false}),
        )
        .await;
    r.assert_error(400, "invalid_request_error", "parameter_invalid");

    let n = 60;
    for i in 0..n {
        let r = p
            .post(
                "/v1/payments",
                json!({"amount": 100 + i, "currency": "usd", "source": card, "destination": shop}),
            )
            .await;
        assert_eq!(
            (r.status.as_u16(), r.body["status"].as_str()),
            (200, Some("processing"))
        );
    }
    // The processor is down: the breaker opens and work waits.
    eventually(Duration::from_secs(30), "the breaker to open", || async {
        let q = p.get("/v1/queue").await;
        (q.body["processor"]["breaker_opened"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    let balance = p.get(&format!("/v1/accounts/{shop}")).await.body["balance"].clone();
    assert_eq!(balance, 0, "nothing moved while the processor was down");

    sim.set_failure_rate(0.5).await;
    let payments = concluded(&p.client, &p.url(""), &p.admin_key, &card, n as usize).await;
    let (succeeded, declined) = check_against_processor(&sim, &payments).await;
    assert!(declined > 0 && succeeded > 0);

    let q = p.get("/v1/queue").await.body;
    assert!(q["processor"]["breaker_closed"].as_u64() >= Some(1), "{q}");
    assert_eq!(q["processor"]["breaker"], "closed", "{q}");
    assert_eq!(p.get(&format!("/v1/accounts/{shop}")).await.body["balance"], succeeded);
    assert_eq!(p.get(&format!("/v1/accounts/{card}")).await.body["balance"], -succeeded);

    // Each payment has its three events, once each, in order.
    for pay in &payments {
        let id = pay["id"].as_str().unwrap();
        let events = p.get(&format!("/v1/events?object={id}")).await.body;
        let mut seen: Vec<(i64, String)> = events["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["sequence"].as_i64().unwrap(), e["type"].as_str().unwrap().to_owned()))
            .collect();
        seen.sort();
        let last = format!("payment.{}", pay["status"].as_str().unwrap());
        assert_eq!(
            seen,
            vec![
                (1, "payment.created".to_owned()),
                (2, "payment.processing".to_owned()),
                (3, last)
            ],
            "{id}"
        );
    }
    p.finish().await;
}

fn serve(dir: &std::path::Path, url: &str, sim: &str) -> (Server, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_settle"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env_remove("NATS_URL")
        .env("SETTLE_QUEUE", "embedded")
        .env("DATABASE_URL", url)
        .env("SETTLE_PROCESSOR_URL", sim)
        .env("SETTLE_PROCESSOR_CONCURRENCY", "8")
        .env("SETTLE_PROCESSOR_RETRY_BASE_MS", "20")
        .env("SETTLE_PROCESSOR_RETRY_MAX_MS", "200")
        .env("SETTLE_PROCESSOR_BREAKER_FAILURES", "1000")
        .env("SETTLE_QUEUE_POLL_MS", "10")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Server(child), format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_the_processor_work() {
    if !postgres_available() {
        return;
    }
    let name = format!("settle_share_{:x}", rand::random::<u32>());
    let url = create_pg_database(&name).await;
    let dir = temp_dir("settle_share");
    let sim = Sim::start(&["--latency-ms", "25", "--failure-rate", "0.3", "--seed", "11"]);
    let (a, base_a) = serve(&dir, &url, &sim.url);
    let (b, base_b) = serve(&dir, &url, &sim.url);
    wait_ready(&base_a).await;
    wait_ready(&base_b).await;
    let out = Command::new(env!("CARGO_BIN_EXE_settle"))
        .args(["keys", "create", "--role", "admin"])
        .env("DATABASE_URL", &url)
        .current_dir(&dir)
        .output()
        .unwrap();
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let http = crate::support::http_client();
    let card = post_json(
        &http,
        &format!("{base_a}/v1/accounts"),
        &key,
        json!({"name": "card", "currency": "usd", "processor": true, "allow_negative": true}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shop = post_json(
        &http,
        &format!("{base_b}/v1/accounts"),
        &key,
        json!({"name": "shop", "currency": "usd"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let n = 200;
    for i in 0..n {
        let base = if i % 2 == 0 { &base_a } else { &base_b };
        post_json(
            &http,
            &format!("{base}/v1/payments"),
            &key,
            json!({"amount": 10 + i, "currency": "usd", "source": card, "destination": shop}),
        )
        .await;
    }
    let payments = concluded(&http, &base_a, &key, &card, n).await;
    let (succeeded, _) = check_against_processor(&sim, &payments).await;
    let stats = sim.stats().await;
    let agents: HashMap<String, u64> = serde_json::from_value(stats["agents"].clone()).unwrap();
    assert_eq!(agents.len(), 2, "both processes called the processor: {agents:?}");
    let shop_balance = get_json(&http, &format!("{base_b}/v1/accounts/{shop}"), &key).await["balance"].clone();
    assert_eq!(shop_balance, succeeded);

    // Each processor job was processed once in effect.
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let row = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM processed_messages WHERE consumer = 'processor'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.try_get::<i64, _>("n").unwrap(), n as i64);
    pool.close().await;
    drop((a, b));
    drop_pg_database(&name).await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Backend::Postgres;
}

/// A charge that keeps failing goes to the dead letters after its bounded
/// deliveries (visible in `/v1/queue`), and `settle queue replay` brings
/// it back to finish once the processor recovers; on the embedded queue
/// and on NATS JetStream (where the consumer moves it to the dead stream).
async fn dead_letters_replay(app: &TestApp, nats: Option<String>) {
    let sim = Sim::start(&["--latency-ms", "1", "--failure-rate", "1.0"]);
    let mut config = Config::default();
    config.queue.processor_url = Some(sim.url.clone());
    config.queue.breaker_failures = 1_000;
    config.queue.retry_base = Duration::from_millis(10);
    config.queue.retry_max = Duration::from_millis(20);
    config.queue.poll = Duration::from_millis(10);
    config.queue.max_deliveries = 3;
    if let Some(prefix) = &nats {
        config.queue.backend = settle::config::QueueBackend::Nats;
        config.queue.nats_url = crate::support::nats_url();
        config.queue.nats_prefix = prefix.clone();
    }
    let db = TestDb::create(app.db.backend).await;
    let p = TestApp::spawn_config(db, Arc::new(SystemClock), config).await;
    let card = p
        .post(
            "/v1/accounts",
            json!({"name": "card", "currency": "usd", "processor": true, "allow_negative": true}),
        )
        .await
        .id();
    let shop = p.account("shop", "usd", false).await;
    let pay = p
        .post(
            "/v1/payments",
            json!({"amount": 700, "currency": "usd", "source": card, "destination": shop}),
        )
        .await
        .id();
    eventually(Duration::from_secs(30), "a dead letter", || async {
        let q = p.get("/v1/queue").await.body;
        let dead: u64 = q["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["consumer"] == "processor")
            .map(|c| c["dead_letters"].as_u64().unwrap())
            .sum();
        (dead == 1).then_some(())
    })
    .await;
    assert_eq!(sim.stats().await["calls"], 3, "three deliveries, then it stopped");
    assert_eq!(p.get(&format!("/v1/payments/{pay}")).await.body["status"], "processing");

    sim.set_failure_rate(0.0).await;
    let mut replay = Command::new(env!("CARGO_BIN_EXE_settle"));
    replay
        .args(["queue", "replay", "--consumer", "processor"])
        .env_remove("NATS_URL")
        .env("SETTLE_QUEUE", "embedded");
    match (&p.db.url, p.db.sqlite_dir()) {
        (Some(url), _) => replay.env("DATABASE_URL", url),
        (None, Some(dir)) => replay.env("SETTLE_DATA_DIR", dir).env_remove("DATABASE_URL"),
        _ => unreachable!(),
    };
    if let Some(prefix) = &nats {
        replay
            .env("SETTLE_QUEUE", "nats")
            .env("NATS_URL", crate::support::nats_url())
            .env("SETTLE_NATS_PREFIX", prefix);
    }
    let out = replay.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("replayed 1 dead letters"));
    eventually(Duration::from_secs(30), "the replayed charge to settle", || async {
        let status = p.get(&format!("/v1/payments/{pay}")).await.body["status"].clone();
        (status == "succeeded").then_some(())
    })
    .await;
    p.finish().await;
    if let Some(prefix) = &nats {
        crate::support::delete_nats_streams(prefix).await;
    }
}

both!(dead_letters_embedded, dead_letters_embedded_case);
async fn dead_letters_embedded_case(app: &TestApp) {
    dead_letters_replay(app, None).await;
}

both!(dead_letters_nats, dead_letters_nats_case);
async fn dead_letters_nats_case(app: &TestApp) {
    if crate::support::nats_available() {
        dead_letters_replay(app, Some(crate::support::nats_prefix())).await;
    }
}
