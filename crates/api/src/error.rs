//! The REST side of SPEC "Errors": the shape and the mapping are decided in
//! core ([`Failure`]); this adds what only HTTP has (closing a connection
//! whose body was left unread). A handler returns an [`ApiError`]; the request-context middleware
//! renders it with the request id, so every error body carries one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use settle_core::ServiceError;
use settle_core::pipeline::Failure;
use settle_domain::DomainError;
use settle_store::StoreError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    /// Seconds for `Retry-After` on 429 and 503.
    pub retry_after: Option<u64>,
    /// Ask the client to close the connection: the rest of its body was not read.
    pub close_connection: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
            retry_after: None,
            close_connection: false,
        }
    }

    /// 400 `invalid_request_error` with the offending parameter named.
    pub fn invalid(code: &'static str, param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", code, message)
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "api_error", "unavailable", message)
        }
    }

    /// 413 for a body over 1 MiB. The rest of the body stays unread, so the
    /// connection cannot be reused: say so with `Connection: close`.
    pub fn too_large() -> Self {
        Self {
            close_connection: true,
            ..Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "body_too_large",
                "The body is larger than 1 MiB.",
            )
        }
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal_error",
            "An internal error occurred; it has been logged with this request's id.",
        )
    }

    /// The final response, body and headers, for the request `request_id`.
    pub fn render(&self, request_id: &str) -> Response {
        let body = Failure::from(self.clone()).body(request_id);
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.close_connection {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl IntoResponse for ApiError {
    /// Deferred: the request-context middleware calls [`ApiError::render`].
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        Self {
            status: StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            kind: f.kind,
            code: f.code,
            message: f.message,
            param: f.param,
            retry_after: f.retry_after,
            close_connection: false,
        }
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status.as_u16(),
            kind: e.kind,
            code: e.code,
            message: e.message,
            param: e.param,
            retry_after: e.retry_after,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Failure::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Failure::from(e).into()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Failure::from(e).into()
    }
}
