//! The REST face of Settle. Thin by design: each route reads its
//! operation's typed input from the path, query and body, runs it through
//! the operation pipeline in core ([`settle_core::Settle::execute`]), and
//! turns the outcome back into JSON. Every route is one operation of the
//! operation registry, listed once in [`registry`].

mod body;
mod conditional;
mod dashboard;
pub mod error;
mod extract;
mod health;
pub mod idempotency;
pub mod listener;
mod metrics;
pub mod openapi;
pub mod registry;
mod request;
mod rest;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use settle_core::Settle;

pub use error::ApiError;
pub use listener::{ListenerOptions, ListenerStats};

/// Request bodies larger than this get 413 `body_too_large`.
pub const MAX_BODY_BYTES: usize = settle_core::pipeline::MAX_REQUEST_BYTES;

/// Options of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Upper bound on handling one request; past it the client gets 503.
    pub request_timeout: Duration,
    /// The listener's counters, shown at `/metrics`.
    pub listener: Arc<ListenerStats>,
    /// Answer every request with `Settle-Statements: <n>`, the SQL
    /// statements it ran: for tests and profiling, off by default (it says
    /// something about the internals to every client).
    pub statement_header: bool,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            listener: Arc::default(),
            statement_header: false,
        }
    }
}

/// The whole HTTP application: `/v1` from the registry, health probes, and
/// the layers every request passes (request id, error rendering, logging,
/// panic catching, body limit).
pub fn app(settle: Settle, options: &ApiOptions) -> Router {
    app_with(settle, options, Router::new())
}

/// [`app`] with other faces (GraphQL) on the same port, behind the same
/// layers: request id, statement count, logging, panic catching.
pub fn app_with(settle: Settle, options: &ApiOptions, faces: Router<Settle>) -> Router {
    registry::build()
        .layer(axum::middleware::from_fn(conditional::conditional))
        .merge(faces)
        .merge(health::router(settle.clone()))
        .merge(dashboard::router())
        .merge(openapi::router())
        .fallback(request::not_found)
        .method_not_allowed_fallback(request::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(Extension(Arc::clone(&options.listener)))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            request::panic_response,
        ))
        .layer(axum::middleware::from_fn_with_state(
            request::ContextOptions {
                timeout: options.request_timeout,
                statement_header: options.statement_header,
            },
            request::request_context,
        ))
        .with_state(settle)
}
