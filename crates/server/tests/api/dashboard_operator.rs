//! The dashboard as an operator runs webhooks from it, in a real headless
//! Chromium: create an endpoint (its secret shown once), edit it, send a
//! test event, rotate the secret, recover failed deliveries after an
//! outage, filter deliveries by event type, read an event's payload, watch
//! the overview, delete the endpoint; every action checked through the API.
//! A viewer's key sees no write controls. axe-core (installed from npm by
//! this test, never shipped) finds no serious or critical violation on any
//! page. With `SETTLE_SCREENSHOTS_DIR` set, each page is saved as a PNG
//! there (README's screenshots come from this test).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::dashboard::app;
use crate::support::{TestApp, eventually};
use crate::webhooks::pay;

/// Every body the receiver got, and the status it answers with now.
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<Value>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    async fn start() -> (String, Receiver) {
        let r = Receiver::default();
        r.status.store(200, Ordering::SeqCst);
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                        state.bodies.lock().unwrap().push(v);
                    }
                    axum::http::StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/hook"), r)
    }

    fn of_type(&self, t: &str) -> usize {
        self.bodies.lock().unwrap().iter().filter(|b| b["type"] == t).count()
    }
}

/// axe-core's script, installed from the npm registry into the target
/// directory once. `None` (with a notice) without npm, except under
/// `CI=true`, where that is a failure.
fn axe_source() -> Option<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-npm");
    let script = dir.join("node_modules/axe-core/axe.min.js");
    if !script.exists() {
        let installed = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .arg("axe-core@4")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !installed {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but axe-core could not be installed with npm"
            );
            eprintln!("NOTICE: npm or the npm registry unavailable; accessibility checks skipped");
            return None;
        }
    }
    std::fs::read_to_string(script).ok()
}

/// Checks the page with axe-core and, when asked, saves a screenshot.
async fn inspect(browser: &Browser, axe: Option<&str>, page: &str) {
    if let Some(axe) = axe {
        let violations = browser.accessibility_violations(axe).await;
        assert!(violations.is_empty(), "{page}: {violations:#?}");
    }
    if let Ok(dir) = std::env::var("SETTLE_SCREENSHOTS_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            PathBuf::from(dir).join(format!("{page}.png")),
            browser.screenshot().await,
        )
        .unwrap();
    }
}

async fn sign_in(browser: &Browser, w: &TestApp, key: &str) {
    browser.goto(&w.url("/dashboard/")).await;
    browser.type_into("#key", key).await;
    browser.click("#sign-in").await;
    eventually(Duration::from_secs(10), "the signed-in page", || async {
        (!browser.displayed("#sign-in-form").await && browser.displayed("#nav").await).then_some(())
    })
    .await;
}

/// The value of an input, read in the page.
async fn value_of(browser: &Browser, id: &str) -> String {
    let v = browser
        .script(&format!(
            "const e = document.getElementById('{id}'); return e ? e.value : null"
        ))
        .await;
    v.as_str().unwrap_or_default().to_owned()
}

