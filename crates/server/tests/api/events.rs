//! Events: every state change writes its event in the same transaction,
//! with the object as it was after the change and a per-object sequence;
//! refused operations write none; `/v1/events` lists and filters them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestApp, both, eventually};

async fn events_of(app: &TestApp, object: &str) -> Vec<Value> {
    let r = app.get(&format!("/v1/events?limit=100&object={object}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut data = r.body["data"].as_array().unwrap().clone();
    data.reverse(); // oldest first
    data
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

both!(each_change_writes_its_event, each_change_writes_its_event_case);
async fn each_change_writes_its_event_case(app: &TestApp) {
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    let pay = app
        .post(
            "/v1/payments",
            json!({"amount": 500, "currency": "usd", "source": bank, "destination": shop}),
        )
        .await;
    let evs = events_of(app, &pay.id()).await;
    assert_eq!(
        types(&evs),
        ["payment.created", "payment.succeeded"],
        "exactly once each"
    );
    assert_eq!(
        evs.iter().map(|e| e["sequence"].as_i64().unwrap()).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        evs[1]["data"]["object"], pay.body,
        "the object as it was after the change"
    );
    assert_eq!(evs[0]["request_id"], pay.headers["request-id"].to_str().unwrap());

    let held = app
        .post(
            "/v1/payments",
            json!({"amount": 300, "currency": "usd", "source": bank, "destination": shop, "capture": false}),
        )
        .await;
    app.post(
        &format!("/v1/payments/{}/capture", held.id()),
        json!({"amount_to_capture": 200}),
    )
    .await;
    let evs = events_of(app, &held.id()).await;
    assert_eq!(
        types(&evs),
        ["payment.created", "payment.requires_capture", "payment.succeeded"]
    );
    assert_eq!(evs[2]["sequence"], 3);
    assert_eq!(evs[2]["data"]["object"]["amount_captured"], 200);

    let to_cancel = app
        .post(
            "/v1/payments",
            json!({"amount": 50, "currency": "usd", "source": bank, "destination": shop, "capture": false}),
        )
        .await;
    app.post(&format!("/v1/payments/{}/cancel", to_cancel.id()), json!({}))
        .await;
    assert_eq!(
        types(&events_of(app, &to_cancel.id()).await),
        ["payment.created", "payment.requires_capture", "payment.canceled"]
    );

    let refund = app
        .post("/v1/refunds", json!({"payment": pay.id(), "amount": 100}))
        .await;
    assert_eq!(
        types(&events_of(app, &refund.id()).await),
        ["refund.created", "refund.succeeded"]
    );
    let evs = events_of(app, &pay.id()).await;
    assert_eq!(types(&evs), ["payment.created", "payment.succeeded", "payment.updated"]);
    assert_eq!(evs[2]["data"]["object"]["amount_refunded"], 100);

    let customer = app.post("/v1/customers", json!({"name": "Ada"})).await.id();
    let patched = app
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/customers/{customer}"),
            Some(&app.admin_key),
            Some(json!({"name": "Ada L."})),
        )
        .await;
    assert_eq!(patched.status, 200);
    app.call(
        reqwest::Method::DELETE,
        &format!("/v1/customers/{customer}"),
        Some(&app.admin_key),
        None,
    )
    .await;
    let evs = events_of(app, &customer).await;
    assert_eq!(
        types(&evs),
        ["customer.created", "customer.updated", "customer.deleted"]
    );
    assert_eq!(evs[1]["data"]["object"]["name"], "Ada L.");
    assert_eq!(evs[2]["data"]["object"]["deleted"], true);
    let evs = events_of(app, &shop).await;
    assert_eq!(types(&evs), ["account.created"]);
}

both!(
    refused_operations_write_no_event,
    refused_operations_write_no_event_case
);
async fn refused_operations_write_no_event_case(app: &TestApp) {
    let alice = app.account("alice", "usd", false).await;
    let shop = app.account("shop", "usd", false).await;
    let before = app.get("/v1/events?limit=100").await.body["data"]
        .as_array()
        .unwrap()
        .len();
    let r = app
        .post(
            "/v1/payments",
            json!({"amount": 500, "currency": "usd", "source": alice, "destination": shop}),
        )
        .await;
    assert_eq!(r.status, 422);
    let after = app.get("/v1/events?limit=100").await.body["data"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a refused payment writes no event");
}

both!(listing_and_lookup, listing_and_lookup_case);
async fn listing_and_lookup_case(app: &TestApp) {
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    for amount in [1, 2, 3] {
        app.post(
            "/v1/payments",
            json!({"amount": amount, "currency": "usd", "source": bank, "destination": shop}),
        )
        .await;
    }
    // On PostgreSQL the sequencer gives positions just after commit; wait
    // for them so the list and the lookup below read the same event.
    eventually(Duration::from_secs(30), "every event numbered", || async {
        let page = app.get("/v1/events?limit=100").await;
        let data = page.body["data"].as_array()?.clone();
        data.iter().all(|e| e["position"].is_i64()).then_some(())
    })
    .await;
    let succeeded = app.get("/v1/events?type=payment.succeeded&limit=2").await;
    let data = succeeded.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(succeeded.body["has_more"], true);
    assert!(
        data.iter()
            .all(|e| e["type"] == "payment.succeeded" && e["object"] == "event")
    );
    assert_eq!(data[0]["data"]["object"]["amount"], 3, "newest first");
    let id = data[0]["id"].as_str().unwrap();
    assert!(id.starts_with("evt_"));
    let one = app.get(&format!("/v1/events/{id}")).await;
    assert_eq!(one.body, data[0]);
    app.get("/v1/events/evt_01M8FQ6ZTWESP8TXJ5FPWECSQ1").await.assert_error(
        404,
        "invalid_request_error",
        "resource_missing",
    );
    app.get("/v1/events?object=nonsense")
        .await
        .assert_error(400, "invalid_request_error", "resource_missing");
    let viewer = app.key("viewer").await;
    let r = app.call(reqwest::Method::GET, "/v1/events", Some(&viewer), None).await;
    assert_eq!(r.status, 200, "viewers read events");
}
