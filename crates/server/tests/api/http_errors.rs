//! Proves the cross-cutting error behaviour of SPEC "Errors" over HTTP: every response carries a `Request-Id` that error bodies repeat, bad bodies, keys, permissions, list parameters and amounts get the documented 4xx, and no bad input anywhere gets a 5xx.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use serde_json::{Value, json};
use settle_core::clock::ManualClock;

use crate::support::{Backend, Resp, TestApp, both, postgres_available};

const MAX_SAFE: i64 = (1 << 53) - 1;

fn assert_400(r: &Resp, code: &str, param: &str) {
    r.assert_error(400, "invalid_request_error", code);
    assert_eq!(r.body["error"]["param"], param, "body: {}", r.body);
}

fn request_id(r: &Resp) -> String {
    let id = r
        .headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .expect("Request-Id header")
        .to_owned();
    assert!(id.starts_with("req_") && id.len() > "req_".len(), "request id `{id}`");
    id
}

/// Asserts that `r` is not a 5xx, and that a 4xx has SPEC's error shape with
/// the response's request id.
fn assert_client_side(r: &Resp, what: &str) {
    let status = r.status.as_u16();
    assert!(status < 500, "{what}: {status} {}", r.body);
    let id = request_id(r);
    if status >= 400 {
        let error = &r.body["error"];
        assert!(
            error["type"].as_str().is_some_and(|t| !t.is_empty()),
            "{what}: {}",
            r.body
        );
        assert!(
            error["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{what}: {}",
            r.body
        );
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {}",
            r.body
        );
        assert_eq!(error["request_id"], id.as_str(), "{what}: {}", r.body);
    }
}

