//! Roles, API key revocation and use, attribute policies, and the audit log.

use settle_domain::ids::{ApiKeyId, AuditEventId, PolicyId, RoleId};
use settle_domain::rbac::{Permission, Role};

use super::db::{Executor, Row, query};
use super::rows::{self, POLICY_COLS, ROLE_COLS};
use crate::error::{StoreError, StoreResult};
use crate::ids::IdGenerator;
use crate::records::{AuditDraft, StoredPolicy};

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

pub async fn revoke_key(conn: &mut (impl Executor + ?Sized), id: ApiKeyId, now: i64) -> StoreResult<()> {
    query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id.to_bytes())
        .execute(conn)
        .await?;
    Ok(())
}

/// Records when keys were last used; batched by the caller, so requests
/// never wait on this write.
pub async fn touch_keys(conn: &mut (impl Executor + ?Sized), uses: &[(ApiKeyId, i64)]) -> StoreResult<()> {
    for (id, at) in uses {
        query("UPDATE api_keys SET last_used = $1 WHERE id = $2 AND (last_used IS NULL OR last_used < $3)")
            .bind(*at)
            .bind(id.to_bytes())
            .bind(*at)
            .execute(&mut *conn)
            .await?;
    }
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
    .execute(conn)
    .await?;
    Ok(())
}
