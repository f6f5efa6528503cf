//! Bad input that used to pass or to answer 500: every case is a 4xx in
//! SPEC's shape and changes nothing.

use reqwest::Method;
use serde_json::json;

use super::assert_400;
use crate::support::{Resp, TestApp, both};

async fn nul_characters_are_refused_everywhere_case(app: &TestApp) {
    // Query filters: 500 on PostgreSQL before, 200 on SQLite.
    assert_400(
        &app.get("/v1/customers?email=a%00b").await,
        "parameter_invalid",
        "email",
    );
    assert_400(&app.get("/v1/events?type=a%00b").await, "parameter_invalid", "type");
    assert_400(&app.get("/v1/payments?status=%00").await, "parameter_invalid", "status");
    // Body text fields, nested ones named by their path.
    let r = app.post("/v1/customers", json!({"name": "a\u{0}b"})).await;
    assert_400(&r, "parameter_invalid", "name");
    let r = app
        .post("/v1/customers", json!({"name": "ok", "metadata": {"note": "x\u{0}"}}))
        .await;
    assert_400(&r, "parameter_invalid", "metadata.note");
    let r = app
        .post("/v1/customers", json!({"name": "ok", "metadata": {"k\u{0}": "x"}}))
        .await;
    assert_400(&r, "parameter_invalid", "metadata");
    let policy = "forbid(principal, action, resource) when { principal.name == \"a\u{0}b\" };";
    let r = app.post("/v1/policies", json!({"name": "nul", "policy": policy})).await;
    assert_400(&r, "parameter_invalid", "policy");
    // Nothing was stored on either backend.
    assert_eq!(app.get("/v1/customers").await.body["data"], json!([]));
    assert_eq!(app.get("/v1/policies").await.body["data"], json!([]));
    // The text `\u0000` written out (an escaped backslash) is not a NUL.
    let r = app.post("/v1/customers", json!({"name": "a\\u0000b"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], "a\\u0000b");
}
both!(
    nul_characters_are_refused_everywhere,
    nul_characters_are_refused_everywhere_case
);

async fn an_explicit_null_number_is_refused_case(app: &TestApp) {
    let alice = app.account("alice", "usd", false).await;
    app.fund(&alice, "usd", 1000).await;
    let shop = app.account("shop", "usd", false).await;
    let hold = app
        .post(
            "/v1/payments",
            json!({"amount": 500, "currency": "usd", "source": alice, "destination": shop, "capture": false}),
        )
        .await;
    let hold = hold.id();
    // `null` used to capture the whole hold.
    let r = app
        .post(
            &format!("/v1/payments/{hold}/capture"),
            json!({"amount_to_capture": null}),
        )
        .await;
    assert_400(&r, "parameter_invalid", "amount_to_capture");
    let p = app.get(&format!("/v1/payments/{hold}")).await;
    assert_eq!(p.body["status"], "requires_capture");
    assert_eq!(p.body["amount_captured"], 0);

    let paid = app
        .post(
            "/v1/payments",
            json!({"amount": 300, "currency": "usd", "source": alice, "destination": shop}),
        )
        .await
        .id();
    let r = app.post("/v1/refunds", json!({"payment": paid, "amount": null})).await;
    assert_400(&r, "parameter_invalid", "amount");
    assert_eq!(
        app.get(&format!("/v1/payments/{paid}")).await.body["amount_refunded"],
        0
    );

    let r = app
        .post(
            "/v1/api_keys",
            json!({"name": "k", "role": "viewer", "expires_at": null}),
        )
        .await;
    assert_400(&r, "parameter_invalid", "expires_at");

    // Absent still takes the default: the whole hold is captured.
    let r = app.post(&format!("/v1/payments/{hold}/capture"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["amount_captured"], 500);
    // PATCH keeps `null` for clearable fields.
    let cus = app
        .post("/v1/customers", json!({"name": "n", "email": "a@b.c"}))
        .await
        .id();
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/customers/{cus}"),
            Some(&app.admin_key),
            Some(json!({"email": null})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["email"], serde_json::Value::Null);
}
both!(
    an_explicit_null_number_is_refused,
    an_explicit_null_number_is_refused_case
);

async fn send_with_headers(app: &TestApp, method: Method, path: &str, headers: &[(&str, String)]) -> Resp {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let body = if path == "/v1/customers" {
        r#"{"name": "twice"}"#
    } else {
        r#"{"name": "renamed"}"#
    };
    Resp::read(req.body(body).send().await.expect("request")).await
}

async fn repeated_headers_are_refused_case(app: &TestApp) {
    let viewer = app.key("viewer").await;
    let bearer = |k: &str| format!("Bearer {k}");
    // Two credentials: which one did the client mean? Neither is taken.
    for pair in [[&app.admin_key, &viewer], [&viewer, &app.admin_key]] {
        let r = send_with_headers(
            app,
            Method::POST,
            "/v1/customers",
            &[("authorization", bearer(pair[0])), ("authorization", bearer(pair[1]))],
        )
        .await;
        assert_400(&r, "parameter_invalid", "Authorization");
    }
    let admin = bearer(&app.admin_key);
    let r = send_with_headers(
        app,
        Method::POST,
        "/v1/customers",
        &[
            ("authorization", admin.clone()),
            ("idempotency-key", "one".into()),
            ("idempotency-key", "two".into()),
        ],
    )
    .await;
    assert_400(&r, "parameter_invalid", "Idempotency-Key");
    assert_eq!(app.get("/v1/customers").await.body["data"], json!([]));

    let cus = app.post("/v1/customers", json!({"name": "once"})).await.id();
    let r = send_with_headers(
        app,
        Method::PATCH,
        &format!("/v1/customers/{cus}"),
        &[
            ("authorization", admin.clone()),
            ("if-match", "\"1\"".into()),
            ("if-match", "\"7\"".into()),
        ],
    )
    .await;
    assert_400(&r, "parameter_invalid", "If-Match");
    let after = app.get(&format!("/v1/customers/{cus}")).await;
    assert_eq!(
        (after.body["name"].as_str(), after.body["version"].as_i64()),
        (Some("once"), Some(1))
    );
}
both!(repeated_headers_are_refused, repeated_headers_are_refused_case);

async fn balance_overflow_has_its_own_code_case(app: &TestApp) {
    const MAX_SAFE: i64 = (1 << 53) - 1;
    let rich = app.account("rich", "usd", false).await;
    let bank = app.fund(&rich, "usd", MAX_SAFE).await;
    let other_bank = app.account("other bank", "usd", true).await;
    let r = app
        .post(
            "/v1/payments",
            json!({"amount": 1, "currency": "usd", "source": other_bank, "destination": rich}),
        )
        .await;
    r.assert_error(422, "invalid_request_error", "balance_overflow");
    // The first bank is at the bottom of the range: one more out of it overflows too.
    let poor = app.account("poor", "usd", false).await;
    let r = app
        .post(
            "/v1/payments",
            json!({"amount": 1, "currency": "usd", "source": bank, "destination": poor}),
        )
        .await;
    r.assert_error(422, "invalid_request_error", "balance_overflow");
    assert_eq!(app.get(&format!("/v1/accounts/{rich}")).await.body["balance"], MAX_SAFE);
    assert_eq!(app.get(&format!("/v1/accounts/{poor}")).await.body["balance"], 0);
    assert_eq!(app.get(&format!("/v1/accounts/{other_bank}")).await.body["balance"], 0);
}
both!(
    balance_overflow_has_its_own_code,
    balance_overflow_has_its_own_code_case
);