/// Sends `body` as is, with `method`, the admin key and a JSON content type.
async fn raw(app: &TestApp, method: Method, path: &str, body: Vec<u8>) -> Resp {
    let res = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    Resp {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

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

both!(malformed_json_is_400, malformed_json_is_400_case);
async fn malformed_json_is_400_case(app: &TestApp) {
    let bodies: [&[u8]; 9] = [
        b"{",
        b"{\"name\": \"a\", \"currency\": \"usd\"",
        b"{name: \"a\"}",
        b"{\"name\": \"a\",}",
        b"not json",
        b"{\"name\": \"a\", \"currency\": \"usd\"} x",
        b"{\"name\": \"a\", \"currency\": \"usd\"}{}",
        b"{\"name\": \"a\", \"currency\": \"usd\"} {\"name\": \"b\"}",
        b"{\"name\": \"\xff\xfe\", \"currency\": \"usd\"}",
    ];
    for body in bodies {
        let r = app.post_raw("/v1/accounts", body.to_vec()).await;
        r.assert_error(400, "invalid_request_error", "malformed_json");
    }
    // Nesting past any sane depth is refused, not a stack overflow.
    let deep = format!(
        "{{\"name\": \"a\", \"currency\": \"usd\", \"metadata\": {}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let r = app.post_raw("/v1/accounts", deep).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_client_side(&r, "deep nesting");
    // Valid JSON of the wrong shape is a bad parameter, not malformed.
    for body in ["[]", "null", "\"x\"", "42"] {
        let r = app.post_raw("/v1/accounts", body).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
    }
    // Trailing whitespace is still one JSON value.
    let r = app
        .post_raw("/v1/accounts", "{\"name\": \"a\", \"currency\": \"usd\"}\n\t ")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = app.get("/v1/accounts").await;
    assert_eq!(
        list.body["data"].as_array().expect("data").len(),
        1,
        "only the good body created an account"
    );
}

/// Sends `body` on a connection of its own (no pooling), so a server that
/// closes the connection after answering cannot affect other requests.
async fn unpooled(app: &TestApp, method: Method, path: &str, body: Vec<u8>) -> Resp {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let res = client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    Resp {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// Writes `head` (request line and headers, without the blank line) and then
/// only the first `send` bytes of the body on a raw socket, and reads the
/// answer. Sending no more than the server reads means its answer cannot be
/// lost to a connection reset, whatever it announces in `Content-Length`.
async fn raw_http(app: &TestApp, head: String, body_prefix: Vec<u8>) -> Resp {
    use std::io::{Read, Write};
    let addr = app.addr;
    let key = app.admin_key.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        let head = format!("{head}\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("write head");
        // The server may answer and close before it has read everything.
        let _ = stream.write_all(&body_prefix);
        let mut answer = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        answer
    })
    .await
    .expect("raw request");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':')
            && let (Ok(k), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()),
                reqwest::header::HeaderValue::from_str(v.trim()),
            )
        {
            headers.insert(k, v);
        }
    }
    Resp {
        status: reqwest::StatusCode::from_u16(status).expect("status"),
        headers,
        body: serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
    }
}

both!(bodies_over_one_mib_are_413, bodies_over_one_mib_are_413_case);
async fn bodies_over_one_mib_are_413_case(app: &TestApp) {
    let json = "{\"name\": \"a\", \"currency\": \"usd\"}";
    // Exactly 1 MiB (padded with whitespace) is allowed.
    let mut exact = json.as_bytes().to_vec();
    exact.resize(settle_api::MAX_BODY_BYTES, b' ');
    assert_eq!(exact.len(), 1024 * 1024);
    let r = unpooled(app, Method::POST, "/v1/accounts", exact.clone()).await;
    assert_eq!(r.status, 200, "a body of exactly 1 MiB is accepted: {}", r.body);
    // One byte more is not, on any route that takes a body.
    exact.push(b' ');
    let r = unpooled(app, Method::POST, "/v1/accounts", exact.clone()).await;
    r.assert_error(413, "invalid_request_error", "body_too_large");
    let r = unpooled(
        app,
        Method::PATCH,
        "/v1/accounts/acct_01M8FQ6ZTWESP8TXJ5FPWECSQ1",
        exact.clone(),
    )
    .await;
    r.assert_error(413, "invalid_request_error", "body_too_large");
    let r = unpooled(app, Method::POST, "/v1/payments", exact.clone()).await;
    r.assert_error(413, "invalid_request_error", "body_too_large");

    // Far over: a 2 MiB body announced by Content-Length, and a chunked body
    // with no length at all; the answer comes once 1 MiB + 1 byte has arrived.
    let over = vec![b' '; settle_api::MAX_BODY_BYTES + 1];
    let head = format!(
        "POST /v1/accounts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}",
        2 * 1024 * 1024
    );
    let r = raw_http(app, head, over.clone()).await;
    r.assert_error(413, "invalid_request_error", "body_too_large");
    let head = "POST /v1/accounts HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked".to_owned();
    let mut chunked = format!("{:x}\r\n", over.len()).into_bytes();
    chunked.extend_from_slice(&over);
    let r = raw_http(app, head, chunked).await;
    r.assert_error(413, "invalid_request_error", "body_too_large");

    let list = app.get("/v1/accounts").await;
    assert_eq!(
        list.body["data"].as_array().expect("data").len(),
        1,
        "a refused body created nothing"
    );
}

/// On one keep-alive connection: a POST announcing `announced` body bytes of
/// which the first 1 MiB + 1 are sent (enough for the 413), then, once the
/// answer is read, `GET /healthz`. Returns the 413's head and what the second
/// request got (`None` when the connection was gone).
async fn over_limit_then_again(app: &TestApp, announced: usize) -> (String, Option<String>) {
    use std::io::{Read, Write};
    let addr = app.addr;
    let key = app.admin_key.clone();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let head = format!(
            "POST /v1/accounts HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {announced}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("write head");
        stream
            .write_all(&vec![b' '; settle_api::MAX_BODY_BYTES + 1])
            .expect("write body");
        // Read exactly one answer: headers, then Content-Length bytes.
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let first = loop {
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break head.to_owned();
                }
            }
            let n = stream.read(&mut buf).expect("read the first answer");
            assert!(n > 0, "closed before the first answer: {text:?}");
            answer.extend_from_slice(&buf[..n]);
        };
        let again = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        let second = stream.write_all(again.as_bytes()).ok().and_then(|()| {
            let n = stream.read(&mut buf).ok()?;
            (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
        });
        (first, second)
    })
    .await
    .expect("raw requests")
}

both!(
    a_413_after_the_whole_body_keeps_the_connection_honest,
    a_413_after_the_whole_body_case
);
/// The body was exactly 1 MiB + 1 and all of it was sent: after the 413 the
/// connection either still serves the next request or the 413 said
/// `Connection: close` (RFC 9112 §9.6).
async fn a_413_after_the_whole_body_case(app: &TestApp) {
    let (first, second) = over_limit_then_again(app, settle_api::MAX_BODY_BYTES + 1).await;
    assert!(first.starts_with("HTTP/1.1 413"), "{first}");
    let says_close = first.lines().any(|l| l.eq_ignore_ascii_case("connection: close"));
    let still_serves = second.as_deref().is_some_and(|s| s.starts_with("HTTP/1.1 200"));
    assert!(
        says_close || still_serves,
        "closed after a 413 without `Connection: close`; 413 head:\n{first}"
    );
}

