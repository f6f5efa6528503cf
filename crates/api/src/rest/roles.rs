//! `/v1/roles`: custom roles (built-ins are listed but cannot change); a key
//! can only grant permissions it has itself.

use axum::extract::State;
use axum::response::Response;
use settle_core::Settle;
use settle_core::ops::roles::{CreateRole, DeleteRole, ListRoles, RetrieveRole, UpdateRole};
use settle_domain::ids::RoleId;

use super::serve::{Rest, RestInput};

pub async fn create(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::json::<CreateRole>).await
}

pub async fn retrieve(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<RetrieveRole>).await
}

pub async fn update(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(UpdateRole {
            if_version: r.if_match()?,
            ..r.targeted::<UpdateRole>()?
        })
    })
    .await
}

pub async fn remove(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, RestInput::path_only::<DeleteRole>).await
}

pub async fn list(State(settle): State<Settle>, rest: Rest) -> Response {
    rest.serve(&settle, |r| {
        Ok(ListRoles(r.list(&[], |t| RoleId::parse(t).map(|i| i.uuid()))?))
    })
    .await
}
