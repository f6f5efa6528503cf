//! `Idempotency-Key`, Stripe's contract: one effect for concurrent
//! duplicates, byte-for-byte replays, reuse refused, validation failures not
//! stored, operation errors stored, dead claims taken over after the lock
//! timeout, a fenced claim never completes, and old keys reaped.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use settle_core::clock::ManualClock;
use settle_domain::account::NewAccount;
use settle_domain::metadata::Metadata;
use settle_domain::money::Currency;
use settle_store::StoreError;
use settle_store::idempotency::ClaimOutcome;

use crate::support::{Backend, TestApp, both, postgres_available};

struct Raw {
    status: StatusCode,
    replayed: bool,
    etag: Option<String>,
    bytes: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap()
    }
}

async fn send(app: &TestApp, key_secret: &str, path: &str, idem: Option<&str>, body: &str) -> Raw {
    let mut req = app
        .client
        .post(app.url(path))
        .bearer_auth(key_secret)
        .body(body.to_owned());
    if let Some(k) = idem {
        req = req.header("idempotency-key", k);
    }
    let res = req.send().await.unwrap();
    let replayed = res.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let etag = res.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
    Raw {
        status: res.status(),
        replayed,
        etag,
        bytes: res.bytes().await.unwrap().to_vec(),
    }
}

fn payment_body(source: &str, destination: &str, amount: i64) -> String {
    json!({"amount": amount, "currency": "usd", "source": source, "destination": destination}).to_string()
}

async fn count_payments(app: &TestApp, source: &str) -> usize {
    app.get(&format!("/v1/payments?limit=100&source={source}")).await.body["data"]
        .as_array()
        .unwrap()
        .len()
}

