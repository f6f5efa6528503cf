//! Attribute policies in Cedar, validated against the published schema
//! before they are stored, and the audit log they are judged by.

use serde::{Deserialize, Serialize};
use settle_domain::ids::PolicyId;
use settle_domain::rbac::Resource;
use settle_store::records::{AuditEvent, Deleted, StoredPolicy};

use super::{Targeted, by_id, nullable, object_attributes, plain_list};
use crate::pipeline::registry::{
    CREATE_POLICY, DELETE_POLICY, LIST_AUDIT_EVENTS, LIST_POLICIES, POLICY_SCHEMA, RETRIEVE_POLICY, UPDATE_POLICY,
};
use crate::pipeline::{Failure, Operation, OperationContext, OperationSpec};
use crate::policy::ResourceAttrs;
use crate::{PolicyEdit, PolicyStatus, Settle};

/// A Cedar policy, validated against `GET /v1/policies/schema` before it is
/// stored and applied.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicy {
    pub name: String,
    /// The Cedar text.
    pub policy: String,
    pub description: Option<String>,
}

impl Operation for CreatePolicy {
    type Output = StoredPolicy;
    const SPEC: &'static OperationSpec = &CREATE_POLICY;

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<StoredPolicy, Failure> {
        Ok(settle
            .create_policy(ctx.write(), self.name, self.policy, self.description)
            .await?)
    }
}

by_id!(
    /// One policy.
    RetrievePolicy, RETRIEVE_POLICY, Policies, StoredPolicy,
    |settle, ctx, id| settle.policy(PolicyId::parse(&id))
);

by_id!(
    /// Deletes a policy.
    DeletePolicy, DELETE_POLICY, Policies, Deleted,
    |settle, ctx, id| settle.delete_policy(ctx.write(), PolicyId::parse(&id))
);

plain_list!(
    /// Policies, enabled or not.
    ListPolicies, LIST_POLICIES, StoredPolicy,
    |settle, query| settle.list_policies(&query)
);

plain_list!(
    /// Audit events, newest first.
    ListAuditEvents, LIST_AUDIT_EVENTS, AuditEvent,
    |settle, query| settle.list_audit_events(&query)
);

/// Edits, enables or disables a policy; a new text is validated before it
/// applies.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    #[serde(default, skip_deserializing)]
    pub id: String,
    #[serde(default, skip_deserializing)]
    pub if_version: Option<i64>,
    pub name: Option<String>,
    pub policy: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// `enabled` or `disabled`; enabling validates the text again.
    pub status: Option<PolicyStatus>,
}

impl Targeted for UpdatePolicy {
    fn with_id(self, id: String) -> Self {
        Self { id, ..self }
    }
}

impl Operation for UpdatePolicy {
    type Output = StoredPolicy;
    const SPEC: &'static OperationSpec = &UPDATE_POLICY;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Policies, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<StoredPolicy, Failure> {
        let edit = PolicyEdit {
            name: self.name,
            text: self.policy,
            description: self.description,
            status: self.status,
            if_version: self.if_version,
        };
        Ok(settle
            .update_policy(ctx.write(), PolicyId::parse(&self.id), edit)
            .await?)
    }
}

/// The Cedar schema policies are validated against.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicySchema;

impl Operation for PolicySchema {
    type Output = &'static str;
    const SPEC: &'static OperationSpec = &POLICY_SCHEMA;

    async fn run(self, _settle: &Settle, _ctx: &OperationContext) -> Result<&'static str, Failure> {
        Ok(crate::policy::SCHEMA)
    }
}
