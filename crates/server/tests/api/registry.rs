//! The route registry is the operation registry at REST paths, and every
//! route in it is guarded: well-formed entries, one route per operation, a
//! permission matching each method and resource, and, over HTTP, 401
//! without a key and 403 naming the permission for a role that lacks it.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::HashSet;

use reqwest::Method;
use serde_json::Value;
use settle_api::registry::{Route, routes};
use settle_domain::rbac::{Action, BUILTIN_ROLES, builtin_permissions};

use crate::support::{Resp, TestApp, both};

/// A syntactically valid id that names nothing, for the prefix of the
/// collection a path's `{id}` belongs to.
fn unknown_id(path: &str) -> String {
    let collection = path.trim_start_matches("/v1/").split('/').next().unwrap_or_default();
    let prefix = match collection {
        "accounts" => "acct",
        "customers" => "cus",
        "payments" => "pay",
        "refunds" => "re",
        "events" => "evt",
        "webhook_endpoints" => "we",
        "webhook_deliveries" => "wd",
        "api_keys" => "key",
        "roles" => "role",
        "policies" => "pol",
        "audit_events" => "au",
        other => panic!("no id prefix known for `{other}` ({path}); add it to this test"),
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let uuid = settle_domain::ids::uuid_v7(now_ms, rand::random::<u128>());
    format!("{prefix}_{}", settle_domain::ids::encode_base32(uuid.as_u128()))
}

/// The route's path with `{id}` replaced by an unknown id of the right kind.
fn concrete(route: &Route) -> String {
    if route.path.contains("{id}") {
        route.path.replace("{id}", &unknown_id(route.path))
    } else {
        route.path.to_owned()
    }
}

fn method(route: &Route) -> Method {
    Method::from_bytes(route.method.as_str().as_bytes()).unwrap()
}

fn is_write(route: &Route) -> bool {
    matches!(route.method.as_str(), "POST" | "PATCH" | "DELETE" | "PUT")
}

/// The resource whose permission guards a `/v1` collection.
fn resource_of(path: &str) -> &str {
    let collection = path.trim_start_matches("/v1/").split('/').next().unwrap_or_default();
    match collection {
        "webhook_endpoints" | "webhook_deliveries" | "webhook_stats" => "webhooks",
        "audit_events" => "audit",
        other => other,
    }
}

fn describe(route: &Route) -> String {
    format!("{} {} ({})", route.method, route.path, route.operation)
}

#[test]
fn every_route_is_under_v1() {
    let all = routes();
    assert!(!all.is_empty());
    for r in &all {
        assert!(r.path.starts_with("/v1/"), "{} is not under /v1", describe(r));
        assert!(!r.path.ends_with('/'), "{} has a trailing slash", describe(r));
    }
}

/// The REST routes are the operation registry's, one each: no operation
/// without a route, no route outside the pipeline's registry.
#[test]
fn every_operation_has_exactly_one_route() {
    let ops: Vec<&str> = settle_core::pipeline::registry::ALL.iter().map(|o| o.name).collect();
    let mut routed: Vec<&str> = routes().iter().map(|r| r.operation).collect();
    routed.sort_unstable();
    let mut registered = ops.clone();
    registered.sort_unstable();
    assert_eq!(routed, registered);
    for r in routes() {
        let spec = settle_core::pipeline::registry::by_name(r.operation).unwrap();
        assert!(std::ptr::eq(spec, r.spec), "{} routes to another spec", describe(&r));
        assert_eq!(spec.permission, r.permission, "{}", describe(&r));
        assert!(!spec.summary.is_empty(), "{} has no summary", describe(&r));
    }
}

#[test]
fn methods_and_paths_are_unique() {
    let mut seen = HashSet::new();
    for r in routes() {
        assert!(
            seen.insert((r.method.clone(), r.path)),
            "{} is registered twice",
            describe(&r)
        );
    }
}

#[test]
fn operation_names_are_unique() {
    let mut seen = HashSet::new();
    for r in routes() {
        assert!(!r.operation.is_empty(), "{} has no operation name", describe(&r));
        assert!(
            r.operation.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{} is not a snake_case name",
            describe(&r)
        );
        assert!(seen.insert(r.operation), "operation `{}` is used twice", r.operation);
    }
}

#[test]
fn writes_need_write_and_reads_need_read() {
    for r in routes() {
        let want = if is_write(&r) { Action::Write } else { Action::Read };
        assert!(
            matches!(r.method.as_str(), "GET" | "POST" | "PATCH" | "DELETE"),
            "{} uses an unexpected method",
            describe(&r)
        );
        assert_eq!(r.permission.action, want, "{} needs {}", describe(&r), r.permission);
        assert_eq!(
            r.permission.resource.as_str(),
            resource_of(r.path),
            "{} is guarded by another resource's permission ({})",
            describe(&r),
            r.permission
        );
    }
}

#[test]
fn the_spec_routes_are_registered() {
    let all: HashSet<(String, &str)> = routes().iter().map(|r| (r.method.to_string(), r.path)).collect();
    for (m, p) in [
        ("POST", "/v1/accounts"),
        ("GET", "/v1/accounts"),
        ("GET", "/v1/accounts/{id}"),
        ("PATCH", "/v1/accounts/{id}"),
        ("GET", "/v1/accounts/{id}/entries"),
        ("POST", "/v1/customers"),
        ("GET", "/v1/customers/{id}"),
        ("DELETE", "/v1/customers/{id}"),
        ("POST", "/v1/payments"),
        ("GET", "/v1/payments"),
        ("POST", "/v1/payments/{id}/capture"),
        ("POST", "/v1/payments/{id}/cancel"),
        ("POST", "/v1/refunds"),
        ("GET", "/v1/refunds/{id}"),
    ] {
        assert!(all.contains(&(m.to_owned(), p)), "{m} {p} is missing from the registry");
    }
}

fn assert_not_denied(r: &Resp, route: &Route, role: &str) {
    assert!(
        !matches!(r.status.as_u16(), 401 | 403),
        "{role} was refused {}: {} {}",
        describe(route),
        r.status,
        r.body
    );
    assert!(
        r.status.as_u16() < 500,
        "{role} on {} got {} {}",
        describe(route),
        r.status,
        r.body
    );
}

both!(every_route_needs_a_key, every_route_needs_a_key_case);
async fn every_route_needs_a_key_case(app: &TestApp) {
    for route in routes() {
        let path = concrete(&route);
        let r = app.call(method(&route), &path, None, None).await;
        r.assert_error(401, "authentication_error", "api_key_missing");
        let r = app.call(method(&route), &path, Some("sk_not_a_key"), None).await;
        r.assert_error(401, "authentication_error", "api_key_invalid");
    }
}

both!(
    roles_are_enforced_on_every_route,
    roles_are_enforced_on_every_route_case
);
async fn roles_are_enforced_on_every_route_case(app: &TestApp) {
    let viewer = builtin_permissions("viewer").unwrap();
    assert!(
        routes()
            .iter()
            .filter(|r| is_write(r))
            .all(|r| !viewer.contains(&r.permission)),
        "viewer must not write"
    );
    for role in BUILTIN_ROLES {
        let key = app.key(role).await;
        let allowed = builtin_permissions(role).unwrap();
        for route in routes() {
            let path = concrete(&route);
            let r = app.call(method(&route), &path, Some(&key), None).await;
            if allowed.contains(&route.permission) {
                assert_not_denied(&r, &route, role);
            } else {
                r.assert_error(403, "permission_error", "permission_denied");
                let message = r.body["error"]["message"].as_str().unwrap_or_default();
                let permission = route.permission.to_string();
                assert!(
                    message.contains(&permission),
                    "{role} on {}: `{message}` must name {permission}",
                    describe(&route)
                );
            }
        }
    }
}

both!(viewer_is_denied_every_write, viewer_is_denied_every_write_case);
async fn viewer_is_denied_every_write_case(app: &TestApp) {
    let key = app.key("viewer").await;
    let writes: Vec<Route> = routes().into_iter().filter(is_write).collect();
    assert!(!writes.is_empty());
    for route in writes {
        let path = concrete(&route);
        let r = app
            .call(method(&route), &path, Some(&key), Some(serde_json::json!({})))
            .await;
        r.assert_error(403, "permission_error", "permission_denied");
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&route.permission.to_string()),
            "{}: `{message}`",
            describe(&route)
        );
    }
    // Nothing was written on the way.
    for collection in ["/v1/accounts", "/v1/customers", "/v1/payments", "/v1/refunds"] {
        let r = app.get(collection).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["data"], Value::Array(vec![]), "{collection}");
    }
}

