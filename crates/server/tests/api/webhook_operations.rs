//! The webhook operations an operator runs from the dashboard, on both
//! databases: a `webhook_endpoint.test` event sent to one endpoint alone
//! (signed, logged, listed with the events, never fanned out to `*`), a
//! recovery that sends again only the deliveries that failed for good (the
//! same deliveries, under the same `webhook-id`), deliveries listed by event
//! type, the overview's `GET /v1/webhook_stats`, and the per-endpoint
//! delivery series at `/metrics` with their label bound.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};
use settle::config::{Config, FlagLayer};

use crate::graphql::graphql;
use crate::support::{Resp, TestApp, both, eventually};
use crate::webhooks::{deliveries, endpoint, pay, settled, webhook_app_with};

const TEST_EVENT: &str = "webhook_endpoint.test";
const SETTLE: Duration = Duration::from_secs(30);

/// One request as a [`Hook`] saw it, and what it answered.
#[derive(Clone)]
struct Seen {
    headers: HeaderMap,
    raw: Vec<u8>,
    body: Value,
    answered: u16,
}

impl Seen {
    fn webhook_id(&self) -> String {
        self.headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// Whether the independent `standardwebhooks` crate accepts it.
    fn verifies(&self, secret: &str) -> bool {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&self.raw, &self.headers)
            .is_ok()
    }
}

struct HookState {
    answer: u16,
    seen: Vec<Seen>,
}

/// A receiver answering every request with one status, which the test can
/// change at any time (an outage, then its end); it records everything.
struct Hook {
    url: String,
    state: Arc<Mutex<HookState>>,
}

