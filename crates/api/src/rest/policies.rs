//! `/v1/policies`: attribute policies in Cedar, validated against the
//! published schema (`GET /v1/policies/schema`) before they are stored; and
//! `/v1/audit_events`.

use axum::extract::State;
use axum::response::Response;
use settle_core::Settle;
use settle_core::ops::policies::{
    CreatePolicy, DeletePolicy, ListAuditEvents, ListPolicies, PolicySchema, RetrievePolicy, UpdatePolicy,
};
use settle_domain::ids::{AuditEventId, PolicyId};

use super::serve::{Rest, RestInput};

pub async fn create(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::json::<CreatePolicy>).await
}

pub async fn retrieve(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<RetrievePolicy>).await
}

pub async fn update(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(UpdatePolicy {
            if_version: r.if_match()?,
            ..r.targeted::<UpdatePolicy>()?
        })
    })
    .await
}

pub async fn remove(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<DeletePolicy>).await
}

pub async fn list(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListPolicies(r.list(&[], |t| PolicyId::parse(t).map(|i| i.uuid()))?))
    })
    .await
}

/// The Cedar schema policies are validated against.
pub async fn schema(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |_| Ok(PolicySchema)).await
}

pub async fn audit_events(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListAuditEvents(
            r.list(&[], |t| AuditEventId::parse(t).map(|i| i.uuid()))?,
        ))
    })
    .await
}
