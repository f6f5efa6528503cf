//! The guard every registered route passes before its handler: authenticate
//! the bearer key, check the route's permission, evaluate attribute policies
//! (those that need a money movement's resolved amounts are evaluated by
//! the store instead), and, for writes, make sure an audit record is kept
//! whatever the outcome. Deny by default: a route cannot be registered
//! without a permission.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use settle_core::auth::Principal;
use settle_core::policy::{PolicyEngine, ResourceAttrs};
use settle_core::{ServiceError, Settle};
use settle_domain::rbac::{Action, Permission, Resource};
use settle_store::WriteContext;
use settle_store::idempotency::IdempotencyClaim;
use settle_store::records::AuditDraft;

use crate::error::ApiError;
use crate::request::{RequestId, RouteName};

/// What the guard of one route knows.
#[derive(Clone)]
pub struct GuardState {
    pub settle: Settle,
    pub permission: Permission,
    pub path: &'static str,
    pub operation: &'static str,
    pub write: bool,
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
    let value = crate::extract::single_header(&parts.headers, AUTHORIZATION, "Authorization")?.ok_or_else(missing)?;
    let text = value.to_str().map_err(|_| missing())?;
    let (scheme, secret) = text.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || secret.trim().is_empty() {
        return Err(missing());
    }
    Ok(secret.trim())
}

/// The `{id}` of the route template, read from the request path.
fn path_id(template: &str, path: &str) -> Option<String> {
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| *t == "{id}")
        .map(|(_, v)| v.to_owned())
}

/// Money movement is checked by the store once its amounts are resolved.
fn checked_in_store(p: Permission) -> bool {
    p.action == Action::Write && matches!(p.resource, Resource::Payments | Resource::Refunds)
}

pub async fn guard(State(g): State<GuardState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let mut draft = None;
    let outcome = async {
        let secret = bearer(&parts)?;
        let principal = g.settle.authenticate(secret).await?;
        draft = g.write.then(|| AuditDraft {
            api_key: Some(principal.key),
            operation: g.operation,
            permission: g.permission.to_string(),
            request_id: request_id.clone(),
        });
        if !principal.allows(g.permission) {
            return Err(ApiError::from(ServiceError::Forbidden(g.permission)));
        }
        let engine = g.settle.policy_engine().await?;
        if !checked_in_store(g.permission) {
            let id = path_id(g.path, parts.uri.path());
            let attrs = ResourceAttrs {
                account: id.clone(),
                ..ResourceAttrs::default()
            };
            let attrs = if g.permission.resource == Resource::Accounts {
                attrs
            } else {
                ResourceAttrs { payment: id, ..attrs }
            };
            g.settle.check_policy(&engine, &principal, g.permission, &attrs)?;
        }
        Ok::<_, ApiError>((principal, engine))
    }
    .await;
    let mut response = match outcome {
        Ok((principal, engine)) => {
            parts.extensions.insert(principal);
            parts.extensions.insert(engine);
            if let Some(d) = &draft {
                parts.extensions.insert(d.clone());
            }
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => e.into_response(),
    };
    if let Some(draft) = draft
        && !response.status().is_success()
    {
        let code = response.extensions().get::<ApiError>().map_or("error", |e| e.code);
        g.settle
            .record_failed_write(&draft, code, response.status().as_u16())
            .await;
    }
    response.extensions_mut().insert(RouteName(g.path));
    response
}

/// The authenticated caller of a guarded route, and the context its writes carry.
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
    engine: Option<PolicyEngine>,
    audit: Option<AuditDraft>,
    idempotency: Option<IdempotencyClaim>,
}

impl Caller {
    /// The context of this request's write: its idempotency claim, its
    /// audit record and the policies the store applies.
    pub fn context(&self, settle: &Settle) -> WriteContext {
        let mut ctx = settle.request_context(
            &self.request_id,
            &self.principal,
            self.engine.clone(),
            self.audit.clone(),
        );
        ctx.idempotency = self.idempotency.clone();
        // A REST write that succeeds answers 200 (Stripe's convention, also
        // for creation); the store records that, it does not decide it.
        ctx.success_status = Some(200);
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
        Ok(Self {
            principal,
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            engine: parts.extensions.get::<PolicyEngine>().cloned(),
            audit: parts.extensions.get::<AuditDraft>().cloned(),
            idempotency: parts.extensions.get::<IdempotencyClaim>().cloned(),
        })
    }
}