both!(concurrent_duplicates_one_effect, concurrent_duplicates_one_effect_case);
async fn concurrent_duplicates_one_effect_case(app: &TestApp) {
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    let body = payment_body(&bank, &shop, 700);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (http, url, key, body) = (
            app.client.clone(),
            app.url("/v1/payments"),
            app.admin_key.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(key)
                .header("idempotency-key", "order-1")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut in_use = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status.as_u16() {
            200 => {
                ids.insert(body["id"].as_str().unwrap().to_owned());
            }
            409 => {
                assert_eq!(body["error"]["type"], "idempotency_error");
                assert_eq!(body["error"]["code"], "idempotency_key_in_use");
                in_use += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ids.len(), 1, "every 200 carries the same payment");
    assert!(in_use < 100);
    assert_eq!(count_payments(app, &bank).await, 1, "exactly one payment");
    let entries = app.get(&format!("/v1/accounts/{shop}/entries")).await;
    assert_eq!(
        entries.body["data"].as_array().unwrap().len(),
        1,
        "exactly one set of ledger entries"
    );
    assert_eq!(app.get(&format!("/v1/accounts/{shop}")).await.body["balance"], 700);

    let first = send(app, &app.admin_key, "/v1/payments", Some("order-1"), &body).await;
    let again = send(app, &app.admin_key, "/v1/payments", Some("order-1"), &body).await;
    assert_eq!(first.status, 200);
    assert!(first.replayed && again.replayed);
    assert_eq!(first.bytes, again.bytes);
    assert_eq!(first.json()["id"].as_str().unwrap(), ids.iter().next().unwrap());
    assert!(
        first.etag.as_deref().is_some_and(|t| t.starts_with("\"1-")),
        "{:?}",
        first.etag
    );
    assert_eq!(first.etag, again.etag);
}

both!(replay_is_byte_for_byte, replay_is_byte_for_byte_case);
async fn replay_is_byte_for_byte_case(app: &TestApp) {
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    let body = payment_body(&bank, &shop, 100);
    let original = send(app, &app.admin_key, "/v1/payments", Some("k1"), &body).await;
    assert_eq!(original.status, 200);
    assert!(!original.replayed);
    // Key order and whitespace do not change "the same parameters".
    let reordered =
        format!("{{ \"destination\": \"{shop}\",\n \"source\": \"{bank}\", \"currency\": \"usd\", \"amount\": 100 }}");
    let replay = send(app, &app.admin_key, "/v1/payments", Some("k1"), &reordered).await;
    assert!(replay.replayed);
    assert_eq!(replay.status, 200);
    assert_eq!(
        replay.bytes, original.bytes,
        "the stored response is returned byte for byte"
    );
    assert_eq!(replay.etag, original.etag);

    // Every mutating route takes a key: capture, cancel, refunds, accounts, customers.
    let held = send(
        app,
        &app.admin_key,
        "/v1/payments",
        None,
        &json!({"amount": 50, "currency": "usd", "source": bank, "destination": shop, "capture": false}).to_string(),
    )
    .await
    .json();
    let capture_path = format!("/v1/payments/{}/capture", held["id"].as_str().unwrap());
    let c1 = send(app, &app.admin_key, &capture_path, Some("cap"), "").await;
    let c2 = send(app, &app.admin_key, &capture_path, Some("cap"), "{}").await;
    assert_eq!(c1.status, 200);
    assert!(
        c2.replayed && c2.bytes == c1.bytes,
        "a second capture with the key is a replay, not a 409"
    );
    let pay_id = original.json()["id"].as_str().unwrap().to_owned();
    let refund = json!({"payment": pay_id, "amount": 10}).to_string();
    let r1 = send(app, &app.admin_key, "/v1/refunds", Some("ref"), &refund).await;
    let r2 = send(app, &app.admin_key, "/v1/refunds", Some("ref"), &refund).await;
    assert!(r2.replayed && r1.bytes == r2.bytes);
    let refunded = app.get(&format!("/v1/payments/{pay_id}")).await.body["amount_refunded"].clone();
    assert_eq!(refunded, 10, "the refund ran once");
    let cust = json!({"name": "Ada"}).to_string();
    let k1 = send(app, &app.admin_key, "/v1/customers", Some("cus"), &cust).await;
    let k2 = send(app, &app.admin_key, "/v1/customers", Some("cus"), &cust).await;
    assert!(k2.replayed && k1.bytes == k2.bytes);
    let cid = k1.json()["id"].as_str().unwrap().to_owned();
    let d1 = app
        .client
        .delete(app.url(&format!("/v1/customers/{cid}")))
        .bearer_auth(&app.admin_key)
        .header("idempotency-key", "del")
        .send()
        .await
        .unwrap();
    assert_eq!(d1.status(), 200);
    let d2 = app
        .client
        .delete(app.url(&format!("/v1/customers/{cid}")))
        .bearer_auth(&app.admin_key)
        .header("idempotency-key", "del")
        .send()
        .await
        .unwrap();
    assert_eq!(d2.status(), 200, "the delete is replayed, not a 404");
    assert_eq!(d2.headers()["idempotent-replayed"], "true");
}

both!(reuse_and_scope, reuse_and_scope_case);
async fn reuse_and_scope_case(app: &TestApp) {
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    let first = send(
        app,
        &app.admin_key,
        "/v1/payments",
        Some("same"),
        &payment_body(&bank, &shop, 100),
    )
    .await;
    assert_eq!(first.status, 200);
    let other_amount = send(
        app,
        &app.admin_key,
        "/v1/payments",
        Some("same"),
        &payment_body(&bank, &shop, 101),
    )
    .await;
    assert_eq!(other_amount.status, 422);
    assert_eq!(other_amount.json()["error"]["type"], "idempotency_error");
    assert_eq!(other_amount.json()["error"]["code"], "idempotency_key_reused");
    let other_route = send(app, &app.admin_key, "/v1/customers", Some("same"), "{}").await;
    assert_eq!(other_route.status, 422);
    assert_eq!(other_route.json()["error"]["code"], "idempotency_key_reused");

    // The key belongs to the API key that sent it.
    let other_key = app.key("admin").await;
    let theirs = send(
        app,
        &other_key,
        "/v1/payments",
        Some("same"),
        &payment_body(&bank, &shop, 100),
    )
    .await;
    assert_eq!(theirs.status, 200);
    assert!(!theirs.replayed);
    assert_ne!(theirs.json()["id"], first.json()["id"]);
    assert_eq!(count_payments(app, &bank).await, 2);
}

both!(what_is_stored, what_is_stored_case);
async fn what_is_stored_case(app: &TestApp) {
    let alice = app.account("alice", "usd", false).await;
    let shop = app.account("shop", "usd", false).await;

    // Validation failures are not stored: the client fixes the body and resends.
    let bad = send(
        app,
        &app.admin_key,
        "/v1/payments",
        Some("fixme"),
        &payment_body(&alice, &shop, 0),
    )
    .await;
    assert_eq!(bad.status, 400);
    let malformed = send(app, &app.admin_key, "/v1/payments", Some("fixme"), "{\"amount\": ").await;
    assert_eq!(malformed.status, 400);
    assert!(!malformed.replayed);

    // An operation's own answer is stored, even an error.
    let broke = send(
        app,
        &app.admin_key,
        "/v1/payments",
        Some("fixme"),
        &payment_body(&alice, &shop, 500),
    )
    .await;
    assert_eq!(broke.status, 422);
    assert_eq!(broke.json()["error"]["code"], "insufficient_funds");
    app.fund(&alice, "usd", 1_000).await;
    let replay = send(
        app,
        &app.admin_key,
        "/v1/payments",
        Some("fixme"),
        &payment_body(&alice, &shop, 500),
    )
    .await;
    assert_eq!(
        replay.status, 422,
        "the stored error is replayed even though funds now suffice"
    );
    assert!(replay.replayed);
    assert_eq!(replay.bytes, broke.bytes);
    assert_eq!(count_payments(app, &alice).await, 0);

    // Authentication and permission failures are not stored either.
    let viewer = app.key("viewer").await;
    let denied = send(
        app,
        &viewer,
        "/v1/payments",
        Some("perm"),
        &payment_body(&alice, &shop, 1),
    )
    .await;
    assert_eq!(denied.status, 403);
    let fresh = send(
        app,
        &app.admin_key,
        "/v1/payments",
        Some("perm"),
        &payment_body(&alice, &shop, 1),
    )
    .await;
    assert_eq!(fresh.status, 200);
    assert!(!fresh.replayed);
}

both!(header_rules, header_rules_case);
async fn header_rules_case(app: &TestApp) {
    let body = json!({"name": "x"}).to_string();
    for bad in [String::new(), "k".repeat(256), "tab\there".into()] {
        let r = send(app, &app.admin_key, "/v1/customers", Some(&bad), &body).await;
        assert_eq!(r.status, 400, "{bad:?}");
        assert_eq!(r.json()["error"]["code"], "parameter_invalid");
        assert_eq!(r.json()["error"]["param"], "Idempotency-Key");
    }
    let ok = send(app, &app.admin_key, "/v1/customers", Some(&"k".repeat(255)), &body).await;
    assert_eq!(ok.status, 200);
    let customers = app.get("/v1/customers").await;
    assert_eq!(
        customers.body["data"].as_array().unwrap().len(),
        1,
        "refused keys changed nothing"
    );
}

async fn takeover_and_fencing(backend: Backend) {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let app = TestApp::spawn_with_clock(backend, clock.clone()).await;
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    let body = payment_body(&bank, &shop, 100);
    let principal = app.settle.authenticate(&app.admin_key).await.unwrap();
    let hash = settle_api::idempotency::request_hash(&reqwest::Method::POST, "/v1/payments", body.as_bytes());

    // A request that claimed the key and died: its marker stays in flight.
    let ClaimOutcome::Claimed(dead) = app
        .settle
        .claim_idempotency(principal.key, "crash", hash.clone())
        .await
        .unwrap()
    else {
        panic!("first claim must succeed")
    };
    let busy = send(&app, &app.admin_key, "/v1/payments", Some("crash"), &body).await;
    assert_eq!(busy.status, 409);
    assert_eq!(busy.json()["error"]["code"], "idempotency_key_in_use");

    // Past the lock timeout a retry takes the key over and runs once.
    clock.advance(61_000);
    let retried = send(&app, &app.admin_key, "/v1/payments", Some("crash"), &body).await;
    assert_eq!(retried.status, 200);
    assert!(!retried.replayed);

    // The dead request's claim is fenced: it can neither store nor write.
    let stored = settle_store::idempotency::StoredResponse {
        status: 200,
        body: b"{}".to_vec(),
    };
    assert!(!app.settle.complete_idempotency(&dead, &stored).await.unwrap());
    let mut ctx = app.settle.context("late", Some(principal.key));
    ctx.idempotency = Some(dead);
    ctx.success_status = Some(200);
    let new = NewAccount::new(
        "late".into(),
        Currency::parse("usd").unwrap(),
        false,
        None,
        Metadata::default(),
    )
    .unwrap();
    let late = app.store().create_account(&ctx, new).await;
    assert!(matches!(late, Err(StoreError::ClaimLost)), "{late:?}");
    let accounts = app.get("/v1/accounts?limit=100").await;
    assert!(
        accounts.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["name"] != "late"),
        "no effect without its record"
    );
    assert_eq!(count_payments(&app, &bank).await, 1);

    // Records outlive the retention only until the reaper runs.
    let replay = send(&app, &app.admin_key, "/v1/payments", Some("crash"), &body).await;
    assert!(replay.replayed);
    clock.advance(23 * 3600 * 1000);
    assert_eq!(
        app.settle.reap_idempotency(1).await.unwrap(),
        0,
        "kept at least 24 hours"
    );
    clock.advance(2 * 3600 * 1000);
    assert!(
        app.settle.reap_idempotency(1).await.unwrap() >= 1,
        "removed after the retention, in batches"
    );
    let after = send(&app, &app.admin_key, "/v1/payments", Some("crash"), &body).await;
    assert!(!after.replayed, "a reaped key is new again");
    assert_eq!(count_payments(&app, &bank).await, 2);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_and_fencing_sqlite() {
    takeover_and_fencing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_and_fencing_postgres() {
    if postgres_available() {
        takeover_and_fencing(Backend::Postgres).await;
    }
}

#[tokio::test]
async fn in_flight_duration_is_bounded_by_tests() {
    // Guards the test above: its clock jumps rely on the 60 s default.
    assert_eq!(
        settle_core::ServiceOptions::default().idempotency_lock_timeout,
        Duration::from_secs(60)
    );
    assert!(settle_core::ServiceOptions::default().idempotency_retention >= Duration::from_secs(24 * 3600));
}

both!(secrets_are_never_stored, secrets_are_never_stored_case);
async fn secrets_are_never_stored_case(app: &TestApp) {
    let body = json!({"name": "deploy", "role": "viewer"}).to_string();
    let first = send(app, &app.admin_key, "/v1/api_keys", Some("new-key"), &body).await;
    assert_eq!(first.status, 200);
    let secret = first.json()["secret"].as_str().unwrap().to_owned();
    let replay = app
        .client
        .post(app.url("/v1/api_keys"))
        .bearer_auth(&app.admin_key)
        .header("idempotency-key", "new-key")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(
        replay.headers()["idempotent-secret-omitted"],
        "true",
        "the replay says the secret is left out"
    );
    let replayed: Value = replay.json().await.unwrap();
    assert_eq!(replayed["id"], first.json()["id"], "the same key, not a second one");
    assert!(replayed.get("secret").is_none());
    let rows = sqlx::query("SELECT response_body FROM idempotency_keys")
        .fetch_all(&app.db.reads)
        .await
        .unwrap();
    for row in rows {
        let stored: Option<Vec<u8>> = sqlx::Row::try_get(&row, "response_body").unwrap();
        assert!(
            !String::from_utf8_lossy(&stored.unwrap_or_default()).contains(&secret),
            "no secret in a stored response"
        );
    }
    let keys = app.get("/v1/api_keys?limit=100").await;
    assert_eq!(
        keys.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["name"] == "deploy")
            .count(),
        1
    );
}

// A webhook endpoint's signing secret is shown once too (at creation and
// at rotation); a replay of either says it is left out. The pipeline knows
// which operations show a secret; the replay does not guess from the JSON.
both!(
    endpoint_secrets_are_omitted_from_replays,
    endpoint_secrets_are_omitted_from_replays_case
);
async fn endpoint_secrets_are_omitted_from_replays_case(app: &TestApp) {
    let body = json!({"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}).to_string();
    let first = send(
        app,
        &app.admin_key,
        "/v1/webhook_endpoints",
        Some("new-endpoint"),
        &body,
    )
    .await;
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.bytes));
    assert!(first.json()["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")));
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let rotate = format!("/v1/webhook_endpoints/{id}/rotate_secret");
    let rotated = send(app, &app.admin_key, &rotate, Some("rotate-1"), "").await;
    assert_eq!(rotated.status, 200);
    assert!(rotated.json()["secret"].is_string());
    for (path, key, body) in [
        ("/v1/webhook_endpoints", "new-endpoint", body.as_str()),
        (rotate.as_str(), "rotate-1", ""),
    ] {
        let replay = app
            .client
            .post(app.url(path))
            .bearer_auth(&app.admin_key)
            .header("idempotency-key", key)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(replay.headers()["idempotent-replayed"], "true", "{path}");
        assert_eq!(replay.headers()["idempotent-secret-omitted"], "true", "{path}");
        let replayed: Value = replay.json().await.unwrap();
        assert_eq!(replayed["id"], id.as_str());
        assert!(replayed.get("secret").is_none(), "{path}: {replayed}");
    }
    // A replay of an operation that shows no secret says nothing of one.
    let customer = send(app, &app.admin_key, "/v1/customers", Some("cus-1"), "{}").await;
    assert_eq!(customer.status, 200);
    let again = app
        .client
        .post(app.url("/v1/customers"))
        .bearer_auth(&app.admin_key)
        .header("idempotency-key", "cus-1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert!(again.headers().get("idempotent-secret-omitted").is_none());
}
