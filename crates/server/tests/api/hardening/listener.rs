//! The listener's limits, seen from a socket: a connection that sends
//! nothing, half a request line, partial headers or nothing after its last
//! answer is closed; a body that stalls gets 408 in SPEC's shape; past the
//! connection cap newcomers wait for a free slot; HTTP/2 with prior
//! knowledge is served on the same port. Each wait for a close is bounded
//! only so that a regression fails instead of hanging (connections stayed
//! open for over two minutes before); the bound is not a measurement.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use settle::config::Config;
use settle_core::clock::SystemClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http_errors::bodies::raw_http;
use crate::support::{TestApp, TestDb, both};

/// An app with short listener limits, so each close comes in about a second.
async fn strict(app: &TestApp, max_connections: usize) -> TestApp {
    let mut config = Config::default();
    config.http.header_timeout = Duration::from_secs(1);
    config.http.idle_timeout = Duration::from_secs(2);
    config.http.body.grace = Duration::from_secs(1);
    config.http.max_connections = max_connections;
    let db = TestDb::create(app.db.backend).await;
    TestApp::spawn_config(db, Arc::new(SystemClock), config).await
}

/// Writes `bytes`, then reads until the server closes; returns what it sent.
async fn closed_after(app: &TestApp, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the server kept a connection open after {:?}",
                String::from_utf8_lossy(bytes)
            )
        })
        .expect("read");
    answer
}

async fn slow_and_silent_connections_are_closed_case(app: &TestApp) {
    let w = strict(app, 2048).await;
    let host = format!("Host: {}\r\n", w.addr);
    // Nothing at all, half a request line, and a head without its end.
    assert!(closed_after(&w, b"").await.is_empty());
    assert!(closed_after(&w, b"GET /v1/accou").await.is_empty());
    let partial = format!("GET /healthz HTTP/1.1\r\n{host}X-Slow: 1\r\n");
    assert!(closed_after(&w, partial.as_bytes()).await.is_empty());
    // A full request is answered, then the idle connection is closed.
    let full = format!("GET /healthz HTTP/1.1\r\n{host}\r\n");
    let answer = String::from_utf8(closed_after(&w, full.as_bytes()).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(w.metric("settle_http_header_timeouts_total").await >= 3);
    assert!(w.metric("settle_http_idle_timeouts_total").await >= 1);
    w.finish().await;
}
both!(
    slow_and_silent_connections_are_closed,
    slow_and_silent_connections_are_closed_case
);

async fn a_stalled_body_is_408_case(app: &TestApp) {
    let w = strict(app, 2048).await;
    // 100 bytes announced, 10 sent, then silence: 503 after 30 s before.
    for extra in ["", "\r\nIdempotency-Key: stalled-1"] {
        let head =
            format!("POST /v1/customers HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100{extra}");
        let r = raw_http(&w, head, br#"{"name": "#.to_vec()).await;
        r.assert_error(408, "invalid_request_error", "request_timeout");
    }
    assert_eq!(w.get("/v1/customers").await.body["data"], Value::Array(vec![]));
    // The key was released, so the client can send the whole request now.
    let full = w
        .client
        .post(w.url("/v1/customers"))
        .bearer_auth(&w.admin_key)
        .header("idempotency-key", "stalled-1")
        .json(&serde_json::json!({"name": "whole"}))
        .send()
        .await
        .unwrap();
    assert_eq!(full.status(), 200);
    w.finish().await;
}
both!(a_stalled_body_is_408, a_stalled_body_is_408_case);

async fn past_the_connection_cap_newcomers_wait_case(app: &TestApp) {
    let w = strict(app, 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(w.addr).await.unwrap();
        // Each one shows it has been accepted by getting an answer.
        s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", w.addr).as_bytes())
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // A fourth connects (the kernel's backlog) but is served only once a slot frees.
    let mut late = TcpStream::connect(w.addr).await.unwrap();
    late.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", w.addr).as_bytes())
        .await
        .unwrap();
    drop(held);
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), late.read_to_end(&mut answer))
        .await
        .expect("the waiting connection is served once a slot frees")
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(w.metric("settle_http_connection_limit_reached_total").await >= 1);
    w.finish().await;
}
both!(
    past_the_connection_cap_newcomers_wait,
    past_the_connection_cap_newcomers_wait_case
);

async fn http2_with_prior_knowledge_case(app: &TestApp) {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let request = hyper::Request::get(format!("http://{}/v1/customers", app.addr))
        .header("authorization", format!("Bearer {}", app.admin_key))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.expect("HTTP/2 request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert!(response.headers().contains_key("request-id"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list["object"], "list");
}
both!(http2_with_prior_knowledge, http2_with_prior_knowledge_case);

async fn errors_the_http_library_answers_are_4xx_case(app: &TestApp) {
    // hyper answers these before Settle sees a request (README, "Security"):
    // a status without a body, and the connection closed.
    let host = format!("Host: {}\r\n", app.addr);
    for (request, status) in [
        (
            format!("POST /v1/customers HTTP/1.1\r\n{host}Content-Length: abc\r\n\r\n"),
            "400",
        ),
        (format!("GET /healthz HTTP/1.1\r\n{host}X-Bad: a\0b\r\n\r\n"), "400"),
        (format!("GET /healthz HTTP/1.1\r\n{host}X-Fold: a\r\n b\r\n\r\n"), "400"),
        (format!("GET /{} HTTP/1.1\r\n{host}\r\n", "a".repeat(100_000)), "414"),
    ] {
        let answer = String::from_utf8_lossy(&closed_after(app, request.as_bytes()).await).into_owned();
        let line = answer.lines().next().unwrap_or_default().to_owned();
        assert!(
            line.starts_with(&format!("HTTP/1.1 {status}")) || (status == "414" && line.starts_with("HTTP/1.1 431")),
            "{line:?} for {:?}",
            &request[..request.len().min(60)]
        );
    }
}
both!(
    errors_the_http_library_answers_are_4xx,
    errors_the_http_library_answers_are_4xx_case
);
