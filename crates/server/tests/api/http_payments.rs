//! Payments and refunds through HTTP: every state transition, every error
//! SPEC's table lets these routes produce, and that a refused operation
//! changes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, both};

async fn balances(app: &TestApp, ids: &[&str]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for id in ids {
        let r = app.get(&format!("/v1/accounts/{id}")).await;
        out.push((
            r.body["balance"].as_i64().unwrap(),
            r.body["pending_out"].as_i64().unwrap(),
        ));
    }
    out
}

fn pay(source: &str, destination: &str, amount: i64) -> Value {
    json!({"amount": amount, "currency": "usd", "source": source, "destination": destination})
}

both!(immediate_payment_and_refunds, immediate_payment_and_refunds_case);
async fn immediate_payment_and_refunds_case(app: &TestApp) {
    let alice = app.account("alice", "usd", false).await;
    let shop = app.account("shop", "usd", false).await;
    app.fund(&alice, "usd", 10_000).await;

    let p = app.post("/v1/payments", pay(&alice, &shop, 2_500)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["object"], "payment");
    assert_eq!(p.body["status"], "succeeded");
    assert_eq!(p.body["amount_captured"], 2_500);
    assert!(p.id().starts_with("pay_"));
    assert_eq!(balances(app, &[&alice, &shop]).await, vec![(7_500, 0), (2_500, 0)]);

    let r1 = app
        .post(
            "/v1/refunds",
            json!({"payment": p.id(), "amount": 1_000, "reason": "requested_by_customer"}),
        )
        .await;
    assert_eq!(r1.status, 200, "{}", r1.body);
    assert_eq!(r1.body["object"], "refund");
    assert_eq!(r1.body["amount"], 1_000);
    assert_eq!(r1.body["status"], "succeeded");
    assert_eq!(r1.body["reason"], "requested_by_customer");

    let over = app
        .post("/v1/refunds", json!({"payment": p.id(), "amount": 1_501}))
        .await;
    over.assert_error(422, "invalid_request_error", "amount_too_large");

    let rest = app.post("/v1/refunds", json!({"payment": p.id()})).await;
    assert_eq!(rest.body["amount"], 1_500, "{}", rest.body);
    let done = app.post("/v1/refunds", json!({"payment": p.id()})).await;
    done.assert_error(422, "invalid_request_error", "amount_too_large");

    assert_eq!(balances(app, &[&alice, &shop]).await, vec![(10_000, 0), (0, 0)]);
    let payment = app.get(&format!("/v1/payments/{}", p.id())).await;
    assert_eq!(payment.body["amount_refunded"], 2_500);
    let etag = payment.headers["etag"].to_str().unwrap();
    assert!(etag.starts_with(&format!("\"{}-", payment.body["version"])), "{etag}");

    let listed = app.get(&format!("/v1/refunds?payment={}", p.id())).await;
    let ids: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![rest.id().as_str(), r1.id().as_str()]);
    let one = app.get(&format!("/v1/refunds/{}", r1.id())).await;
    assert_eq!(one.body, r1.body);

    let entries = app.get(&format!("/v1/accounts/{shop}/entries?limit=100")).await;
    let amounts: Vec<i64> = entries.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![-1_500, -1_000, 2_500]);
}

