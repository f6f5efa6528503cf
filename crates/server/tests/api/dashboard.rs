//! `/dashboard` in a real headless Chromium: sign in with an API key, find a
//! failed delivery, read its attempts (a receiver's markup shown as text),
//! press Retry and see it delivered; page through payments and events by
//! cursor; sign out. Also the headers that keep the page locked down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use settle::config::Config;
use settle_core::clock::SystemClock;
use settle_domain::webhook::RetrySchedule;

use crate::browser::Browser;
use crate::support::{Backend, TestApp, TestDb, eventually, http_client};
use crate::webhooks::{endpoint, pay, settled};

/// What the receiver answers, as markup a careless page would render.
const HOSTILE: &str = "<img src=x id=injected onerror=\"document.title='pwned'\"><b>not markup</b>";

/// A receiver that answers every request with the status in `status`.
async fn receiver(status: Arc<AtomicU16>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let code = status.load(Ordering::SeqCst);
            async move {
                (
                    axum::http::StatusCode::from_u16(code).unwrap(),
                    [("content-type", "text/html")],
                    HOSTILE,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

/// A SQLite app whose deliveries fail for good after one quick retry.
pub(crate) async fn app() -> TestApp {
    let mut config = Config::default();
    config.webhooks.allow_private_targets = true;
    config.webhooks.breaker_cooldown = Duration::from_millis(50);
    // One retry, then `failed`.
    config.webhooks.retry_schedule = RetrySchedule::parse("10ms").unwrap();
    config.queue.poll = Duration::from_millis(10);
    let db = TestDb::create(Backend::Sqlite).await;
    TestApp::spawn_config(db, Arc::new(SystemClock), config).await
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_retries_a_failed_delivery() {
    let Some(browser) = Browser::start().await else { return };
    let w = app().await;
    let status = Arc::new(AtomicU16::new(500));
    let url = receiver(Arc::clone(&status)).await;
    let (endpoint_id, _) = endpoint(&w, &url, json!(["payment.succeeded"])).await;
    pay(&w, 3).await;
    let failed = settled(&w, &endpoint_id, 3, "failed").await;
    let delivery = failed[0]["id"].as_str().unwrap().to_owned();

    // Sign in: a wrong key is refused and not kept.
    browser.goto(&w.url("/dashboard")).await;
    browser.type_into("#key", "sk_test_not_a_key").await;
    browser.click("#sign-in").await;
    browser
        .wait_text("#error", "the refusal", |t| t.contains("not accepted"))
        .await;
    assert_eq!(browser.script("return sessionStorage.length").await, 0);
    assert!(browser.displayed("#sign-in-form").await && !browser.displayed("#nav").await);
    browser.type_into("#key", &w.admin_key).await;
    browser.click("#sign-in").await;
    eventually(Duration::from_secs(10), "the signed-in page", || async {
        (!browser.displayed("#sign-in-form").await && browser.displayed("#nav").await).then_some(())
    })
    .await;

    // Endpoints, then the endpoint's failed deliveries.
    browser.click(&format!("a[href='#/endpoints/{endpoint_id}']")).await;
    eventually(Duration::from_secs(20), "three failed rows", || async {
        let rows = browser.all("tr[data-delivery] .status").await;
        let mut statuses = Vec::new();
        for i in 1..=rows.len() {
            statuses.push(browser.text_of(&format!("tbody tr:nth-child({i}) .status")).await?);
        }
        (statuses == ["failed", "failed", "failed"]).then_some(())
    })
    .await;
    // The status filter narrows the list by the API's own filter.
    browser
        .goto(&w.url(&format!("/dashboard/#/endpoints/{endpoint_id}?status=delivered")))
        .await;
    browser
        .wait_text("#view", "an empty delivered list", |t| t.contains("No deliveries."))
        .await;

    // One delivery: its attempts show the receiver's answer as text only.
    browser
        .goto(&w.url(&format!("/dashboard/#/deliveries/{delivery}")))
        .await;
    browser
        .wait_text("#delivery-status", "the failed delivery", |t| t == "failed")
        .await;
    let excerpt = browser
        .wait_text("pre.excerpt", "the response excerpt", |t| !t.is_empty())
        .await;
    assert_eq!(excerpt, HOSTILE, "shown verbatim, as text");
    assert!(
        browser.all("img, #injected, pre b").await.is_empty(),
        "no markup rendered"
    );
    assert_ne!(browser.script("return document.title").await, "pwned");

    // Retry, with the receiver healthy again: the page follows it to delivered.
    status.store(200, Ordering::SeqCst);
    browser.click("#retry").await;
    browser
        .wait_text("#delivery-status", "the retried delivery", |t| t == "delivered")
        .await;
    browser
        .wait_text("#view", "the new attempt", |t| t.contains("200"))
        .await;
    let api = w.get(&format!("/v1/webhook_deliveries/{delivery}")).await;
    assert_eq!(api.body["status"], "delivered");
    let others = w
        .get(&format!("/v1/webhook_endpoints/{endpoint_id}/deliveries?status=failed"))
        .await;
    assert_eq!(ids(&others.body).len(), 2, "only the retried one changed");

    // Payments page by page (two per page), by the API's cursors.
    let all = ids(&w.get("/v1/payments?limit=100").await.body);
    assert_eq!(all.len(), 3);
    let shows = |expected: Value, what: &'static str| {
        let browser = &browser;
        eventually(Duration::from_secs(20), what, move || {
            let expected = expected.clone();
            async move {
                let ids = browser
                    .script("return [...document.querySelectorAll('tr[data-payment]')].map(r => r.dataset.payment)")
                    .await;
                (ids == expected).then_some(())
            }
        })
    };
    browser.goto(&w.url("/dashboard/#/payments?limit=2")).await;
    shows(json!(all[..2]), "the first page").await;
    browser.click("#older").await;
    shows(json!(all[2..]), "the second page").await;
    browser.click("#newer").await;
    shows(json!(all[..2]), "back to the first page").await;
    let amount = browser.text_of("tr[data-payment] td:nth-child(2)").await.unwrap();
    assert!(amount.ends_with(" USD") && amount.contains('.'), "{amount}");

    // Events, filtered by type.
    browser.goto(&w.url("/dashboard/#/events?type=payment.succeeded")).await;
    eventually(Duration::from_secs(20), "three payment events", || async {
        let n = browser
            .script("return document.querySelectorAll('#view tbody tr').length")
            .await;
        (n == 3).then_some(())
    })
    .await;

    // Signing out forgets the key.
    browser.click("#sign-out").await;
    eventually(Duration::from_secs(10), "the sign-in form", || async {
        browser.displayed("#sign-in-form").await.then_some(())
    })
    .await;
    assert!(!browser.displayed("#nav").await);
    assert_eq!(browser.script("return sessionStorage.length").await, 0);
    browser.quit().await;
    w.finish().await;
}

#[tokio::test]
async fn dashboard_files_are_locked_down() {
    let w = TestApp::spawn(Backend::Sqlite).await;
    let http = http_client();
    for path in ["/dashboard/", "/dashboard/app.js", "/dashboard/app.css"] {
        let r = http.get(w.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} needs no key");
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
        for rule in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(rule), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("http"), "{csp}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    // `/dashboard` lands on the page.
    let r = http.get(w.url("/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("<script src=\"/dashboard/app.js\""),
        "no inline script: {page}"
    );
    assert!(!page.contains("<script>") && !page.contains("style="));
    // The script only writes text into the page.
    let script = http
        .get(w.url("/dashboard/app.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    w.finish().await;
}
