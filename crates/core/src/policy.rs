//! Operator-written limits on top of roles, in [Cedar](https://www.cedarpolicy.com).
//!
//! Roles say *which* operations a key may call; policies say *under what
//! conditions*: "support may not refund more than 5,000", "this key may only
//! pay out of these two accounts". Every check goes through one Cedar
//! evaluation against a fixed model, so the facts below are the whole contract
//! a policy author needs (they are also published as [`SCHEMA`]).
//!
//! # The model
//!
//! - **Principal**: entity type `ApiKey`, id = the key id text (`ApiKey::"key_01..."`),
//!   with String attributes `role` and `name`.
//! - **Action**: `Action::"<resource>:<action>"` for every permission, e.g.
//!   `Action::"refunds:write"`, `Action::"queue:read"`.
//! - **Resource**: one entity type per resource kind, so strict validation
//!   accepts `resource.amount` without `has` checks where it applies:
//!   - `Payment` (payments:*) and `Refund` (refunds:*): `amount: Long`,
//!     `currency: String`, `source: String`, `destination: String`, `payment: String`.
//!   - `Account` (accounts:*): `account: String`, `currency: String`.
//!   - `Object` (customers, events, webhooks, api_keys, roles, policies, audit,
//!     queue): `id: String`, the object's id (`""` for creations and lists).
//!
//!   Attributes are resolved before evaluation (a full refund's `amount` is the
//!   amount it will actually refund). An attribute not known yet (e.g. `payment`
//!   while creating one) is `""` for strings and `0` for `amount`. The resource
//!   entity's own id is not meaningful: test attributes, not `resource == ...`.
//! - **Context**: empty.
//!
//! # Decisions
//!
//! A built-in base policy `permit(principal, action, resource);` allows
//! everything, so stored policies are normally `forbid` policies; Cedar's rule
//! "any satisfied forbid wins" then makes each one a limit. A policy whose
//! evaluation errors (e.g. integer overflow) would be skipped by Cedar, which
//! could turn a limit into a hole, so any evaluation error denies instead.
//!
//! Every stored policy is parsed and validated against [`SCHEMA`] in strict
//! mode, so a typo such as `resource.colour` is rejected when it is saved,
//! not discovered when it silently never matches; so is a policy that can
//! never apply (e.g. `action == Action::"refunds:write", resource is Account`).
//!
//! # Limits
//!
//! Every text is measured by [`limits::check`] before Cedar sees it, so a
//! policy too large, too deeply nested or with too many operators is refused
//! (as [`PolicyError::Limit`]) instead of overflowing a stack. Parsing and
//! validation run on a dedicated thread with [`limits::COMPILE_STACK`]
//! ([`validate_isolated`], [`PolicyEngine::build`]); evaluation runs inline,
//! on threads that must have [`limits::EVAL_STACK`].
//!
//! # Example
//!
//! ```cedar
//! forbid(principal, action == Action::"refunds:write", resource)
//! when { principal.role == "support" && resource.amount > 5000 };
//! ```

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use cedar_policy::ffi::DetailedError;
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet,
    Request, RestrictedExpression, Schema, ValidationMode, ValidationWarning, Validator,
};
use settle_domain::rbac::{Permission, Resource};

/// Attributes of the resource an operation acts on, resolved before evaluation
/// (e.g. a full refund's amount is the amount it will actually refund).
#[derive(Debug, Clone, Default)]
pub struct ResourceAttrs {
    /// Minor units; `Payment.amount` / `Refund.amount` (0 when unknown).
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// Account id text, e.g. "acct_01...".
    pub source: Option<String>,
    /// Account id text.
    pub destination: Option<String>,
    /// Payment id text.
    pub payment: Option<String>,
    /// Account id text; `Account.account`.
    pub account: Option<String>,
    /// The id of the object acted on, for the kinds without attributes of
    /// their own (customers, webhooks, keys, ...); `Object.id`.
    pub id: Option<String>,
}

/// Who asks: the authenticated key, as Cedar's `ApiKey` principal.
pub struct PolicyPrincipal<'a> {
    pub key_id: &'a str,
    pub role: &'a str,
    pub name: &'a str,
}

pub mod limits;

/// Why a policy text was refused, worded for the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text breaks a structural limit, so it was not parsed at all.
    #[error(transparent)]
    Limit(#[from] limits::LimitError),
    /// The policy text does not parse; the message points at the place (line/column or snippet).
    #[error("{0}")]
    Parse(String),
    /// The policy parses but does not validate against the published schema.
    #[error("{0}")]
    Invalid(String),
}

