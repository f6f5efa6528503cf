//! The one list of routes: method, path, operation name and the permission
//! each needs. The router is built from it, the guard enforces it, and tests
//! enumerate it; a route cannot exist without a permission.

use std::collections::BTreeMap;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post};
use settle_core::Settle;
use settle_domain::rbac::{Action, Permission, Resource};

use crate::guard::{GuardState, guard};
use crate::idempotency::idempotency;
use crate::rest::{accounts, api_keys, customers, events, payments, policies, queue, refunds, roles, webhooks};

/// One REST operation.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub operation: &'static str,
    pub permission: Permission,
    handler: MethodRouter<Settle>,
}

fn route<H, T>(method: Method, path: &'static str, operation: &'static str, permission: Permission, handler: H) -> Route
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
        operation,
        permission,
        handler,
    }
}

const fn read(resource: Resource) -> Permission {
    Permission::new(resource, Action::Read)
}

const fn write(resource: Resource) -> Permission {
    Permission::new(resource, Action::Write)
}

/// Every `/v1` route Settle serves.
pub fn routes() -> Vec<Route> {
    use Method as M;
    use Resource::*;
    vec![
        route(
            M::POST,
            "/v1/accounts",
            "create_account",
            write(Accounts),
            accounts::create,
        ),
        route(M::GET, "/v1/accounts", "list_accounts", read(Accounts), accounts::list),
        route(
            M::GET,
            "/v1/accounts/{id}",
            "retrieve_account",
            read(Accounts),
            accounts::retrieve,
        ),
        route(
            M::PATCH,
            "/v1/accounts/{id}",
            "update_account",
            write(Accounts),
            accounts::update,
        ),
        route(
            M::GET,
            "/v1/accounts/{id}/entries",
            "list_ledger_entries",
            read(Accounts),
            accounts::entries,
        ),
        route(
            M::POST,
            "/v1/customers",
            "create_customer",
            write(Customers),
            customers::create,
        ),
        route(
            M::GET,
            "/v1/customers",
            "list_customers",
            read(Customers),
            customers::list,
        ),
        route(
            M::GET,
            "/v1/customers/{id}",
            "retrieve_customer",
            read(Customers),
            customers::retrieve,
        ),
        route(
            M::PATCH,
            "/v1/customers/{id}",
            "update_customer",
            write(Customers),
            customers::update,
        ),
        route(
            M::DELETE,
            "/v1/customers/{id}",
            "delete_customer",
            write(Customers),
            customers::remove,
        ),
        route(
            M::POST,
            "/v1/payments",
            "create_payment",
            write(Payments),
            payments::create,
        ),
        route(M::GET, "/v1/payments", "list_payments", read(Payments), payments::list),
        route(
            M::GET,
            "/v1/payments/{id}",
            "retrieve_payment",
            read(Payments),
            payments::retrieve,
        ),
        route(
            M::POST,
            "/v1/payments/{id}/capture",
            "capture_payment",
            write(Payments),
            payments::capture,
        ),
        route(
            M::POST,
            "/v1/payments/{id}/cancel",
            "cancel_payment",
            write(Payments),
            payments::cancel,
        ),
        route(M::POST, "/v1/refunds", "create_refund", write(Refunds), refunds::create),
        route(M::GET, "/v1/refunds", "list_refunds", read(Refunds), refunds::list),
        route(
            M::GET,
            "/v1/refunds/{id}",
            "retrieve_refund",
            read(Refunds),
            refunds::retrieve,
        ),
        route(M::GET, "/v1/events", "list_events", read(Events), events::list),
        route(
            M::GET,
            "/v1/events/{id}",
            "retrieve_event",
            read(Events),
            events::retrieve,
        ),
        route(
            M::POST,
            "/v1/webhook_endpoints",
            "create_webhook_endpoint",
            write(Webhooks),
            webhooks::create,
        ),
        route(
            M::GET,
            "/v1/webhook_endpoints",
            "list_webhook_endpoints",
            read(Webhooks),
            webhooks::list,
        ),
        route(
            M::GET,
            "/v1/webhook_endpoints/{id}",
            "retrieve_webhook_endpoint",
            read(Webhooks),
            webhooks::retrieve,
        ),
        route(
            M::PATCH,
            "/v1/webhook_endpoints/{id}",
            "update_webhook_endpoint",
            write(Webhooks),
            webhooks::update,
        ),
        route(
            M::DELETE,
            "/v1/webhook_endpoints/{id}",
            "delete_webhook_endpoint",
            write(Webhooks),
            webhooks::remove,
        ),
        route(
            M::POST,
            "/v1/webhook_endpoints/{id}/rotate_secret",
            "rotate_webhook_secret",
            write(Webhooks),
            webhooks::rotate_secret,
        ),
        route(
            M::POST,
            "/v1/webhook_endpoints/{id}/replay",
            "replay_webhooks",
            write(Webhooks),
            webhooks::replay,
        ),
        route(
            M::GET,
            "/v1/webhook_endpoints/{id}/replay",
            "list_webhook_replays",
            read(Webhooks),
            webhooks::replays,
        ),
        route(
            M::GET,
            "/v1/webhook_endpoints/{id}/deliveries",
            "list_webhook_deliveries",
            read(Webhooks),
            webhooks::deliveries,
        ),
        route(
            M::GET,
            "/v1/webhook_deliveries/{id}",
            "retrieve_webhook_delivery",
            read(Webhooks),
            webhooks::delivery,
        ),
        route(
            M::GET,
            "/v1/webhook_deliveries/{id}/attempts",
            "list_webhook_attempts",
            read(Webhooks),
            webhooks::attempts,
        ),
        route(
            M::POST,
            "/v1/webhook_deliveries/{id}/retry",
            "retry_webhook_delivery",
            write(Webhooks),
            webhooks::retry,
        ),
        route(
            M::POST,
            "/v1/api_keys",
            "create_api_key",
            write(ApiKeys),
            api_keys::create,
        ),
        route(M::GET, "/v1/api_keys", "list_api_keys", read(ApiKeys), api_keys::list),
        route(
            M::GET,
            "/v1/api_keys/{id}",
            "retrieve_api_key",
            read(ApiKeys),
            api_keys::retrieve,
        ),
        route(
            M::DELETE,
            "/v1/api_keys/{id}",
            "revoke_api_key",
            write(ApiKeys),
            api_keys::revoke,
        ),
        route(M::POST, "/v1/roles", "create_role", write(Roles), roles::create),
        route(M::GET, "/v1/roles", "list_roles", read(Roles), roles::list),
        route(M::GET, "/v1/roles/{id}", "retrieve_role", read(Roles), roles::retrieve),
        route(M::PATCH, "/v1/roles/{id}", "update_role", write(Roles), roles::update),
        route(M::DELETE, "/v1/roles/{id}", "delete_role", write(Roles), roles::remove),
        route(
            M::POST,
            "/v1/policies",
            "create_policy",
            write(Policies),
            policies::create,
        ),
        route(M::GET, "/v1/policies", "list_policies", read(Policies), policies::list),
        route(
            M::GET,
            "/v1/policies/schema",
            "policy_schema",
            read(Policies),
            policies::schema,
        ),
        route(
            M::GET,
            "/v1/policies/{id}",
            "retrieve_policy",
            read(Policies),
            policies::retrieve,
        ),
        route(
            M::PATCH,
            "/v1/policies/{id}",
            "update_policy",
            write(Policies),
            policies::update,
        ),
        route(
            M::DELETE,
            "/v1/policies/{id}",
            "delete_policy",
            write(Policies),
            policies::remove,
        ),
        route(
            M::GET,
            "/v1/audit_events",
            "list_audit_events",
            read(Audit),
            policies::audit_events,
        ),
        route(M::GET, "/v1/queue", "queue_summary", read(Queue), queue::summary),
    ]
}

/// The `/v1` router, each operation behind the guard of its permission.
pub fn build(settle: Settle) -> Router<Settle> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<Settle>> = BTreeMap::new();
    for r in routes() {
        let state = GuardState {
            settle: settle.clone(),
            permission: r.permission,
            path: r.path,
            operation: r.operation,
            write: r.method != Method::GET,
        };
        let handler = if r.method == Method::GET {
            r.handler
        } else {
            r.handler
                .route_layer(axum::middleware::from_fn_with_state(settle.clone(), idempotency))
        };
        // Layers added last run first: the guard authenticates before the
        // idempotency layer claims a key in that key's scope.
        let guarded = handler.route_layer(axum::middleware::from_fn_with_state(state, guard));
        let merged = match by_path.remove(r.path) {
            Some(existing) => existing.merge(guarded),
            None => guarded,
        };
        by_path.insert(r.path, merged);
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| router.route(path, methods))
}
