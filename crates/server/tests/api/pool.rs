//! Connection pooling: when no database connection frees up within the
//! acquire timeout, the client gets 503 `unavailable` with `Retry-After`,
//! never a hang; once a connection is free again, requests succeed.

use std::sync::Arc;
use std::time::Duration;

use settle_core::clock::SystemClock;

use crate::support::{Backend, TestApp, TestDb, postgres_available};

async fn exhausted_pool_answers_503(backend: Backend) {
    let db = TestDb::create_with(backend, Some(1), Duration::from_millis(200)).await;
    let app = TestApp::spawn_db(db, Arc::new(SystemClock)).await;
    assert_eq!(app.get("/v1/accounts").await.status, 200);

    let held = app
        .db
        .sql
        .hold_read_connection()
        .await
        .expect("take the only connection");
    let call = app
        .client
        .get(app.url("/v1/accounts"))
        .bearer_auth(&app.admin_key)
        .timeout(Duration::from_secs(20))
        .send();
    let res = call.await.expect("the request must be answered, not hang");
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");
    assert_eq!(body["error"]["code"], "unavailable");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "readiness must say the database cannot serve");

    drop(held);
    assert_eq!(app.get("/v1/accounts").await.status, 200);

    // The pool shows what happened: its bound, the timeout, the waits.
    let pool = match backend {
        Backend::Sqlite => "reads",
        Backend::Postgres => "database",
    };
    let labelled = |name: &str| format!("{name}{{pool=\"{pool}\"}}");
    assert_eq!(app.metric(&labelled("settle_db_pool_max")).await, 1);
    assert!(app.metric(&labelled("settle_db_pool_timeouts_total")).await >= 1);
    assert!(app.metric(&labelled("settle_db_pool_acquire_wait_seconds_count")).await >= 2);
    assert_eq!(app.metric(&labelled("settle_db_pool_waiting")).await, 0);
    // Both from one page: other reads keep landing in the low buckets.
    let page = app.get("/metrics").await;
    let text = page.body.as_str().unwrap_or_default().to_owned();
    let value = |le: &str| -> u64 {
        let name = format!("settle_db_pool_acquire_wait_seconds_bucket{{pool=\"{pool}\",le=\"{le}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
    };
    assert!(
        value("+Inf") > value("0.1"),
        "the 200 ms wait that timed out is above the 0.1 s bound"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_pool_answers_503_sqlite() {
    exhausted_pool_answers_503(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_pool_answers_503_postgres() {
    if postgres_available() {
        exhausted_pool_answers_503(Backend::Postgres).await;
    }
}
