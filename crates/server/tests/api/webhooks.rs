//! Webhooks from the outside, on both databases: endpoints and their
//! secrets (shown once, sealed at rest, rotated with a grace period), the
//! SSRF guard, and deliveries to a receiver of this test's own: signed so
//! that the independent `standardwebhooks` crate verifies them, retried on
//! the schedule with the same `webhook-id`, every attempt logged, 410
//! disabling the endpoint, redirects not followed, manual retry.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use settle::config::Config;
use settle_core::clock::SystemClock;
use settle_domain::webhook::RetrySchedule;

use crate::support::{Resp, TestApp, TestDb, both, eventually};

/// One request as the receiver saw it.
#[derive(Clone)]
pub(crate) struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Answers each message's n-th request with `script[n]` (the last entry
/// repeats), and records everything.
#[derive(Default)]
pub(crate) struct Receiver {
    script: Vec<u16>,
    pub(crate) seen: Vec<Received>,
    per_message: HashMap<String, usize>,
}

pub(crate) type Shared = Arc<Mutex<Receiver>>;

async fn receive(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, HeaderMap, String) {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let status = {
        let mut guard = shared.lock().unwrap();
        let r = &mut *guard;
        let n = r.per_message.entry(id).or_insert(0);
        let status = *r.script.get(*n).or(r.script.last()).unwrap_or(&200);
        *n += 1;
        r.seen.push(Received {
            headers: headers.clone(),
            body: body.to_vec(),
        });
        status
    };
    if status == 0 {
        // A receiver that never answers.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let mut out = HeaderMap::new();
    if status == 302 {
        out.insert("location", "http://127.0.0.1:1/elsewhere".parse().unwrap());
    }
    (StatusCode::from_u16(status).unwrap(), out, format!("answer {status}"))
}

pub(crate) async fn receiver(script: &[u16]) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Receiver {
        script: script.to_vec(),
        ..Receiver::default()
    }));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::clone(&shared));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), shared)
}

async fn webhook_app(app: &TestApp, schedule: &str, allow_private: bool) -> TestApp {
    webhook_app_with(app, schedule, allow_private, |_| {}).await
}

pub(crate) async fn webhook_app_with(
    app: &TestApp,
    schedule: &str,
    allow_private: bool,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config::default();
    // Short breaker pauses, so a receiver that never answers on purpose
    // stalls nothing for long.
    config.webhooks.breaker_cooldown = Duration::from_millis(50);
    config.queue.poll = Duration::from_millis(10);
    adjust(&mut config);
    config.webhooks.allow_private_targets = allow_private;
    config.webhooks.retry_schedule = RetrySchedule::parse(schedule).unwrap();
    let db = TestDb::create(app.db.backend).await;
    TestApp::spawn_config(db, Arc::new(SystemClock), config).await
}

