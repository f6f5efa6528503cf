//! The input objects of queries and mutations, in GraphQL's camelCase,
//! mirroring the fields of REST's bodies.

use std::collections::BTreeMap;

use async_graphql::{ID, InputObject, Json};

/// At most one of these, each served by its own index (as on REST).
#[derive(InputObject, Default)]
pub struct PaymentFilter {
    pub(super) status: Option<String>,
    pub(super) customer: Option<ID>,
    pub(super) source: Option<ID>,
    pub(super) destination: Option<ID>,
}

#[derive(InputObject)]
pub struct CreatePaymentInput {
    pub(super) amount: i64,
    pub(super) currency: String,
    pub(super) source: ID,
    pub(super) destination: ID,
    pub(super) customer: Option<ID>,
    pub(super) capture: Option<bool>,
    pub(super) description: Option<String>,
    pub(super) metadata: Option<Json<BTreeMap<String, String>>>,
}

#[derive(InputObject)]
pub struct CreateAccountInput {
    pub(super) name: String,
    pub(super) currency: String,
    pub(super) allow_negative: Option<bool>,
    pub(super) customer: Option<ID>,
    pub(super) metadata: Option<Json<BTreeMap<String, String>>>,
}

#[derive(InputObject)]
pub struct CreateCustomerInput {
    pub(super) name: Option<String>,
    pub(super) email: Option<String>,
    pub(super) metadata: Option<Json<BTreeMap<String, String>>>,
}

#[derive(InputObject)]
pub struct UpdateAccountInput {
    pub(super) name: Option<String>,
    /// Keys to set; a key set to `null` is removed.
    pub(super) metadata: Option<Json<BTreeMap<String, Option<String>>>>,
}

/// `null` clears a field; leaving it out keeps it (`Nullable`).
#[derive(InputObject)]
pub struct UpdateCustomerInput {
    pub(super) name: Option<Nullable>,
    pub(super) email: Option<Nullable>,
    pub(super) metadata: Option<Json<BTreeMap<String, Option<String>>>>,
}

/// A value that may be set to `null` on purpose: `{value: "x"}` sets,
/// `{value: null}` clears.
#[derive(InputObject)]
pub struct Nullable {
    pub(super) value: Option<String>,
}

impl Nullable {
    pub(super) fn into_option(self) -> Option<String> {
        self.value
    }
}

#[derive(InputObject)]
pub struct CreateRefundInput {
    pub(super) payment: ID,
    pub(super) amount: Option<i64>,
    pub(super) reason: Option<String>,
}

#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// A public `https` or `http` URL.
    pub(super) url: String,
    /// Event types such as `payment.succeeded`, or `["*"]` for all.
    pub(super) enabled_events: Vec<String>,
    pub(super) description: Option<String>,
    pub(super) metadata: Option<Json<BTreeMap<String, String>>>,
}

/// Fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    pub(super) url: Option<String>,
    pub(super) enabled_events: Option<Vec<String>>,
    /// `{value: null}` clears it.
    pub(super) description: Option<Nullable>,
    /// Keys to set; a key set to `null` is removed.
    pub(super) metadata: Option<Json<BTreeMap<String, Option<String>>>>,
    /// `enabled` or `disabled`: a disabled endpoint gets no deliveries.
    pub(super) status: Option<String>,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub(super) name: String,
    /// The role's name; the caller can only grant what it holds itself.
    pub(super) role: String,
    /// Unix seconds; left out, the key never expires.
    pub(super) expires_at: Option<i64>,
}

#[derive(InputObject)]
pub struct CreateRoleInput {
    pub(super) name: String,
    /// `resource:action`, such as `payments:read`.
    pub(super) permissions: Vec<String>,
}

#[derive(InputObject)]
pub struct UpdateRoleInput {
    /// Replaces the role's permissions; left out, nothing changes.
    pub(super) permissions: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct CreatePolicyInput {
    pub(super) name: String,
    /// The Cedar text, validated against the published schema.
    pub(super) policy: String,
    pub(super) description: Option<String>,
}

/// Fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdatePolicyInput {
    pub(super) name: Option<String>,
    pub(super) policy: Option<String>,
    /// `{value: null}` clears it.
    pub(super) description: Option<Nullable>,
    /// `enabled` or `disabled`; enabling validates the text again.
    pub(super) status: Option<String>,
}
