//! Traces from the outside: a real `settle serve` process, configured only
//! by OpenTelemetry's variables, exports to a collector inside this test
//! that decodes with the `opentelemetry-proto` crate (the protocol's own
//! definitions), over `http/protobuf` and over `grpc`. One payment sent
//! with a `traceparent` yields spans of that trace for the request, its
//! transaction and commit, the fan-out and the webhook delivery, and the
//! receiver gets the delivery's span as its `traceparent`. A collector that
//! never answers holds no request back: spans are dropped and counted.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

use crate::crash::Target;
use crate::support::{Backend, eventually, http_client, postgres_available};
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";
/// The trace of a payment charged by the external processor.
const CHARGED_TRACE_ID: &str = "5cf92f3577b34da6a3ce929d0e0e4737";

/// Every span the collector received, with its resource's service name.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<(String, Span)>>>);

impl Collected {
    fn take(&self, request: ExportTraceServiceRequest) {
        let mut all = self.0.lock().unwrap();
        for rs in request.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.clone())
                .map(|v| match v {
                    Any::StringValue(s) => s,
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    all.push((service.clone(), span));
                }
            }
        }
    }

    fn of_trace(&self, trace_id: &[u8]) -> Vec<(String, Span)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

#[tonic::async_trait]
impl TraceService for Collected {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.take(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// An OTLP/HTTP collector: `POST /v1/traces` with a protobuf body.
async fn http_collector() -> (String, Collected) {
    let collected = Collected::default();
    let state = collected.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                state.take(ExportTraceServiceRequest::decode(body).expect("an OTLP export request"));
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse { partial_success: None }.encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), collected)
}

/// An OTLP/gRPC collector: the protocol's `TraceService` over HTTP/2.
async fn grpc_collector() -> (String, Collected) {
    let collected = Collected::default();
    let routes = tonic::service::Routes::new(TraceServiceServer::new(collected.clone())).prepare();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(routes.clone().into_axum_router());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), collected)
}

/// A webhook receiver that keeps every `traceparent` it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let state = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap| {
            let state = Arc::clone(&state);
            async move {
                if let Some(v) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
                    state.lock().unwrap().push(v.to_owned());
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), seen)
}

