//! Reads of access control: API keys (never their secrets), roles,
//! policies and the audit log, newest first as on REST.

use async_graphql::{Context, ID, Object, Result};
use settle_core::ops::api_keys::{ListApiKeys, RetrieveApiKey};
use settle_core::ops::policies::{ListAuditEvents, ListPolicies, RetrievePolicy};
use settle_core::ops::roles::{ListRoles, RetrieveRole};
use settle_domain::ids::{ApiKeyId, AuditEventId, PolicyId, RoleId};

use super::access_objects::{ApiKey, Policy, Role};
use super::page::{ApiKeyConnection, AuditEventConnection, PolicyConnection, RoleConnection, page};
use super::rc;

#[derive(Default)]
pub struct AccessQuery;

#[Object]
impl AccessQuery {
    async fn api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKey> {
        let op = RetrieveApiKey { id: id.0 };
        Ok(ApiKey(rc(ctx)?.run(op, None).await?))
    }

    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn api_keys(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<ApiKeyConnection> {
        let params = page(first, after, |t| ApiKeyId::parse(t).map(|i| i.uuid()));
        Ok(ApiKeyConnection::from_page(
            rc(ctx)?.run_with(move || params.map(ListApiKeys), None).await?,
        ))
    }

    async fn role(&self, ctx: &Context<'_>, id: ID) -> Result<Role> {
        let op = RetrieveRole { id: id.0 };
        Ok(Role(rc(ctx)?.run(op, None).await?))
    }

    /// Roles, built-in and custom.
    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn roles(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<RoleConnection> {
        let params = page(first, after, |t| RoleId::parse(t).map(|i| i.uuid()));
        Ok(RoleConnection::from_page(
            rc(ctx)?.run_with(move || params.map(ListRoles), None).await?,
        ))
    }

    async fn policy(&self, ctx: &Context<'_>, id: ID) -> Result<Policy> {
        let op = RetrievePolicy { id: id.0 };
        Ok(Policy(rc(ctx)?.run(op, None).await?))
    }

    /// Policies, enabled or not.
    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn policies(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<PolicyConnection> {
        let params = page(first, after, |t| PolicyId::parse(t).map(|i| i.uuid()));
        Ok(PolicyConnection::from_page(
            rc(ctx)?.run_with(move || params.map(ListPolicies), None).await?,
        ))
    }

    /// Who did which write, newest first.
    #[graphql(complexity = "first.unwrap_or(10).max(1) as usize * child_complexity")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<AuditEventConnection> {
        let params = page(first, after, |t| AuditEventId::parse(t).map(|i| i.uuid()));
        Ok(AuditEventConnection::from_page(
            rc(ctx)?.run_with(move || params.map(ListAuditEvents), None).await?,
        ))
    }
}
