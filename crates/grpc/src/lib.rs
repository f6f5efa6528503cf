//! The gRPC face of Settle: `settle.v1` services for accounts, customers,
//! payments, refunds, events and webhook endpoints, each method one
//! operation of the registry run through the same pipeline as REST and
//! GraphQL; the reflection service (v1 and v1alpha) so clients without the
//! `.proto` can call it; the standard health service; and `WatchEvents`,
//! the commit stream as a server stream.
//!
//! It shares the port with REST: [`alongside`] sends requests whose
//! content type is `application/grpc` here, around the REST-only layers
//! (JSON error fallbacks, the REST request timeout), and everything else
//! to REST.

mod call;
mod codec;
mod convert;
mod services;
pub mod status;
mod watch;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;
use futures::future::BoxFuture;
use settle_core::Settle;
use tower::Service;

pub use watch::{Closing, Watch};

/// The generated messages, services and clients of `settle.v1`.
pub mod pb {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("settle.v1");
}

/// `settle.proto` compiled, imports included: what reflection serves.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/settle_descriptor.bin"));

/// The operations gRPC exposes and the method of each, so tests can check
/// every one against the other faces.
pub const EXPOSED: &[(&str, &str)] = &[
    ("create_account", "/settle.v1.AccountService/CreateAccount"),
    ("retrieve_account", "/settle.v1.AccountService/GetAccount"),
    ("list_accounts", "/settle.v1.AccountService/ListAccounts"),
    ("update_account", "/settle.v1.AccountService/UpdateAccount"),
    ("create_customer", "/settle.v1.CustomerService/CreateCustomer"),
    ("retrieve_customer", "/settle.v1.CustomerService/GetCustomer"),
    ("list_customers", "/settle.v1.CustomerService/ListCustomers"),
    ("update_customer", "/settle.v1.CustomerService/UpdateCustomer"),
    ("delete_customer", "/settle.v1.CustomerService/DeleteCustomer"),
    ("create_payment", "/settle.v1.PaymentService/CreatePayment"),
    ("retrieve_payment", "/settle.v1.PaymentService/GetPayment"),
    ("list_payments", "/settle.v1.PaymentService/ListPayments"),
    ("capture_payment", "/settle.v1.PaymentService/CapturePayment"),
    ("cancel_payment", "/settle.v1.PaymentService/CancelPayment"),
    ("create_refund", "/settle.v1.RefundService/CreateRefund"),
    ("retrieve_refund", "/settle.v1.RefundService/GetRefund"),
    ("list_refunds", "/settle.v1.RefundService/ListRefunds"),
    ("retrieve_event", "/settle.v1.EventService/GetEvent"),
    ("list_events", "/settle.v1.EventService/ListEvents"),
    (
        "create_webhook_endpoint",
        "/settle.v1.WebhookEndpointService/CreateWebhookEndpoint",
    ),
    (
        "retrieve_webhook_endpoint",
        "/settle.v1.WebhookEndpointService/GetWebhookEndpoint",
    ),
    (
        "list_webhook_endpoints",
        "/settle.v1.WebhookEndpointService/ListWebhookEndpoints",
    ),
    (
        "update_webhook_endpoint",
        "/settle.v1.WebhookEndpointService/UpdateWebhookEndpoint",
    ),
    (
        "delete_webhook_endpoint",
        "/settle.v1.WebhookEndpointService/DeleteWebhookEndpoint",
    ),
    (
        "rotate_webhook_secret",
        "/settle.v1.WebhookEndpointService/RotateWebhookSecret",
    ),
];

/// Every gRPC service as one router: `settle.v1`, reflection and health.
/// `closing` ends open streams when shutdown begins.
pub fn router(settle: Settle, watch: Watch, closing: Closing) -> Router {
    use pb::account_service_server::AccountServiceServer;
    use pb::customer_service_server::CustomerServiceServer;
    use pb::event_service_server::EventServiceServer;
    use pb::payment_service_server::PaymentServiceServer;
    use pb::refund_service_server::RefundServiceServer;
    use pb::webhook_endpoint_service_server::WebhookEndpointServiceServer;

    let face = services::Face { settle, watch, closing };
    let (health, health_service) = tonic_health::server::health_reporter();
    // Serving from the start: the process answers gRPC as soon as it
    // listens. Whether the database is reachable is `/readyz`'s to say.
    drop(health);
    // The same routes, then reflection: both versions list every service,
    // each other included. (Both builders are made before either is built:
    // a closure called twice to make them was miscompiled in release builds
    // here, the second builder writing into the first one's freed buffer.)
    let sets: [&'static [u8]; 4] = [
        DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut v1 = tonic_reflection::server::Builder::configure().include_reflection_service(false);
    let mut v1alpha = tonic_reflection::server::Builder::configure().include_reflection_service(false);
    for set in sets {
        v1 = v1.register_encoded_file_descriptor_set(set);
        v1alpha = v1alpha.register_encoded_file_descriptor_set(set);
    }
    // The same bound on a request as REST's body limit.
    let most = settle_core::pipeline::MAX_REQUEST_BYTES;
    let mut routes =
        tonic::service::Routes::new(AccountServiceServer::new(face.clone()).max_decoding_message_size(most))
            .add_service(CustomerServiceServer::new(face.clone()).max_decoding_message_size(most))
            .add_service(PaymentServiceServer::new(face.clone()).max_decoding_message_size(most))
            .add_service(RefundServiceServer::new(face.clone()).max_decoding_message_size(most))
            .add_service(EventServiceServer::new(face.clone()).max_decoding_message_size(most))
            .add_service(WebhookEndpointServiceServer::new(face).max_decoding_message_size(most))
            .add_service(health_service);
    match (v1.build_v1(), v1alpha.build_v1alpha()) {
        (Ok(v1), Ok(v1alpha)) => routes = routes.add_service(v1).add_service(v1alpha),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "gRPC reflection is off: its descriptors did not load")
        }
    }
    routes.prepare().into_axum_router()
}

/// One router for the port: gRPC requests to `grpc`, the rest to `rest`.
/// Each gRPC call counts its SQL statements (answered in
/// `settle-statements` when `statement_header` is on, as REST does) and is
/// logged like a REST request.
pub fn alongside(rest: Router, grpc: Router, statement_header: bool) -> Router {
    Router::new().fallback_service(ByContentType {
        grpc,
        rest,
        statement_header,
    })
}

#[derive(Clone)]
struct ByContentType {
    grpc: Router,
    rest: Router,
    statement_header: bool,
}

fn is_grpc(request: &Request) -> bool {
    request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

impl Service<Request> for ByContentType {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Routers are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !is_grpc(&request) {
            let mut rest = self.rest.clone();
            return Box::pin(async move { rest.call(request).await });
        }
        let mut grpc = self.grpc.clone();
        let statement_header = self.statement_header;
        Box::pin(async move {
            let started = Instant::now();
            let method = request.uri().path().to_owned();
            let statements = Arc::new(AtomicU64::new(0));
            let call = grpc.call(request.map(Body::new));
            let mut response = settle_store::sql::statements::scope(Arc::clone(&statements), call).await?;
            let statements = statements.load(Ordering::Relaxed);
            if statement_header {
                response
                    .headers_mut()
                    .insert("settle-statements", HeaderValue::from(statements));
            }
            // A refusal comes in the headers; a stream's end, later, in its trailers.
            let status = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("0")
                .to_owned();
            tracing::info!(
                face = "grpc",
                method,
                grpc_status = status,
                statements,
                latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request"
            );
            Ok(response)
        })
    }
}
