//! Access control: API keys, roles, attribute policies and the audit log: the contract, and its record types.

use async_trait::async_trait;
use serde::Serialize;
use settle_domain::ids::{ApiKeyId, AuditEventId, PolicyId, RoleId};
use settle_domain::rbac::{Permission, Role};

use crate::context::WriteContext;
use crate::error::StoreResult;
use crate::list::{ListQuery, Page};
use crate::records::*;

/// An API key as stored: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "object", rename = "api_key")]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub role: String,
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    pub created: i64,
    pub last_used: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    /// Expired keys are refused like unknown ones, but with their own code.
    pub fn is_expired(&self, now_secs: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now_secs)
    }
}

/// An attribute policy as stored: Cedar text, validated before it is saved.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "object", rename = "policy")]
pub struct StoredPolicy {
    pub id: PolicyId,
    pub name: String,
    pub policy: String,
    pub description: Option<String>,
    pub version: i64,
    pub created: i64,
    /// When it was disabled (Unix seconds), or `None` while it applies.
    /// Shown as `"status": "enabled" | "disabled"`; a disabled policy is
    /// kept but not loaded, which is how an operator recovers from a
    /// policy that locks everyone out (`settle policies disable`).
    #[serde(rename = "status", serialize_with = "policy_status")]
    pub disabled_at: Option<i64>,
}

impl StoredPolicy {
    pub fn enabled(&self) -> bool {
        self.disabled_at.is_none()
    }
}

fn policy_status<S: serde::Serializer>(disabled_at: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if disabled_at.is_some() { "disabled" } else { "enabled" })
}

/// Who did which write under which request: what the audit log records.
#[derive(Debug, Clone)]
pub struct AuditDraft {
    pub api_key: Option<ApiKeyId>,
    pub operation: &'static str,
    pub permission: String,
    pub request_id: String,
}

/// One audit log record; `outcome` is `succeeded` or the error code.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "object", rename = "audit_event")]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub api_key: Option<ApiKeyId>,
    pub operation: String,
    pub permission: String,
    /// The id of the object written, when the write succeeded.
    pub target: Option<String>,
    pub request_id: String,
    pub outcome: String,
    pub status: i64,
    pub created: i64,
}

#[async_trait]
pub trait AccessStore: Send + Sync {
    async fn create_api_key(&self, ctx: &WriteContext, key: ApiKey) -> StoreResult<ApiKey>;
    async fn api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKey>>;

    /// Creates the built-in roles, or refreshes their permissions to the
    /// sets defined in code; run at start-up.
    async fn sync_builtin_roles(&self, now_ms: u64) -> StoreResult<()>;
    async fn create_role(&self, ctx: &WriteContext, name: String, permissions: Vec<Permission>) -> StoreResult<Role>;
    async fn role(&self, id: RoleId) -> StoreResult<Option<Role>>;
    async fn role_by_name(&self, name: &str) -> StoreResult<Option<Role>>;
    /// Replaces a custom role's permissions if `if_version` (when given) is current.
    async fn update_role(
        &self,
        ctx: &WriteContext,
        id: RoleId,
        permissions: Vec<Permission>,
        if_version: Option<i64>,
    ) -> StoreResult<Role>;
    /// Deletes a custom role no unrevoked key uses.
    async fn delete_role(&self, ctx: &WriteContext, id: RoleId) -> StoreResult<Deleted>;
    async fn list_roles(&self, q: &ListQuery<()>) -> StoreResult<Page<Role>>;

    async fn list_api_keys(&self, q: &ListQuery<()>) -> StoreResult<Page<ApiKey>>;
    /// Revokes a key at once; revoking twice is harmless.
    async fn revoke_api_key(&self, ctx: &WriteContext, id: ApiKeyId) -> StoreResult<ApiKey>;
    /// Records keys' last use, batched off the request path.
    async fn touch_api_keys(&self, uses: Vec<(ApiKeyId, i64)>) -> StoreResult<()>;

    async fn create_policy(&self, ctx: &WriteContext, policy: StoredPolicy) -> StoreResult<StoredPolicy>;
    async fn policy(&self, id: PolicyId) -> StoreResult<Option<StoredPolicy>>;
    /// Saves an edited policy if `if_version` (when given) is current.
    async fn update_policy(
        &self,
        ctx: &WriteContext,
        policy: StoredPolicy,
        if_version: Option<i64>,
    ) -> StoreResult<StoredPolicy>;
    async fn delete_policy(&self, ctx: &WriteContext, id: PolicyId) -> StoreResult<Deleted>;
    async fn list_policies(&self, q: &ListQuery<()>) -> StoreResult<Page<StoredPolicy>>;
    /// Every policy, for compiling the policy set.
    async fn all_policies(&self) -> StoreResult<Vec<StoredPolicy>>;

    /// Records a write that did not succeed (successful writes are recorded
    /// inside their own transaction).
    async fn record_audit(&self, draft: &AuditDraft, outcome: &str, status: u16, now_ms: u64) -> StoreResult<()>;
    async fn list_audit_events(&self, q: &ListQuery<()>) -> StoreResult<Page<AuditEvent>>;
}
