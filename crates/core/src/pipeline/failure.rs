//! The error every face shows: SPEC's error shape (status, type, code,
//! message, param), decided once here so REST, GraphQL and gRPC answer the
//! same refusal the same way, and an idempotent replay of an error is the
//! same bytes whichever face asks.

use serde::Serialize;
use settle_domain::DomainError;
use settle_store::StoreError;

use crate::error::ServiceError;

/// An operation's refusal, ready for any face. `status` is the HTTP status
/// SPEC gives it; other faces map it (gRPC: to a status code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    /// Seconds for `Retry-After` on 429, 503 and 504.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Object<'a>,
}

#[derive(Serialize)]
struct Object<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
    request_id: &'a str,
}

impl Failure {
    pub fn new(status: u16, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request_error` naming the offending parameter.
    pub fn invalid(code: &'static str, param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.into()),
            ..Self::new(400, "invalid_request_error", code, message)
        }
    }

    /// 400 `resource_missing` for an id given as a parameter that names nothing.
    pub fn names_nothing(param: impl Into<String>) -> Self {
        let param = param.into();
        let message = format!("`{param}` names nothing.");
        Self::invalid("resource_missing", param, message)
    }

    /// 401 `api_key_missing`: the request carried no usable key.
    pub fn api_key_missing() -> Self {
        Self::new(
            401,
            "authentication_error",
            "api_key_missing",
            "Provide an API key: `Authorization: Bearer sk_...`.",
        )
    }

    /// 503 `unavailable`, with a retry hint.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(503, "api_error", "unavailable", message)
        }
    }

    /// 504 `deadline_exceeded`: the operation's budget ran out before it
    /// started (nothing was done) or while it read.
    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(504, "api_error", "deadline_exceeded", message)
        }
    }

    pub fn internal() -> Self {
        Self::new(
            500,
            "api_error",
            "internal_error",
            "An internal error occurred; it has been logged with this request's id.",
        )
    }

    /// The JSON body of SPEC "Errors" for the request `request_id`.
    pub fn body(&self, request_id: &str) -> Vec<u8> {
        let body = Body {
            error: Object {
                kind: self.kind,
                code: self.code,
                message: &self.message,
                param: self.param.as_deref(),
                request_id,
            },
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// Whether an idempotent request that failed this way keeps the answer
    /// for its replays: an answer the operation itself gave (a 4xx of the
    /// operation's rules) is final; a refusal of the key itself, of
    /// permission or policy, a deadline that passed (nothing was done), or
    /// a server-side failure is not, so the client may fix the cause and
    /// send again with the same key.
    pub fn is_final_answer(&self) -> bool {
        self.status < 500
            && self.kind != "idempotency_error"
            && self.kind != "permission_error"
            && self.code != "deadline_exceeded"
    }
}

impl From<DomainError> for Failure {
    fn from(e: DomainError) -> Self {
        let unprocessable = |code| Failure::new(422, "invalid_request_error", code, e.to_string());
        match &e {
            DomainError::InvalidParameter { param, message } => Failure::invalid("parameter_invalid", param, message),
            DomainError::InsufficientFunds { .. } => unprocessable("insufficient_funds"),
            DomainError::CurrencyMismatch { .. } => unprocessable("currency_mismatch"),
            DomainError::AmountTooLarge(_) => unprocessable("amount_too_large"),
            DomainError::BalanceOverflow(_) => unprocessable("balance_overflow"),
            DomainError::InvalidPolicy(m) => Failure {
                param: Some("policy".into()),
                ..Failure::new(
                    422,
                    "invalid_request_error",
                    "policy_invalid",
                    format!("The policy is not valid: {m}"),
                )
            },
            DomainError::InvalidState(m) => Failure::new(409, "invalid_request_error", "invalid_state", m),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, param: None } => Failure::new(
                404,
                "invalid_request_error",
                "resource_missing",
                format!("No such {what}."),
            ),
            StoreError::NotFound {
                what,
                param: Some(param),
            } => Failure::invalid(
                "resource_missing",
                param,
                format!("No such {what}: `{param}` names nothing."),
            ),
            StoreError::Domain(d) => d.into(),
            StoreError::VersionConflict { .. } => {
                Failure::new(412, "invalid_request_error", "version_conflict", e.to_string())
            }
            StoreError::InUse(m) => Failure::new(409, "invalid_request_error", "resource_in_use", m),
            StoreError::PolicyDenied(reason) => Failure::new(
                403,
                "permission_error",
                "policy_denied",
                format!("An attribute policy forbids this operation: {reason}"),
            ),
            StoreError::ClaimLost => Failure::new(
                409,
                "idempotency_error",
                "idempotency_key_in_use",
                "This request ran past the idempotency lock timeout and another request took its key; nothing was changed.",
            ),
            StoreError::DeadlineExceeded => Failure::deadline_exceeded(
                "The request's deadline passed before its write could start; nothing was written.",
            ),
            StoreError::Unavailable(reason) | StoreError::Retry(reason) => {
                tracing::warn!(%reason, "database unavailable");
                Failure::unavailable("The database is busy or unavailable; retry shortly.")
            }
            StoreError::StorageFault(cause) => {
                tracing::error!(%cause, "database storage fault");
                Failure::unavailable(format!(
                    "The database cannot accept writes now: {cause}. Nothing was written; retry once the cause is fixed."
                ))
            }
            StoreError::Internal(reason) => {
                tracing::error!(%reason, "storage failure");
                Failure::internal()
            }
        }
    }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Store(s) => s.into(),
            ServiceError::Unauthenticated { code, message } => Failure::new(401, "authentication_error", code, message),
            ServiceError::Forbidden(p) => Failure::new(
                403,
                "permission_error",
                "permission_denied",
                format!("This API key's role lacks the `{p}` permission."),
            ),
            ServiceError::NotCached => crate::admission::Shed::Overloaded(crate::admission::Class::Standard).failure(),
        }
    }
}
