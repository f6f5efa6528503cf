//! Crash safety from the outside: the real `settle` binary is SIGKILLed at
//! random moments while payments with idempotency keys are in flight, then
//! restarted; every request is retried with its key until it gets a final
//! answer. Each key must produce exactly one payment and the ledger must
//! stay consistent. Also: two processes on one PostgreSQL, the same keys sent
//! to both at once, one effect each.
//!
//! Every committed change must have exactly one event, and every event must
//! reach the fan-out consumer, on the embedded queue (both databases) and
//! through NATS JetStream.
//!
//! `SETTLE_CRASH_ROUNDS` sets the number of kill rounds (default 8).
//! Webhook deliveries under the same kills are in `webhooks`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};
use settle_store::{Cursor, ListQuery, Store};

use sqlx::Row;

use crate::support::{
    Backend, Server, create_pg_database, delete_nats_streams, drop_pg_database, free_port, nats_available, nats_prefix,
    nats_url, postgres_available, temp_dir, wait_ready,
};

mod webhooks;

const BIN: &str = env!("CARGO_BIN_EXE_settle");
const PER_ROUND: usize = 150;

/// Where the processes keep their data: a directory (SQLite) or a URL.
pub(crate) struct Target {
    dir: PathBuf,
    database_url: Option<String>,
    pg_name: Option<String>,
    /// The NATS stream prefix, when NATS JetStream is the queue.
    nats: Option<String>,
    /// More settings for the processes.
    pub(crate) env: Vec<(&'static str, String)>,
}

impl Target {
    pub(crate) async fn new(backend: Backend) -> Target {
        let dir = temp_dir("settle_crash");
        match backend {
            Backend::Sqlite => Target {
                dir,
                database_url: None,
                pg_name: None,
                nats: None,
                env: Vec::new(),
            },
            Backend::Postgres => {
                let name = format!("settle_crash_{:x}", rand::random::<u32>());
                let url = create_pg_database(&name).await;
                Target {
                    dir,
                    database_url: Some(url),
                    pg_name: Some(name),
                    nats: None,
                    env: Vec::new(),
                }
            }
        }
    }

    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&self.dir)
            .env_remove("DATABASE_URL")
            .env_remove("NATS_URL")
            .env("SETTLE_QUEUE", "embedded")
            .env("SETTLE_DATA_DIR", self.dir.join("data"))
            .env("SETTLE_IDEMPOTENCY_LOCK_TIMEOUT_MS", "300")
            .env("SETTLE_QUEUE_LEASE", "2s")
            .env("SETTLE_QUEUE_POLL_MS", "10")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(url) = &self.database_url {
            cmd.env("DATABASE_URL", url);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(prefix) = &self.nats {
            cmd.env("SETTLE_QUEUE", "nats")
                .env("NATS_URL", nats_url())
                .env("SETTLE_NATS_PREFIX", prefix);
        }
        cmd
    }

