//! Sweeps across the API: every response carries a `Request-Id` that error bodies repeat, wrong methods are 405, amounts are positive safe integers, and no bad input on any route gets a 5xx.

use reqwest::Method;
use serde_json::{Value, json};

use super::{assert_400, assert_client_side, request_id};
use crate::support::{Resp, TestApp, both};

const MAX_SAFE: i64 = (1 << 53) - 1;

/// Sends `body` as is, with `method`, the admin key and a JSON content type.
async fn raw(app: &TestApp, method: Method, path: &str, body: Vec<u8>) -> Resp {
    app.raw_with(&app.client, method, path, body).await
}

both!(
    every_response_carries_a_request_id,
    every_response_carries_a_request_id_case
);
async fn every_response_carries_a_request_id_case(app: &TestApp) {
    let ok = app.get("/v1/accounts").await;
    assert_eq!(ok.status, 200);
    let first = request_id(&ok);
    let created = app.post("/v1/accounts", json!({"name": "a", "currency": "usd"})).await;
    assert_eq!(created.status, 200);
    assert_ne!(request_id(&created), first, "each request gets its own id");
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 200);
    request_id(&health);

    // Errors of every layer: routing, method, authentication, permission,
    // body, validation, lookup, state.
    let viewer = app.key("viewer").await;
    let errors = [
        app.get("/v1/nothing_here").await,
        app.call(Method::PUT, "/v1/accounts", Some(&app.admin_key), None).await,
        app.call(Method::GET, "/v1/accounts", None, None).await,
        app.call(
            Method::POST,
            "/v1/accounts",
            Some(&viewer),
            Some(json!({"name": "a", "currency": "usd"})),
        )
        .await,
        app.post_raw("/v1/accounts", "{").await,
        app.post("/v1/accounts", json!({"name": "a", "currency": "USD"})).await,
        app.get("/v1/accounts/acct_01M8FQ6ZTWESP8TXJ5FPWECSQ1").await,
        app.get("/v1/accounts?limit=0").await,
    ];
    let mut seen = std::collections::BTreeSet::from([first]);
    for r in &errors {
        assert!(r.status.is_client_error(), "{} {}", r.status, r.body);
        let id = request_id(r);
        assert_eq!(
            r.body["error"]["request_id"],
            id.as_str(),
            "the body repeats the header: {}",
            r.body
        );
        assert!(seen.insert(id), "request ids are unique");
    }
}

both!(wrong_methods_are_405, wrong_methods_are_405_case);
async fn wrong_methods_are_405_case(app: &TestApp) {
    let account = app.account("a", "usd", false).await;
    let wrong = [
        (Method::DELETE, "/v1/accounts".to_owned()),
        (Method::PUT, "/v1/accounts".to_owned()),
        (Method::PATCH, "/v1/accounts".to_owned()),
        (Method::POST, format!("/v1/accounts/{account}")),
        (Method::DELETE, format!("/v1/accounts/{account}")),
        (Method::PUT, format!("/v1/accounts/{account}")),
        (Method::POST, format!("/v1/accounts/{account}/entries")),
        (Method::PUT, "/v1/customers/cus_01M8FQ6ZTWESP8TXJ5FPWECSQ1".to_owned()),
        (
            Method::GET,
            "/v1/payments/pay_01M8FQ6ZTWESP8TXJ5FPWECSQ1/capture".to_owned(),
        ),
        (Method::PATCH, "/v1/refunds/re_01M8FQ6ZTWESP8TXJ5FPWECSQ1".to_owned()),
        (Method::POST, "/healthz".to_owned()),
    ];
    for (method, path) in wrong {
        let r = app.call(method.clone(), &path, Some(&app.admin_key), None).await;
        r.assert_error(405, "invalid_request_error", "method_not_allowed");
    }
    let r = app.get("/v1/accounts/a/b/c").await;
    r.assert_error(404, "invalid_request_error", "resource_missing");
    let gone = app.get(&format!("/v1/accounts/{account}")).await;
    assert_eq!(gone.status, 200, "the DELETE did nothing: {}", gone.body);
}