both!(hold_capture_cancel, hold_capture_cancel_case);
async fn hold_capture_cancel_case(app: &TestApp) {
    let alice = app.account("alice", "usd", false).await;
    let shop = app.account("shop", "usd", false).await;
    app.fund(&alice, "usd", 1_000).await;

    let held = app
        .post(
            "/v1/payments",
            json!({"amount": 800, "currency": "usd", "source": alice, "destination": shop, "capture": false}),
        )
        .await;
    assert_eq!(held.body["status"], "requires_capture", "{}", held.body);
    assert_eq!(balances(app, &[&alice]).await, vec![(1_000, 800)]);
    let a = app.get(&format!("/v1/accounts/{alice}")).await;
    assert_eq!(a.body["available"], 200);

    // The hold counts against available funds.
    let second = app.post("/v1/payments", pay(&alice, &shop, 201)).await;
    second.assert_error(422, "invalid_request_error", "insufficient_funds");

    // Refunding an uncaptured payment is a state error.
    app.post("/v1/refunds", json!({"payment": held.id()}))
        .await
        .assert_error(409, "invalid_request_error", "invalid_state");

    let too_much = app
        .post(
            &format!("/v1/payments/{}/capture", held.id()),
            json!({"amount_to_capture": 801}),
        )
        .await;
    too_much.assert_error(422, "invalid_request_error", "amount_too_large");

    let captured = app
        .post(
            &format!("/v1/payments/{}/capture", held.id()),
            json!({"amount_to_capture": 500}),
        )
        .await;
    assert_eq!(captured.body["status"], "succeeded", "{}", captured.body);
    assert_eq!(captured.body["amount_captured"], 500);
    assert_eq!(balances(app, &[&alice, &shop]).await, vec![(500, 0), (500, 0)]);

    app.post(&format!("/v1/payments/{}/capture", held.id()), json!({}))
        .await
        .assert_error(409, "invalid_request_error", "invalid_state");
    app.post(&format!("/v1/payments/{}/cancel", held.id()), json!({}))
        .await
        .assert_error(409, "invalid_request_error", "invalid_state");
    let over = app
        .post("/v1/refunds", json!({"payment": held.id(), "amount": 501}))
        .await;
    over.assert_error(422, "invalid_request_error", "amount_too_large");

    // Capture and cancel accept an empty body with no content type.
    let held2 = app
        .post(
            "/v1/payments",
            json!({"amount": 300, "currency": "usd", "source": alice, "destination": shop, "capture": false}),
        )
        .await;
    let res = app
        .client
        .post(app.url(&format!("/v1/payments/{}/cancel", held2.id())))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "canceled");
    assert_eq!(balances(app, &[&alice]).await, vec![(500, 0)]);
    app.post(&format!("/v1/payments/{}/capture", held2.id()), json!({}))
        .await
        .assert_error(409, "invalid_request_error", "invalid_state");

    let held3 = app
        .post(
            "/v1/payments",
            json!({"amount": 100, "currency": "usd", "source": alice, "destination": shop, "capture": false}),
        )
        .await;
    let res = app
        .client
        .post(app.url(&format!("/v1/payments/{}/capture", held3.id())))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(balances(app, &[&alice, &shop]).await, vec![(400, 0), (600, 0)]);
}

both!(refused_payments_change_nothing, refused_payments_change_nothing_case);
async fn refused_payments_change_nothing_case(app: &TestApp) {
    let alice = app.account("alice", "usd", false).await;
    let shop = app.account("shop", "usd", false).await;
    let euro = app.account("euro", "eur", false).await;
    app.fund(&alice, "usd", 100).await;
    let before = balances(app, &[&alice, &shop, &euro]).await;

    app.post("/v1/payments", pay(&alice, &shop, 101)).await.assert_error(
        422,
        "invalid_request_error",
        "insufficient_funds",
    );
    app.post("/v1/payments", pay(&alice, &euro, 10)).await.assert_error(
        422,
        "invalid_request_error",
        "currency_mismatch",
    );
    let wrong_currency = app
        .post(
            "/v1/payments",
            json!({"amount": 10, "currency": "eur", "source": alice, "destination": shop}),
        )
        .await;
    wrong_currency.assert_error(422, "invalid_request_error", "currency_mismatch");
    let same = app.post("/v1/payments", pay(&alice, &alice, 10)).await;
    same.assert_error(400, "invalid_request_error", "parameter_invalid");
    assert_eq!(same.body["error"]["param"], "destination");

    let ghost = "acct_01M8FQ6ZTWESP8TXJ5FPWECSQ1";
    let r = app.post("/v1/payments", pay(ghost, &shop, 10)).await;
    r.assert_error(400, "invalid_request_error", "resource_missing");
    assert_eq!(r.body["error"]["param"], "source");
    let r = app
        .post("/v1/payments", pay(&alice, "cus_01M8FQ6ZTWESP8TXJ5FPWECSQ1", 10))
        .await;
    r.assert_error(400, "invalid_request_error", "resource_missing");
    assert_eq!(r.body["error"]["param"], "destination");
    let r = app.post("/v1/payments", json!({"amount": 1, "currency": "usd", "source": alice, "destination": shop, "customer": "cus_01M8FQ6ZTWESP8TXJ5FPWECSQ1"})).await;
    r.assert_error(400, "invalid_request_error", "resource_missing");
    assert_eq!(r.body["error"]["param"], "customer");
    app.post("/v1/refunds", json!({"payment": "pay_01M8FQ6ZTWESP8TXJ5FPWECSQ1"}))
        .await
        .assert_error(400, "invalid_request_error", "resource_missing");
    app.post("/v1/refunds", json!({"payment": "nonsense"}))
        .await
        .assert_error(400, "invalid_request_error", "resource_missing");

    assert_eq!(balances(app, &[&alice, &shop, &euro]).await, before);
    let listed = app.get(&format!("/v1/payments?source={alice}")).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 0, "{}", listed.body);
}

