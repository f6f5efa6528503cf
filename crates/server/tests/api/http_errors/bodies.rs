//! Request bodies: malformed JSON is a 400 `malformed_json`, a body over 1 MiB is a 413 on every route that takes one, and a 413 leaves the connection honest (`Connection: close` when the rest goes unread).

use reqwest::Method;
use serde_json::Value;

use super::assert_client_side;
use crate::support::{Resp, TestApp, both};

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
    // An array of the fields in order is not an object either (serde would
    // read one as the struct).
    for body in ["[]", "null", "\"x\"", "42", "[\"a\", \"usd\"]", "[null, null]"] {
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
    let client = crate::support::http_client_builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    app.raw_with(&client, method, path, body).await
}

/// Writes `head` (request line and headers, without the blank line) and then
/// only the first `send` bytes of the body on a raw socket, and reads the
/// answer. Sending no more than the server reads means its answer cannot be
/// lost to a connection reset, whatever it announces in `Content-Length`.
pub(crate) async fn raw_http(app: &TestApp, head: String, body_prefix: Vec<u8>) -> Resp {
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
