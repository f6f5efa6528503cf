//! The error shape of SPEC "Errors", and the one mapping from service errors
//! to it. A handler returns an [`ApiError`]; the request-context middleware
//! renders it with the request id, so every error body carries one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use settle_core::ServiceError;
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
        let body = ErrorBody {
            error: ErrorObject {
                kind: self.kind,
                code: self.code,
                message: &self.message,
                param: self.param.as_deref(),
                request_id,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
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

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
    request_id: &'a str,
}

impl IntoResponse for ApiError {
    /// Deferred: the request-context middleware calls [`ApiError::render`].
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let unprocessable = |code| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                code,
                e.to_string(),
            )
        };
        match &e {
            DomainError::InvalidParameter { param, message } => ApiError::invalid("parameter_invalid", param, message),
            DomainError::InsufficientFunds { .. } => unprocessable("insufficient_funds"),
            DomainError::CurrencyMismatch { .. } => unprocessable("currency_mismatch"),
            DomainError::AmountTooLarge(_) => unprocessable("amount_too_large"),
            DomainError::BalanceOverflow(_) => unprocessable("balance_overflow"),
            DomainError::InvalidPolicy(m) => ApiError {
                param: Some("policy".into()),
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_request_error",
                    "policy_invalid",
                    format!("The policy is not valid: {m}"),
                )
            },
            DomainError::InvalidState(m) => {
                ApiError::new(StatusCode::CONFLICT, "invalid_request_error", "invalid_state", m)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, param: None } => ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "resource_missing",
                format!("No such {what}."),
            ),
            StoreError::NotFound {
                what,
                param: Some(param),
            } => ApiError::invalid(
                "resource_missing",
                param,
                format!("No such {what}: `{param}` names nothing."),
            ),
            StoreError::Domain(d) => d.into(),
            StoreError::VersionConflict { .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "invalid_request_error",
                "version_conflict",
                e.to_string(),
            ),
            StoreError::InUse(m) => ApiError::new(StatusCode::CONFLICT, "invalid_request_error", "resource_in_use", m),
            StoreError::PolicyDenied(reason) => ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                "policy_denied",
                format!("An attribute policy forbids this operation: {reason}"),
            ),
            StoreError::ClaimLost => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_error",
                "idempotency_key_in_use",
                "This request ran past the idempotency lock timeout and another request took its key; nothing was changed.",
            ),
            StoreError::Unavailable(reason) | StoreError::Retry(reason) => {
                tracing::warn!(%reason, "database unavailable");
                ApiError::unavailable("The database is busy or unavailable; retry shortly.")
            }
            StoreError::StorageFault(cause) => {
                tracing::error!(%cause, "database storage fault");
                ApiError::unavailable(format!(
                    "The database cannot accept writes now: {cause}. Nothing was written; retry once the cause is fixed."
                ))
            }
            StoreError::Internal(reason) => {
                tracing::error!(%reason, "storage failure");
                ApiError::internal()
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Store(s) => s.into(),
            ServiceError::Unauthenticated { code, message } => {
                ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", code, message)
            }
            ServiceError::Forbidden(p) => ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                "permission_denied",
                format!("This API key's role lacks the `{p}` permission."),
            ),
        }
    }
}
