//! The access-control object types: API keys (the secret only in the
//! answer that makes one), roles, Cedar policies and the audit log. Each
//! is its REST JSON.

use async_graphql::{ID, Object};
use serde_json::Value;

use super::{Answer, int, opt_id, opt_int, opt_text, text, texts};

/// A key to the API, with a role; never its secret.
pub struct ApiKey(pub(super) Value);
/// A new key as the answer that made it gives it.
pub struct ApiKeyWithSecret(pub(super) Answer);
/// A named set of `resource:action` permissions keys are given.
pub struct Role(pub(super) Value);
/// A Cedar attribute policy.
pub struct Policy(pub(super) Value);
/// Who did which write under which request, and how it ended.
pub struct AuditEvent(pub(super) Value);

#[Object]
impl ApiKey {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn name(&self) -> String {
        text(&self.0, "name")
    }
    /// The start of the secret, to recognise it by.
    async fn prefix(&self) -> String {
        text(&self.0, "prefix")
    }
    /// The role's name.
    async fn role(&self) -> String {
        text(&self.0, "role")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
    async fn last_used(&self) -> Option<i64> {
        opt_int(&self.0, "last_used")
    }
    async fn expires_at(&self) -> Option<i64> {
        opt_int(&self.0, "expires_at")
    }
    async fn revoked_at(&self) -> Option<i64> {
        opt_int(&self.0, "revoked_at")
    }
}

#[Object]
impl ApiKeyWithSecret {
    async fn api_key(&self) -> ApiKey {
        ApiKey(self.0.json.clone())
    }
    /// The key's secret, shown in this answer only; `null` in a replay,
    /// which has only what was stored.
    async fn secret(&self) -> Option<String> {
        opt_text(&self.0.json, "secret")
    }
    /// This answer is a replay of an idempotency key and lacks the secret
    /// the first answer showed.
    async fn secret_omitted(&self) -> bool {
        self.0.secret_omitted
    }
}

#[Object]
impl Role {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn name(&self) -> String {
        text(&self.0, "name")
    }
    /// `resource:action`, such as `payments:write`.
    async fn permissions(&self) -> Vec<String> {
        texts(&self.0, "permissions")
    }
    /// `admin`, `developer` and `viewer`, which cannot change.
    async fn builtin(&self) -> bool {
        self.0["builtin"].as_bool().unwrap_or(false)
    }
    async fn version(&self) -> i64 {
        int(&self.0, "version")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
}

#[Object]
impl Policy {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    async fn name(&self) -> String {
        text(&self.0, "name")
    }
    /// The Cedar text.
    async fn policy(&self) -> String {
        text(&self.0, "policy")
    }
    async fn description(&self) -> Option<String> {
        opt_text(&self.0, "description")
    }
    /// `enabled` (applied) or `disabled` (kept only).
    async fn status(&self) -> String {
        text(&self.0, "status")
    }
    async fn version(&self) -> i64 {
        int(&self.0, "version")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
}

#[Object]
impl AuditEvent {
    async fn id(&self) -> ID {
        ID(text(&self.0, "id"))
    }
    /// The key that asked; `null` for the command line.
    async fn api_key_id(&self) -> Option<ID> {
        opt_id(&self.0, "api_key")
    }
    /// The operation's registered name, such as `create_payment`.
    async fn operation(&self) -> String {
        text(&self.0, "operation")
    }
    async fn permission(&self) -> String {
        text(&self.0, "permission")
    }
    /// The id of the object written, when the write succeeded.
    async fn target(&self) -> Option<String> {
        opt_text(&self.0, "target")
    }
    async fn request_id(&self) -> String {
        text(&self.0, "request_id")
    }
    /// `succeeded`, or the error code.
    async fn outcome(&self) -> String {
        text(&self.0, "outcome")
    }
    /// The HTTP status REST answered or would have answered.
    async fn status(&self) -> i64 {
        int(&self.0, "status")
    }
    async fn created(&self) -> i64 {
        int(&self.0, "created")
    }
}
