//! The REST routes of the operation registry: each operation of
//! [`settle_core::pipeline::registry`] at one method and path. The router
//! is built from this list and tests enumerate it against the operation
//! registry, so no operation lacks a route and no route lacks an operation
//! (and with it, a permission).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::handler::Handler;
use axum::http::Method;
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, patch, post};
use settle_core::Settle;
use settle_core::ops;
use settle_core::ops::accounts::ListAccounts;
use settle_core::ops::customers::ListCustomers;
use settle_core::ops::events::ListEvents;
use settle_core::ops::payments::ListPayments;
use settle_core::ops::refunds::ListRefunds;
use settle_core::ops::webhooks::ListWebhookDeliveries;
use settle_core::pipeline::OperationSpec;
use settle_core::pipeline::registry as op;
use settle_domain::rbac::Permission;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

use crate::request::RouteName;
use crate::rest::{accounts, api_keys, customers, events, payments, policies, queue, refunds, roles, webhooks};

/// One operation at one REST method and path, with what the API document
/// says of its wire format.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub spec: &'static OperationSpec,
    /// The operation's name (the spec's, repeated for tests and logs).
    pub operation: &'static str,
    pub permission: Permission,
    /// The schema of the JSON body, from the operation's input type.
    pub body: Option<fn() -> RefOr<Schema>>,
    /// The named schemas that body refers to.
    pub body_schemas: Option<NamedSchemas>,
    pub answer: Answer,
    /// Whether the answer's relations can be expanded with `expand[]`.
    pub expands: bool,
    handler: MethodRouter<Settle>,
}

/// Adds the named schemas a type refers to (utoipa's `ToSchema::schemas`).
pub type NamedSchemas = fn(&mut Vec<(String, RefOr<Schema>)>);

