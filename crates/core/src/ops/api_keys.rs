//! API keys: create (the secret shown once; a key grants no more than it
//! holds), list, read, revoke (no weaker key takes down a stronger one).

use serde::{Deserialize, Serialize};
use settle_domain::ids::ApiKeyId;
use settle_store::records::ApiKey;

use super::{WithSecret, by_id, not_null, plain_list};
use crate::Settle;
use crate::pipeline::registry::{CREATE_API_KEY, LIST_API_KEYS, RETRIEVE_API_KEY, REVOKE_API_KEY};
use crate::pipeline::{Failure, Operation, OperationContext, OperationSpec};

/// A new key with a role; the caller can only grant permissions it holds
/// itself. The secret is in this answer only.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    pub role: String,
    /// Unix seconds; absent never expires.
    #[serde(default, deserialize_with = "not_null")]
    pub expires_at: Option<i64>,
}

impl Operation for CreateApiKey {
    type Output = WithSecret<ApiKey>;
    const SPEC: &'static OperationSpec = &CREATE_API_KEY;
    const SHOWS_SECRET: bool = true;

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Self::Output, Failure> {
        let (object, secret) = settle
            .create_api_key(
                ctx.write(),
                Some(&ctx.principal),
                self.name,
                &self.role,
                self.expires_at,
            )
            .await?;
        Ok(WithSecret { object, secret })
    }
}

by_id!(
    /// One API key (never its secret).
    RetrieveApiKey, RETRIEVE_API_KEY, ApiKeys, ApiKey,
    |settle, ctx, id| settle.api_key(ApiKeyId::parse(&id))
);

by_id!(
    /// Revokes a key at once: its next request gets 401.
    RevokeApiKey, REVOKE_API_KEY, ApiKeys, ApiKey,
    |settle, ctx, id| settle.revoke_api_key(ctx.write(), Some(&ctx.principal), ApiKeyId::parse(&id))
);

plain_list!(
    /// API keys, newest first (never their secrets).
    ListApiKeys, LIST_API_KEYS, ApiKey,
    |settle, query| settle.list_api_keys(&query)
);