async fn deliveries(w: &TestApp, endpoint: &str, filter: &str) -> Vec<Value> {
    let r = w
        .get(&format!(
            "/v1/webhook_endpoints/{endpoint}/deliveries?limit=100&{filter}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_runs_webhooks_from_the_dashboard() {
    let Some(browser) = Browser::start().await else { return };
    let axe = axe_source();
    let axe = axe.as_deref();
    let w = app().await;
    let (url, receiver) = Receiver::start().await;

    browser.goto(&w.url("/dashboard/")).await;
    browser.find("#key").await;
    inspect(&browser, axe, "sign-in").await;
    sign_in(&browser, &w, &w.admin_key).await;

    // Create: the secret is shown once, and the API has the endpoint.
    browser.goto(&w.url("/dashboard/#/endpoints")).await;
    browser.click("#new-endpoint").await;
    browser.type_into("#endpoint-url", &url).await;
    browser.type_into("#endpoint-description", "orders service").await;
    browser.click("#create-endpoint").await;
    browser.find("#secret").await;
    let first_secret = value_of(&browser, "secret").await;
    assert!(first_secret.starts_with("whsec_"), "{first_secret}");
    inspect(&browser, axe, "endpoint-created").await;
    let listed = w.get("/v1/webhook_endpoints").await;
    let created = &listed.body["data"][0];
    assert_eq!(
        (created["url"].as_str(), created["description"].as_str()),
        (Some(url.as_str()), Some("orders service"))
    );
    assert_eq!(created["enabled_events"], json!(["*"]));
    let id = created["id"].as_str().unwrap().to_owned();

    // Edit: description, and only payment.succeeded.
    browser.goto(&w.url(&format!("/dashboard/#/endpoints/{id}"))).await;
    browser.click("#edit-endpoint").await;
    browser
        .script("document.getElementById('endpoint-description').value = ''; return true")
        .await;
    browser.type_into("#endpoint-description", "billing").await;
    browser.click("#edit-all").await;
    browser.click("#edit-payment-succeeded").await;
    browser.click("#save-endpoint").await;
    browser
        .wait_text("#endpoint-events", "the saved event types", |t| {
            t == "payment.succeeded"
        })
        .await;
    let edited = w.get(&format!("/v1/webhook_endpoints/{id}")).await.body;
    assert_eq!(edited["description"], "billing");
    assert_eq!(edited["enabled_events"], json!(["payment.succeeded"]));
    assert_eq!(edited["version"], 2);

    // A test event reaches this endpoint, signed and logged.
    browser.click("#send-test").await;
    browser
        .wait_text("#test-status", "the test delivery", |t| t == "delivered")
        .await;
    let tests = deliveries(&w, &id, "event_type=webhook_endpoint.test").await;
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0]["status"], "delivered");
    assert_eq!(receiver.of_type("webhook_endpoint.test"), 1);

    // Rotate: a new secret, shown once.
    browser.script("window.confirm = () => true; return true").await;
    browser.click("#rotate-secret").await;
    let rotated = eventually(Duration::from_secs(20), "the new secret", || async {
        let s = value_of(&browser, "secret").await;
        s.starts_with("whsec_").then_some(s)
    })
    .await;
    assert_ne!(rotated, first_secret);
    assert_eq!(w.get(&format!("/v1/webhook_endpoints/{id}")).await.body["version"], 3);
    // An edit after the rotation sends the rotation's version.
    browser.click("#edit-endpoint").await;
    browser
        .script("document.getElementById('endpoint-description').value = ''; return true")
        .await;
    browser.type_into("#endpoint-description", "billing, rotated").await;
    browser.click("#save-endpoint").await;
    eventually(Duration::from_secs(20), "the edit after the rotation", || async {
        let e = w.get(&format!("/v1/webhook_endpoints/{id}")).await.body;
        (e["description"] == "billing, rotated" && e["version"] == 4).then_some(())
    })
    .await;
    browser.find("#send-test").await;

    // An outage: two payments' deliveries fail for good; once the receiver
    // is back, Recover sends exactly those again.
    receiver.status.store(500, Ordering::SeqCst);
    pay(&w, 2).await;
    let failed = eventually(Duration::from_secs(30), "two failed deliveries", || async {
        let all = deliveries(&w, &id, "event_type=payment.succeeded").await;
        (all.len() == 2 && all.iter().all(|d| d["status"] == "failed")).then_some(all)
    })
    .await;
    receiver.status.store(200, Ordering::SeqCst);
    browser
        .goto(&w.url(&format!("/dashboard/#/endpoints/{id}?status=failed")))
        .await;
    browser.find("#recover").await;
    browser.click("#recover").await;
    browser
        .wait_text("#recover-progress", "the recovery", |t| t.starts_with("done: 2 "))
        .await;
    eventually(Duration::from_secs(30), "the recovered deliveries", || async {
        let all = deliveries(&w, &id, "event_type=payment.succeeded").await;
        let same: Vec<_> = all.iter().map(|d| d["id"].clone()).collect();
        let before: Vec<_> = failed.iter().map(|d| d["id"].clone()).collect();
        (same == before && all.iter().all(|d| d["status"] == "delivered")).then_some(())
    })
    .await;
    assert_eq!(
        receiver.of_type("webhook_endpoint.test"),
        1,
        "the test event was not sent again"
    );

    // Deliveries filtered by event type, then one delivery's payload.
    browser
        .goto(&w.url(&format!("/dashboard/#/endpoints/{id}?event_type=webhook_endpoint.test")))
        .await;
    eventually(Duration::from_secs(20), "one test delivery listed", || async {
        let n = browser
            .script("return document.querySelectorAll('tr[data-delivery]').length")
            .await;
        (n == 1).then_some(())
    })
    .await;
    inspect(&browser, axe, "endpoint").await;
    let delivery = tests[0]["id"].as_str().unwrap();
    browser.click(&format!("a[href='#/deliveries/{delivery}']")).await;
    let payload = browser
        .wait_text("#payload", "the event payload", |t| !t.is_empty())
        .await;
    assert!(payload.contains("\"type\": \"webhook_endpoint.test\""), "{payload}");
    inspect(&browser, axe, "delivery").await;

    // The overview counts what happened and draws it.
    browser.goto(&w.url("/dashboard/#/overview")).await;
    let delivered = browser
        .wait_text("#total-delivered", "the delivered count", |t| {
            t.parse::<u64>().is_ok_and(|n| n >= 3)
        })
        .await;
    let retrying: u64 = browser.text_of("#total-retrying").await.unwrap().parse().unwrap();
    let failed_count: u64 = browser.text_of("#total-failed").await.unwrap().parse().unwrap();
    assert!(
        retrying >= 2 && failed_count >= 2,
        "{retrying} retrying, {failed_count} failed"
    );
    let bars = browser
        .script("return document.querySelectorAll('#minute-chart rect').length")
        .await;
    assert!(bars.as_u64().unwrap_or(0) >= 1, "{bars}");
    let p50 = browser.text_of("#receipt-p50").await.unwrap();
    assert!(p50.ends_with(" ms"), "{p50}");
    assert!(!browser.all(&format!("tr[data-endpoint='{id}']")).await.is_empty());
    assert!(delivered.parse::<u64>().unwrap() >= 3);
    // Paused, so no redraw runs under the accessibility check.
    browser.click("#auto-refresh").await;
    assert_eq!(
        browser
            .script("return document.getElementById('auto-refresh').checked")
            .await,
        false
    );
    inspect(&browser, axe, "overview").await;

    // Delete.
    browser.goto(&w.url(&format!("/dashboard/#/endpoints/{id}"))).await;
    browser.script("window.confirm = () => true; return true").await;
    browser.click("#delete-endpoint").await;
    eventually(Duration::from_secs(20), "the endpoint gone", || async {
        (w.get(&format!("/v1/webhook_endpoints/{id}")).await.status == 404).then_some(())
    })
    .await;

    // A viewer sees the pages but no write control.
    let other = w
        .post("/v1/webhook_endpoints", json!({"url": url, "enabled_events": ["*"]}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.post(&format!("/v1/webhook_endpoints/{other}/test"), json!({})).await;
    browser.click("#sign-out").await;
    let viewer = w.key("viewer").await;
    sign_in(&browser, &w, &viewer).await;
    browser.goto(&w.url("/dashboard/#/endpoints")).await;
    browser.find(&format!("a[href='#/endpoints/{other}']")).await;
    assert!(browser.all("#new-endpoint").await.is_empty());
    browser.goto(&w.url(&format!("/dashboard/#/endpoints/{other}"))).await;
    browser.find("tr[data-delivery]").await;
    for control in [
        "#edit-endpoint",
        "#rotate-secret",
        "#send-test",
        "#delete-endpoint",
        "#recover",
        ".retry",
    ] {
        assert!(browser.all(control).await.is_empty(), "a viewer sees {control}");
    }
    inspect(&browser, axe, "viewer-endpoint").await;
    browser.quit().await;
    w.finish().await;
}
