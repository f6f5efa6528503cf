//! Roles, attribute policies, and the audit log.

use settle_domain::DomainError;
use settle_domain::ids::{AuditEventId, PolicyId, RoleId};
use settle_domain::rbac::{BUILTIN_ROLES, Permission, Role, builtin_permissions};

use super::Tx;
use super::db::{Executor, Query, Row, query};
use super::rows::{self, POLICY_COLS, ROLE_COLS};
use super::store::{check_version, lost_race};
use crate::error::{StoreError, StoreResult};
use crate::ids::IdGenerator;
use crate::records::{AuditDraft, Deleted, StoredPolicy};

pub fn permissions_json(permissions: &[Permission]) -> String {
    let texts: Vec<String> = permissions.iter().map(ToString::to_string).collect();
    serde_json::to_string(&texts).unwrap_or_else(|_| "[]".into())
}

/// A role by its unique name (served by `roles_name`).
pub const ROLE_BY_NAME_SQL: &str = "SELECT id, name, permissions, builtin, version, created FROM roles WHERE name = $1";

pub async fn role_where<E: Executor + ?Sized>(
    ex: &mut E,
    column: &str,
    value: Vec<u8>,
    name: Option<String>,
) -> StoreResult<Option<Role>> {
    let sql = if column == "name" {
        ROLE_BY_NAME_SQL.to_owned()
    } else {
        format!("SELECT {ROLE_COLS} FROM roles WHERE {column} = $1")
    };
    let query = query(sql);
    let query = match name {
        Some(n) => query.bind(n),
        None => query.bind(value),
    };
    let row: Option<Row> = query.fetch_optional(ex).await?;
    row.as_ref().map(rows::role).transpose()
}

