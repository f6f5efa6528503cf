//! What an operation costs in SQL statements, pinned on both databases with
//! the store's statement counter (`Settle-Statements`, on in tests). A
//! change that adds a round trip to a hot path fails here and has to say
//! why. Key, role and policy caches are warmed first and kept for the whole
//! case, so the counts are the operation's own (README "Statements").

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use settle::config::Config;
use settle_core::clock::SystemClock;

use crate::support::{TestApp, TestDb, both};

async fn statements_of(app: &TestApp, method: Method, path: &str, body: Option<serde_json::Value>) -> u64 {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(&app.admin_key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.headers()
        .get("settle-statements")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Settle-Statements header")
}

async fn a_payment_and_a_page_cost_what_readme_says_case(app: &TestApp) {
    let config = Config {
        auth_cache_ttl: Duration::from_secs(3600),
        ..Config::default()
    };
    let db = TestDb::create(app.db.backend).await;
    let w = TestApp::spawn_config(db, Arc::new(SystemClock), config).await;
    let alice = w.account("alice", "usd", false).await;
    let bank = w.fund(&alice, "usd", 1_000_000).await;
    let shop = w.account("shop", "usd", false).await;
    // Warm the key and policy caches.
    statements_of(&w, Method::GET, "/v1/payments?limit=1", None).await;

    let pay = json!({"amount": 100, "currency": "usd", "source": alice, "destination": shop});
    let create = statements_of(&w, Method::POST, "/v1/payments", Some(pay)).await;
    for _ in 0..120 {
        let r = w
            .post(
                "/v1/payments",
                json!({"amount": 1, "currency": "usd", "source": bank, "destination": shop}),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let page = statements_of(&w, Method::GET, "/v1/payments?limit=100", None).await;
    let last = w.get("/v1/payments?limit=100").await;
    let cursor = last.body["data"][99]["id"].as_str().unwrap().to_owned();
    let next = statements_of(
        &w,
        Method::GET,
        &format!("/v1/payments?limit=100&starting_after={cursor}"),
        None,
    )
    .await;
    let expected = match app.db.backend {
        crate::support::Backend::Sqlite => (CREATE_SQLITE, 1, 2),
        crate::support::Backend::Postgres => (CREATE_POSTGRES, 1, 2),
    };
    assert_eq!(
        (create, page, next),
        expected,
        "POST /v1/payments, a page, a page after a cursor"
    );
    // The process's own count is at /metrics, and grows with each statement.
    let before = w.metric("settle_db_statements_total").await;
    statements_of(&w, Method::GET, "/v1/payments?limit=100", None).await;
    assert!(w.metric("settle_db_statements_total").await > before);
    w.finish().await;
}
both!(
    a_payment_and_a_page_cost_what_readme_says,
    a_payment_and_a_page_cost_what_readme_says_case
);

/// SQLite: the accounts (one `SELECT ... IN`), then a statement each for
/// the balances, the payment, the entries and the events, and the audit
/// row; in-process, a statement costs no round trip.
const CREATE_SQLITE: u64 = 6;
/// PostgreSQL: the row-lock `SELECT ... FOR UPDATE`, then one statement of
/// data-modifying CTEs for everything the payment writes, its audit row
/// included.
const CREATE_POSTGRES: u64 = 2;