    async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.dir.join("data").join("settle.db").display()),
        };
        sqlx::AnyPool::connect(&url).await.unwrap()
    }

    pub(crate) fn admin_key(&self) -> String {
        let out = self
            .command()
            .args(["keys", "create", "--role", "admin"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub(crate) async fn start(&self) -> (Server, String) {
        let port = free_port();
        let child = self
            .command()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .spawn()
            .unwrap();
        let server = Server(child);
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&base).await;
        (server, base)
    }

    async fn store(&self) -> Arc<dyn Store> {
        match &self.database_url {
            Some(url) => Arc::new(settle_store_postgres::open(url, &Default::default()).await.unwrap()),
            None => Arc::new(
                settle_store_sqlite::open(&self.dir.join("data"), &Default::default())
                    .await
                    .unwrap(),
            ),
        }
    }

    pub(crate) async fn remove(self) {
        if let Some(name) = &self.pg_name {
            drop_pg_database(name).await;
        }
        if let Some(prefix) = &self.nats {
            delete_nats_streams(prefix).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A request that has not yet had a final answer.
#[derive(Clone)]
struct Pending {
    key: String,
    body: Value,
}

enum Answer {
    Final(Value),
    /// Busy (409 in use, 503): ask again soon.
    Retry,
    /// No answer at all: the process is gone.
    Down,
}

async fn attempt(http: &reqwest::Client, base: &str, secret: &str, p: &Pending) -> Answer {
    let sent = http
        .post(format!("{base}/v1/payments"))
        .bearer_auth(secret)
        .header("idempotency-key", &p.key)
        .json(&p.body)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let Ok(res) = sent else { return Answer::Down };
    let status = res.status().as_u16();
    let Ok(body) = res.json::<Value>().await else {
        return Answer::Down;
    };
    match status {
        200 => Answer::Final(body),
        409 | 503 => Answer::Retry,
        other => panic!("request {} got a final {other}: {body}", p.key),
    }
}

async fn create(http: &reqwest::Client, base: &str, secret: &str, body: Value) -> String {
    let res = http
        .post(format!("{base}/v1/accounts"))
        .bearer_auth(secret)
        .json(&body)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn scalar(pool: &sqlx::AnyPool, sql: &str) -> i64 {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT CAST(({sql}) AS BIGINT) AS n")))
        .fetch_one(pool)
        .await
        .unwrap();
    row.try_get("n").unwrap()
}

/// Every committed change has exactly one event of each type it writes,
/// and every event reached the fan-out consumer (waiting for the workers
/// of the last process to drain what the killed ones left).
async fn check_events(target: &Target, payments: usize, accounts: usize) {
    let pool = target.pool().await;
    assert_eq!(scalar(&pool, "SELECT COUNT(*) FROM payments").await, payments as i64);
    let per_type = |t: &str| format!("SELECT COUNT(*) FROM events WHERE type = '{t}'");
    assert_eq!(scalar(&pool, &per_type("payment.created")).await, payments as i64);
    assert_eq!(scalar(&pool, &per_type("payment.succeeded")).await, payments as i64);
    assert_eq!(scalar(&pool, &per_type("account.created")).await, accounts as i64);
    let duplicated = "SELECT COUNT(*) FROM (SELECT object_id, type FROM events GROUP BY object_id, type \
                      HAVING COUNT(*) > 1) AS d";
    assert_eq!(scalar(&pool, duplicated).await, 0, "an object has a duplicated event");
    let missing = "SELECT COUNT(*) FROM payments p WHERE NOT EXISTS \
                   (SELECT 1 FROM events e WHERE e.object_id = p.id AND e.type = 'payment.succeeded')";
    assert_eq!(scalar(&pool, missing).await, 0, "a payment lacks its event");
    let unconsumed = "SELECT COUNT(*) FROM events e WHERE NOT EXISTS \
                      (SELECT 1 FROM processed_messages m WHERE m.consumer = 'fanout' AND m.message_id = e.id)";
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = scalar(&pool, unconsumed).await;
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} events never reached the consumer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.close().await;
}

async fn kill_and_retry(backend: Backend, nats: bool) {
    let rounds: usize = std::env::var("SETTLE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let mut target = Target::new(backend).await;
    if nats {
        target.nats = Some(nats_prefix());
    }
    let secret = target.admin_key();
    let http = crate::support::http_client();
    let (mut server, mut base) = target.start().await;
    let bank = create(
        &http,
        &base,
        &secret,
        json!({"name": "bank", "currency": "usd", "allow_negative": true}),
    )
    .await;
    let mut shops = Vec::new();
    for i in 0..3 {
        shops.push(
            create(
                &http,
                &base,
                &secret,
                json!({"name": format!("shop{i}"), "currency": "usd"}),
            )
            .await,
        );
    }

    let mut pending: Vec<Pending> = Vec::new();
    let mut answers: HashMap<String, Value> = HashMap::new();
    let mut rng = rand::rng();
    for round in 0..rounds {
        for i in 0..PER_ROUND {
            let key = format!("r{round}-{i}");
            let body = json!({
                "amount": rng.random_range(1..10_000),
                "currency": "usd",
                "source": bank,
                "destination": shops[rng.random_range(0..shops.len())],
                "metadata": {"idempotency_key": key},
            });
            pending.push(Pending { key, body });
        }
        let tasks: Vec<_> = pending
            .iter()
            .cloned()
            .map(|p| {
                let (http, base, secret) = (http.clone(), base.clone(), secret.clone());
                // Keep asking until answered or the process dies, so the kill
                // lands while requests are being worked on.
                tokio::spawn(async move {
                    loop {
                        match attempt(&http, &base, &secret, &p).await {
                            Answer::Retry => tokio::time::sleep(Duration::from_millis(10)).await,
                            answer => return (p, answer),
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(1..600))).await;
        server.0.kill().unwrap();
        let _ = server.0.wait();
        pending.clear();
        for t in tasks {
            match t.await.unwrap() {
                (p, Answer::Final(body)) => {
                    answers.insert(p.key, body);
                }
                (p, _) => pending.push(p),
            }
        }
        (server, base) = target.start().await;
    }

    // Retry everything still unanswered until it is final.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} requests never got a final answer",
            pending.len()
        );
        let mut still = Vec::new();
        for p in pending {
            match attempt(&http, &base, &secret, &p).await {
                Answer::Final(body) => {
                    answers.insert(p.key, body);
                }
                Answer::Retry | Answer::Down => still.push(p),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    check_events(&target, rounds * PER_ROUND, 1 + shops.len()).await;
    drop(server);

    let total = rounds * PER_ROUND;
    assert_eq!(answers.len(), total);
    let store = target.store().await;
    let bank_id = settle_domain::ids::AccountId::parse(&bank).unwrap();
    let mut q = ListQuery {
        filter: Some(settle_store::records::PaymentFilter::Source(bank_id)),
        ..ListQuery::first(100)
    };
    let mut per_key: HashMap<String, Vec<String>> = HashMap::new();
    loop {
        let page = store.list_payments(&q).await.unwrap();
        q.cursor = page.data.last().map(|p| Cursor::StartingAfter(p.id.uuid()));
        for p in &page.data {
            let json = serde_json::to_value(p).unwrap();
            if let Some(key) = json["metadata"]["idempotency_key"].as_str() {
                per_key.entry(key.to_owned()).or_default().push(p.id.to_string());
            }
        }
        if !page.has_more {
            break;
        }
    }
    assert_eq!(per_key.len(), total, "every key produced a payment");
    for (key, ids) in &per_key {
        assert_eq!(ids.len(), 1, "key {key} produced {} payments", ids.len());
        assert_eq!(
            answers[key]["id"].as_str(),
            Some(ids[0].as_str()),
            "the answer for {key} names its payment"
        );
    }
    let mut sum = 0;
    for id in std::iter::once(&bank).chain(&shops) {
        let id = settle_domain::ids::AccountId::parse(id).unwrap();
        let account = store.account(id).await.unwrap().unwrap();
        assert_eq!(
            store.entries_sum(id).await.unwrap(),
            account.balance,
            "{id}: balance is the sum of its entries"
        );
        sum += account.balance;
    }
    assert_eq!(sum, 0);
    drop(store);
    target.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_payments_sqlite() {
    kill_and_retry(Backend::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_payments_postgres() {
    if postgres_available() {
        kill_and_retry(Backend::Postgres, false).await;
    }
}

/// The scaled-out shape: PostgreSQL plus NATS JetStream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_payments_postgres_nats() {
    if postgres_available() && nats_available() {
        kill_and_retry(Backend::Postgres, true).await;
    }
}

/// Two processes share one PostgreSQL; every key is sent to both at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_one_effect_postgres() {
    if !postgres_available() {
        return;
    }
    let target = Target::new(Backend::Postgres).await;
    let secret = target.admin_key();
    let http = crate::support::http_client();
    let (a, base_a) = target.start().await;
    let (b, base_b) = target.start().await;
    let bank = create(
        &http,
        &base_a,
        &secret,
        json!({"name": "bank", "currency": "usd", "allow_negative": true}),
    )
    .await;
    let shop = create(&http, &base_b, &secret, json!({"name": "shop", "currency": "usd"})).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let p = Pending {
            key: format!("both-{i}"),
            body: json!({"amount": 10, "currency": "usd", "source": bank, "destination": shop}),
        };
        for base in [&base_a, &base_b] {
            let (http, base, secret, p) = (http.clone(), base.clone(), secret.clone(), p.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    if let Answer::Final(body) = attempt(&http, &base, &secret, &p).await {
                        return (p.key, body["id"].as_str().unwrap().to_owned());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
    }
    let mut ids: HashMap<String, String> = HashMap::new();
    for t in tasks {
        let (key, id) = t.await.unwrap();
        if let Some(previous) = ids.insert(key.clone(), id.clone()) {
            assert_eq!(previous, id, "both processes answered {key} with the same payment");
        }
    }
    let shop_state: Value = http
        .get(format!("{base_a}/v1/accounts/{shop}"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shop_state["balance"], 400, "40 keys, 40 payments of 10");
    drop((a, b));
    target.remove().await;
}
