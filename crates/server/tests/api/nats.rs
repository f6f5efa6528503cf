//! NATS JetStream going away: Settle talks to NATS through a TCP proxy of
//! this test's own (the NATS server is shared by the machine, so it is
//! never stopped). While the proxy is cut, requests still succeed and
//! events wait in the outbox; when it lets traffic through again, they
//! drain to the consumer, every one of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use settle::config::{Config, QueueBackend};
use settle_core::clock::SystemClock;
use sqlx::Row;

use crate::support::{
    Proxy, TestApp, TestDb, both, delete_nats_streams, eventually, nats_available, nats_prefix, nats_url,
};

async fn count(db: &TestDb, sql: &str) -> i64 {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT CAST(({sql}) AS BIGINT) AS n")))
        .fetch_one(&db.reads)
        .await
        .unwrap();
    row.try_get("n").unwrap()
}

const UNCONSUMED: &str = "SELECT COUNT(*) FROM events e WHERE NOT EXISTS \
     (SELECT 1 FROM processed_messages m WHERE m.consumer = 'fanout' AND m.message_id = e.id)";
const RELAY_PENDING: &str = "SELECT COUNT(*) FROM jobs WHERE consumer = 'relay'";

both!(nats_outage_waits_in_the_outbox, nats_outage_waits_in_the_outbox_case);
async fn nats_outage_waits_in_the_outbox_case(app: &TestApp) {
    if !nats_available() {
        return;
    }
    let upstream: SocketAddr = nats_url().trim_start_matches("nats://").parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let prefix = nats_prefix();
    let mut config = Config::default();
    config.queue.backend = QueueBackend::Nats;
    config.queue.nats_url = format!("nats://{}", proxy.addr);
    config.queue.nats_prefix = prefix.clone();
    config.queue.poll = Duration::from_millis(10);
    config.queue.lease = Duration::from_secs(2);
    let db = TestDb::create(app.db.backend).await;
    let n = TestApp::spawn_config(db, Arc::new(SystemClock), config).await;

    let bank = n.account("bank", "usd", true).await;
    let shop = n.account("shop", "usd", false).await;
    let pay = |i: i64| json!({"amount": 100 + i, "currency": "usd", "source": bank, "destination": shop});
    for i in 0..20 {
        assert_eq!(n.post("/v1/payments", pay(i)).await.status, 200);
    }
    eventually(Duration::from_secs(30), "events through NATS", || async {
        (count(&n.db, UNCONSUMED).await == 0).then_some(())
    })
    .await;
    let q = n.get("/v1/queue").await.body;
    assert_eq!(q["backend"], "nats", "{q}");

    proxy.cut();
    let consumed_before = count(&n.db, "SELECT COUNT(*) FROM processed_messages").await;
    for i in 0..30 {
        let r = n.post("/v1/payments", pay(i)).await;
        assert_eq!(r.status, 200, "requests succeed while NATS is away: {}", r.body);
    }
    // Every new event waits in the outbox; nothing reaches the consumer.
    let waiting = count(&n.db, RELAY_PENDING).await;
    assert!(waiting >= 60, "{waiting} events in the outbox");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count(&n.db, "SELECT COUNT(*) FROM processed_messages").await,
        consumed_before
    );
    let q = n.get("/v1/queue").await;
    assert_eq!(q.status, 200, "{}", q.body);
    assert!(q.body["relay"]["pending"].as_u64() >= Some(60), "{}", q.body);

    proxy.restore();
    eventually(Duration::from_secs(120), "the outbox to drain", || async {
        let left = count(&n.db, UNCONSUMED).await + count(&n.db, RELAY_PENDING).await;
        (left == 0).then_some(())
    })
    .await;
    assert_eq!(count(&n.db, "SELECT COUNT(*) FROM events").await, 2 + 50 * 2);
    n.finish().await;
    drop(proxy);
    delete_nats_streams(&prefix).await;
}