both!(
    amounts_are_positive_safe_integers,
    amounts_are_positive_safe_integers_case
);
async fn amounts_are_positive_safe_integers_case(app: &TestApp) {
    let source = app.account("bank", "usd", true).await;
    let destination = app.account("wallet", "usd", false).await;
    let pay =
        |amount: Value| json!({"amount": amount, "currency": "usd", "source": source, "destination": destination});

    let refused = [
        json!(9_007_199_254_740_992_i64),
        json!(i64::MAX),
        json!(9_223_372_036_854_775_808_u64),
        json!(u64::MAX),
        json!(0),
        json!(-1),
        json!(i64::MIN),
        json!(1.5),
        json!(1.0),
        json!(1e3),
        json!("10"),
        json!(null),
        json!(true),
        json!([10]),
    ];
    for amount in refused {
        let r = app.post("/v1/payments", pay(amount.clone())).await;
        assert_400(&r, "parameter_invalid", "amount");
    }
    // Numbers beyond u64 written as integer literals.
    let body = format!(
        "{{\"amount\": 100000000000000000000000, \"currency\": \"usd\", \"source\": \"{source}\", \"destination\": \"{destination}\"}}"
    );
    assert_400(&app.post_raw("/v1/payments", body).await, "parameter_invalid", "amount");
    let r = app
        .post(
            "/v1/payments",
            json!({"currency": "usd", "source": source, "destination": destination}),
        )
        .await;
    assert_400(&r, "parameter_missing", "amount");
    let none = app.get("/v1/payments").await;
    assert_eq!(none.body["data"], json!([]), "no refused amount moved money");

    // 2^53 - 1 passes validation and moves.
    let r = app.post("/v1/payments", pay(json!(MAX_SAFE))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["amount"], MAX_SAFE);
    let wallet = app.get(&format!("/v1/accounts/{destination}")).await;
    assert_eq!(wallet.body["balance"], MAX_SAFE);
    // One more would overflow both balances: refused as a 4xx, nothing moves.
    let r = app.post("/v1/payments", pay(json!(1))).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_client_side(&r, "overflowing balance");
    let wallet = app.get(&format!("/v1/accounts/{destination}")).await;
    assert_eq!(wallet.body["balance"], MAX_SAFE);
    let bank = app.get(&format!("/v1/accounts/{source}")).await;
    assert_eq!(bank.body["balance"], -MAX_SAFE);

    // The same rules for capture and refund amounts.
    let small_src = app.account("bank2", "usd", true).await;
    let small_dst = app.account("wallet2", "usd", false).await;
    let held = app
        .post(
            "/v1/payments",
            json!({"amount": 100, "currency": "usd", "source": small_src, "destination": small_dst, "capture": false}),
        )
        .await;
    assert_eq!(held.status, 200, "{}", held.body);
    let capture = format!("/v1/payments/{}/capture", held.id());
    for amount in [
        json!(0),
        json!(-1),
        json!(9_007_199_254_740_992_i64),
        json!(1.5),
        json!("10"),
    ] {
        let r = app.post(&capture, json!({"amount_to_capture": amount})).await;
        assert_400(&r, "parameter_invalid", "amount_to_capture");
    }
    let settled = app
        .post(
            "/v1/payments",
            json!({"amount": 100, "currency": "usd", "source": small_src, "destination": small_dst}),
        )
        .await;
    assert_eq!(settled.status, 200, "{}", settled.body);
    for amount in [
        json!(0),
        json!(-1),
        json!(9_007_199_254_740_992_i64),
        json!(1.5),
        json!("10"),
    ] {
        let r = app
            .post("/v1/refunds", json!({"payment": settled.id(), "amount": amount}))
            .await;
        assert_400(&r, "parameter_invalid", "amount");
    }
    let refunds = app.get("/v1/refunds").await;
    assert_eq!(refunds.body["data"], json!([]), "no refused refund was written");
}

both!(non_utf8_path_ids_are_404, non_utf8_path_ids_are_404_case);
/// A path id that percent-decodes to invalid UTF-8 is still just an id that
/// names nothing: 404 `resource_missing` in SPEC's error shape, on every
/// route with an id.
async fn non_utf8_path_ids_are_404_case(app: &TestApp) {
    for route in settle_api::registry::routes() {
        if !route.path.contains("{id}") {
            continue;
        }
        let path = route.path.replace("{id}", "%F0%28%8C%BC");
        let r = raw(app, route.method.clone(), &path, b"{}".to_vec()).await;
        assert_client_side(&r, &format!("{} {path}", route.method));
        r.assert_error(404, "invalid_request_error", "resource_missing");
    }
}

both!(no_bad_input_gets_a_5xx, no_bad_input_gets_a_5xx_case);
async fn no_bad_input_gets_a_5xx_case(app: &TestApp) {
    let account = app.account("a", "usd", false).await;
    app.fund(&account, "usd", 100).await;
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"{}".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"x\"".to_vec(),
        b"-0".to_vec(),
        b"{\"a\":1}".to_vec(),
        b"{\"id\": null, \"metadata\": {\"k\": {\"nested\": 1}}}".to_vec(),
        b"{\"amount\": 1e400, \"limit\": -1e-400}".to_vec(),
        b"{\"name\": \"\\ud800\"}".to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
        b"\xff\xff\xff".to_vec(),
        b"\0".to_vec(),
        format!("{}{}", "{\"a\":".repeat(500), "}".repeat(500)).into_bytes(),
    ];
    let ids = [
        account.clone(),
        "x".to_owned(),
        "%00".to_owned(),
        // Percent-encoded UTF-8 that decodes to text.
        "%E2%82%AC".to_owned(),
        "acct_7ZZZZZZZZZZZZZZZZZZZZZZZZZ".to_owned(),
        "acct_00000000000000000000000000".to_owned(),
        "a".repeat(4000),
    ];
    for route in settle_api::registry::routes() {
        let paths: Vec<String> = if route.path.contains("{id}") {
            ids.iter().map(|id| route.path.replace("{id}", id)).collect()
        } else {
            vec![route.path.to_owned()]
        };
        for path in paths {
            if route.method == Method::GET {
                for query in [
                    "",
                    "?limit",
                    "?=",
                    "?&&&",
                    "?limit=%FF",
                    "?%00=1",
                    "?limit=1&limit=1",
                    "?starting_after=acct_7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
                ] {
                    let r = app.get(&format!("{path}{query}")).await;
                    assert_client_side(&r, &format!("GET {path}{query}"));
                }
            } else {
                for body in &bodies {
                    let r = raw(app, route.method.clone(), &path, body.clone()).await;
                    assert_client_side(
                        &r,
                        &format!("{} {path} {:?}", route.method, String::from_utf8_lossy(body)),
                    );
                }
            }
        }
    }
    // Odd headers are client errors too.
    let r = app
        .client
        .get(app.url("/v1/accounts"))
        .header("authorization", b"Bearer \xff\xfe".as_slice())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .patch(app.url(&format!("/v1/accounts/{account}")))
        .bearer_auth(&app.admin_key)
        .header("if-match", "\"not a version\"")
        .json(&json!({"name": "b"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
}