pub(crate) async fn endpoint(w: &TestApp, url: &str, events: Value) -> (String, String) {
    let r = w
        .post("/v1/webhook_endpoints", json!({"url": url, "enabled_events": events}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (r.id(), r.body["secret"].as_str().unwrap().to_owned())
}

pub(crate) async fn pay(w: &TestApp, n: usize) {
    let bank = w.account("bank", "usd", true).await;
    let shop = w.account("shop", "usd", false).await;
    for i in 0..n {
        let r = w
            .post(
                "/v1/payments",
                json!({"amount": 100 + i, "currency": "usd", "source": bank, "destination": shop}),
            )
            .await;
        assert_eq!(r.status, 200);
    }
}

pub(crate) async fn deliveries(w: &TestApp, endpoint: &str) -> Vec<Value> {
    let r = w
        .get(&format!("/v1/webhook_endpoints/{endpoint}/deliveries?limit=100"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

pub(crate) async fn settled(w: &TestApp, endpoint: &str, n: usize, status: &str) -> Vec<Value> {
    eventually(Duration::from_secs(30), "deliveries to settle", || async {
        let all = deliveries(w, endpoint).await;
        (all.len() == n && all.iter().all(|d| d["status"] == status)).then_some(all)
    })
    .await
}

pub(crate) fn verifies(secret: &str, r: &Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&r.body, &r.headers)
        .is_ok()
}

both!(endpoints_and_secrets, endpoints_and_secrets_case);
async fn endpoints_and_secrets_case(app: &TestApp) {
    let (url, _) = receiver(&[200]).await;
    let (id, secret) = endpoint(app, &url, json!(["*"])).await;
    assert!(secret.starts_with("whsec_"));
    let got = app.get(&format!("/v1/webhook_endpoints/{id}")).await;
    assert_eq!(got.status, 200);
    assert!(got.body.get("secret").is_none(), "the secret is shown once");
    assert_eq!(got.body["enabled_events"], json!(["*"]));
    assert!(got.headers["etag"].to_str().unwrap().starts_with("\"1-"));
    let list = app.get("/v1/webhook_endpoints").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);

    // Edits are optimistic.
    let patch = |version: &str, body: Value| {
        let (client, url, key) = (
            app.client.clone(),
            app.url(&format!("/v1/webhook_endpoints/{id}")),
            app.admin_key.clone(),
        );
        let version = version.to_owned();
        async move {
            Resp::read(
                client
                    .patch(url)
                    .bearer_auth(key)
                    .header("if-match", version)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let r = patch(
        "\"1\"",
        json!({"enabled_events": ["payment.failed"], "description": "ops"}),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.body["version"].clone()),
        (200, json!(2)),
        "{}",
        r.body
    );
    let r = patch("\"1\"", json!({"description": "late"})).await;
    assert_eq!(r.status, 412);
    let r = patch("\"2\"", json!({"status": "paused"})).await;
    r.assert_error(400, "invalid_request_error", "parameter_invalid");

    // Bad input changes nothing.
    for body in [
        json!({"url": "ftp://example.com/x", "enabled_events": ["*"]}),
        json!({"url": url, "enabled_events": ["payment.exploded"]}),
        json!({"url": url, "enabled_events": []}),
        json!({"url": url}),
    ] {
        let r = app.post("/v1/webhook_endpoints", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }

    // Rotation: a new secret, shown once.
    let r = app
        .post(&format!("/v1/webhook_endpoints/{id}/rotate_secret"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rotated = r.body["secret"].as_str().unwrap();
    assert!(rotated.starts_with("whsec_") && rotated != secret);

    // Secrets are sealed at rest.
    let rows = sqlx::query("SELECT secret, previous_secret FROM webhook_endpoints")
        .fetch_all(&app.db.reads)
        .await
        .unwrap();
    for row in rows {
        use sqlx::Row;
        for col in ["secret", "previous_secret"] {
            let sealed: Vec<u8> = row.try_get(col).unwrap();
            let text = String::from_utf8_lossy(&sealed);
            assert!(
                !text.contains("whsec_") && !text.contains(&secret[6..12]),
                "stored in clear"
            );
        }
    }

    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/webhook_endpoints/{id}"),
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.body["deleted"].clone()), (200, json!(true)));
    app.get(&format!("/v1/webhook_endpoints/{id}")).await.assert_error(
        404,
        "invalid_request_error",
        "resource_missing",
    );
}

both!(private_targets_are_refused, private_targets_are_refused_case);
async fn private_targets_are_refused_case(app: &TestApp) {
    let w = webhook_app(app, "10ms", false).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/hook",
        "https://user:pw@example.com/hook",
    ] {
        let r = w
            .post("/v1/webhook_endpoints", json!({"url": url, "enabled_events": ["*"]}))
            .await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        assert_eq!(r.body["error"]["param"], "url", "{url}");
    }
    assert_eq!(w.get("/v1/webhook_endpoints").await.body["data"], json!([]));
    w.finish().await;
}

both!(
    deliveries_are_signed_retried_and_logged,
    deliveries_are_signed_retried_and_logged_case
);
async fn deliveries_are_signed_retried_and_logged_case(app: &TestApp) {
    let w = webhook_app(app, "20ms,20ms,20ms", true).await;
    let (url, seen) = receiver(&[500, 503, 200]).await;
    let (id, secret) = endpoint(&w, &url, json!(["payment.succeeded"])).await;
    pay(&w, 5).await;
    let done = settled(&w, &id, 5, "delivered").await;
    let seen = seen.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 15, "three attempts each");
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &seen {
        assert!(verifies(&secret, r), "a delivery does not verify");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["type"], "payment.succeeded");
        assert_eq!(body["object"], "event");
        *per_id
            .entry(r.headers["webhook-id"].to_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(
        per_id.values().all(|n| *n == 3),
        "retries carry the same webhook-id: {per_id:?}"
    );
    for d in &done {
        assert!(
            per_id.contains_key(d["id"].as_str().unwrap()),
            "webhook-id is the delivery id"
        );
        assert_eq!(d["attempts"], 3);
        let a = w
            .get(&format!(
                "/v1/webhook_deliveries/{}/attempts",
                d["id"].as_str().unwrap()
            ))
            .await;
        let mut statuses: Vec<i64> = a.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["response_status"].as_i64().unwrap())
            .collect();
        statuses.sort();
        assert_eq!(statuses, [200, 500, 503]);
        let excerpt = a.body["data"][0]["response_excerpt"].as_str().unwrap();
        assert!(excerpt.starts_with("answer "), "{excerpt}");
    }
    // Settle's own counts of what it sent (kept per process, and other
    // tests in this binary send too: at least this test's).
    assert!(w.metric("settle_http_out_requests_total{to=\"webhooks\"}").await >= 15);
    assert!(
        w.metric("settle_http_out_connections_opened_total{to=\"webhooks\"}")
            .await
            >= 1
    );
    w.finish().await;
}

both!(
    gone_redirects_retry_and_rotation,
    gone_redirects_retry_and_rotation_case
);
async fn gone_redirects_retry_and_rotation_case(app: &TestApp) {
    let w = webhook_app(app, "10ms,10ms", true).await;
    // 410 Gone disables the endpoint at once.
    let (gone_url, _) = receiver(&[410]).await;
    let (gone, _) = endpoint(&w, &gone_url, json!(["payment.succeeded"])).await;
    // Redirects are not followed: a 302 is a failure, retried, then failed.
    let (moved_url, moved_seen) = receiver(&[302]).await;
    let (moved, moved_secret) = endpoint(&w, &moved_url, json!(["payment.succeeded"])).await;
    pay(&w, 1).await;
    settled(&w, &gone, 1, "failed").await;
    let e = w.get(&format!("/v1/webhook_endpoints/{gone}")).await.body;
    assert_eq!(e["status"], "disabled");
    assert!(e["disabled_reason"].as_str().unwrap().contains("410"));
    let failed = settled(&w, &moved, 1, "failed").await;
    assert_eq!(failed[0]["attempts"], 3, "the whole schedule, then failed");
    assert_eq!(moved_seen.lock().unwrap().seen.len(), 3);

    // A manual retry makes a new attempt, also for a failed delivery.
    moved_seen.lock().unwrap().script = vec![200];
    let delivery = failed[0]["id"].as_str().unwrap();
    let r = w
        .post(&format!("/v1/webhook_deliveries/{delivery}/retry"), json!({}))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["status"].as_str()),
        (200, Some("pending")),
        "{}",
        r.body
    );
    settled(&w, &moved, 1, "delivered").await;

    // After rotation both secrets sign, so receivers switch at their pace.
    let r = w
        .post(&format!("/v1/webhook_endpoints/{moved}/rotate_secret"), json!({}))
        .await;
    let new_secret = r.body["secret"].as_str().unwrap().to_owned();
    pay(&w, 1).await;
    settled(&w, &moved, 2, "delivered").await;
    let last = moved_seen.lock().unwrap().seen.last().cloned().unwrap();
    assert_eq!(
        last.headers["webhook-signature"].to_str().unwrap().split(' ').count(),
        2
    );
    assert!(verifies(&new_secret, &last) && verifies(&moved_secret, &last));
    w.finish().await;
}

both!(
    a_stuck_endpoint_holds_back_only_itself,
    a_stuck_endpoint_holds_back_only_itself_case
);
async fn a_stuck_endpoint_holds_back_only_itself_case(app: &TestApp) {
    let w = webhook_app_with(app, "10ms", true, |c| {
        c.webhooks.timeout = Duration::from_secs(600);
        c.webhooks.max_in_flight = 2;
    })
    .await;
    let (stuck_url, stuck_seen) = receiver(&[0]).await;
    let (healthy_url, _) = receiver(&[200]).await;
    let (_stuck, _) = endpoint(&w, &stuck_url, json!(["payment.succeeded"])).await;
    let (healthy, _) = endpoint(&w, &healthy_url, json!(["payment.succeeded"])).await;
    pay(&w, 20).await;
    // Every delivery to the healthy endpoint completes while the stuck one
    // holds its in-flight cap.
    settled(&w, &healthy, 20, "delivered").await;
    assert_eq!(stuck_seen.lock().unwrap().seen.len(), 2, "only its cap is in flight");
    w.finish().await;
}

both!(
    a_failing_endpoint_is_disabled_with_an_event,
    a_failing_endpoint_is_disabled_with_an_event_case
);
async fn a_failing_endpoint_is_disabled_with_an_event_case(app: &TestApp) {
    let w = webhook_app_with(
        app,
        "50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms",
        true,
        |c| {
            c.webhooks.disable_after = Duration::from_millis(300);
        },
    )
    .await;
    let (url, _) = receiver(&[500]).await;
    let (id, _) = endpoint(&w, &url, json!(["payment.succeeded"])).await;
    pay(&w, 1).await;
    let e = eventually(Duration::from_secs(30), "the endpoint to be disabled", || async {
        let e = w.get(&format!("/v1/webhook_endpoints/{id}")).await.body;
        (e["status"] == "disabled").then_some(e)
    })
    .await;
    assert!(
        e["disabled_reason"].as_str().unwrap().contains("every attempt failed"),
        "{e}"
    );
    let events = w.get("/v1/events?type=webhook_endpoint.disabled").await.body;
    let data = events["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["data"]["object"]["id"], json!(id));
    assert_eq!(data[0]["data"]["object"]["status"], "disabled");
    // Re-enabling clears the reason.
    let r = w
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/webhook_endpoints/{id}"),
            Some(&w.admin_key),
            Some(json!({"status": "enabled"})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["disabled_reason"].clone()),
        (200, Value::Null),
        "{}",
        r.body
    );
    w.finish().await;
}

both!(replay_makes_new_deliveries, replay_makes_new_deliveries_case);
async fn replay_makes_new_deliveries_case(app: &TestApp) {
    let w = webhook_app(app, "10ms", true).await;
    let (url, seen) = receiver(&[200]).await;
    let (id, _) = endpoint(&w, &url, json!(["payment.succeeded"])).await;
    pay(&w, 3).await;
    let originals = settled(&w, &id, 3, "delivered").await;

    let bad = w
        .post(
            &format!("/v1/webhook_endpoints/{id}/replay"),
            json!({"since": 100, "until": 50}),
        )
        .await;
    bad.assert_error(400, "invalid_request_error", "parameter_invalid");
    let r = w
        .post(&format!("/v1/webhook_endpoints/{id}/replay"), json!({"since": 0}))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["object"].as_str()),
        (200, Some("webhook_replay")),
        "{}",
        r.body
    );
    let progress = eventually(Duration::from_secs(30), "the replay to finish", || async {
        let list = w.get(&format!("/v1/webhook_endpoints/{id}/replay")).await.body;
        let first = list["data"][0].clone();
        (first["status"] == "done").then_some(first)
    })
    .await;
    assert_eq!(progress["deliveries"], 3, "{progress}");
    let all = settled(&w, &id, 6, "delivered").await;
    // The originals are as they were; the replay's are new deliveries.
    for o in &originals {
        let now = all.iter().find(|d| d["id"] == o["id"]).unwrap();
        assert_eq!(now["attempts"], 1);
    }
    let seen = seen.lock().unwrap().seen.clone();
    let ids: std::collections::HashSet<_> = seen
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        (seen.len(), ids.len()),
        (6, 6),
        "each event twice, under new delivery ids"
    );
    w.finish().await;
}

