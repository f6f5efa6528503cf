//! Access control in the service layer: authenticating keys (through a
//! short-lived in-process cache, so a hot key costs no database read), key
//! and role management without privilege escalation, attribute policies,
//! and the audit log.
//!
//! Bounds: a key revoked or a role or policy edited by another process takes
//! effect here within `auth_cache_ttl` (default 5 s); in this process, at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use settle_domain::DomainError;
use settle_domain::ids::{ApiKeyId, PolicyId, RoleId};
use settle_domain::rbac::{Permission, Role, parse_permissions, parse_role_name};
use settle_domain::text;
use settle_store::context::{PolicyCheck, Resolved};
use settle_store::records::{ApiKey, AuditDraft, AuditEvent, Deleted, StoredPolicy};
use settle_store::{ListQuery, Page, StoreError, WriteContext};

use crate::auth::{self, Principal};
use crate::error::ServiceError;
use crate::policy::{self, PolicyEngine, PolicyPrincipal, ResourceAttrs};
use crate::service::Settle;

type Result<T> = std::result::Result<T, ServiceError>;

#[derive(Clone)]
struct CachedKey {
    key: ApiKey,
    permissions: Vec<Permission>,
    loaded: Instant,
}

/// Process-local caches and the pending `last_used` updates.
pub struct AccessState {
    ttl: Duration,
    keys: RwLock<HashMap<ApiKeyId, CachedKey>>,
    policies: RwLock<Option<(Instant, PolicyEngine)>>,
    /// Held while the engine is rebuilt, so requests arriving together
    /// after the TTL share one compile instead of each starting a thread.
    reload: tokio::sync::Mutex<()>,
    /// Moves on every local policy change, so an engine compiled from a
    /// read taken before the change is not cached over it.
    policy_generation: std::sync::atomic::AtomicU64,
    uses: Mutex<HashMap<ApiKeyId, i64>>,
}

impl AccessState {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            keys: RwLock::default(),
            policies: RwLock::default(),
            reload: tokio::sync::Mutex::new(()),
            policy_generation: std::sync::atomic::AtomicU64::new(0),
            uses: Mutex::default(),
        }
    }

    fn cached(&self, id: ApiKeyId) -> Option<CachedKey> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.get(&id).filter(|c| c.loaded.elapsed() < self.ttl).cloned()
    }

    fn forget_keys(&self) {
        self.keys.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn forget_policies(&self) {
        let mut cached = self.policies.write().unwrap_or_else(|e| e.into_inner());
        self.policy_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *cached = None;
    }

    fn fresh_policies(&self) -> Option<PolicyEngine> {
        let cached = self.policies.read().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|(loaded, _)| loaded.elapsed() < self.ttl)
            .map(|(_, engine)| engine.clone())
    }
}

/// The policy decision a write carries into its transaction.
#[derive(Clone)]
struct PolicyGate {
    engine: PolicyEngine,
    principal: Principal,
}

impl std::fmt::Debug for PolicyGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyGate").field("key", &self.principal.key).finish()
    }
}

impl PolicyCheck for PolicyGate {
    fn check(&self, permission: Permission, r: &Resolved) -> std::result::Result<(), String> {
        let attrs = ResourceAttrs {
            amount: Some(r.amount),
            currency: Some(r.currency.clone()),
            source: Some(r.source.clone()),
            destination: Some(r.destination.clone()),
            payment: Some(r.payment.clone()),
            account: None,
            id: None,
        };
        let key = self.principal.key.to_string();
        let who = PolicyPrincipal {
            key_id: &key,
            role: &self.principal.role,
            name: &self.principal.name,
        };
        self.engine.check(&who, permission, &attrs).map_err(|d| d.0)
    }
}

fn denied(permission: Permission) -> ServiceError {
    ServiceError::Forbidden(permission)
}

/// Whether a policy applies: `enabled` (loaded) or `disabled` (kept only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyStatus {
    Enabled,
    Disabled,
}

/// The fields a policy update may change; `None` leaves one as it is
/// (`description: Some(None)` clears the description).
#[derive(Debug, Clone, Default)]
pub struct PolicyEdit {
    pub name: Option<String>,
    pub text: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<PolicyStatus>,
    pub if_version: Option<i64>,
}

/// Validates a policy text on the compiler thread (limits, parse, schema).
async fn check_text(text: &str) -> Result<()> {
    policy::validate_isolated(text.to_owned())
        .await
        .map_err(|e| DomainError::InvalidPolicy(e.to_string()).into())
}

