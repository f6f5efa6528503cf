//! Webhooks under SIGKILL: every committed (event, endpoint) pair reaches
//! its endpoint at least once, from the real `settle` binary killed and
//! restarted while payments are made and a faulty receiver answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};
use sqlx::Row;

use super::{Answer, Pending, Target, attempt, create};
use crate::support::{Backend, postgres_available};

/// Payments per kill round (each makes two events).
const PER_WEBHOOK_ROUND: usize = 200;

/// What the faulty receiver saw: every request (by the endpoint path it
/// came to), and the (endpoint, event) pairs it answered with a 2xx.
#[derive(Default)]
struct Faulty {
    requests: Vec<(String, axum::http::HeaderMap, Vec<u8>)>,
    attempts: HashMap<String, u32>,
    delivered: HashMap<(String, String), Vec<String>>,
}

/// Fails about half of the messages' first attempts (seeded by the message
/// id, never more than twice in a row for one message, so the outcome is
/// settled), and lets some first attempts hang past the client timeout.
async fn faulty_receive(
    axum::extract::State(state): axum::extract::State<Arc<std::sync::Mutex<Faulty>>>,
    axum::extract::Path(endpoint): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let seed = id
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let (attempt, hang) = {
        let mut s = state.lock().unwrap();
        s.requests.push((endpoint.clone(), headers.clone(), body.to_vec()));
        let n = s.attempts.entry(id.clone()).or_insert(0);
        *n += 1;
        (*n, seed % 11 == 0 && *n == 1)
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let failures = (seed % 3) as u32; // 0, 1 or 2 failures before success
    if attempt <= failures {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    let event_id = event["id"].as_str().unwrap_or_default().to_owned();
    state
        .lock()
        .unwrap()
        .delivered
        .entry((endpoint, event_id))
        .or_default()
        .push(id);
    axum::http::StatusCode::OK
}

/// At least once under faults: a receiver failing about half the time and
/// sometimes hanging, payments created while `settle` is SIGKILLed and
/// restarted: two endpoints, one for every event and one for
/// `payment.succeeded`, thousands of (event, endpoint) pairs. Afterwards
/// every pair was received with a 2xx, every request's signature verifies
/// (with the independent `standardwebhooks` crate, under its endpoint's
/// secret), and a pair received twice came with the same `webhook-id`.
async fn webhooks_survive_sigkill(backend: Backend) {
    let state: Arc<std::sync::Mutex<Faulty>> = Arc::default();
    let app = axum::Router::new()
        .route("/hook/{endpoint}", axum::routing::post(faulty_receive))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let mut target = Target::new(backend).await;
    target.env = vec![
        ("SETTLE_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true".into()),
        (
            "SETTLE_WEBHOOK_RETRY_SCHEDULE",
            "50ms,100ms,200ms,400ms,400ms,400ms".into(),
        ),
        ("SETTLE_WEBHOOK_TIMEOUT_MS", "1000".into()),
        ("SETTLE_WEBHOOK_BREAKER_COOLDOWN_MS", "100".into()),
        ("SETTLE_MASTER_KEY", settle_core::secrets::MasterKeys::generate_text()),
    ];
    let secret = target.admin_key();
    let http = crate::support::http_client();
    let (mut server, mut base) = target.start().await;
    let mut signing: HashMap<String, String> = HashMap::new();
    for (name, events) in [("all", json!(["*"])), ("paid", json!(["payment.succeeded"]))] {
        let created: Value = http
            .post(format!("{base}/v1/webhook_endpoints"))
            .bearer_auth(&secret)
            .json(&json!({"url": format!("{hook}/{name}"), "enabled_events": events}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        signing.insert(name.to_owned(), created["secret"].as_str().unwrap().to_owned());
    }
    let bank = create(
        &http,
        &base,
        &secret,
        json!({"name": "bank", "currency": "usd", "allow_negative": true}),
    )
    .await;
    let shop = create(&http, &base, &secret, json!({"name": "shop", "currency": "usd"})).await;

    let mut rng = rand::rng();
    let rounds = 5;
    for round in 0..rounds {
        let pending: Vec<Pending> = (0..PER_WEBHOOK_ROUND)
            .map(|i| Pending {
                key: format!("w{round}-{i}"),
                body: json!({"amount": 1 + i, "currency": "usd", "source": bank, "destination": shop}),
            })
            .collect();
        let tasks: Vec<_> = pending
            .into_iter()
            .map(|p| {
                let (http, base, secret) = (http.clone(), base.clone(), secret.clone());
                tokio::spawn(async move {
                    loop {
                        match attempt(&http, &base, &secret, &p).await {
                            Answer::Final(_) => return None,
                            Answer::Retry => tokio::time::sleep(Duration::from_millis(10)).await,
                            Answer::Down => return Some(p),
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..800))).await;
        server.0.kill().unwrap();
        let _ = server.0.wait();
        let mut left = Vec::new();
        for t in tasks {
            if let Some(p) = t.await.unwrap() {
                left.push(p);
            }
        }
        (server, base) = target.start().await;
        // Whatever the kill cut off is sent again with its key.
        for p in left {
            loop {
                match attempt(&http, &base, &secret, &p).await {
                    Answer::Final(_) => break,
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
    }

    // Every committed (event, matching endpoint) pair is received with a 2xx.
    let pool = target.pool().await;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for r in sqlx::query("SELECT id, type FROM events")
        .fetch_all(&pool)
        .await
        .unwrap()
    {
        let bytes: Vec<u8> = r.try_get("id").unwrap();
        let event = settle_domain::ids::EventId::from_bytes(&bytes).unwrap().to_string();
        let kind: String = r.try_get("type").unwrap();
        if kind == "payment.succeeded" {
            pairs.push(("paid".into(), event.clone()));
        }
        pairs.push(("all".into(), event));
    }
    assert!(
        pairs.len() >= 3 * rounds * PER_WEBHOOK_ROUND,
        "{} (endpoint, event) pairs",
        pairs.len()
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let missing = {
            let s = state.lock().unwrap();
            pairs.iter().filter(|p| !s.delivered.contains_key(*p)).count()
        };
        if missing == 0 {
            break;
        }
        if Instant::now() >= deadline {
            for q in [
                "SELECT status || ':' || CAST(COUNT(*) AS TEXT) AS x FROM webhook_deliveries GROUP BY status",
                "SELECT consumer || ':' || CAST(COUNT(*) AS TEXT) || ':' || CAST(SUM(CASE WHEN lease_token IS NULL THEN 0 ELSE 1 END) AS TEXT) || ':' || CAST(MAX(deliveries) AS TEXT) || ':' || CAST(MIN(run_at) AS TEXT) AS x FROM jobs GROUP BY consumer",
                "SELECT consumer || ':' || CAST(COUNT(*) AS TEXT) || ':' || COALESCE(MAX(last_error), '') AS x FROM dead_jobs GROUP BY consumer",
            ] {
                for r in sqlx::query(q).fetch_all(&pool).await.unwrap() {
                    let x: String = r.try_get("x").unwrap();
                    eprintln!("state at timeout: {x}");
                }
            }
            eprintln!(
                "DIAG now {}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{missing} pairs never reached their endpoint"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(server);
    {
        let s = state.lock().unwrap();
        for (endpoint, headers, body) in &s.requests {
            standardwebhooks::Webhook::new(&signing[endpoint])
                .unwrap()
                .verify(body, headers)
                .expect("every request's signature verifies");
        }
        for (pair, ids) in &s.delivered {
            assert!(
                ids.iter().all(|id| id == &ids[0]),
                "{pair:?} came with different webhook-ids: {ids:?}"
            );
        }
    }
    pool.close().await;
    target.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_webhook_deliveries_sqlite() {
    webhooks_survive_sigkill(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_webhook_deliveries_postgres() {
    if postgres_available() {
        webhooks_survive_sigkill(Backend::Postgres).await;
    }
}