both!(reads_of_unknown_ids_are_404, reads_of_unknown_ids_are_404_case);
async fn reads_of_unknown_ids_are_404_case(app: &TestApp) {
    for route in routes().into_iter().filter(|r| !is_write(r)) {
        let r = app
            .call(method(&route), &concrete(&route), Some(&app.admin_key), None)
            .await;
        if route.path.contains("{id}") {
            r.assert_error(404, "invalid_request_error", "resource_missing");
        } else if route.operation == "policy_schema" {
            assert_eq!(r.status, 200);
            assert!(
                r.body.as_str().is_some_and(|t| t.contains("entity ApiKey")),
                "the schema is published"
            );
        } else if route.operation == "queue_summary" {
            assert_eq!((r.status.as_u16(), r.body["object"].as_str()), (200, Some("queue")));
        } else if route.operation == "webhook_stats" {
            assert_eq!(
                (r.status.as_u16(), r.body["object"].as_str()),
                (200, Some("webhook_stats"))
            );
        } else {
            assert_eq!(r.status, 200, "{}: {}", describe(&route), r.body);
            assert_eq!(r.body["object"], "list", "{}: {}", describe(&route), r.body);
        }
    }
}

both!(unknown_paths_and_probes, unknown_paths_and_probes_case);
async fn unknown_paths_and_probes_case(app: &TestApp) {
    for path in ["/v1/nothing_here", "/v2/accounts", "/", "/v1/accounts/acct_x/nothing"] {
        let r = app.get(path).await;
        r.assert_error(404, "invalid_request_error", "resource_missing");
        let r = app.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, 404, "{path} without a key: {}", r.body);
    }
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "ok");
    assert!(r.headers.contains_key("request-id"));
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "ready");
    assert_eq!(r.body["database"], app.store().backend());
}
