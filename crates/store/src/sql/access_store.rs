//! [`crate::AccessStore`] for [`SqlStore`]: API keys, roles, policies and the audit log.

use async_trait::async_trait;
use settle_domain::ids::{ApiKeyId, PolicyId, RoleId};
use settle_domain::rbac::{Permission, Role};

use super::list::fetch_page;
use super::rows::{API_KEY_COLS, AUDIT_COLS, POLICY_COLS, ROLE_COLS};
use super::store::spec;
use super::{SqlStore, api_keys, rbac, rows};
use crate::AccessStore;
use crate::context::WriteContext;
use crate::error::StoreResult;
use crate::list::{ListQuery, Page};
use crate::records::{ApiKey, AuditDraft, AuditEvent, Deleted, StoredPolicy};

#[async_trait]
impl AccessStore for SqlStore {
    async fn create_api_key(&self, ctx: &WriteContext, key: ApiKey) -> StoreResult<ApiKey> {
        self.write(ctx, move |tx| Box::pin(api_keys::create(tx, key.clone())))
            .await
    }

    async fn api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKey>> {
        api_keys::get(&mut self.reader(), id).await
    }

    async fn sync_builtin_roles(&self, now_ms: u64) -> StoreResult<()> {
        self.write_background(move |tx| Box::pin(rbac::sync_builtin(tx, now_ms)))
            .await
    }

    async fn create_role(&self, ctx: &WriteContext, name: String, permissions: Vec<Permission>) -> StoreResult<Role> {
        self.write(ctx, move |tx| {
            Box::pin(rbac::create_role(tx, name.clone(), permissions.clone()))
        })
        .await
    }

    async fn role(&self, id: RoleId) -> StoreResult<Option<Role>> {
        rbac::role_where(&mut self.reader(), "id", id.to_bytes(), None).await
    }

    async fn role_by_name(&self, name: &str) -> StoreResult<Option<Role>> {
        rbac::role_where(&mut self.reader(), "name", Vec::new(), Some(name.to_owned())).await
    }

    async fn update_role(
        &self,
        ctx: &WriteContext,
        id: RoleId,
        permissions: Vec<Permission>,
        if_version: Option<i64>,
    ) -> StoreResult<Role> {
        self.write(ctx, move |tx| {
            Box::pin(rbac::update_role(tx, id, permissions.clone(), if_version))
        })
        .await
    }

    async fn delete_role(&self, ctx: &WriteContext, id: RoleId) -> StoreResult<Deleted> {
        self.write(ctx, move |tx| Box::pin(rbac::remove_role(tx, id))).await
    }

    async fn list_roles(&self, q: &ListQuery<()>) -> StoreResult<Page<Role>> {
        fetch_page(&mut self.reader(), spec("roles", ROLE_COLS, q, None), rows::role).await
    }

    async fn list_api_keys(&self, q: &ListQuery<()>) -> StoreResult<Page<ApiKey>> {
        fetch_page(
            &mut self.reader(),
            spec("api_keys", API_KEY_COLS, q, None),
            rows::api_key,
        )
        .await
    }

    async fn revoke_api_key(&self, ctx: &WriteContext, id: ApiKeyId) -> StoreResult<ApiKey> {
        self.write(ctx, move |tx| Box::pin(api_keys::revoke(tx, id))).await
    }

    async fn touch_api_keys(&self, uses: Vec<(ApiKeyId, i64)>) -> StoreResult<()> {
        self.write_background(move |tx| Box::pin(api_keys::touch(tx, uses.clone())))
            .await
    }

    async fn create_policy(&self, ctx: &WriteContext, policy: StoredPolicy) -> StoreResult<StoredPolicy> {
        self.write(ctx, move |tx| Box::pin(rbac::create_policy(tx, policy.clone())))
            .await
    }

    async fn policy(&self, id: PolicyId) -> StoreResult<Option<StoredPolicy>> {
        rbac::policy(&mut self.reader(), id).await
    }

    async fn update_policy(
        &self,
        ctx: &WriteContext,
        edited: StoredPolicy,
        if_version: Option<i64>,
    ) -> StoreResult<StoredPolicy> {
        self.write(ctx, move |tx| {
            Box::pin(rbac::update_policy(tx, edited.clone(), if_version))
        })
        .await
    }

    async fn delete_policy(&self, ctx: &WriteContext, id: PolicyId) -> StoreResult<Deleted> {
        self.write(ctx, move |tx| Box::pin(rbac::remove_policy(tx, id))).await
    }

    async fn list_policies(&self, q: &ListQuery<()>) -> StoreResult<Page<StoredPolicy>> {
        fetch_page(&mut self.reader(), spec("policies", POLICY_COLS, q, None), rows::policy).await
    }

    async fn all_policies(&self) -> StoreResult<Vec<StoredPolicy>> {
        rbac::all_policies(&mut self.reader()).await
    }

    async fn record_audit(&self, draft: &AuditDraft, outcome: &str, status: u16, now_ms: u64) -> StoreResult<()> {
        let (draft, outcome) = (draft.clone(), outcome.to_owned());
        self.write_background(move |tx| {
            Box::pin(rbac::record_audit(tx, draft.clone(), outcome.clone(), status, now_ms))
        })
        .await
    }

    async fn list_audit_events(&self, q: &ListQuery<()>) -> StoreResult<Page<AuditEvent>> {
        fetch_page(
            &mut self.reader(),
            spec("audit_events", AUDIT_COLS, q, None),
            rows::audit,
        )
        .await
    }
}