async fn hooked(State(state): State<Arc<Mutex<HookState>>>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let answered = {
        let mut s = state.lock().unwrap();
        let answered = s.answer;
        s.seen.push(Seen {
            headers,
            raw: body.to_vec(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            answered,
        });
        answered
    };
    StatusCode::from_u16(answered).unwrap()
}

impl Hook {
    async fn start(answer: u16) -> Hook {
        let state = Arc::new(Mutex::new(HookState {
            answer,
            seen: Vec::new(),
        }));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hooked))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hook {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    fn answer(&self, status: u16) {
        self.state.lock().unwrap().answer = status;
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The requests whose event has this type.
    fn of_type(&self, event_type: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.body["type"] == event_type)
            .collect()
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A well-formed endpoint id that names nothing.
fn unknown_endpoint_id() -> String {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let uuid = settle_domain::ids::uuid_v7(now_ms, rand::random::<u128>());
    format!("we_{}", settle_domain::ids::encode_base32(uuid.as_u128()))
}

fn ids(list: &[Value]) -> BTreeSet<String> {
    list.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect()
}

both!(
    a_test_event_goes_to_its_endpoint_alone,
    a_test_event_goes_to_its_endpoint_alone_case
);
async fn a_test_event_goes_to_its_endpoint_alone_case(app: &TestApp) {
    let w = webhook_app_with(app, "10ms", true, |_| {}).await;
    let a_hook = Hook::start(200).await;
    let b_hook = Hook::start(200).await;
    let (a, a_secret) = endpoint(&w, &a_hook.url, json!(["*"])).await;
    let (b, _) = endpoint(&w, &b_hook.url, json!(["*"])).await;

    let r = w.post(&format!("/v1/webhook_endpoints/{a}/test"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["object"], "webhook_delivery", "{}", r.body);
    assert_eq!(r.body["endpoint"], a.as_str(), "{}", r.body);
    assert_eq!(r.body["event_type"], TEST_EVENT, "{}", r.body);
    assert_eq!(
        (&r.body["status"], &r.body["attempts"]),
        (&json!("pending"), &json!(0)),
        "{}",
        r.body
    );
    let delivery = r.id();
    let event = r.body["event"].as_str().unwrap().to_owned();

    // Delivered like any delivery: signed, the delivery id as `webhook-id`,
    // the endpoint (without its secret) as the event's object.
    let done = eventually(SETTLE, "the test delivery to be delivered", || async {
        let d = w.get(&format!("/v1/webhook_deliveries/{delivery}")).await.body;
        (d["status"] == "delivered").then_some(d)
    })
    .await;
    assert_eq!(
        (&done["attempts"], &done["last_status"]),
        (&json!(1), &json!(200)),
        "{done}"
    );
    let got = a_hook.of_type(TEST_EVENT);
    assert_eq!(got.len(), 1, "A receives its test event once");
    let req = &got[0];
    assert_eq!(req.webhook_id(), delivery);
    assert!(req.headers.contains_key("webhook-signature"), "unsigned");
    assert!(req.verifies(&a_secret), "the test delivery does not verify");
    assert_eq!(req.body["object"], "event", "{}", req.body);
    assert_eq!(req.body["id"], event.as_str(), "{}", req.body);
    assert_eq!(req.body["data"]["object"]["object"], "webhook_endpoint", "{}", req.body);
    assert_eq!(req.body["data"]["object"]["id"], a.as_str(), "{}", req.body);
    assert!(
        !String::from_utf8_lossy(&req.raw).contains(&a_secret),
        "the endpoint's secret is in the test event"
    );

    // B wants `*` and still does not get it. An event committed after the
    // test event reaches B (fan-outs go in commit order), and by then no
    // test event has, nor is one among B's deliveries.
    let r = w
        .call(
            Method::PATCH,
            &format!("/v1/webhook_endpoints/{b}"),
            Some(&w.admin_key),
            Some(json!({"description": "after the test"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(SETTLE, "B to receive the later update", || async {
        b_hook
            .of_type("webhook_endpoint.updated")
            .iter()
            .any(|s| s.body["data"]["object"]["id"] == b.as_str())
            .then_some(())
    })
    .await;
    assert!(b_hook.of_type(TEST_EVENT).is_empty(), "B received A's test event");
    let listed = w
        .get(&format!("/v1/webhook_endpoints/{b}/deliveries?event_type={TEST_EVENT}"))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["data"], json!([]), "B has a test delivery");
    let listed = w
        .get(&format!("/v1/webhook_endpoints/{a}/deliveries?event_type={TEST_EVENT}"))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        ids(listed.body["data"].as_array().unwrap()),
        BTreeSet::from([delivery.clone()])
    );

    // The event is listed like any other.
    let events = w.get(&format!("/v1/events?type={TEST_EVENT}")).await;
    assert_eq!(events.status, 200, "{}", events.body);
    let data = events.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{}", events.body);
    assert_eq!(data[0]["id"], event.as_str());
    assert_eq!(data[0]["type"], TEST_EVENT);
    assert_eq!(data[0]["data"]["object"]["id"], a.as_str());

    // Sending one is a write: a viewer may not.
    let viewer = w.key("viewer").await;
    w.call(
        Method::POST,
        &format!("/v1/webhook_endpoints/{a}/test"),
        Some(&viewer),
        Some(json!({})),
    )
    .await
    .assert_error(403, "permission_error", "permission_denied");

    // An endpoint that is gone, or never was.
    let c_hook = Hook::start(200).await;
    let (c, _) = endpoint(&w, &c_hook.url, json!(["payment.failed"])).await;
    let r = w
        .call(
            Method::DELETE,
            &format!("/v1/webhook_endpoints/{c}"),
            Some(&w.admin_key),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for missing in [c, unknown_endpoint_id()] {
        w.post(&format!("/v1/webhook_endpoints/{missing}/test"), json!({}))
            .await
            .assert_error(404, "invalid_request_error", "resource_missing");
    }

    // GraphQL's face of the same operation.
    let send = "mutation($id: ID!) { sendWebhookTest(id: $id) { id endpointId eventType status } }";
    let (_, body, _) = graphql(&w, &viewer, send, json!({"id": a})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "permission_denied", "{body}");
    let (status, body, _) = graphql(&w, &w.admin_key, send, json!({"id": a})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let sent = &body["data"]["sendWebhookTest"];
    assert_eq!(
        (&sent["endpointId"], &sent["eventType"], &sent["status"]),
        (&json!(a), &json!(TEST_EVENT), &json!("pending")),
        "{body}"
    );
    let second = sent["id"].as_str().unwrap().to_owned();
    let got = eventually(SETTLE, "the second test request", || async {
        let got = a_hook.of_type(TEST_EVENT);
        (got.len() >= 2).then_some(got)
    })
    .await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].webhook_id(), second);
    assert!(got[1].verifies(&a_secret));
    // Two test events in all: the refused and missing ones made none.
    let events = w.get(&format!("/v1/events?type={TEST_EVENT}")).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 2, "{}", events.body);
    assert!(b_hook.of_type(TEST_EVENT).is_empty(), "B received a test event");
    w.finish().await;
}

/// The replay `replay` of `endpoint` once it is done.
async fn replay_done(w: &TestApp, endpoint: &str, replay: &str) -> Value {
    eventually(SETTLE, "the replay to finish", || async {
        let list = w.get(&format!("/v1/webhook_endpoints/{endpoint}/replay")).await.body;
        list["data"]
            .as_array()?
            .iter()
            .find(|r| r["id"] == replay && r["status"] == "done")
            .cloned()
    })
    .await
}

both!(
    a_recovery_sends_the_failed_deliveries_again,
    a_recovery_sends_the_failed_deliveries_again_case
);
async fn a_recovery_sends_the_failed_deliveries_again_case(app: &TestApp) {
    // Two attempts in all: a delivery fails for good 100 ms after its first.
    let w = webhook_app_with(app, "100ms", true, |_| {}).await;
    let since = unix_now() - 1;
    let hook = Hook::start(200).await;
    let (id, secret) = endpoint(&w, &hook.url, json!(["payment.succeeded"])).await;
    pay(&w, 1).await;
    let kept = settled(&w, &id, 1, "delivered").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The outage.
    hook.answer(500);
    pay(&w, 3).await;
    let before = eventually(SETTLE, "three deliveries to fail for good", || async {
        let all = deliveries(&w, &id).await;
        (all.len() == 4 && all.iter().filter(|d| d["status"] == "failed").count() == 3).then_some(all)
    })
    .await;
    let failed: BTreeSet<String> = before
        .iter()
        .filter(|d| d["status"] == "failed")
        .map(|d| {
            assert_eq!(d["attempts"], 2, "{d}");
            d["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(!failed.contains(&kept));

    // A recovery of a range holding none of them recovers nothing.
    let r = w
        .post(
            &format!("/v1/webhook_endpoints/{id}/replay"),
            json!({"since": since - 100, "until": since - 50, "failed_only": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let empty = replay_done(&w, &id, &r.id()).await;
    assert_eq!(empty["deliveries"], 0, "{empty}");
    let all = deliveries(&w, &id).await;
    assert_eq!(
        all.iter().filter(|d| d["status"] == "failed").count(),
        3,
        "a recovery outside the range touched them"
    );

    // The outage is over: recover.
    hook.answer(200);
    let r = w
        .post(
            &format!("/v1/webhook_endpoints/{id}/replay"),
            json!({"since": since, "failed_only": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["object"], "webhook_replay", "{}", r.body);
    assert_eq!(r.body["endpoint"], id.as_str(), "{}", r.body);
    assert_eq!(r.body["failed_only"], true, "{}", r.body);
    assert_eq!(r.body["status"], "running", "{}", r.body);
    let progress = replay_done(&w, &id, &r.id()).await;
    assert_eq!(progress["failed_only"], true, "{progress}");
    assert_eq!(progress["deliveries"], 3, "{progress}");

    // The same deliveries, delivered now; none new; the delivered one as it was.
    let after = settled(&w, &id, 4, "delivered").await;
    assert_eq!(ids(&after), ids(&before), "a recovery makes no new deliveries");
    for d in &after {
        let expected = if d["id"] == kept.as_str() { 1 } else { 3 };
        assert_eq!(d["attempts"], expected, "{d}");
    }
    let recovered = failed.iter().next().unwrap();
    let attempts = w
        .get(&format!("/v1/webhook_deliveries/{recovered}/attempts"))
        .await
        .body;
    let mut statuses: Vec<i64> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["response_status"].as_i64().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, [200, 500, 500], "{attempts}");

    // The receiver saw each failed delivery again under its own webhook-id,
    // signed, and the delivered one only once.
    let seen = hook.seen();
    let mut per_id: HashMap<String, Vec<&Seen>> = HashMap::new();
    for s in &seen {
        per_id.entry(s.webhook_id()).or_default().push(s);
    }
    assert_eq!(
        per_id.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&after),
        "webhook-ids other than the deliveries' own"
    );
    assert_eq!(per_id[&kept].len(), 1, "the delivered delivery was sent again");
    for f in &failed {
        let got = &per_id[f];
        let answers: Vec<u16> = got.iter().map(|s| s.answered).collect();
        assert_eq!(answers, [500, 500, 200], "{f}");
        assert!(got.iter().all(|s| s.verifies(&secret)), "{f} does not verify");
    }
    assert_eq!(seen.len(), 1 + 3 * 3);
    w.finish().await;
}

both!(deliveries_filter_by_event_type, deliveries_filter_by_event_type_case);
async fn deliveries_filter_by_event_type_case(app: &TestApp) {
    let w = webhook_app_with(app, "10ms", true, |_| {}).await;
    let hook = Hook::start(200).await;
    let (id, _) = endpoint(&w, &hook.url, json!(["payment.succeeded", "account.created"])).await;
    // Two accounts and two payments, and a test event.
    pay(&w, 2).await;
    let r = w.post(&format!("/v1/webhook_endpoints/{id}/test"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let test_delivery = r.id();
    let all = settled(&w, &id, 5, "delivered").await;
    // A delivery's type is its event's.
    for d in &all {
        let event = w.get(&format!("/v1/events/{}", d["event"].as_str().unwrap())).await;
        assert_eq!(event.status, 200, "{}", event.body);
        assert_eq!(event.body["type"], d["event_type"], "{d}");
    }

    let list = |query: &str| {
        let path = format!("/v1/webhook_endpoints/{id}/deliveries?{query}");
        let w = &w;
        async move { w.get(&path).await }
    };
    let types = |r: &Resp| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["event_type"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        types(&list("event_type=payment.succeeded").await),
        ["payment.succeeded"; 2]
    );
    assert_eq!(types(&list("event_type=account.created").await), ["account.created"; 2]);
    let test = list(&format!("event_type={TEST_EVENT}")).await;
    assert_eq!(types(&test), [TEST_EVENT]);
    assert_eq!(test.body["data"][0]["id"], test_delivery.as_str());
    assert_eq!(types(&list("event_type=payment.failed").await), Vec::<String>::new());
    // GraphQL filters the same way.
    let (status, body, _) = graphql(
        &w,
        &w.admin_key,
        "query($e: ID!) { webhookDeliveries(endpoint: $e, eventType: \"account.created\") { edges { node { eventType } } } }",
        json!({"e": id}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let edges = body["data"]["webhookDeliveries"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(edges.len(), 2, "{body}");
    assert!(
        edges.iter().all(|e| e["node"]["eventType"] == "account.created"),
        "{body}"
    );

    // Filtered pages are cursor-paginated like any list.
    let first = list("event_type=payment.succeeded&limit=1").await;
    assert_eq!(
        (types(&first), &first.body["has_more"]),
        (vec!["payment.succeeded".to_owned()], &json!(true))
    );
    let after = first.body["data"][0]["id"].as_str().unwrap().to_owned();
    let second = list(&format!("event_type=payment.succeeded&limit=1&starting_after={after}")).await;
    assert_eq!(
        (types(&second), &second.body["has_more"]),
        (vec!["payment.succeeded".to_owned()], &json!(false))
    );
    assert_ne!(second.body["data"][0]["id"], first.body["data"][0]["id"]);

    // An unknown type is refused, not an empty page.
    for unknown in ["payment.exploded", "*"] {
        let r = list(&format!("event_type={unknown}")).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        assert_eq!(r.body["error"]["param"], "event_type", "{unknown}: {}", r.body);
    }
    // One equality filter per list.
    for both_filters in [
        "status=delivered&event_type=payment.succeeded",
        "event_type=payment.succeeded&status=delivered",
    ] {
        let r = list(both_filters).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        let param = r.body["error"]["param"].as_str().unwrap_or_default();
        assert!(param == "status" || param == "event_type", "{both_filters}: {}", r.body);
    }
    w.finish().await;
}

/// One sample of `/metrics`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The `settle_webhook_*` samples of `/metrics`.
async fn webhook_samples(w: &TestApp) -> Vec<Sample> {
    let page = w.get("/metrics").await;
    assert_eq!(page.status, 200);
    let text = page.body.as_str().unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("settle_webhook_"))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {l}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {l}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').unwrap_or_else(|| panic!("{l}"))),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or_else(|| panic!("not a label: {l}"));
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value,
            }
        })
        .collect()
}

/// The value of `name` with exactly these labels.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == wanted)
        .map(|s| s.value)
        .unwrap_or_else(|| panic!("{name}{wanted:?} missing from /metrics: {samples:#?}"))
}

/// Every `endpoint` label value of `name`'s series.
fn endpoint_labels(samples: &[Sample], name: &str) -> BTreeSet<String> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter_map(|s| s.labels.get("endpoint").cloned())
        .collect()
}

both!(
    webhook_stats_and_metrics_count_the_attempts,
    webhook_stats_and_metrics_count_the_attempts_case
);
async fn webhook_stats_and_metrics_count_the_attempts_case(app: &TestApp) {
    // A failed first attempt is retried an hour later: it stays retrying.
    let w = webhook_app_with(app, "1h", true, |_| {}).await;
    let ok_hook = Hook::start(200).await;
    let flaky_hook = Hook::start(500).await;
    let gone_hook = Hook::start(410).await;
    let (ok, _) = endpoint(&w, &ok_hook.url, json!(["payment.succeeded"])).await;
    let (flaky, _) = endpoint(&w, &flaky_hook.url, json!(["payment.succeeded"])).await;
    let (gone, _) = endpoint(&w, &gone_hook.url, json!(["payment.succeeded"])).await;
    pay(&w, 1).await;
    settled(&w, &ok, 1, "delivered").await;
    settled(&w, &gone, 1, "failed").await;
    eventually(SETTLE, "the flaky endpoint's first attempt", || async {
        let all = deliveries(&w, &flaky).await;
        (all.len() == 1 && all[0]["attempts"] == 1 && all[0]["status"] == "pending").then_some(())
    })
    .await;

    // Reading webhooks is enough; a key without it is refused.
    let viewer = w.key("viewer").await;
    let r = w.call(Method::GET, "/v1/webhook_stats", Some(&viewer), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let role = w
        .post(
            "/v1/roles",
            json!({"name": "accounts_only", "permissions": ["accounts:read"]}),
        )
        .await;
    assert_eq!(role.status, 200, "{}", role.body);
    let key = w
        .post("/v1/api_keys", json!({"name": "narrow", "role": "accounts_only"}))
        .await;
    assert_eq!(key.status, 200, "{}", key.body);
    let narrow = key.body["secret"].as_str().unwrap().to_owned();
    w.call(Method::GET, "/v1/webhook_stats", Some(&narrow), None)
        .await
        .assert_error(403, "permission_error", "permission_denied");

    let s = r.body;
    assert_eq!(s["object"], "webhook_stats", "{s}");
    assert_eq!(s["window_minutes"], 60, "{s}");
    let minutes = s["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60, "{s}");
    let starts: Vec<i64> = minutes.iter().map(|m| m["start"].as_i64().unwrap()).collect();
    assert!(starts.windows(2).all(|p| p[1] - p[0] == 60), "{starts:?}");
    assert!(*starts.last().unwrap() <= unix_now(), "{starts:?}");
    let sum = |field: &str| minutes.iter().map(|m| m[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!(
        (sum("delivered"), sum("retrying"), sum("failed")),
        (1, 1, 1),
        "one attempt of each outcome: {s}"
    );
    let receipt = &s["commit_to_receipt"];
    assert_eq!(receipt["count"], 1, "only the delivered first attempt: {s}");
    let p50 = receipt["p50_ms"].as_f64().unwrap_or_else(|| panic!("no p50: {s}"));
    let p99 = receipt["p99_ms"].as_f64().unwrap_or_else(|| panic!("no p99: {s}"));
    assert!(p50 >= 0.0 && p99 >= p50, "{s}");
    let listed = |id: &str| {
        s["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in the overview: {s}"))
    };
    let e = listed(&ok);
    assert_eq!(
        (&e["url"], &e["status"], &e["pending"], &e["breaker"]),
        (&json!(ok_hook.url), &json!("enabled"), &json!(0), &json!("closed")),
        "{e}"
    );
    let e = listed(&flaky);
    assert_eq!(
        (&e["status"], &e["pending"], &e["breaker"]),
        (&json!("enabled"), &json!(1), &json!("closed")),
        "a 500 is an answer, not an outage: {e}"
    );
    let e = listed(&gone);
    assert_eq!(
        (&e["status"], &e["pending"], &e["breaker"]),
        (&json!("disabled"), &json!(0), &json!("closed")),
        "{e}"
    );
    assert!(s["dead_letters"].is_u64(), "{s}");

    // The same attempts at /metrics.
    let m = webhook_samples(&w).await;
    let total = |endpoint: &str, outcome: &str| {
        value(
            &m,
            "settle_webhook_deliveries_total",
            &[("endpoint", endpoint), ("outcome", outcome)],
        )
    };
    assert_eq!(
        (total(&ok, "delivered"), total(&ok, "retrying"), total(&ok, "failed")),
        (1.0, 0.0, 0.0)
    );
    assert_eq!(
        (
            total(&flaky, "delivered"),
            total(&flaky, "retrying"),
            total(&flaky, "failed")
        ),
        (0.0, 1.0, 0.0)
    );
    assert_eq!(
        (
            total(&gone, "delivered"),
            total(&gone, "retrying"),
            total(&gone, "failed")
        ),
        (0.0, 0.0, 1.0)
    );
    assert_eq!(
        (
            total("other", "delivered"),
            total("other", "retrying"),
            total("other", "failed")
        ),
        (0.0, 0.0, 0.0),
        "three endpoints are well within the default bound"
    );
    for endpoint in [ok.as_str(), flaky.as_str(), gone.as_str()] {
        let state = |state: &str| {
            value(
                &m,
                "settle_webhook_breaker_state",
                &[("endpoint", endpoint), ("state", state)],
            )
        };
        assert_eq!(
            (state("closed"), state("open"), state("half_open")),
            (1.0, 0.0, 0.0),
            "{endpoint}"
        );
        assert_eq!(
            value(
                &m,
                "settle_webhook_attempt_duration_seconds_count",
                &[("endpoint", endpoint)]
            ),
            1.0,
            "{endpoint}"
        );
        assert_eq!(
            value(
                &m,
                "settle_webhook_attempt_duration_seconds_bucket",
                &[("endpoint", endpoint), ("le", "+Inf")]
            ),
            1.0,
            "{endpoint}"
        );
    }
    assert_eq!(value(&m, "settle_webhook_commit_to_receipt_seconds_count", &[]), 1.0);
    assert_eq!(
        value(&m, "settle_webhook_commit_to_receipt_seconds_bucket", &[("le", "+Inf")]),
        1.0
    );
    w.finish().await;
}

/// An app giving one endpoint series of its own
/// (`SETTLE_METRICS_WEBHOOK_ENDPOINTS=1`, read as the server reads it), and
/// two endpoints with two deliveries each delivered; their ids.
async fn one_labelled_endpoint(app: &TestApp) -> (TestApp, String, String) {
    let env = |name: &str| (name == "SETTLE_METRICS_WEBHOOK_ENDPOINTS").then(|| "1".to_owned());
    let loaded = Config::load(None, &env, &FlagLayer::default()).unwrap();
    assert_eq!(loaded.metrics_webhook_endpoints, 1);
    let refused = |name: &str| (name == "SETTLE_METRICS_WEBHOOK_ENDPOINTS").then(|| "many".to_owned());
    assert!(Config::load(None, &refused, &FlagLayer::default()).is_err());
    let w = webhook_app_with(app, "10ms", true, |c| {
        c.metrics_webhook_endpoints = loaded.metrics_webhook_endpoints;
    })
    .await;
    let a_hook = Hook::start(200).await;
    let b_hook = Hook::start(200).await;
    let (a, _) = endpoint(&w, &a_hook.url, json!(["payment.succeeded"])).await;
    let (b, _) = endpoint(&w, &b_hook.url, json!(["payment.succeeded"])).await;
    pay(&w, 2).await;
    settled(&w, &a, 2, "delivered").await;
    settled(&w, &b, 2, "delivered").await;
    (w, a, b)
}

both!(
    endpoints_past_the_bound_are_summed_as_other,
    endpoints_past_the_bound_are_summed_as_other_case
);
async fn endpoints_past_the_bound_are_summed_as_other_case(app: &TestApp) {
    let (w, a, b) = one_labelled_endpoint(app).await;
    let m = webhook_samples(&w).await;
    let labelled = endpoint_labels(&m, "settle_webhook_deliveries_total");
    assert_eq!(labelled.len(), 2, "one endpoint and other: {labelled:?}");
    assert!(labelled.contains("other"), "{labelled:?}");
    let own = labelled.iter().find(|e| *e != "other").unwrap().clone();
    assert!(own == a || own == b, "{own} is neither endpoint");
    for endpoint in [own.as_str(), "other"] {
        assert_eq!(
            value(
                &m,
                "settle_webhook_deliveries_total",
                &[("endpoint", endpoint), ("outcome", "delivered")]
            ),
            2.0,
            "{endpoint}"
        );
        assert_eq!(
            value(
                &m,
                "settle_webhook_attempt_duration_seconds_count",
                &[("endpoint", endpoint)]
            ),
            2.0,
            "{endpoint}"
        );
    }
    assert_eq!(
        endpoint_labels(&m, "settle_webhook_attempt_duration_seconds_bucket"),
        labelled
    );
    assert_eq!(
        endpoint_labels(&m, "settle_webhook_attempt_duration_seconds_count"),
        labelled
    );
    w.finish().await;
}

// The bound is there so that an installation with thousands of endpoints
// cannot blow up `/metrics` (crates/api/src/metrics/webhooks.rs): the
// breaker gauge, three series per endpoint, must keep to it too.
both!(breaker_series_keep_to_the_bound, breaker_series_keep_to_the_bound_case);
async fn breaker_series_keep_to_the_bound_case(app: &TestApp) {
    let (w, _, _) = one_labelled_endpoint(app).await;
    let m = webhook_samples(&w).await;
    let allowed = endpoint_labels(&m, "settle_webhook_deliveries_total");
    let breakers = endpoint_labels(&m, "settle_webhook_breaker_state");
    assert!(
        breakers.is_subset(&allowed),
        "settle_webhook_breaker_state has series for endpoints past SETTLE_METRICS_WEBHOOK_ENDPOINTS: \
         {breakers:?} (labelled elsewhere: {allowed:?})"
    );
    w.finish().await;
}
