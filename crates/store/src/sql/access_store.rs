//! [`crate::AccessStore`] for [`SqlStore`]: API keys, roles, policies and the audit log.

use std::sync::Arc;

use async_trait::async_trait;
use settle_domain::DomainError;
use settle_domain::ids::{ApiKeyId, PolicyId, RoleId};
use settle_domain::rbac::{BUILTIN_ROLES, Permission, Role, builtin_permissions};

use super::list::fetch_page;
use super::rows::{API_KEY_COLS, AUDIT_COLS, POLICY_COLS, ROLE_COLS};
use super::store::{check_version, lost_race, spec};
use super::{SqlStore, api_keys, rbac, rows};
use crate::AccessStore;
use crate::context::WriteContext;
use crate::error::{StoreError, StoreResult};
use crate::list::{ListQuery, Page};
use crate::records::{ApiKey, AuditDraft, AuditEvent, Deleted, StoredPolicy};

#[async_trait]
impl AccessStore for SqlStore {
    async fn create_api_key(&self, ctx: &WriteContext, key: ApiKey) -> StoreResult<ApiKey> {
        self.write(ctx, move |conn| {
            let key = key.clone();
            Box::pin(async move {
                api_keys::insert(conn, &key).await?;
                Ok(key)
            })
        })
        .await
    }

    async fn api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKey>> {
        api_keys::get(&mut self.reader(), id).await
    }

    async fn sync_builtin_roles(&self, now_ms: u64) -> StoreResult<()> {
        // Built-in role ids come straight from the clock, not from the
        // store's sequence, so start-up does not move that sequence.
        self.write_background(move |conn| {
            Box::pin(async move {
                for name in BUILTIN_ROLES {
                    let permissions = builtin_permissions(name).unwrap_or_default();
                    let id = RoleId::from_uuid(settle_domain::ids::uuid_v7(now_ms, rand::random::<u128>() >> 54));
                    rbac::upsert_builtin(&mut *conn, id, name, &permissions, (now_ms / 1000) as i64).await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn create_role(&self, ctx: &WriteContext, name: String, permissions: Vec<Permission>) -> StoreResult<Role> {
        let role = Role {
            id: RoleId::from_uuid(self.ids.next(ctx.now_ms)),
            name,
            permissions,
            builtin: false,
            version: 1,
            created: ctx.now_secs(),
        };
        self.write(ctx, move |conn| {
            let role = role.clone();
            Box::pin(async move {
                rbac::insert_role(conn, &role).await?;
                Ok(role)
            })
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
        let permissions = Arc::new(permissions);
        self.write(ctx, move |conn| {
            let permissions = Arc::clone(&permissions);
            Box::pin(async move {
                let mut role =
                    rbac::role_where(&mut *conn, "id", id.to_bytes(), None)
                        .await?
                        .ok_or(StoreError::NotFound {
                            what: "role",
                            param: None,
                        })?;
                if role.builtin {
                    return Err(DomainError::InvalidState("built-in roles cannot be edited".into()).into());
                }
                let read_version = role.version;
                check_version(if_version, read_version)?;
                role.permissions = permissions.to_vec();
                role.version += 1;
                if !rbac::save_role(conn, &role, read_version).await? {
                    return Err(lost_race(if_version, read_version + 1));
                }
                Ok(role)
            })
        })
        .await
    }

    async fn delete_role(&self, ctx: &WriteContext, id: RoleId) -> StoreResult<Deleted> {
        self.write(ctx, move |conn| {
            Box::pin(async move {
                let role =
                    rbac::role_where(&mut *conn, "id", id.to_bytes(), None)
                        .await?
                        .ok_or(StoreError::NotFound {
                            what: "role",
                            param: None,
                        })?;
                if role.builtin {
                    return Err(DomainError::InvalidState("built-in roles cannot be deleted".into()).into());
                }
                if rbac::role_in_use(&mut *conn, &role.name).await? {
                    return Err(StoreError::InUse(format!(
                        "API keys still use the role `{}`",
                        role.name
                    )));
                }
                rbac::delete_role(conn, id).await?;
                Ok(Deleted {
                    id: id.to_string(),
                    object: "role",
                    deleted: true,
                })
            })
        })
        .await
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
        let now = ctx.now_secs();
        self.write(ctx, move |conn| {
            Box::pin(async move {
                rbac::revoke_key(&mut *conn, id, now).await?;
                api_keys::get(conn, id).await?.ok_or(StoreError::NotFound {
                    what: "API key",
                    param: None,
                })
            })
        })
        .await
    }

    async fn touch_api_keys(&self, uses: Vec<(ApiKeyId, i64)>) -> StoreResult<()> {
        let uses = Arc::new(uses);
        self.write_background(move |conn| {
            let uses = Arc::clone(&uses);
            Box::pin(async move { rbac::touch_keys(conn, &uses).await })
        })
        .await
    }

    async fn create_policy(&self, ctx: &WriteContext, mut policy: StoredPolicy) -> StoreResult<StoredPolicy> {
        policy.id = PolicyId::from_uuid(self.ids.next(ctx.now_ms));
        policy.version = 1;
        policy.created = ctx.now_secs();
        self.write(ctx, move |conn| {
            let policy = policy.clone();
            Box::pin(async move {
                rbac::insert_policy(conn, &policy).await?;
                Ok(policy)
            })
        })
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
        self.write(ctx, move |conn| {
            let mut edited = edited.clone();
            Box::pin(async move {
                let current = rbac::policy(&mut *conn, edited.id).await?.ok_or(StoreError::NotFound {
                    what: "policy",
                    param: None,
                })?;
                check_version(if_version, current.version)?;
                edited.version = current.version + 1;
                edited.created = current.created;
                if !rbac::save_policy(conn, &edited, current.version).await? {
                    return Err(lost_race(if_version, current.version + 1));
                }
                Ok(edited)
            })
        })
        .await
    }

    async fn delete_policy(&self, ctx: &WriteContext, id: PolicyId) -> StoreResult<Deleted> {
        self.write(ctx, move |conn| {
            Box::pin(async move {
                if !rbac::delete_policy(conn, id).await? {
                    return Err(StoreError::NotFound {
                        what: "policy",
                        param: None,
                    });
                }
                Ok(Deleted {
                    id: id.to_string(),
                    object: "policy",
                    deleted: true,
                })
            })
        })
        .await
    }

    async fn list_policies(&self, q: &ListQuery<()>) -> StoreResult<Page<StoredPolicy>> {
        fetch_page(&mut self.reader(), spec("policies", POLICY_COLS, q, None), rows::policy).await
    }

    async fn all_policies(&self) -> StoreResult<Vec<StoredPolicy>> {
        rbac::all_policies(&mut self.reader()).await
    }

    async fn record_audit(&self, draft: &AuditDraft, outcome: &str, status: u16, now_ms: u64) -> StoreResult<()> {
        let (draft, outcome, ids) = (draft.clone(), outcome.to_owned(), Arc::clone(&self.ids));
        self.write_background(move |conn| {
            let (draft, outcome, ids) = (draft.clone(), outcome.clone(), Arc::clone(&ids));
            Box::pin(async move { rbac::insert_audit(conn, &ids, &draft, None, &outcome, status, now_ms).await })
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
