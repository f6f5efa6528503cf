//! What makes deliveries cheap must not make them wrong: endpoints kept in
//! memory with their opened secrets are dropped the moment an endpoint
//! changes (here, or in another process on PostgreSQL, with the safety-net
//! poll at a minute so only the commit stream can have done it), and
//! per-endpoint concurrency grows past its start while the receiver keeps
//! up, never past its configured maximum.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use settle_domain::ids::WebhookEndpointId;
use settle_domain::webhook::EndpointPatch;
use settle_store::Store;
use settle_store_postgres::PostgresOptions;

use crate::support::{TestApp, both, eventually};
use crate::webhooks::{endpoint, pay, receiver, settled, verifies, webhook_app_with};

both!(
    a_changed_endpoint_is_never_served_from_memory,
    a_changed_endpoint_is_never_served_from_memory_case
);
async fn a_changed_endpoint_is_never_served_from_memory_case(app: &TestApp) {
    let w = webhook_app_with(app, "10ms", true, |c| {
        c.queue.poll = Duration::from_secs(60);
    })
    .await;
    let (url, seen) = receiver(&[200]).await;
    let (id, first_secret) = endpoint(&w, &url, json!(["payment.succeeded"])).await;
    pay(&w, 1).await;
    settled(&w, &id, 1, "delivered").await;
    assert!(verifies(&first_secret, seen.lock().unwrap().seen.last().unwrap()));

    // Rotated: the next delivery is signed with the new secret too, so the
    // opened secrets held in memory were dropped.
    let r = w
        .post(&format!("/v1/webhook_endpoints/{id}/rotate_secret"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second_secret = r.body["secret"].as_str().unwrap().to_owned();
    pay(&w, 1).await;
    settled(&w, &id, 2, "delivered").await;
    assert!(verifies(&second_secret, seen.lock().unwrap().seen.last().unwrap()));

    // Another process moves the endpoint: heard through PostgreSQL's
    // notification, the next delivery goes to the new address.
    if let Some(db_url) = &w.db.url {
        let other: Arc<dyn Store> = Arc::new(
            settle_store_postgres::open(db_url, &PostgresOptions::default())
                .await
                .unwrap(),
        );
        let (moved_url, moved_seen) = receiver(&[200]).await;
        let patch = EndpointPatch {
            url: Some(moved_url),
            ..EndpointPatch::default()
        };
        let ctx = w.settle.context("elsewhere", None);
        let endpoint_id = WebhookEndpointId::parse(&id).unwrap();
        other
            .update_webhook_endpoint(&ctx, endpoint_id, patch, None)
            .await
            .unwrap();
        pay(&w, 1).await;
        settled(&w, &id, 3, "delivered").await;
        assert_eq!(moved_seen.lock().unwrap().seen.len(), 1, "sent to the new address");
        assert_eq!(seen.lock().unwrap().seen.len(), 2, "nothing more to the old one");
    }
    w.finish().await;
}

/// Counts requests in flight and the most seen at once; holds every
/// request until opened, then answers each after a few milliseconds.
#[derive(Default)]
struct Gauge {
    open: AtomicBool,
    now: AtomicUsize,
    most: AtomicUsize,
    answered: AtomicUsize,
}

async fn gauged(axum::extract::State(g): axum::extract::State<Arc<Gauge>>) -> axum::http::StatusCode {
    let now = g.now.fetch_add(1, Ordering::SeqCst) + 1;
    g.most.fetch_max(now, Ordering::SeqCst);
    while !g.open.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    g.now.fetch_sub(1, Ordering::SeqCst);
    g.answered.fetch_add(1, Ordering::SeqCst);
    axum::http::StatusCode::NO_CONTENT
}

async fn gauge_receiver() -> (String, Arc<Gauge>) {
    let gauge = Arc::new(Gauge::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(gauged))
        .with_state(Arc::clone(&gauge));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), gauge)
}

both!(
    concurrency_grows_while_the_receiver_keeps_up,
    concurrency_grows_while_the_receiver_keeps_up_case
);
async fn concurrency_grows_while_the_receiver_keeps_up_case(app: &TestApp) {
    const MAX: usize = 12;
    // The deliveries list shows 100 at most, which `settled` reads.
    const PAYMENTS: usize = 100;
    let w = webhook_app_with(app, "10ms", true, |c| {
        c.webhooks.max_in_flight = MAX;
    })
    .await;
    let (url, gauge) = gauge_receiver().await;
    let (id, _) = endpoint(&w, &url, json!(["payment.succeeded"])).await;
    // A backlog builds while the first requests are held.
    pay(&w, PAYMENTS).await;
    eventually(Duration::from_secs(30), "the first requests", || async {
        (gauge.now.load(Ordering::SeqCst) >= 4).then_some(())
    })
    .await;
    // Nothing more goes out while those are held.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        gauge.most.load(Ordering::SeqCst),
        4,
        "an endpoint starts at 4 in flight"
    );
    gauge.open.store(true, Ordering::SeqCst);
    settled(&w, &id, PAYMENTS, "delivered").await;
    let most = gauge.most.load(Ordering::SeqCst);
    assert!(most > 4, "concurrency grew past its start: {most}");
    assert!(most <= MAX, "and never past its maximum: {most}");
    assert_eq!(gauge.answered.load(Ordering::SeqCst), PAYMENTS);
    w.finish().await;
}