/// Creates or refreshes a built-in role so the table always mirrors the
/// permission sets defined in code.
pub async fn upsert_builtin(
    conn: &mut (impl Executor + ?Sized),
    id: RoleId,
    name: &str,
    permissions: &[Permission],
    now: i64,
) -> StoreResult<()> {
    query(
        "INSERT INTO roles (id, name, permissions, builtin, version, created) VALUES ($1, $2, $3, 1, 1, $4) \
         ON CONFLICT (name) DO UPDATE SET permissions = excluded.permissions, builtin = 1",
    )
    .bind(id.to_bytes())
    .bind(name.to_owned())
    .bind(permissions_json(permissions))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_role(conn: &mut (impl Executor + ?Sized), role: &Role) -> StoreResult<()> {
    let taken = role_where(&mut *conn, "name", Vec::new(), Some(role.name.clone())).await?;
    if taken.is_some() {
        return Err(StoreError::InUse(format!(
            "a role named `{}` already exists",
            role.name
        )));
    }
    query("INSERT INTO roles (id, name, permissions, builtin, version, created) VALUES ($1, $2, $3, 0, $4, $5)")
        .bind(role.id.to_bytes())
        .bind(role.name.clone())
        .bind(permissions_json(&role.permissions))
        .bind(role.version)
        .bind(role.created)
        .execute(conn)
        .await?;
    Ok(())
}

/// Saves new permissions only if the version is still the one read.
pub async fn save_role(conn: &mut (impl Executor + ?Sized), role: &Role, read_version: i64) -> StoreResult<bool> {
    let done = query("UPDATE roles SET permissions = $1, version = $2 WHERE id = $3 AND version = $4 AND builtin = 0")
        .bind(permissions_json(&role.permissions))
        .bind(role.version)
        .bind(role.id.to_bytes())
        .bind(read_version)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether an unrevoked key still has the role (served by `api_keys_role`).
pub const ROLE_IN_USE_SQL: &str = "SELECT 1 AS found FROM api_keys WHERE role = $1 AND revoked_at IS NULL LIMIT 1";

pub async fn role_in_use(conn: &mut (impl Executor + ?Sized), name: &str) -> StoreResult<bool> {
    Ok(query(ROLE_IN_USE_SQL)
        .bind(name.to_owned())
        .fetch_optional(conn)
        .await?
        .is_some())
}

pub async fn delete_role(conn: &mut (impl Executor + ?Sized), id: RoleId) -> StoreResult<()> {
    query("DELETE FROM roles WHERE id = $1 AND builtin = 0")
        .bind(id.to_bytes())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn policy<E: Executor + ?Sized>(ex: &mut E, id: PolicyId) -> StoreResult<Option<StoredPolicy>> {
    let sql = format!("SELECT {POLICY_COLS} FROM policies WHERE id = $1");
    let row: Option<Row> = query(sql).bind(id.to_bytes()).fetch_optional(ex).await?;
    row.as_ref().map(rows::policy).transpose()
}

pub async fn all_policies<E: Executor + ?Sized>(ex: &mut E) -> StoreResult<Vec<StoredPolicy>> {
    let sql = format!("SELECT {POLICY_COLS} FROM policies ORDER BY id");
    let found = query(sql).fetch_all(ex).await?;
    found.iter().map(rows::policy).collect()
}

pub async fn insert_policy(conn: &mut (impl Executor + ?Sized), p: &StoredPolicy) -> StoreResult<()> {
    query(
        "INSERT INTO policies (id, name, policy, description, version, created, disabled_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(p.id.to_bytes())
    .bind(p.name.clone())
    .bind(p.policy.clone())
    .bind(p.description.clone())
    .bind(p.version)
    .bind(p.created)
    .bind(p.disabled_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn save_policy(
    conn: &mut (impl Executor + ?Sized),
    p: &StoredPolicy,
    read_version: i64,
) -> StoreResult<bool> {
    let done = query(
        "UPDATE policies SET name = $1, policy = $2, description = $3, version = $4, disabled_at = $5 \
         WHERE id = $6 AND version = $7",
    )
    .bind(p.name.clone())
    .bind(p.policy.clone())
    .bind(p.description.clone())
    .bind(p.version)
    .bind(p.disabled_at)
    .bind(p.id.to_bytes())
    .bind(read_version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_policy(conn: &mut (impl Executor + ?Sized), id: PolicyId) -> StoreResult<bool> {
    let done = query("DELETE FROM policies WHERE id = $1")
        .bind(id.to_bytes())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes one audit record.
pub async fn insert_audit(
    conn: &mut (impl Executor + ?Sized),
    ids: &IdGenerator,
    draft: &AuditDraft,
    object: Option<String>,
    outcome: &str,
    status: u16,
    now_ms: u64,
) -> StoreResult<()> {
    audit_row(ids, draft, object, outcome, status, now_ms)
        .execute(conn)
        .await?;
    Ok(())
}

/// The statement that adds one audit row, for a caller that runs it itself
/// (a write defers it to ride with its last statement: [`Tx::defer`]).
pub fn audit_row(
    ids: &IdGenerator,
    draft: &AuditDraft,
    object: Option<String>,
    outcome: &str,
    status: u16,
    now_ms: u64,
) -> Query {
    query(
        "INSERT INTO audit_events (id, api_key_id, operation, permission, object, request_id, outcome, status, created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(AuditEventId::from_uuid(ids.next(now_ms)).to_bytes())
    .bind(draft.api_key.map(|k| k.to_bytes()))
    .bind(draft.operation.to_owned())
    .bind(draft.permission.clone())
    .bind(object)
    .bind(draft.request_id.clone())
    .bind(outcome.to_owned())
    .bind(i64::from(status))
    .bind((now_ms / 1000) as i64)
}

/// Creates or refreshes every built-in role at start-up. Their ids come
/// straight from the clock (`now_ms`), not from the store's sequence, so
/// start-up does not move that sequence.
pub async fn sync_builtin(tx: &mut Tx<'_>, now_ms: u64) -> StoreResult<()> {
    for name in BUILTIN_ROLES {
        let permissions = builtin_permissions(name).unwrap_or_default();
        let id = RoleId::from_uuid(settle_domain::ids::uuid_v7(now_ms, rand::random::<u128>() >> 54));
        upsert_builtin(&mut *tx, id, name, &permissions, (now_ms / 1000) as i64).await?;
    }
    Ok(())
}

/// Adds a custom role under a name no other role has.
pub async fn create_role(tx: &mut Tx<'_>, name: String, permissions: Vec<Permission>) -> StoreResult<Role> {
    let role = Role {
        id: RoleId::from_uuid(tx.next_id()),
        name,
        permissions,
        builtin: false,
        version: 1,
        created: tx.ctx.now_secs(),
    };
    insert_role(&mut *tx, &role).await?;
    Ok(role)
}

/// The custom role `id`, for a change `verb` names; built-in roles are
/// defined in code and refuse every change.
async fn custom_role(tx: &mut Tx<'_>, id: RoleId, verb: &str) -> StoreResult<Role> {
    let role = role_where(&mut *tx, "id", id.to_bytes(), None)
        .await?
        .ok_or(StoreError::NotFound {
            what: "role",
            param: None,
        })?;
    if role.builtin {
        return Err(DomainError::InvalidState(format!("built-in roles cannot be {verb}")).into());
    }
    Ok(role)
}

/// Replaces a custom role's permissions if the version is still
/// `if_version` (when given). Built-in roles cannot be edited.
pub async fn update_role(
    tx: &mut Tx<'_>,
    id: RoleId,
    permissions: Vec<Permission>,
    if_version: Option<i64>,
) -> StoreResult<Role> {
    let mut role = custom_role(tx, id, "edited").await?;
    let read_version = role.version;
    check_version(if_version, read_version)?;
    role.permissions = permissions;
    role.version += 1;
    if !save_role(&mut *tx, &role, read_version).await? {
        return Err(lost_race(if_version, read_version + 1));
    }
    Ok(role)
}

/// Deletes a custom role that no unrevoked API key uses. Built-in roles
/// cannot be deleted.
pub async fn remove_role(tx: &mut Tx<'_>, id: RoleId) -> StoreResult<Deleted> {
    let role = custom_role(tx, id, "deleted").await?;
    if role_in_use(&mut *tx, &role.name).await? {
        return Err(StoreError::InUse(format!(
            "API keys still use the role `{}`",
            role.name
        )));
    }
    delete_role(&mut *tx, id).await?;
    Ok(Deleted {
        id: id.to_string(),
        object: "role",
        deleted: true,
    })
}

/// Adds a policy with a new id, at version 1, created at the write's time.
pub async fn create_policy(tx: &mut Tx<'_>, mut policy: StoredPolicy) -> StoreResult<StoredPolicy> {
    policy.id = PolicyId::from_uuid(tx.next_id());
    policy.version = 1;
    policy.created = tx.ctx.now_secs();
    insert_policy(&mut *tx, &policy).await?;
    Ok(policy)
}

/// Saves an edited policy if the version is still `if_version` (when
/// given); its creation time stays the stored one.
pub async fn update_policy(
    tx: &mut Tx<'_>,
    mut edited: StoredPolicy,
    if_version: Option<i64>,
) -> StoreResult<StoredPolicy> {
    let current = policy(&mut *tx, edited.id).await?.ok_or(StoreError::NotFound {
        what: "policy",
        param: None,
    })?;
    check_version(if_version, current.version)?;
    edited.version = current.version + 1;
    edited.created = current.created;
    if !save_policy(&mut *tx, &edited, current.version).await? {
        return Err(lost_race(if_version, current.version + 1));
    }
    Ok(edited)
}

/// Deletes a policy.
pub async fn remove_policy(tx: &mut Tx<'_>, id: PolicyId) -> StoreResult<Deleted> {
    if !delete_policy(&mut *tx, id).await? {
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
}

/// Records a write that did not succeed in the audit log (successful writes
/// are recorded inside their own transaction), at `now_ms`: a background
/// write has no time of its own.
pub async fn record_audit(
    tx: &mut Tx<'_>,
    draft: AuditDraft,
    outcome: String,
    status: u16,
    now_ms: u64,
) -> StoreResult<()> {
    let ids = tx.ids;
    insert_audit(&mut *tx, ids, &draft, None, &outcome, status, now_ms).await
}