both!(deliveries_filter_by_status, deliveries_filter_by_status_case);
async fn deliveries_filter_by_status_case(app: &TestApp) {
    let w = webhook_app(app, "10ms", true).await;
    let (url, seen) = receiver(&[200]).await;
    let (id, _) = endpoint(&w, &url, json!(["payment.succeeded"])).await;
    pay(&w, 3).await;
    settled(&w, &id, 3, "delivered").await;
    seen.lock().unwrap().script = vec![500];
    pay(&w, 2).await;
    eventually(Duration::from_secs(30), "two failures", || async {
        let all = deliveries(&w, &id).await;
        (all.iter().filter(|d| d["status"] == "failed").count() == 2).then_some(())
    })
    .await;

    let list = |q: &'static str| {
        let w = &w;
        let id = id.clone();
        async move { w.get(&format!("/v1/webhook_endpoints/{id}/deliveries?{q}")).await }
    };
    let statuses = |r: &Resp| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(statuses(&list("status=delivered").await), ["delivered"; 3]);
    assert_eq!(statuses(&list("status=pending").await), Vec::<String>::new());
    // Filtered pages are cursor-paginated like any list.
    let first = list("status=failed&limit=1").await;
    assert_eq!(
        (statuses(&first), &first.body["has_more"]),
        (vec!["failed".into()], &json!(true))
    );
    let after = first.body["data"][0]["id"].as_str().unwrap().to_owned();
    let second = w
        .get(&format!(
            "/v1/webhook_endpoints/{id}/deliveries?status=failed&limit=1&starting_after={after}"
        ))
        .await;
    assert_eq!(
        (statuses(&second), &second.body["has_more"]),
        (vec!["failed".into()], &json!(false))
    );
    assert_ne!(second.body["data"][0]["id"], first.body["data"][0]["id"]);

    let r = list("status=exploded").await;
    r.assert_error(400, "invalid_request_error", "parameter_invalid");
    assert_eq!(r.body["error"]["param"], "status");
    w.finish().await;
}
