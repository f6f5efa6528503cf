//! Who reads, for faces that load related objects on their own schedule
//! (GraphQL's per-request loaders): the authenticated key and the policies
//! in force, checked for each object shown, as `expand[]` does.

use settle_domain::rbac::{Action, Permission, Resource};

use super::{Call, Failure};
use crate::Settle;
use crate::auth::Principal;
use crate::ops::object_attributes;
use crate::policy::PolicyEngine;

/// An authenticated reader with the policies of its request.
#[derive(Clone)]
pub struct Viewer {
    pub principal: Principal,
    engine: PolicyEngine,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer").field("key", &self.principal.key).finish()
    }
}

impl Settle {
    /// Authenticates `call`'s key and loads the policies once for a whole
    /// request whose parts each run as operations.
    pub async fn viewer(&self, call: &Call) -> Result<Viewer, Failure> {
        let secret = call.credential.as_deref().ok_or_else(Failure::api_key_missing)?;
        let principal = self.authenticate(secret).await?;
        let engine = self.policy_engine().await?;
        Ok(Viewer { principal, engine })
    }

    /// Whether `viewer` may see the object `id` of `resource`: the read
    /// permission (403 naming it), then the policies for that object.
    pub fn may_read(&self, viewer: &Viewer, resource: Resource, id: &str) -> Result<(), Failure> {
        let permission = Permission::new(resource, Action::Read);
        if !viewer.principal.allows(permission) {
            return Err(crate::ServiceError::Forbidden(permission).into());
        }
        self.check_policy(
            &viewer.engine,
            &viewer.principal,
            permission,
            &object_attributes(resource, id),
        )?;
        Ok(())
    }
}
