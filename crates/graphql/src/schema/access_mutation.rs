//! Writes of access control: API keys (the secret shown once), custom
//! roles and Cedar policies. A key grants no more than it holds, as on
//! REST: the operations decide, this face only translates.

use async_graphql::{Context, ID, Object, Result};
use settle_core::PolicyStatus;
use settle_core::ops::api_keys::{CreateApiKey, RevokeApiKey};
use settle_core::ops::policies::{CreatePolicy, DeletePolicy, UpdatePolicy};
use settle_core::ops::roles::{CreateRole, DeleteRole, UpdateRole};
use settle_core::pipeline::Failure;

use super::access_objects::{ApiKey, ApiKeyWithSecret, Policy, Role};
use super::inputs::{
    CreateApiKeyInput, CreatePolicyInput, CreateRoleInput, Nullable, UpdatePolicyInput, UpdateRoleInput,
};
use super::{rc, text};

#[derive(Default)]
pub struct AccessMutation;

#[Object]
impl AccessMutation {
    /// Creates a key with a role; the answer holds its secret, this once (a
    /// replay of the same `idempotencyKey` says it omitted it).
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
        idempotency_key: Option<String>,
    ) -> Result<ApiKeyWithSecret> {
        let op = CreateApiKey {
            name: input.name,
            role: input.role,
            expires_at: input.expires_at,
        };
        let answer = rc(ctx)?.answer(move || Ok(op), idempotency_key).await?;
        Ok(ApiKeyWithSecret(answer))
    }

    /// Revokes a key at once: its next request is refused.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID, idempotency_key: Option<String>) -> Result<ApiKey> {
        let op = RevokeApiKey { id: id.0 };
        Ok(ApiKey(rc(ctx)?.run(op, idempotency_key).await?))
    }

    async fn create_role(
        &self,
        ctx: &Context<'_>,
        input: CreateRoleInput,
        idempotency_key: Option<String>,
    ) -> Result<Role> {
        let op = CreateRole {
            name: input.name,
            permissions: input.permissions,
        };
        Ok(Role(rc(ctx)?.run(op, idempotency_key).await?))
    }

    /// Replaces a custom role's permissions; every key holding it changes
    /// at once.
    async fn update_role(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateRoleInput,
        expected_version: Option<i64>,
        idempotency_key: Option<String>,
    ) -> Result<Role> {
        let op = UpdateRole {
            id: id.0,
            if_version: expected_version,
            permissions: input.permissions,
        };
        Ok(Role(rc(ctx)?.run(op, idempotency_key).await?))
    }

    /// Deletes a custom role no key holds; answers its id.
    async fn delete_role(&self, ctx: &Context<'_>, id: ID, idempotency_key: Option<String>) -> Result<ID> {
        let deleted = rc(ctx)?.run(DeleteRole { id: id.0 }, idempotency_key).await?;
        Ok(ID(text(&deleted, "id")))
    }

    async fn create_policy(
        &self,
        ctx: &Context<'_>,
        input: CreatePolicyInput,
        idempotency_key: Option<String>,
    ) -> Result<Policy> {
        let op = CreatePolicy {
            name: input.name,
            policy: input.policy,
            description: input.description,
        };
        Ok(Policy(rc(ctx)?.run(op, idempotency_key).await?))
    }

    /// Edits, enables or disables a policy.
    async fn update_policy(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePolicyInput,
        expected_version: Option<i64>,
        idempotency_key: Option<String>,
    ) -> Result<Policy> {
        let build = move || {
            Ok(UpdatePolicy {
                id: id.0,
                if_version: expected_version,
                name: input.name,
                policy: input.policy,
                description: input.description.map(Nullable::into_option),
                status: input.status.as_deref().map(policy_status).transpose()?,
            })
        };
        Ok(Policy(rc(ctx)?.answer(build, idempotency_key).await?.json))
    }

    /// Deletes a policy; answers its id.
    async fn delete_policy(&self, ctx: &Context<'_>, id: ID, idempotency_key: Option<String>) -> Result<ID> {
        let deleted = rc(ctx)?.run(DeletePolicy { id: id.0 }, idempotency_key).await?;
        Ok(ID(text(&deleted, "id")))
    }
}

/// A policy's `status` as REST reads it (checked once the caller is in).
fn policy_status(text: &str) -> Result<PolicyStatus, Failure> {
    match text {
        "enabled" => Ok(PolicyStatus::Enabled),
        "disabled" => Ok(PolicyStatus::Disabled),
        _ => Err(Failure::invalid(
            "parameter_invalid",
            "status",
            "`status` must be `enabled` or `disabled`.",
        )),
    }
}