/// An external processor that approves every charge and keeps every
/// `traceparent` it is sent.
async fn processor() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let state = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/v1/charges",
        axum::routing::post(move |headers: HeaderMap| {
            let state = Arc::clone(&state);
            async move {
                if let Some(v) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
                    state.lock().unwrap().push(v.to_owned());
                }
                axum::Json(json!({"status": "succeeded"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

fn id_bytes(hex_id: &str) -> Vec<u8> {
    (0..hex_id.len() / 2)
        .map(|i| u8::from_str_radix(&hex_id[i * 2..i * 2 + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn post(base: &str, key: &str, path: &str, body: Value, traceparent: Option<&str>) -> Value {
    let mut req = http_client()
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .header("Idempotency-Key", format!("k{}", rand::random::<u64>()))
        .json(&body);
    if let Some(t) = traceparent {
        req = req.header("traceparent", t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// A `settle` process on `backend` with these settings besides the usual
/// test ones (receivers on loopback are allowed).
async fn process(backend: Backend, env: Vec<(&'static str, String)>) -> Target {
    let mut target = Target::new(backend).await;
    target.env = env;
    target
        .env
        .push(("SETTLE_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true".to_owned()));
    target
}

async fn one_payment_is_traced_end_to_end(
    backend: Backend,
    protocol: &str,
    (endpoint, collected): (String, Collected),
) {
    let (hook, seen) = receiver().await;
    let (charges_url, charges) = processor().await;
    let process = process(
        backend,
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
            ("OTEL_SERVICE_NAME", "settle-under-test".to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
            ("SETTLE_PROCESSOR_URL", charges_url),
        ],
    )
    .await;
    let key = process.admin_key();
    let (mut server, base) = process.start().await;
    let bank = post(
        &base,
        &key,
        "/v1/accounts",
        json!({"name": "bank", "currency": "usd", "allow_negative": true}),
        None,
    )
    .await;
    let shop = post(
        &base,
        &key,
        "/v1/accounts",
        json!({"name": "shop", "currency": "usd"}),
        None,
    )
    .await;
    post(
        &base,
        &key,
        "/v1/webhook_endpoints",
        json!({"url": hook, "enabled_events": ["payment.succeeded"]}),
        None,
    )
    .await;
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN}-01");
    post(
        &base,
        &key,
        "/v1/payments",
        json!({"amount": 1250, "currency": "usd", "source": bank["id"], "destination": shop["id"]}),
        Some(&traceparent),
    )
    .await;

    let trace_id = id_bytes(TRACE_ID);
    let wanted = [
        "create_payment",
        "db.transaction",
        "db.commit",
        "webhook.fan_out",
        "webhook.deliver",
    ];
    let spans = eventually(Duration::from_secs(30), "the payment's spans", || async {
        let spans = collected.of_trace(&trace_id);
        let names: BTreeSet<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
        wanted.iter().all(|w| names.contains(w)).then_some(spans)
    })
    .await;
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|(_, s)| s.name == name)
            .map(|(_, s)| s.clone())
            .unwrap()
    };
    assert!(spans.iter().all(|(service, _)| service == "settle-under-test"));
    // The request's span continues the caller's, as a server span.
    let request = by_name("create_payment");
    assert_eq!(hex(&request.parent_span_id), PARENT_SPAN);
    assert_eq!(request.kind, 2, "server");
    assert!(request.end_time_unix_nano >= request.start_time_unix_nano && request.start_time_unix_nano > 0);
    // Its transaction and commit are its children.
    let tx = by_name("db.transaction");
    assert_eq!(tx.parent_span_id, request.span_id);
    assert_eq!(by_name("db.commit").parent_span_id, tx.span_id);
    // Across the outbox: the fan-out and the delivery continue the request's span.
    assert_eq!(by_name("webhook.fan_out").parent_span_id, request.span_id);
    let delivery = by_name("webhook.deliver");
    assert_eq!(delivery.parent_span_id, request.span_id);
    assert_eq!(delivery.kind, 3, "client");
    // The receiver was handed the delivery's span.
    let received = eventually(Duration::from_secs(10), "the receiver's traceparent", || async {
        seen.lock().unwrap().iter().find(|t| t.contains(TRACE_ID)).cloned()
    })
    .await;
    assert_eq!(received, format!("00-{TRACE_ID}-{}-01", hex(&delivery.span_id)));
    // Requests without a traceparent start traces of their own.
    let own: BTreeSet<Vec<u8>> = collected
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.name == "create_account")
        .map(|(_, s)| s.trace_id.clone())
        .collect();
    assert_eq!(own.len(), 2, "each account request its own trace");
    assert!(!own.contains(&trace_id));

    // A card payment: the processor's charge continues the request's
    // trace, and so do the payment's conclusion and its delivery.
    let card = post(
        &base,
        &key,
        "/v1/accounts",
        json!({"name": "card", "currency": "usd", "processor": true, "allow_negative": true}),
        None,
    )
    .await;
    let charged = format!("00-{CHARGED_TRACE_ID}-{PARENT_SPAN}-01");
    post(
        &base,
        &key,
        "/v1/payments",
        json!({"amount": 990, "currency": "usd", "source": card["id"], "destination": shop["id"]}),
        Some(&charged),
    )
    .await;
    let charged_id = id_bytes(CHARGED_TRACE_ID);
    let spans = eventually(Duration::from_secs(30), "the charged payment's spans", || async {
        let spans = collected.of_trace(&charged_id);
        let names: BTreeSet<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
        ["create_payment", "processor.charge", "webhook.deliver"]
            .iter()
            .all(|w| names.contains(w))
            .then_some(spans)
    })
    .await;
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|(_, s)| s.name == name)
            .map(|(_, s)| s.clone())
            .unwrap()
    };
    let charge = by_name("processor.charge");
    assert_eq!(charge.parent_span_id, by_name("create_payment").span_id);
    assert_eq!(
        by_name("webhook.deliver").parent_span_id,
        charge.span_id,
        "payment.succeeded was written under the charge"
    );
    let sent = charges.lock().unwrap().clone();
    assert_eq!(sent, vec![format!("00-{CHARGED_TRACE_ID}-{}-01", hex(&charge.span_id))]);
    server.terminate().await;
    process.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_traced_across_the_outbox_over_http_on_sqlite() {
    one_payment_is_traced_end_to_end(Backend::Sqlite, "http/protobuf", http_collector().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_traced_across_the_outbox_over_grpc_on_postgres() {
    if postgres_available() {
        one_payment_is_traced_end_to_end(Backend::Postgres, "grpc", grpc_collector().await).await;
    }
}

/// A collector that accepts connections and never answers.
async fn silent_collector() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_holds_no_request_back() {
    let process = process(
        Backend::Sqlite,
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", silent_collector().await),
            // A tiny queue, and an export that waits ten minutes: the
            // first batch hangs for the whole test.
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4".to_owned()),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2".to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "1".to_owned()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "600000".to_owned()),
        ],
    )
    .await;
    let key = process.admin_key();
    let (mut server, base) = process.start().await;
    for i in 0..40 {
        let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN}-01");
        let account = post(
            &base,
            &key,
            "/v1/accounts",
            json!({"name": format!("a{i}"), "currency": "usd"}),
            Some(&traceparent),
        )
        .await;
        assert_eq!(account["object"], "account");
    }
    let metrics = http_client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("settle_telemetry_spans_dropped_total{reason=\"queue_full\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no dropped-span counter: {metrics}"));
    assert!(
        dropped > 0.0,
        "spans beyond the queue are dropped, not waited for: {dropped}"
    );
    let exported: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("settle_telemetry_spans_exported_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(exported, 0.0);
    server.terminate().await;
    process.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_still_queued_at_shutdown_are_sent() {
    let (endpoint, collected) = http_collector().await;
    // The default schedule delay (5 s): without a flush at shutdown the
    // span below would still be waiting for its batch.
    let process = process(Backend::Sqlite, vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)]).await;
    let key = process.admin_key();
    let (mut server, base) = process.start().await;
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN}-01");
    post(
        &base,
        &key,
        "/v1/accounts",
        json!({"name": "last words", "currency": "usd"}),
        Some(&traceparent),
    )
    .await;
    assert!(server.terminate().await.success());
    let spans = collected.of_trace(&id_bytes(TRACE_ID));
    assert!(
        spans.iter().any(|(_, s)| s.name == "create_account"),
        "the request's span was flushed: {:?}",
        spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
    );
    process.remove().await;
}