both!(refund_needs_destination_funds, refund_needs_destination_funds_case);
async fn refund_needs_destination_funds_case(app: &TestApp) {
    let alice = app.account("alice", "usd", false).await;
    let shop = app.account("shop", "usd", false).await;
    let supplier = app.account("supplier", "usd", false).await;
    app.fund(&alice, "usd", 1_000).await;
    let p = app.post("/v1/payments", pay(&alice, &shop, 1_000)).await;
    app.post("/v1/payments", pay(&shop, &supplier, 900)).await;
    let r = app.post("/v1/refunds", json!({"payment": p.id(), "amount": 101})).await;
    r.assert_error(422, "invalid_request_error", "insufficient_funds");
    let ok = app.post("/v1/refunds", json!({"payment": p.id(), "amount": 100})).await;
    assert_eq!(ok.status, 200);
    assert_eq!(balances(app, &[&alice, &shop]).await, vec![(100, 0), (0, 0)]);
}

both!(payment_lookups_and_filters, payment_lookups_and_filters_case);
async fn payment_lookups_and_filters_case(app: &TestApp) {
    let customer = app
        .post("/v1/customers", json!({"name": "Ada", "email": "ada@example.com"}))
        .await
        .id();
    let alice = app
        .post(
            "/v1/accounts",
            json!({"name": "alice", "currency": "usd", "customer": customer}),
        )
        .await
        .id();
    let shop = app.account("shop", "usd", false).await;
    let bank = app.fund(&alice, "usd", 1_000).await;
    let p1 = app.post("/v1/payments", json!({"amount": 10, "currency": "usd", "source": alice, "destination": shop, "customer": customer, "description": "tea", "metadata": {"order": "42"}})).await;
    assert_eq!(p1.body["customer"], customer);
    assert_eq!(p1.body["description"], "tea");
    assert_eq!(p1.body["metadata"]["order"], "42");
    let p2 = app
        .post(
            "/v1/payments",
            json!({"amount": 20, "currency": "usd", "source": alice, "destination": shop, "capture": false}),
        )
        .await;

    let ids = |r: &crate::support::Resp| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&app.get(&format!("/v1/payments?customer={customer}")).await),
        vec![p1.id()]
    );
    assert_eq!(
        ids(&app.get("/v1/payments?status=requires_capture").await),
        vec![p2.id()]
    );
    assert_eq!(
        ids(&app.get(&format!("/v1/payments?source={alice}")).await),
        vec![p2.id(), p1.id()]
    );
    assert_eq!(
        ids(&app.get(&format!("/v1/payments?destination={alice}")).await).len(),
        1
    );
    assert_eq!(ids(&app.get(&format!("/v1/payments?source={bank}")).await).len(), 1);
    let accounts = app.get(&format!("/v1/accounts?customer={customer}")).await;
    assert_eq!(ids(&accounts), vec![alice.clone()]);

    let got = app.get(&format!("/v1/payments/{}", p1.id())).await;
    assert_eq!(got.body, p1.body);
    for bad in [
        "pay_01M8FQ6ZTWESP8TXJ5FPWECSQ1",
        "acct_01M8FQ6ZTWESP8TXJ5FPWECSQ1",
        "pay_xyz",
        "nothing",
    ] {
        app.get(&format!("/v1/payments/{bad}"))
            .await
            .assert_error(404, "invalid_request_error", "resource_missing");
        app.get(&format!("/v1/refunds/{}", bad.replace("pay_", "re_")))
            .await
            .assert_error(404, "invalid_request_error", "resource_missing");
        let r = app.post(&format!("/v1/payments/{bad}/capture"), json!({})).await;
        r.assert_error(404, "invalid_request_error", "resource_missing");
        let r = app.post(&format!("/v1/payments/{bad}/cancel"), json!({})).await;
        r.assert_error(404, "invalid_request_error", "resource_missing");
    }
    let r = app
        .call(
            Method::POST,
            &format!("/v1/payments/{}/capture", p2.id()),
            Some(&app.admin_key),
            Some(json!({"amount": 5})),
        )
        .await;
    r.assert_error(400, "invalid_request_error", "parameter_unknown");
    let r = app
        .post("/v1/refunds", json!({"payment": p1.id(), "reason": "bored"}))
        .await;
    r.assert_error(400, "invalid_request_error", "parameter_invalid");
    assert_eq!(r.body["error"]["param"], "reason");
}