impl Settle {
    /// Resolves a bearer secret to its key and role, or says why not.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal> {
        let invalid = || ServiceError::Unauthenticated {
            code: "api_key_invalid",
            message: "the API key is not valid".into(),
        };
        let id = auth::key_id_of(secret).ok_or_else(invalid)?;
        let cached = match self.access.cached(id) {
            Some(c) => c,
            // A shed read answered from the cache does not ask the
            // database for its key either.
            None if crate::cache::only_cached_now() => return Err(ServiceError::NotCached),
            None => {
                let key = self.store.api_key(id).await?.ok_or_else(invalid)?;
                let permissions = self.role_permissions(&key.role).await?;
                let c = CachedKey {
                    key,
                    permissions,
                    loaded: Instant::now(),
                };
                self.access
                    .keys
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, c.clone());
                c
            }
        };
        if !auth::hash_matches(secret, &cached.key.secret_hash) || cached.key.revoked_at.is_some() {
            return Err(invalid());
        }
        let now = (self.clock.now_ms() / 1000) as i64;
        if cached.key.is_expired(now) {
            return Err(ServiceError::Unauthenticated {
                code: "api_key_expired",
                message: "the API key has expired".into(),
            });
        }
        self.access
            .uses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, now);
        Ok(Principal {
            key: id,
            name: cached.key.name,
            role: cached.key.role,
            permissions: cached.permissions,
        })
    }

    /// Writes the pending `last_used` times in one batch; the server calls
    /// this periodically so no request waits on it.
    pub async fn flush_key_uses(&self) -> Result<usize> {
        let uses: Vec<(ApiKeyId, i64)> = self
            .access
            .uses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        let n = uses.len();
        if n > 0 {
            self.store.touch_api_keys(uses).await?;
        }
        Ok(n)
    }

    /// The compiled set of enabled policies, reloaded when older than the
    /// cache TTL (so a policy disabled from the command line stops applying
    /// within it). Compiled on its own thread: see [`PolicyEngine::build`].
    pub async fn policy_engine(&self) -> Result<PolicyEngine> {
        if let Some(engine) = self.access.fresh_policies() {
            return Ok(engine);
        }
        let _reloading = self.access.reload.lock().await;
        if let Some(engine) = self.access.fresh_policies() {
            return Ok(engine);
        }
        let generation = self.access.policy_generation.load(std::sync::atomic::Ordering::SeqCst);
        let stored = self.store.all_policies().await?;
        let texts: Vec<(String, String)> = stored
            .into_iter()
            .filter(StoredPolicy::enabled)
            .map(|p| (p.id.to_string(), p.policy))
            .collect();
        // Stored policies were validated on the way in; if an enabled one no
        // longer compiles (say it was stored before the current limits),
        // refuse everything rather than run without it. The way out is
        // `settle policies disable|delete`, which needs no API key.
        let engine = PolicyEngine::build(texts).await.map_err(|e| {
            tracing::error!(error = %e, "stored policies do not compile; denying until fixed");
            ServiceError::Store(StoreError::PolicyDenied(format!(
                "the policy set does not compile: {e}"
            )))
        })?;
        let mut cached = self.access.policies.write().unwrap_or_else(|e| e.into_inner());
        // A policy changed here while this engine compiled: it answers this
        // request, but the next one reads the policies again.
        if self.access.policy_generation.load(std::sync::atomic::Ordering::SeqCst) == generation {
            *cached = Some((Instant::now(), engine.clone()));
        }
        Ok(engine)
    }

    /// Checks attribute policies for an operation whose resource is known
    /// up front (everything but money movement, which the store checks once
    /// the amounts are resolved).
    pub fn check_policy(
        &self,
        engine: &PolicyEngine,
        principal: &Principal,
        permission: Permission,
        attrs: &ResourceAttrs,
    ) -> Result<()> {
        let key = principal.key.to_string();
        let who = PolicyPrincipal {
            key_id: &key,
            role: &principal.role,
            name: &principal.name,
        };
        engine
            .check(&who, permission, attrs)
            .map_err(|d| ServiceError::Store(StoreError::PolicyDenied(d.0)))
    }

    /// The write context of an authenticated request: its idempotency claim,
    /// its audit record, and the policies the store applies to money movement.
    pub fn request_context(
        &self,
        request_id: &str,
        principal: &Principal,
        engine: Option<PolicyEngine>,
        audit: Option<AuditDraft>,
    ) -> WriteContext {
        let mut ctx = self.context(request_id, Some(principal.key));
        ctx.audit = audit;
        ctx.policy = engine.map(|engine| {
            Arc::new(PolicyGate {
                engine,
                principal: principal.clone(),
            }) as Arc<dyn PolicyCheck>
        });
        ctx
    }

    /// Creates a key and returns it with its secret, which is kept nowhere.
    /// `granted_by` is the calling key (the command line passes `None`): it
    /// cannot grant a role with a permission it lacks itself.
    pub async fn create_api_key(
        &self,
        ctx: &WriteContext,
        granted_by: Option<&Principal>,
        name: String,
        role: &str,
        expires_at: Option<i64>,
    ) -> Result<(ApiKey, String)> {
        let name = text::bounded("name", name, 200, true)?;
        let role = self
            .store
            .role_by_name(role)
            .await?
            .ok_or_else(|| DomainError::invalid("role", format!("`{role}` is not a role")))?;
        Self::may_grant(granted_by, &role.permissions)?;
        if expires_at.is_some_and(|t| t <= ctx.now_secs()) {
            return Err(DomainError::invalid("expires_at", "`expires_at` must be in the future").into());
        }
        let id = ApiKeyId::from_uuid(settle_domain::ids::uuid_v7(ctx.now_ms, rand::random::<u128>()));
        let secret = auth::generate_secret(id);
        let key = ApiKey {
            id,
            name,
            prefix: secret.prefix.clone(),
            role: role.name,
            secret_hash: secret.hash.clone(),
            created: ctx.now_secs(),
            last_used: None,
            expires_at,
            revoked_at: None,
        };
        let key = self.store.create_api_key(ctx, key).await?;
        Ok((key, secret.secret))
    }

    pub async fn api_key(&self, id: Option<ApiKeyId>) -> Result<ApiKey> {
        let id = id.ok_or(StoreError::NotFound {
            what: "API key",
            param: None,
        })?;
        self.store
            .api_key(id)
            .await?
            .ok_or(ServiceError::Store(StoreError::NotFound {
                what: "API key",
                param: None,
            }))
    }

    pub async fn list_api_keys(&self, q: &ListQuery<()>) -> Result<Page<ApiKey>> {
        Ok(self.store.list_api_keys(q).await?)
    }

    /// Revokes a key: at once in this process, within the cache TTL elsewhere.
    /// `revoked_by` (the calling key; `None` from the command line) must
    /// hold every permission of the key it revokes, the rule that governs
    /// creating keys: a key manager cannot take down a stronger key.
    pub async fn revoke_api_key(
        &self,
        ctx: &WriteContext,
        revoked_by: Option<&Principal>,
        id: Option<ApiKeyId>,
    ) -> Result<ApiKey> {
        let id = id.ok_or(StoreError::NotFound {
            what: "API key",
            param: None,
        })?;
        if revoked_by.is_some() {
            let target = self.api_key(Some(id)).await?;
            let held = self.role_permissions(&target.role).await?;
            Self::may_grant(revoked_by, &held)?;
        }
        let key = self.store.revoke_api_key(ctx, id).await?;
        self.access.keys.write().unwrap_or_else(|e| e.into_inner()).remove(&id);
        Ok(key)
    }

    /// The permissions a role holds now (none for a role that is gone).
    async fn role_permissions(&self, role: &str) -> Result<Vec<Permission>> {
        Ok(self
            .store
            .role_by_name(role)
            .await?
            .map(|r| r.permissions)
            .unwrap_or_default())
    }

    fn may_grant(caller: Option<&Principal>, permissions: &[Permission]) -> Result<()> {
        match caller.and_then(|c| permissions.iter().find(|p| !c.allows(**p))) {
            Some(missing) => Err(denied(*missing)),
            None => Ok(()),
        }
    }

    pub async fn create_role(
        &self,
        ctx: &WriteContext,
        caller: Option<&Principal>,
        name: &str,
        permissions: &[String],
    ) -> Result<Role> {
        let name = parse_role_name(name)?;
        let permissions = parse_permissions(permissions)?;
        Self::may_grant(caller, &permissions)?;
        Ok(self.store.create_role(ctx, name, permissions).await?)
    }

    pub async fn role(&self, id: Option<RoleId>) -> Result<Role> {
        let id = id.ok_or(StoreError::NotFound {
            what: "role",
            param: None,
        })?;
        self.store
            .role(id)
            .await?
            .ok_or(ServiceError::Store(StoreError::NotFound {
                what: "role",
                param: None,
            }))
    }

    pub async fn update_role(
        &self,
        ctx: &WriteContext,
        caller: Option<&Principal>,
        id: Option<RoleId>,
        permissions: &[String],
        if_version: Option<i64>,
    ) -> Result<Role> {
        let id = id.ok_or(StoreError::NotFound {
            what: "role",
            param: None,
        })?;
        let permissions = parse_permissions(permissions)?;
        Self::may_grant(caller, &permissions)?;
        // Editing a role changes every key that holds it: the caller must
        // hold what the role grants now, as well as what it will grant.
        let mut if_version = if_version;
        if caller.is_some() {
            let current = self.role(Some(id)).await?;
            Self::may_grant(caller, &current.permissions)?;
            // The check holds for the version it read: a concurrent edit
            // (which might have added permissions) makes this one a 412.
            if_version = if_version.or(Some(current.version));
        }
        let role = self.store.update_role(ctx, id, permissions, if_version).await?;
        self.access.forget_keys();
        Ok(role)
    }

    /// Deletes a custom role; like editing it, only a caller holding all
    /// its permissions may.
    pub async fn delete_role(
        &self,
        ctx: &WriteContext,
        caller: Option<&Principal>,
        id: Option<RoleId>,
    ) -> Result<Deleted> {
        let id = id.ok_or(StoreError::NotFound {
            what: "role",
            param: None,
        })?;
        if caller.is_some() {
            let current = self.role(Some(id)).await?;
            Self::may_grant(caller, &current.permissions)?;
        }
        Ok(self.store.delete_role(ctx, id).await?)
    }

    pub async fn list_roles(&self, q: &ListQuery<()>) -> Result<Page<Role>> {
        Ok(self.store.list_roles(q).await?)
    }

    /// Validates the Cedar text against the published schema, then stores it.
    pub async fn create_policy(
        &self,
        ctx: &WriteContext,
        name: String,
        text: String,
        description: Option<String>,
    ) -> Result<StoredPolicy> {
        let name = text::bounded("name", name, 200, true)?;
        check_text(&text).await?;
        let stored = StoredPolicy {
            id: PolicyId::from_uuid(uuid::Uuid::nil()),
            name,
            policy: text,
            description: description
                .map(|d| text::bounded("description", d, 1000, false))
                .transpose()?,
            version: 1,
            created: 0,
            disabled_at: None,
        };
        let created = self.store.create_policy(ctx, stored).await?;
        self.access.forget_policies();
        Ok(created)
    }

    pub async fn policy(&self, id: Option<PolicyId>) -> Result<StoredPolicy> {
        let id = id.ok_or(StoreError::NotFound {
            what: "policy",
            param: None,
        })?;
        self.store
            .policy(id)
            .await?
            .ok_or(ServiceError::Store(StoreError::NotFound {
                what: "policy",
                param: None,
            }))
    }

    /// Edits a policy. A new text is validated; so is the stored text when
    /// the policy is enabled again, since it may predate the current limits.
    pub async fn update_policy(
        &self,
        ctx: &WriteContext,
        id: Option<PolicyId>,
        edit: PolicyEdit,
    ) -> Result<StoredPolicy> {
        let PolicyEdit {
            name,
            text,
            description,
            status,
            if_version,
        } = edit;
        let mut edited = self.policy(id).await?;
        if let Some(name) = name {
            edited.name = text::bounded("name", name, 200, true)?;
        }
        let enabling = status == Some(PolicyStatus::Enabled) && !edited.enabled();
        if let Some(text) = text {
            edited.policy = text;
            check_text(&edited.policy).await?;
        } else if enabling {
            check_text(&edited.policy).await?;
        }
        match status {
            Some(PolicyStatus::Enabled) => edited.disabled_at = None,
            Some(PolicyStatus::Disabled) if edited.enabled() => edited.disabled_at = Some(ctx.now_secs()),
            _ => {}
        }
        if let Some(description) = description {
            edited.description = description
                .map(|d| text::bounded("description", d, 1000, false))
                .transpose()?;
        }
        let saved = self.store.update_policy(ctx, edited, if_version).await?;
        self.access.forget_policies();
        Ok(saved)
    }

    pub async fn delete_policy(&self, ctx: &WriteContext, id: Option<PolicyId>) -> Result<Deleted> {
        let id = id.ok_or(StoreError::NotFound {
            what: "policy",
            param: None,
        })?;
        let deleted = self.store.delete_policy(ctx, id).await?;
        self.access.forget_policies();
        Ok(deleted)
    }

    pub async fn list_policies(&self, q: &ListQuery<()>) -> Result<Page<StoredPolicy>> {
        Ok(self.store.list_policies(q).await?)
    }

    /// Every stored policy, enabled or not, oldest first.
    pub async fn all_policies(&self) -> Result<Vec<StoredPolicy>> {
        Ok(self.store.all_policies().await?)
    }

    /// Records a write that failed; successful writes are recorded in
    /// their own transaction. Best effort: a failure here is logged.
    pub async fn record_failed_write(&self, draft: &AuditDraft, outcome: &str, status: u16) {
        if let Err(e) = self
            .store
            .record_audit(draft, outcome, status, self.clock.now_ms())
            .await
        {
            tracing::warn!(error = %e, "could not record an audit event");
        }
    }

    pub async fn list_audit_events(&self, q: &ListQuery<()>) -> Result<Page<AuditEvent>> {
        Ok(self.store.list_audit_events(q).await?)
    }
}