/// A denial: which policy forbade it, or that evaluation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// The Cedar schema policies are validated against (Cedar human-readable
/// schema text), published so users can write policies. Kept literal so it can
/// be copied verbatim; a test checks it covers exactly the permissions in
/// `settle_domain::rbac`.
pub const SCHEMA: &str = r#"// Settle policy model. Principal: the API key. Action: "<resource>:<action>".
// Resource: one entity type per resource kind; unknown strings are "" and an unknown amount is 0.
entity ApiKey = { role: String, name: String };
entity Payment = { amount: Long, currency: String, source: String, destination: String, payment: String };
entity Refund = { amount: Long, currency: String, source: String, destination: String, payment: String };
entity Account = { account: String, currency: String };
entity Object = { id: String };

action "payments:read", "payments:write" appliesTo { principal: ApiKey, resource: Payment };
action "refunds:read", "refunds:write" appliesTo { principal: ApiKey, resource: Refund };
action "accounts:read", "accounts:write" appliesTo { principal: ApiKey, resource: Account };
action "customers:read", "customers:write", "events:read", "events:write", "webhooks:read", "webhooks:write",
  "api_keys:read", "api_keys:write", "roles:read", "roles:write", "policies:read", "policies:write",
  "audit:read", "audit:write", "queue:read", "queue:write"
  appliesTo { principal: ApiKey, resource: Object };
"#;

/// Id of the built-in base permit; not a valid stored id (those are "pol_...").
const BASE_PERMIT_ID: &str = "settle_base_permit";
const BASE_PERMIT: &str = "permit(principal, action, resource);";
/// Id used when checking a text that has no stored id yet.
const DRAFT_ID: &str = "policy";

/// The parsed schema, built once. Parsing cannot fail for the literal above
/// (a test proves it), but if it ever did every check denies rather than panics.
static MODEL: LazyLock<Result<Validator, String>> = LazyLock::new(|| {
    Schema::from_cedarschema_str(SCHEMA)
        .map(|(schema, _warnings)| Validator::new(schema))
        .map_err(|e| format!("the built-in policy schema is broken: {e}"))
});

fn model() -> Result<&'static Validator, String> {
    MODEL.as_ref().map_err(Clone::clone)
}

/// Checks one policy's text: parse, then validate against SCHEMA (strict mode).
/// Only `forbid` policies are needed because a built-in base permit exists, but
/// `permit` text is allowed too.
pub fn validate(text: &str) -> Result<(), PolicyError> {
    compile(DRAFT_ID, text).map(|_| ())
}

/// [`validate`] on a thread of its own with [`limits::COMPILE_STACK`],
/// awaited without blocking the async runtime: what a request uses.
pub async fn validate_isolated(text: String) -> Result<(), PolicyError> {
    isolated(move || validate(&text)).await?
}

/// Runs `work` on a new thread with a stack of [`limits::COMPILE_STACK`].
/// The size is set here rather than inherited, so how deep a policy may be
/// does not depend on which thread (a runtime worker, a test's) asks; a
/// fresh thread per call is cheap next to a Cedar compile and only happens
/// on writes and reloads.
async fn isolated<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, PolicyError> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("settle-policy".into())
        .stack_size(limits::COMPILE_STACK)
        .spawn(move || {
            let _ = done.send(work());
        })
        .map_err(|e| PolicyError::Invalid(format!("cannot start the policy compiler thread: {e}")))?;
    result
        .await
        .map_err(|_| PolicyError::Invalid("the policy compiler thread stopped unexpectedly".into()))
}

/// Parses `text` as exactly one static policy named `id` and validates it,
/// after checking the structural limits (so Cedar never sees a text that
/// could exhaust a stack).
fn compile(id: &str, text: &str) -> Result<Policy, PolicyError> {
    limits::check(text)?;
    let validator = model().map_err(PolicyError::Invalid)?;
    let parsed = PolicySet::from_str(text).map_err(|e| PolicyError::Parse(describe(DetailedError::from(&e), text)))?;
    if parsed.num_of_templates() > 0 {
        return Err(PolicyError::Invalid(
            "templates (policies with ?principal or ?resource slots) are not supported".into(),
        ));
    }
    let policy = match parsed.num_of_policies() {
        1 => parsed.policies().next().map(|p| p.new_id(PolicyId::new(id))),
        _ => None,
    };
    let Some(policy) = policy else {
        return Err(PolicyError::Invalid(format!(
            "a policy text must hold exactly one policy, found {}",
            parsed.num_of_policies()
        )));
    };
    let mut single = PolicySet::new();
    single
        .add(policy.clone())
        .map_err(|e| PolicyError::Invalid(e.to_string()))?;
    let result = validator.validate(&single, ValidationMode::Strict);
    let errors: Vec<String> = result
        .validation_errors()
        .map(|e| {
            let msg = describe(DetailedError::from(e), text);
            // Cedar starts with "for policy `<id>`, "; callers add the id themselves.
            msg.strip_prefix(&format!("for policy `{id}`, "))
                .map(str::to_owned)
                .unwrap_or(msg)
        })
        .chain(
            // Cedar only warns about a policy that can never apply; stored, it
            // would be a limit that silently never limits, so refuse it.
            result
                .validation_warnings()
                .filter(|w| matches!(w, ValidationWarning::ImpossiblePolicy(_)))
                .map(|_| {
                    "this policy can never apply to any request (check its principal, action and resource)".into()
                }),
        )
        .collect();
    if errors.is_empty() {
        Ok(policy)
    } else {
        Err(PolicyError::Invalid(errors.join("; ")))
    }
}

