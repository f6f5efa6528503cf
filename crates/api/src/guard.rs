//! The permission guard every registered route passes before its handler:
//! authenticate the bearer key, check the route's permission, and hand the
//! handler a [`Caller`]. Deny by default: a route cannot be registered
//! without a permission.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use settle_core::auth::Principal;
use settle_core::{ServiceError, Settle};
use settle_domain::rbac::Permission;
use settle_store::WriteContext;
use settle_store::idempotency::IdempotencyClaim;

use crate::error::ApiError;
use crate::request::{RequestId, RouteName};

/// What the guard of one route knows.
#[derive(Clone)]
pub struct GuardState {
    pub settle: Settle,
    pub permission: Permission,
    pub path: &'static str,
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "api_key_missing",
            "Provide an API key: `Authorization: Bearer sk_...`.",
        )
    };
    let value = parts.headers.get(AUTHORIZATION).ok_or_else(missing)?;
    let text = value.to_str().map_err(|_| missing())?;
    let (scheme, secret) = text.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || secret.trim().is_empty() {
        return Err(missing());
    }
    Ok(secret.trim())
}

pub async fn guard(State(g): State<GuardState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let outcome = async {
        let secret = bearer(&parts)?;
        let principal = g.settle.authenticate(secret).await?;
        if !principal.allows(g.permission) {
            return Err(ApiError::from(ServiceError::Forbidden(g.permission)));
        }
        Ok::<_, ApiError>(principal)
    }
    .await;
    let mut response = match outcome {
        Ok(principal) => {
            parts.extensions.insert(principal);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => e.into_response(),
    };
    response.extensions_mut().insert(RouteName(g.path));
    response
}

/// The authenticated caller of a guarded route, and the context its writes carry.
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
    pub idempotency: Option<IdempotencyClaim>,
}

impl Caller {
    /// The context of this request's write, carrying its idempotency claim.
    pub fn context(&self, settle: &Settle) -> WriteContext {
        let mut ctx = settle.context(&self.request_id, Some(self.principal.key));
        ctx.idempotency = self.idempotency.clone();
        ctx
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            tracing::error!("a guarded handler ran without a principal");
            ApiError::internal()
        })?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let idempotency = parts.extensions.get::<IdempotencyClaim>().cloned();
        Ok(Self {
            principal,
            request_id,
            idempotency,
        })
    }
}
