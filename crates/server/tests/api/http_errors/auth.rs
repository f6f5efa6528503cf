//! Keys and permissions: a missing, malformed, unknown or expired key is a 401 with the right code before any body is read, and a viewer's writes are a 403 that change nothing.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use serde_json::{Value, json};
use settle_core::clock::ManualClock;

use crate::support::{Backend, Resp, TestApp, both, postgres_available};

/// Sends a request with a literal `Authorization` header value.
async fn with_authorization(app: &TestApp, value: &str) -> Resp {
    let res = app
        .client
        .get(app.url("/v1/accounts"))
        .header("authorization", value)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or(Value::Null);
    Resp { status, headers, body }
}

both!(missing_and_invalid_keys_are_401, missing_and_invalid_keys_are_401_case);
async fn missing_and_invalid_keys_are_401_case(app: &TestApp) {
    let r = app.call(Method::GET, "/v1/accounts", None, None).await;
    r.assert_error(401, "authentication_error", "api_key_missing");
    for value in ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", app.admin_key.as_str()] {
        let r = with_authorization(app, value).await;
        r.assert_error(401, "authentication_error", "api_key_missing");
    }
    // Authentication comes before the body is read.
    let r = app
        .client
        .post(app.url("/v1/accounts"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);

    let mut wrong_secret = app.admin_key.clone();
    let last = wrong_secret.pop().expect("a non-empty secret");
    wrong_secret.push(if last == 'A' { 'B' } else { 'A' });
    let valid_shape_unknown_id = {
        // Same shape as a real secret, but the key id names nothing.
        let (_, random) = app.admin_key.rsplit_once('_').expect("sk_<id>_<random>");
        format!("sk_01M8FQ6ZTWESP8TXJ5FPWECSQ1_{random}")
    };
    let truncated = app.admin_key[..app.admin_key.len() - 1].to_owned();
    for key in [
        "sk_nope",
        "nope",
        wrong_secret.as_str(),
        valid_shape_unknown_id.as_str(),
        truncated.as_str(),
    ] {
        let r = app.call(Method::GET, "/v1/accounts", Some(key), None).await;
        r.assert_error(401, "authentication_error", "api_key_invalid");
        let r = app
            .call(
                Method::POST,
                "/v1/accounts",
                Some(key),
                Some(json!({"name": "a", "currency": "usd"})),
            )
            .await;
        r.assert_error(401, "authentication_error", "api_key_invalid");
    }
    // The scheme is case-insensitive; the real key still works.
    let r = with_authorization(app, &format!("bearer {}", app.admin_key)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = app.get("/v1/accounts").await;
    assert_eq!(list.body["data"], json!([]), "no unauthenticated write happened");
}

/// Runs `case` on a fresh app whose clock the case moves by hand, then
/// drops the database even when the case panics (what `support::run` does
/// for the system clock).
async fn run_with_clock(backend: Backend, case: impl AsyncFnOnce(&TestApp, &ManualClock)) {
    if backend == Backend::Postgres && !postgres_available() {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64;
    // A whole second, so `now + n s` is exact.
    let clock = Arc::new(ManualClock::new(now - now % 1000));
    let app = TestApp::spawn_with_clock(backend, Arc::clone(&clock) as Arc<dyn settle_core::clock::Clock>).await;
    let outcome = AssertUnwindSafe(case(&app, clock.as_ref())).catch_unwind().await;
    app.finish().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

mod expired_keys_are_401 {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        super::run_with_clock(crate::support::Backend::Sqlite, super::expired_keys_are_401_case).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        super::run_with_clock(crate::support::Backend::Postgres, super::expired_keys_are_401_case).await
    }
}

async fn expired_keys_are_401_case(app: &TestApp, clock: &ManualClock) {
    let ctx = app.settle.context("test", None);
    let now_secs = ctx.now_secs();
    let (key, secret) = app
        .settle
        .create_api_key(&ctx, None, "short-lived".into(), "admin", Some(now_secs + 10))
        .await
        .expect("a key that expires in 10 s");
    assert_eq!(key.expires_at, Some(now_secs + 10));
    let r = app.call(Method::GET, "/v1/accounts", Some(&secret), None).await;
    assert_eq!(r.status, 200, "a key is valid before it expires: {}", r.body);

    clock.advance(9_999);
    let r = app.call(Method::GET, "/v1/accounts", Some(&secret), None).await;
    assert_eq!(r.status, 200, "still valid 1 ms before expiry: {}", r.body);

    clock.advance(20_000);
    let r = app.call(Method::GET, "/v1/accounts", Some(&secret), None).await;
    r.assert_error(401, "authentication_error", "api_key_expired");
    let r = app
        .call(
            Method::POST,
            "/v1/accounts",
            Some(&secret),
            Some(json!({"name": "a", "currency": "usd"})),
        )
        .await;
    r.assert_error(401, "authentication_error", "api_key_expired");
    // A wrong secret for the same key is invalid, not expired: expiry is
    // only revealed to the holder of the secret.
    let mut wrong = secret.clone();
    let last = wrong.pop().expect("a non-empty secret");
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    let r = app.call(Method::GET, "/v1/accounts", Some(&wrong), None).await;
    r.assert_error(401, "authentication_error", "api_key_invalid");
    // A key without expiry is unaffected by the clock.
    assert_eq!(app.get("/v1/accounts").await.status, 200);
    assert_eq!(
        app.get("/v1/accounts").await.body["data"],
        json!([]),
        "the expired key wrote nothing"
    );
}

both!(viewer_writes_are_403, viewer_writes_are_403_case);
async fn viewer_writes_are_403_case(app: &TestApp) {
    let viewer = app.key("viewer").await;
    let account = app.account("a", "usd", false).await;
    let customer = app.post("/v1/customers", json!({"name": "c"})).await.id();
    let bank = app.fund(&account, "usd", 100).await;
    let held = app
        .post(
            "/v1/payments",
            json!({"amount": 10, "currency": "usd", "source": account, "destination": bank, "capture": false}),
        )
        .await
        .id();
    let writes = [
        (
            Method::POST,
            "/v1/accounts".to_owned(),
            json!({"name": "b", "currency": "usd"}),
            "accounts:write",
        ),
        (
            Method::PATCH,
            format!("/v1/accounts/{account}"),
            json!({"name": "renamed"}),
            "accounts:write",
        ),
        (
            Method::POST,
            "/v1/customers".to_owned(),
            json!({"name": "d"}),
            "customers:write",
        ),
        (
            Method::PATCH,
            format!("/v1/customers/{customer}"),
            json!({"name": "renamed"}),
            "customers:write",
        ),
        (
            Method::DELETE,
            format!("/v1/customers/{customer}"),
            Value::Null,
            "customers:write",
        ),
        (
            Method::POST,
            "/v1/payments".to_owned(),
            json!({"amount": 1, "currency": "usd", "source": bank, "destination": account}),
            "payments:write",
        ),
        (
            Method::POST,
            format!("/v1/payments/{held}/capture"),
            json!({}),
            "payments:write",
        ),
        (
            Method::POST,
            format!("/v1/payments/{held}/cancel"),
            json!({}),
            "payments:write",
        ),
        (
            Method::POST,
            "/v1/refunds".to_owned(),
            json!({"payment": held}),
            "refunds:write",
        ),
    ];
    for (method, path, body, permission) in writes {
        let body = (!body.is_null()).then_some(body);
        let r = app.call(method.clone(), &path, Some(&viewer), body).await;
        r.assert_error(403, "permission_error", "permission_denied");
        let message = r.body["error"]["message"].as_str().expect("message");
        assert!(
            message.contains(permission),
            "{method} {path}: `{message}` names `{permission}`"
        );
    }
    // The permission is checked before the body is even parsed.
    let r = app
        .call(
            Method::POST,
            "/v1/accounts",
            Some(&viewer),
            Some(json!({"bogus": true})),
        )
        .await;
    r.assert_error(403, "permission_error", "permission_denied");

    // Reads are allowed, and nothing changed.
    let a = app
        .call(Method::GET, &format!("/v1/accounts/{account}"), Some(&viewer), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["name"], "a");
    assert_eq!(a.body["pending_out"], 10);
    let c = app
        .call(Method::GET, &format!("/v1/customers/{customer}"), Some(&viewer), None)
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.body["name"], "c");
    let p = app
        .call(Method::GET, &format!("/v1/payments/{held}"), Some(&viewer), None)
        .await;
    assert_eq!(p.body["status"], "requires_capture");
    let accounts = app.call(Method::GET, "/v1/accounts", Some(&viewer), None).await;
    assert_eq!(accounts.body["data"].as_array().expect("data").len(), 2);
    let refunds = app.call(Method::GET, "/v1/refunds", Some(&viewer), None).await;
    assert_eq!(refunds.body["data"], json!([]));
}