/// Cedar's message plus where it points: line, column and the offending text.
fn describe(err: DetailedError, text: &str) -> String {
    let mut msg = err.message;
    if let Some(label) = err.source_locations.first() {
        let (start, end) = (label.loc.start, label.loc.end);
        let before = text.get(..start).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        msg.push_str(&format!(" (line {line}, column {column}"));
        let snippet = text.get(start..end).unwrap_or("").trim();
        if !snippet.is_empty() {
            let short: String = snippet.chars().take(60).collect();
            let more = if short.len() < snippet.len() { "..." } else { "" };
            msg.push_str(&format!(", at `{short}{more}`"));
        } else if start >= text.trim_end().len() {
            msg.push_str(", at the end of the text");
        }
        msg.push(')');
    }
    if let Some(help) = err.help {
        msg.push_str(&format!("; {help}"));
    }
    msg
}

/// A compiled set of stored policies plus the built-in base permit
/// `permit(principal, action, resource);`. Cheap to clone (one `Arc`), so
/// the service can swap in a new engine when policies change and hand copies
/// to concurrent requests.
#[derive(Clone)]
pub struct PolicyEngine {
    inner: Arc<Inner>,
}

struct Inner {
    policies: PolicySet,
    authorizer: Authorizer,
    /// Actions some stored policy names; `None` when one applies to every
    /// action. Any other action can only meet the base permit, so it is
    /// allowed without building a request (the common, hot case).
    scoped: Option<HashSet<String>>,
}

impl PolicyEngine {
    /// `policies` are (policy id text like "pol_01...", cedar text). Each must
    /// be a single policy (several in one text is `PolicyError::Invalid`). The
    /// given id becomes the Cedar policy id so denials can name it; errors are
    /// prefixed with it so the operator knows which stored policy is broken.
    pub fn new(policies: &[(String, String)]) -> Result<Self, PolicyError> {
        let mut set = base_set().map_err(PolicyError::Invalid)?;
        for (id, text) in policies {
            let prefix = |e: PolicyError| match e {
                PolicyError::Parse(m) => PolicyError::Parse(format!("policy {id}: {m}")),
                PolicyError::Invalid(m) => PolicyError::Invalid(format!("policy {id}: {m}")),
                PolicyError::Limit(l) => PolicyError::Invalid(format!("policy {id}: {l}")),
            };
            if id == BASE_PERMIT_ID {
                return Err(prefix(PolicyError::Invalid("this id is reserved".into())));
            }
            let policy = compile(id, text).map_err(prefix)?;
            set.add(policy)
                .map_err(|e| prefix(PolicyError::Invalid(e.to_string())))?;
        }
        Ok(Self::from_set(set))
    }

    /// [`PolicyEngine::new`] on a thread with [`limits::COMPILE_STACK`]
    /// (see [`validate_isolated`]): what the service uses to reload.
    pub async fn build(policies: Vec<(String, String)>) -> Result<Self, PolicyError> {
        isolated(move || Self::new(&policies)).await?
    }

    /// The base permit only: every request that reaches policy evaluation is allowed.
    pub fn empty() -> Self {
        // base_set cannot fail for the literal base permit; if it did, an empty
        // set makes Cedar deny everything (fail closed) instead of panicking.
        Self::from_set(base_set().unwrap_or_default())
    }

    fn from_set(policies: PolicySet) -> Self {
        let mut scoped = Some(HashSet::new());
        for policy in policies.policies().filter(|p| p.id().to_string() != BASE_PERMIT_ID) {
            match (policy.action_constraint(), scoped.as_mut()) {
                (cedar_policy::ActionConstraint::Any, _) => scoped = None,
                (cedar_policy::ActionConstraint::Eq(uid), Some(set)) => {
                    set.insert(uid.id().unescaped().to_owned());
                }
                (cedar_policy::ActionConstraint::In(uids), Some(set)) => {
                    set.extend(uids.iter().map(|u| u.id().unescaped().to_owned()));
                }
                (_, None) => {}
            }
        }
        Self {
            inner: Arc::new(Inner {
                policies,
                authorizer: Authorizer::new(),
                scoped,
            }),
        }
    }

