//! Roles: custom roles from permissions (built-ins are listed but cannot
//! change); a key can only grant permissions it holds itself.

use serde::{Deserialize, Serialize};
use settle_domain::ids::RoleId;
use settle_domain::rbac::{Resource, Role};
use settle_store::records::Deleted;

use super::{Targeted, by_id, object_attributes, plain_list};
use crate::Settle;
use crate::pipeline::registry::{CREATE_ROLE, DELETE_ROLE, LIST_ROLES, RETRIEVE_ROLE, UPDATE_ROLE};
use crate::pipeline::{Failure, Operation, OperationContext, OperationSpec};
use crate::policy::ResourceAttrs;

/// A custom role from `resource:action` permissions the caller holds itself.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    pub name: String,
    pub permissions: Vec<String>,
}

impl Operation for CreateRole {
    type Output = Role;
    const SPEC: &'static OperationSpec = &CREATE_ROLE;

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Role, Failure> {
        Ok(settle
            .create_role(ctx.write(), Some(&ctx.principal), &self.name, &self.permissions)
            .await?)
    }
}

by_id!(
    /// One role.
    RetrieveRole, RETRIEVE_ROLE, Roles, Role,
    |settle, ctx, id| settle.role(RoleId::parse(&id))
);

by_id!(
    /// Deletes a custom role; only a caller holding all its permissions may.
    DeleteRole, DELETE_ROLE, Roles, Deleted,
    |settle, ctx, id| settle.delete_role(ctx.write(), Some(&ctx.principal), RoleId::parse(&id))
);

plain_list!(
    /// Roles, built-in and custom.
    ListRoles, LIST_ROLES, Role,
    |settle, query| settle.list_roles(&query)
);

/// Replaces a custom role's permissions; every key holding it changes at once,
/// so the caller must hold what it grants now and after.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    #[serde(default, skip_deserializing)]
    pub id: String,
    #[serde(default, skip_deserializing)]
    pub if_version: Option<i64>,
    /// Replaces the role's permissions; absent changes nothing.
    pub permissions: Option<Vec<String>>,
}

impl Targeted for UpdateRole {
    fn with_id(self, id: String) -> Self {
        Self { id, ..self }
    }
}

impl Operation for UpdateRole {
    type Output = Role;
    const SPEC: &'static OperationSpec = &UPDATE_ROLE;

    fn attributes(&self) -> ResourceAttrs {
        object_attributes(Resource::Roles, &self.id)
    }

    async fn run(self, settle: &Settle, ctx: &OperationContext) -> Result<Role, Failure> {
        let id = RoleId::parse(&self.id);
        let Some(permissions) = self.permissions else {
            // Nothing to change: answer with the role as it is (404 if none).
            return Ok(settle.role(id).await?);
        };
        Ok(settle
            .update_role(ctx.write(), Some(&ctx.principal), id, &permissions, self.if_version)
            .await?)
    }
}