both!(
    a_413_before_the_whole_body_says_connection_close,
    a_413_before_the_whole_body_case
);
/// The body announced 2 MiB and the server answers 413 after 1 MiB + 1:
/// the rest is never read, so the connection cannot carry another request and
/// the 413 must say `Connection: close` (RFC 9112 §9.6). Without it a
/// keep-alive client (reqwest's pool, for one) puts the dead connection back
/// and its next request fails with an incomplete message.
async fn a_413_before_the_whole_body_case(app: &TestApp) {
    let (first, _) = over_limit_then_again(app, 2 * 1024 * 1024).await;
    assert!(first.starts_with("HTTP/1.1 413"), "{first}");
    assert!(
        first.lines().any(|l| l.eq_ignore_ascii_case("connection: close")),
        "a 413 that leaves the body unread must say `Connection: close`; 413 head:\n{first}"
    );
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

/// The list routes, each with an id of its own type that exists.
async fn lists(app: &TestApp) -> Vec<(String, String)> {
    let account = app.account("a", "usd", false).await;
    let bank = app.fund(&account, "usd", 100).await;
    let customer = app.post("/v1/customers", json!({"name": "c"})).await.id();
    let payment = app
        .post(
            "/v1/payments",
            json!({"amount": 5, "currency": "usd", "source": account, "destination": bank}),
        )
        .await;
    assert_eq!(payment.status, 200, "{}", payment.body);
    let refund = app
        .post("/v1/refunds", json!({"payment": payment.id(), "amount": 1}))
        .await;
    assert_eq!(refund.status, 200, "{}", refund.body);
    let entries = format!("/v1/accounts/{account}/entries");
    let entry = app.get(&entries).await.body["data"][0]["id"]
        .as_str()
        .expect("an entry")
        .to_owned();
    vec![
        ("/v1/accounts".to_owned(), account),
        ("/v1/customers".to_owned(), customer),
        ("/v1/payments".to_owned(), payment.id()),
        ("/v1/refunds".to_owned(), refund.id()),
        (entries, entry),
    ]
}

both!(list_parameters_are_validated, list_parameters_are_validated_case);
async fn list_parameters_are_validated_case(app: &TestApp) {
    for (list, own_id) in lists(app).await {
        for limit in ["0", "101", "abc", "-1", "1.5", "", "99999999999999999999"] {
            let r = app.get(&format!("{list}?limit={limit}")).await;
            assert_400(&r, "parameter_invalid", "limit");
        }
        for limit in ["1", "100"] {
            let r = app.get(&format!("{list}?limit={limit}")).await;
            assert_eq!(r.status, 200, "{list}?limit={limit}: {}", r.body);
        }
        let r = app
            .get(&format!("{list}?starting_after={own_id}&ending_before={own_id}"))
            .await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        let r = app.get(&format!("{list}?limit=1&limit=2")).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");

        // A cursor that names nothing: another type's id, a malformed id,
        // and a well-formed id of the right type that does not exist.
        let (prefix, _) = own_id.split_once('_').expect("prefixed id");
        let unknown = format!("{prefix}_01M8FQ6ZTWESP8TXJ5FPWECSQ1");
        let other_type = if prefix == "cus" {
            "acct_01M8FQ6ZTWESP8TXJ5FPWECSQ1"
        } else {
            "cus_01M8FQ6ZTWESP8TXJ5FPWECSQ1"
        };
        for param in ["starting_after", "ending_before"] {
            for cursor in [other_type, "nope", "", unknown.as_str()] {
                let r = app.get(&format!("{list}?{param}={cursor}")).await;
                assert_400(&r, "resource_missing", param);
            }
            let r = app.get(&format!("{list}?{param}={own_id}")).await;
            assert_eq!(r.status, 200, "{list}?{param}={own_id}: {}", r.body);
        }

        for unknown_param in ["foo", "created[eq]", "sort", "LIMIT"] {
            let r = app.get(&format!("{list}?{unknown_param}=1")).await;
            assert_400(&r, "parameter_unknown", unknown_param);
        }
        let r = app.get(&format!("{list}?created[gte]=yesterday")).await;
        assert_400(&r, "parameter_invalid", "created[gte]");
        // Extreme but well-formed ranges are answered, not crashed on.
        for range in [
            "created[gte]=9223372036854775807",
            "created[lt]=-9223372036854775808",
            "created[lte]=0",
            "created[gt]=-1",
        ] {
            let r = app.get(&format!("{list}?{range}")).await;
            assert_eq!(r.status, 200, "{list}?{range}: {}", r.body);
        }
    }
}

both!(at_most_one_equality_filter, at_most_one_equality_filter_case);
async fn at_most_one_equality_filter_case(app: &TestApp) {
    let account = app.account("a", "usd", false).await;
    let bank = app.fund(&account, "usd", 100).await;
    let one = app.get(&format!("/v1/payments?source={bank}")).await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["data"].as_array().expect("data").len(), 1);
    let two = [
        format!("status=succeeded&source={bank}"),
        format!("source={bank}&destination={account}"),
        format!("customer=cus_01M8FQ6ZTWESP8TXJ5FPWECSQ1&destination={account}"),
    ];
    for query in two {
        let r = app.get(&format!("/v1/payments?{query}")).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        assert!(r.body["error"]["param"].is_string(), "{}", r.body);
    }
    // One filter plus a created range is allowed.
    let r = app.get(&format!("/v1/payments?source={bank}&created[gte]=0")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"].as_array().expect("data").len(), 1);
    let r = app.get("/v1/payments?status=nonsense").await;
    assert_400(&r, "parameter_invalid", "status");
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