/// What a route answers with on success, by schema name (see
/// [`crate::openapi::schemas::components`]).
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Object(&'static str),
    /// A page of these, and the equality filters the list takes.
    List(&'static str, &'static [&'static str]),
    /// A text document.
    Text(&'static str),
}

impl Route {
    fn body<T: ToSchema>(self) -> Self {
        Self {
            body: Some(<T as PartialSchema>::schema),
            body_schemas: Some(<T as ToSchema>::schemas),
            ..self
        }
    }

    fn returns(self, object: &'static str) -> Self {
        Self {
            answer: Answer::Object(object),
            ..self
        }
    }

    fn lists(self, item: &'static str, filters: &'static [&'static str]) -> Self {
        Self {
            answer: Answer::List(item, filters),
            ..self
        }
    }

    fn expands(self) -> Self {
        Self { expands: true, ..self }
    }

    fn returns_text(self, schema: &'static str) -> Self {
        Self {
            answer: Answer::Text(schema),
            ..self
        }
    }
}

fn route<H, T>(method: Method, path: &'static str, spec: &'static OperationSpec, handler: H) -> Route
where
    H: Handler<T, Settle>,
    T: 'static,
{
    let handler = match method.as_str() {
        "POST" => post(handler),
        "PATCH" => patch(handler),
        "DELETE" => delete(handler),
        _ => get(handler),
    };
    Route {
        method,
        path,
        spec,
        operation: spec.name,
        permission: spec.permission,
        body: None,
        body_schemas: None,
        answer: Answer::Object("Deleted"),
        expands: false,
        handler,
    }
}

/// Every `/v1` route Settle serves.
pub fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::POST, "/v1/accounts", &op::CREATE_ACCOUNT, accounts::create)
            .body::<ops::accounts::CreateAccount>()
            .returns("Account"),
        route(M::GET, "/v1/accounts", &op::LIST_ACCOUNTS, accounts::list)
            .lists("Account", ListAccounts::FILTERS)
            .expands(),
        route(M::GET, "/v1/accounts/{id}", &op::RETRIEVE_ACCOUNT, accounts::retrieve)
            .returns("Account")
            .expands(),
        route(M::PATCH, "/v1/accounts/{id}", &op::UPDATE_ACCOUNT, accounts::update)
            .body::<ops::accounts::UpdateAccount>()
            .returns("Account"),
        route(
            M::GET,
            "/v1/accounts/{id}/entries",
            &op::LIST_LEDGER_ENTRIES,
            accounts::entries,
        )
        .lists("LedgerEntry", &[])
        .expands(),
        route(M::POST, "/v1/customers", &op::CREATE_CUSTOMER, customers::create)
            .body::<ops::customers::CreateCustomer>()
            .returns("Customer"),
        route(M::GET, "/v1/customers", &op::LIST_CUSTOMERS, customers::list).lists("Customer", ListCustomers::FILTERS),
        route(
            M::GET,
            "/v1/customers/{id}",
            &op::RETRIEVE_CUSTOMER,
            customers::retrieve,
        )
        .returns("Customer"),
        route(M::PATCH, "/v1/customers/{id}", &op::UPDATE_CUSTOMER, customers::update)
            .body::<ops::customers::UpdateCustomer>()
            .returns("Customer"),
        route(M::DELETE, "/v1/customers/{id}", &op::DELETE_CUSTOMER, customers::remove).returns("Deleted"),
        route(M::POST, "/v1/payments", &op::CREATE_PAYMENT, payments::create)
            .body::<ops::payments::CreatePayment>()
            .returns("Payment"),
        route(M::GET, "/v1/payments", &op::LIST_PAYMENTS, payments::list)
            .lists("Payment", ListPayments::FILTERS)
            .expands(),
        route(M::GET, "/v1/payments/{id}", &op::RETRIEVE_PAYMENT, payments::retrieve)
            .returns("Payment")
            .expands(),
        route(
            M::POST,
            "/v1/payments/{id}/capture",
            &op::CAPTURE_PAYMENT,
            payments::capture,
        )
        .body::<ops::payments::CapturePayment>()
        .returns("Payment"),
        route(
            M::POST,
            "/v1/payments/{id}/cancel",
            &op::CANCEL_PAYMENT,
            payments::cancel,
        )
        .body::<ops::payments::CancelPayment>()
        .returns("Payment"),
        route(M::POST, "/v1/refunds", &op::CREATE_REFUND, refunds::create)
            .body::<ops::refunds::CreateRefund>()
            .returns("Refund"),
        route(M::GET, "/v1/refunds", &op::LIST_REFUNDS, refunds::list)
            .lists("Refund", ListRefunds::FILTERS)
            .expands(),
        route(M::GET, "/v1/refunds/{id}", &op::RETRIEVE_REFUND, refunds::retrieve)
            .returns("Refund")
            .expands(),
        route(M::GET, "/v1/events", &op::LIST_EVENTS, events::list).lists("Event", ListEvents::FILTERS),
        route(M::GET, "/v1/events/{id}", &op::RETRIEVE_EVENT, events::retrieve).returns("Event"),
        route(
            M::POST,
            "/v1/webhook_endpoints",
            &op::CREATE_WEBHOOK_ENDPOINT,
            webhooks::create,
        )
        .body::<ops::webhooks::CreateWebhookEndpoint>()
        .returns("WebhookEndpoint"),
        route(
            M::GET,
            "/v1/webhook_endpoints",
            &op::LIST_WEBHOOK_ENDPOINTS,
            webhooks::list,
        )
        .lists("WebhookEndpoint", &[]),
        route(
            M::GET,
            "/v1/webhook_endpoints/{id}",
            &op::RETRIEVE_WEBHOOK_ENDPOINT,
            webhooks::retrieve,
        )
        .returns("WebhookEndpoint"),
        route(
            M::PATCH,
            "/v1/webhook_endpoints/{id}",
            &op::UPDATE_WEBHOOK_ENDPOINT,
            webhooks::update,
        )
        .body::<ops::webhooks::UpdateWebhookEndpoint>()
        .returns("WebhookEndpoint"),
        route(
            M::DELETE,
            "/v1/webhook_endpoints/{id}",
            &op::DELETE_WEBHOOK_ENDPOINT,
            webhooks::remove,
        )
        .returns("Deleted"),
        route(
            M::POST,
            "/v1/webhook_endpoints/{id}/rotate_secret",
            &op::ROTATE_WEBHOOK_SECRET,
            webhooks::rotate_secret,
        )
        .returns("WebhookEndpoint"),
        route(
            M::POST,
            "/v1/webhook_endpoints/{id}/replay",
            &op::REPLAY_WEBHOOKS,
            webhooks::replay,
        )
        .body::<ops::webhooks::ReplayWebhooks>()
        .returns("WebhookReplay"),
        route(
            M::POST,
            "/v1/webhook_endpoints/{id}/test",
            &op::SEND_WEBHOOK_TEST,
            webhooks::send_test,
        )
        .returns("WebhookDelivery"),
        route(
            M::GET,
            "/v1/webhook_endpoints/{id}/replay",
            &op::LIST_WEBHOOK_REPLAYS,
            webhooks::replays,
        )
        .lists("WebhookReplay", &[]),
        route(
            M::GET,
            "/v1/webhook_endpoints/{id}/deliveries",
            &op::LIST_WEBHOOK_DELIVERIES,
            webhooks::deliveries,
        )
        .lists("WebhookDelivery", ListWebhookDeliveries::FILTERS),
        route(M::GET, "/v1/webhook_stats", &op::WEBHOOK_STATS, webhooks::stats).returns("WebhookStats"),
        route(
            M::GET,
            "/v1/webhook_deliveries/{id}",
            &op::RETRIEVE_WEBHOOK_DELIVERY,
            webhooks::delivery,
        )
        .returns("WebhookDelivery"),
        route(
            M::GET,
            "/v1/webhook_deliveries/{id}/attempts",
            &op::LIST_WEBHOOK_ATTEMPTS,
            webhooks::attempts,
        )
        .lists("WebhookAttempt", &[]),
        route(
            M::POST,
            "/v1/webhook_deliveries/{id}/retry",
            &op::RETRY_WEBHOOK_DELIVERY,
            webhooks::retry,
        )
        .returns("WebhookDelivery"),
        route(M::POST, "/v1/api_keys", &op::CREATE_API_KEY, api_keys::create)
            .body::<ops::api_keys::CreateApiKey>()
            .returns("ApiKey"),
        route(M::GET, "/v1/api_keys", &op::LIST_API_KEYS, api_keys::list).lists("ApiKey", &[]),
        route(M::GET, "/v1/api_keys/{id}", &op::RETRIEVE_API_KEY, api_keys::retrieve).returns("ApiKey"),
        route(M::DELETE, "/v1/api_keys/{id}", &op::REVOKE_API_KEY, api_keys::revoke).returns("ApiKey"),
        route(M::POST, "/v1/roles", &op::CREATE_ROLE, roles::create)
            .body::<ops::roles::CreateRole>()
            .returns("Role"),
        route(M::GET, "/v1/roles", &op::LIST_ROLES, roles::list).lists("Role", &[]),
        route(M::GET, "/v1/roles/{id}", &op::RETRIEVE_ROLE, roles::retrieve).returns("Role"),
        route(M::PATCH, "/v1/roles/{id}", &op::UPDATE_ROLE, roles::update)
            .body::<ops::roles::UpdateRole>()
            .returns("Role"),
        route(M::DELETE, "/v1/roles/{id}", &op::DELETE_ROLE, roles::remove).returns("Deleted"),
        route(M::POST, "/v1/policies", &op::CREATE_POLICY, policies::create)
            .body::<ops::policies::CreatePolicy>()
            .returns("Policy"),
        route(M::GET, "/v1/policies", &op::LIST_POLICIES, policies::list).lists("Policy", &[]),
        route(M::GET, "/v1/policies/schema", &op::POLICY_SCHEMA, policies::schema).returns_text("PolicySchema"),
        route(M::GET, "/v1/policies/{id}", &op::RETRIEVE_POLICY, policies::retrieve).returns("Policy"),
        route(M::PATCH, "/v1/policies/{id}", &op::UPDATE_POLICY, policies::update)
            .body::<ops::policies::UpdatePolicy>()
            .returns("Policy"),
        route(M::DELETE, "/v1/policies/{id}", &op::DELETE_POLICY, policies::remove).returns("Deleted"),
        route(
            M::GET,
            "/v1/audit_events",
            &op::LIST_AUDIT_EVENTS,
            policies::audit_events,
        )
        .lists("AuditEvent", &[]),
        route(M::GET, "/v1/queue", &op::QUEUE_SUMMARY, queue::summary).returns("Queue"),
    ]
}

/// The `/v1` router. Every rule a request obeys (authentication,
/// permission, policies, idempotency, deadline, audit) is applied by the
/// operation pipeline each handler calls; the router only names the route
/// for the log line.
pub fn build() -> Router<Settle> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<Settle>> = BTreeMap::new();
    for r in routes() {
        let named = r
            .handler
            .route_layer(axum::middleware::map_response_with_state(r.path, name_route));
        let merged = match by_path.remove(r.path) {
            Some(existing) => existing.merge(named),
            None => named,
        };
        by_path.insert(r.path, merged);
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| router.route(path, methods))
}

async fn name_route(State(path): State<&'static str>, mut response: Response) -> Response {
    response.extensions_mut().insert(RouteName(path));
    response
}
