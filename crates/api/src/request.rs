//! What wraps every request: a `Request-Id`, error rendering with that id,
//! a time limit, the key's `RateLimit-*` headers, and one structured log line (id, method, route, status,
//! latency).

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The id of the request being served, in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The route template that served a request, copied into the response for
/// the log line.
#[derive(Debug, Clone)]
pub struct RouteName(pub &'static str);

/// What the request-context layer is configured with.
#[derive(Debug, Clone, Copy)]
pub struct ContextOptions {
    pub timeout: Duration,
    pub statement_header: bool,
}

/// Asked with `true`, answered with the key's permissions
/// (`resource:action`, space-separated): the dashboard shows only the
/// controls the signed-in key may use (the API refuses the rest anyway).
pub const SHOW_PERMISSIONS: &str = "settle-permissions";

pub async fn request_context(State(options): State<ContextOptions>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = settle_core::pipeline::new_request_id();
    let method = req.method().clone();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(settle_core::pipeline::RequestMeta {
        request_id: request_id.clone(),
        received: started,
    });
    let statements = Arc::new(AtomicU64::new(0));
    let verdict = settle_core::admission::VerdictSlot::default();
    if req
        .headers()
        .get(SHOW_PERMISSIONS)
        .is_some_and(|v| v.as_bytes() == b"true")
    {
        verdict.lock().unwrap_or_else(|e| e.into_inner()).want_permissions = true;
    }
    let work = tokio::time::timeout(options.timeout, next.run(req));
    let work = settle_core::admission::note_rate_verdicts(Arc::clone(&verdict), work);
    let mut response = match settle_store::sql::statements::scope(Arc::clone(&statements), work).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable("The request took too long and was abandoned; retry shortly.").into_response(),
    };
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        let route = response.extensions().get::<RouteName>().cloned();
        response = error.render(&request_id);
        if let Some(route) = route {
            response.extensions_mut().insert(route);
        }
    }
    let noted = std::mem::take(&mut *verdict.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(verdict) = noted.verdict {
        for (name, value) in verdict.headers() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    if let Some(value) = noted.permissions.and_then(|p| HeaderValue::from_str(&p.join(" ")).ok()) {
        response.headers_mut().insert(SHOW_PERMISSIONS, value);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("request-id", value);
    }
    let statements = statements.load(Ordering::Relaxed);
    if options.statement_header {
        response
            .headers_mut()
            .insert("settle-statements", HeaderValue::from(statements));
    }
    let route = response.extensions().get::<RouteName>().map_or("-", |r| r.0);
    tracing::info!(
        request_id = %request_id,
        method = %method,
        route,
        status = response.status().as_u16(),
        statements,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "resource_missing",
        "Unrecognized request URL.",
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "This route does not accept that method.",
    )
}

/// A panic is a bug: the client sees a plain 500, the log sees the payload.
pub fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    ApiError::internal().into_response()
}