    /// Allows or denies `action` (a Permission, e.g. refunds:write) for the
    /// principal on a resource with `attrs`. Any evaluation error denies, and
    /// the `Denied` message names the forbidding policy id(s) or the error.
    pub fn check(
        &self,
        principal: &PolicyPrincipal<'_>,
        action: Permission,
        attrs: &ResourceAttrs,
    ) -> Result<(), Denied> {
        if let Some(scoped) = &self.inner.scoped
            && !scoped.contains(&action.to_string())
        {
            return Ok(());
        }
        let schema = model().map_err(Denied)?.schema();
        let fail = |what: &str, e: &dyn std::fmt::Display| Denied(format!("policy check failed ({what}): {e}"));

        let principal_uid = uid("ApiKey", principal.key_id).map_err(|e| fail("principal", &e))?;
        let principal_entity = Entity::new(
            principal_uid.clone(),
            HashMap::from([
                ("role".to_owned(), string(Some(principal.role))),
                ("name".to_owned(), string(Some(principal.name))),
            ]),
            HashSet::new(),
        )
        .map_err(|e| fail("principal", &e))?;

        let (resource_type, resource_id, resource_attrs) = resource(action.resource, attrs);
        let resource_uid = uid(resource_type, resource_id).map_err(|e| fail("resource", &e))?;
        let resource_entity =
            Entity::new(resource_uid.clone(), resource_attrs, HashSet::new()).map_err(|e| fail("resource", &e))?;

        let action_uid = uid("Action", &action.to_string()).map_err(|e| fail("action", &e))?;
        let entities = Entities::from_entities([principal_entity, resource_entity], Some(schema))
            .map_err(|e| fail("entities", &e))?;
        let request = Request::new(principal_uid, action_uid, resource_uid, Context::empty(), Some(schema))
            .map_err(|e| fail("request", &e))?;

        let response = self
            .inner
            .authorizer
            .is_authorized(&request, &self.inner.policies, &entities);
        let mut errors: Vec<String> = response.diagnostics().errors().map(ToString::to_string).collect();
        if !errors.is_empty() {
            errors.sort();
            return Err(Denied(format!(
                "denied because policy evaluation failed: {}",
                errors.join("; ")
            )));
        }
        match response.decision() {
            Decision::Allow => Ok(()),
            Decision::Deny => {
                let mut ids: Vec<String> = response.diagnostics().reason().map(ToString::to_string).collect();
                ids.sort();
                Err(Denied(match ids.as_slice() {
                    [] => "denied: no policy permits this request".to_owned(),
                    [one] => format!("denied by policy {one}"),
                    many => format!("denied by policies {}", many.join(", ")),
                }))
            }
        }
    }
}

/// The set every engine starts from: just the base permit.
fn base_set() -> Result<PolicySet, String> {
    let base = Policy::parse(Some(PolicyId::new(BASE_PERMIT_ID)), BASE_PERMIT).map_err(|e| e.to_string())?;
    PolicySet::from_policies([base]).map_err(|e| e.to_string())
}

fn uid(type_name: &str, id: &str) -> Result<EntityUid, String> {
    let type_name = EntityTypeName::from_str(type_name).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(type_name, EntityId::new(id)))
}

fn string(value: Option<&str>) -> RestrictedExpression {
    RestrictedExpression::new_string(value.unwrap_or_default().to_owned())
}

/// The resource entity for a permission's resource kind: type name, entity id
/// and every attribute the schema requires for that type.
fn resource(kind: Resource, a: &ResourceAttrs) -> (&'static str, &str, HashMap<String, RestrictedExpression>) {
    let attr = |name: &str, value: RestrictedExpression| (name.to_owned(), value);
    let money = || {
        HashMap::from([
            attr("amount", RestrictedExpression::new_long(a.amount.unwrap_or(0))),
            attr("currency", string(a.currency.as_deref())),
            attr("source", string(a.source.as_deref())),
            attr("destination", string(a.destination.as_deref())),
            attr("payment", string(a.payment.as_deref())),
        ])
    };
    match kind {
        Resource::Payments => ("Payment", a.payment.as_deref().unwrap_or_default(), money()),
        Resource::Refunds => ("Refund", "", money()),
        Resource::Accounts => (
            "Account",
            a.account.as_deref().unwrap_or_default(),
            HashMap::from([
                attr("account", string(a.account.as_deref())),
                attr("currency", string(a.currency.as_deref())),
            ]),
        ),
        Resource::Customers
        | Resource::Events
        | Resource::Webhooks
        | Resource::ApiKeys
        | Resource::Roles
        | Resource::Policies
        | Resource::Audit
        | Resource::Queue => ("Object", "", HashMap::from([attr("id", string(a.id.as_deref()))])),
    }
}

#[cfg(test)]
mod tests;
