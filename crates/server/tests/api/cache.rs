//! The read cache seen from outside: reads of single objects are served
//! from memory (no statement), every committed change drops what it
//! changed before the writer hears back (balances included), a thousand
//! concurrent readers of a cold object make one database read, conditional
//! GETs answer 304, a stale entry is served (and says so) only while the
//! database cannot answer, and a change committed by another process
//! reaches this one's cache.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use settle_core::clock::SystemClock;

use crate::support::{Backend, Resp, TestApp, TestDb, both, postgres_available, runtime};

fn header(r: &Resp, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} in {:?}", r.headers))
        .to_owned()
}

fn statements(r: &Resp) -> u64 {
    header(r, "settle-statements").parse().unwrap()
}

async fn get_ok(app: &TestApp, path: &str) -> Resp {
    let r = app.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r
}

/// A held payment of 500 from a funded account to a shop: (payment,
/// source, destination).
pub(crate) async fn held_payment(app: &TestApp) -> (String, String, String) {
    app.listening().await;
    let alice = app.account("alice", "usd", false).await;
    app.fund(&alice, "usd", 1_000).await;
    let shop = app.account("shop", "usd", false).await;
    let r = app
        .post(
            "/v1/payments",
            json!({"amount": 500, "currency": "usd", "source": alice, "destination": shop, "capture": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (r.id(), alice, shop)
}

both!(reads_hit_and_writes_invalidate, reads_hit_and_writes_invalidate_case);
async fn reads_hit_and_writes_invalidate_case(app: &TestApp) {
    let (payment, alice, shop) = held_payment(app).await;
    let path = format!("/v1/payments/{payment}");
    let first = get_ok(app, &path).await;
    assert_eq!(header(&first, "settle-cache"), "miss");
    let second = get_ok(app, &path).await;
    assert_eq!(header(&second, "settle-cache"), "hit");
    assert_eq!(statements(&second), 0, "a hit reads nothing");
    assert_eq!(first.body, second.body);
    assert_eq!(header(&first, "etag"), header(&second, "etag"));

    // A capture drops the payment and both accounts before it answers.
    let account = format!("/v1/accounts/{alice}");
    let before = get_ok(app, &account).await;
    assert_eq!(header(&get_ok(app, &account).await, "settle-cache"), "hit");
    let r = app.post(&format!("{path}/capture"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = get_ok(app, &path).await;
    assert_eq!(after.body["status"], "succeeded");
    assert_eq!(after.body, r.body, "the read shows what the write returned");
    let alice_after = get_ok(app, &account).await;
    assert_eq!(alice_after.body["balance"], 500);
    assert_eq!(
        alice_after.body["version"], before.body["version"],
        "payments leave the version"
    );
    assert_ne!(
        header(&alice_after, "etag"),
        header(&before, "etag"),
        "the balance moved the ETag"
    );
    let shop_now = get_ok(app, &format!("/v1/accounts/{shop}")).await;
    assert_eq!(shop_now.body["balance"], 500);

    // A refund reaches the payment and the accounts too.
    let r = app
        .post("/v1/refunds", json!({"payment": payment, "amount": 100}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let refund = r.id();
    assert_eq!(get_ok(app, &path).await.body["amount_refunded"], 100);
    assert_eq!(get_ok(app, &account).await.body["balance"], 600);
    let refund_path = format!("/v1/refunds/{refund}");
    get_ok(app, &refund_path).await;
    assert_eq!(header(&get_ok(app, &refund_path).await, "settle-cache"), "hit");

    // Metadata edits, deletes and endpoint edits drop what they change.
    let customer = app.post("/v1/customers", json!({"name": "Ann"})).await.id();
    let customer_path = format!("/v1/customers/{customer}");
    get_ok(app, &customer_path).await;
    assert_eq!(header(&get_ok(app, &customer_path).await, "settle-cache"), "hit");
    let r = app
        .call(
            Method::PATCH,
            &customer_path,
            Some(&app.admin_key),
            Some(json!({"name": "Bea"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get_ok(app, &customer_path).await.body["name"], "Bea");
    let r = app
        .call(Method::DELETE, &customer_path, Some(&app.admin_key), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.get(&customer_path)
        .await
        .assert_error(404, "invalid_request_error", "resource_missing");

    let endpoint = app
        .post(
            "/v1/webhook_endpoints",
            json!({"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}),
        )
        .await;
    assert_eq!(endpoint.status, 200, "{}", endpoint.body);
    let endpoint_path = format!("/v1/webhook_endpoints/{}", endpoint.id());
    get_ok(app, &endpoint_path).await;
    assert_eq!(header(&get_ok(app, &endpoint_path).await, "settle-cache"), "hit");
    let r = app
        .call(
            Method::PATCH,
            &endpoint_path,
            Some(&app.admin_key),
            Some(json!({"description": "orders"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get_ok(app, &endpoint_path).await.body["description"], "orders");

    // Events never change: cached like the rest.
    let events = get_ok(app, "/v1/events?limit=1").await;
    let event = format!("/v1/events/{}", events.body["data"][0]["id"].as_str().unwrap());
    get_ok(app, &event).await;
    assert_eq!(header(&get_ok(app, &event).await, "settle-cache"), "hit");

    // A listener that lost news flushes everything it cannot vouch for.
    app.store().commit_bus().resync();
    assert_eq!(header(&get_ok(app, &path).await, "settle-cache"), "miss");

    // Lists never come from the cache.
    let list = get_ok(app, "/v1/payments?limit=1").await;
    assert!(list.headers.get("settle-cache").is_none());
    assert!(statements(&list) > 0);
    let page = app
        .metric("settle_cache_events_total{tier=\"local\",event=\"hit\"}")
        .await;
    assert!(page > 0);
}

both!(conditional_gets, conditional_gets_case);
async fn conditional_gets_case(app: &TestApp) {
    let (payment, alice, _) = held_payment(app).await;
    let account = format!("/v1/accounts/{alice}");
    let r = get_ok(app, &account).await;
    let etag = header(&r, "etag");
    assert_eq!(header(&r, "cache-control"), "private, no-cache");
    let conditional = |tag: String| {
        let url = app.url(&account);
        async move {
            let res = app
                .client
                .get(url)
                .bearer_auth(&app.admin_key)
                .header("if-none-match", tag)
                .send()
                .await
                .unwrap();
            let status = res.status();
            let headers = res.headers().clone();
            let body = res.bytes().await.unwrap();
            (status, headers, body)
        }
    };
    let (status, headers, body) = conditional(etag.clone()).await;
    assert_eq!(status, 304);
    assert!(body.is_empty(), "304 has no body");
    assert_eq!(headers["etag"].to_str().unwrap(), etag);
    assert_eq!(headers["cache-control"], "private, no-cache");
    let (status, _, _) = conditional(format!("W/{etag}")).await;
    assert_eq!(status, 304, "weak comparison");
    let (status, _, _) = conditional("\"0-0000000000000000\", *".into()).await;
    assert_eq!(status, 304, "* matches any");

    // A payment moves the balance, not the version: the ETag changes, the
    // old one no longer matches, and `If-Match` with it still works.
    app.post(&format!("/v1/payments/{payment}/capture"), json!({})).await;
    let (status, _, body) = conditional(etag.clone()).await;
    assert_eq!(status, 200);
    let now: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(now["balance"], 500);
    let r = app
        .client
        .patch(app.url(&account))
        .bearer_auth(&app.admin_key)
        .header("if-match", &etag)
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "If-Match compares the version, which a payment leaves");

    // `expand[]` has an ETag of its own.
    let plain = header(&get_ok(app, &format!("/v1/payments/{payment}")).await, "etag");
    let expanded = header(
        &get_ok(app, &format!("/v1/payments/{payment}?expand[]=source")).await,
        "etag",
    );
    assert_ne!(plain, expanded);
    // Writes answer with Cache-Control too, and never 304.
    let r = app.post("/v1/customers", json!({"name": "x"})).await;
    assert_eq!(header(&r, "cache-control"), "private, no-cache");
}

both!(
    a_thousand_cold_readers_read_once,
    a_thousand_cold_readers_read_once_case
);
async fn a_thousand_cold_readers_read_once_case(app: &TestApp) {
    let (payment, alice, _) = held_payment(app).await;
    // The key is cached by a first read of something else.
    get_ok(app, &format!("/v1/accounts/{alice}")).await;
    let path = format!("/v1/payments/{payment}");
    let results: Vec<Resp> = futures::stream::iter(0..1000)
        .map(|_| app.get(&path))
        .buffer_unordered(250)
        .collect()
        .await;
    let mut read = 0;
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["id"], payment.as_str());
        read += statements(r);
    }
    assert_eq!(read, 1, "one database read for 1,000 readers of one cold payment");
}

/// The cache lives only as long as an entry's time: past it, a database
/// that cannot answer (its only connection held) gets the stale entry
/// served, saying so, while lists (never cached) and reads of uncached
/// objects answer 503.
#[test]
fn stale_if_error_sqlite() {
    runtime().block_on(stale_if_error(Backend::Sqlite));
}

#[test]
fn stale_if_error_postgres() {
    if postgres_available() {
        runtime().block_on(stale_if_error(Backend::Postgres));
    }
}

async fn stale_if_error(backend: Backend) {
    let db = TestDb::create_with(backend, Some(1), Duration::from_millis(200)).await;
    let mut config = settle::config::Config::default();
    config.cache.ttl = Duration::from_millis(100);
    config.cache.xfetch_beta = 0.0;
    config.webhooks.allow_private_targets = true;
    let app = TestApp::spawn_config(db, Arc::new(SystemClock), config).await;
    let (payment, _, _) = held_payment(&app).await;
    let (other, _, _) = held_payment(&app).await;
    let path = format!("/v1/payments/{payment}");
    get_ok(&app, &path).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let held = app.db.sql.hold_read_connection().await.expect("the only connection");
    let stale = get_ok(&app, &path).await;
    assert_eq!(header(&stale, "settle-cache"), "stale");
    assert!(header(&stale, "age").parse::<u64>().unwrap() >= 1);
    assert_eq!(stale.body["id"], payment.as_str());
    let list = app.get("/v1/payments").await;
    list.assert_error(503, "api_error", "unavailable");
    app.get(&format!("/v1/payments/{other}"))
        .await
        .assert_error(503, "api_error", "unavailable");
    drop(held);

    let fresh = get_ok(&app, &path).await;
    assert_eq!(header(&fresh, "settle-cache"), "miss");
    let served = app
        .metric("settle_cache_events_total{tier=\"local\",event=\"stale_served\"}")
        .await;
    assert_eq!(served, 1);
    app.finish().await;
}

/// Two processes on one PostgreSQL database: a capture (and a refund) on
/// one is seen by reads on the other, which had the payment and its
/// accounts cached; once seen, never the older state again. SQLite is
/// served by one process, so this is PostgreSQL's.
#[test]
fn a_capture_on_one_process_reaches_reads_on_another_postgres() {
    if !postgres_available() {
        return;
    }
    runtime().block_on(async {
        let app = TestApp::spawn(Backend::Postgres).await;
        let db = app.db.another_process().await.unwrap();
        let mut config = settle::config::Config::default();
        config.webhooks.allow_private_targets = true;
        let other = TestApp::spawn_config(db, Arc::new(SystemClock), config).await;
        other.listening().await;
        let other = Other {
            app: other,
            key: app.admin_key.clone(),
        };

        let (payment, alice, _) = held_payment(&app).await;
        let path = format!("/v1/payments/{payment}");
        let account = format!("/v1/accounts/{alice}");
        assert_eq!(other.get(&path).await.body["status"], "requires_capture");
        assert_eq!(other.get(&account).await.body["balance"], 1_000);
        let cached = other.get(&path).await;
        assert_eq!(header(&cached, "settle-cache"), "hit");

        let r = app.post(&format!("{path}/capture"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        other.eventually(&path, |b| b["status"] == "succeeded").await;
        other.eventually(&account, |b| b["balance"] == 500).await;

        let r = app
            .post("/v1/refunds", json!({"payment": payment, "amount": 200}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        other.eventually(&path, |b| b["amount_refunded"] == 200).await;
        other.eventually(&account, |b| b["balance"] == 700).await;
        other.app.finish().await;
        app.finish().await;
    });
}

both!(
    a_write_whose_caller_gave_up_still_drops_what_it_changed,
    a_write_whose_caller_gave_up_still_drops_what_it_changed_case
);
/// A client that hangs up while its write commits (the caller's future is
/// dropped mid-write): the write goes on, and what it changed still leaves
/// the cache, well before the entry's TTL (60 s) would have let it go.
async fn a_write_whose_caller_gave_up_still_drops_what_it_changed_case(app: &TestApp) {
    app.listening().await;
    let id = app.post("/v1/customers", json!({"name": "before"})).await.id();
    let path = format!("/v1/customers/{id}");
    assert_eq!(get_ok(app, &path).await.body["name"], "before");

    let customer = settle_domain::ids::CustomerId::parse(&id).unwrap();
    let settle = app.settle.clone();
    let patch = settle_domain::customer::CustomerPatch::new(Some(Some("after".into())), None, None).unwrap();
    let write = async move {
        settle
            .update_customer(&settle.context("gave_up", None), Some(customer), patch, None)
            .await
    };
    // Polled once (the write is handed to the writer), then dropped.
    let mut write = Box::pin(write);
    assert!(
        futures::poll!(write.as_mut()).is_pending(),
        "the write finished at once"
    );
    drop(write);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stored: Option<String> = sqlx::query_scalar("SELECT name FROM customers WHERE id = $1")
            .bind(customer.to_bytes())
            .fetch_one(&app.db.reads)
            .await
            .unwrap();
        if stored.as_deref() == Some("after") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned write never committed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get_ok(app, &path).await.body["name"] != "after" {
        assert!(std::time::Instant::now() < deadline, "the cache kept the old name");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A change that no Settle process announces (made by hand in SQL, or by a
/// process that died between its commit and sending the ids) still
/// reaches every process's cache: the triggers leave the changed ids in
/// the database, and any process's change sender sends them on its next step
/// (at the latest after its poll interval).
#[test]
fn a_change_nobody_announced_still_reaches_the_cache_postgres() {
    if !postgres_available() {
        return;
    }
    runtime().block_on(async {
        let app = TestApp::spawn(Backend::Postgres).await;
        let (_, alice, _) = held_payment(&app).await;
        let account = format!("/v1/accounts/{alice}");
        assert_eq!(get_ok(&app, &account).await.body["name"], "alice");
        assert_eq!(header(&get_ok(&app, &account).await, "settle-cache"), "hit");

        // On a connection of its own, as an operator's would be: the
        // store's own connections name its writes, and its listener skips
        // those (the store dropped what it named before it answered).
        let id = settle_domain::ids::AccountId::parse(&alice).unwrap();
        let mut by_hand = <sqlx::AnyConnection as sqlx::Connection>::connect(app.db.url.as_deref().unwrap())
            .await
            .unwrap();
        let done = sqlx::query("UPDATE accounts SET name = 'renamed by hand' WHERE id = $1")
            .bind(id.to_bytes())
            .execute(&mut by_hand)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
        let _ = sqlx::Connection::close(by_hand).await;
        let other = Other {
            key: app.admin_key.clone(),
            app,
        };
        other.eventually(&account, |b| b["name"] == "renamed by hand").await;
        other.app.finish().await;
    });
}

/// The second process, read with the first one's admin key.
struct Other {
    app: TestApp,
    key: String,
}

impl Other {
    async fn get(&self, path: &str) -> Resp {
        let r = self.app.call(Method::GET, path, Some(&self.key), None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r
    }

    /// Reads `path` until `seen` holds (within 20 s), then 50 more times:
    /// every later read must still show it.
    async fn eventually(&self, path: &str, seen: impl Fn(&serde_json::Value) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if seen(&self.get(path).await.body) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{path}: the change never arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for _ in 0..50 {
            let body = self.get(path).await.body;
            assert!(seen(&body), "{path} went back to an older state: {body}");
        }
    }
}
