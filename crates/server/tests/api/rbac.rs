//! Access control from the outside: a route × role matrix over every
//! registered route (built-in roles and a custom one), no privilege
//! escalation, revocation (here at once, elsewhere within the cache TTL),
//! secrets never shown twice nor stored in clear, roles' rules, attribute
//! policies (the exact limits), and the audit log.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use settle::app::Application;
use settle::config::Config;
use settle_api::registry::routes;
use settle_core::clock::SystemClock;
use settle_domain::rbac::Permission;
use sqlx::Row;

use crate::support::{TestApp, both};

const UNKNOWN: &str = "01M8FQ6ZTWESP8TXJ5FPWECSQ1";

fn concrete(path: &str) -> String {
    let prefix = match path.split('/').nth(2) {
        Some("accounts") => "acct",
        Some("customers") => "cus",
        Some("payments") => "pay",
        Some("refunds") => "re",
        Some("api_keys") => "key",
        Some("roles") => "role",
        Some("policies") => "pol",
        _ => "x",
    };
    path.replace("{id}", &format!("{prefix}_{UNKNOWN}"))
}

async fn create_role(app: &TestApp, name: &str, permissions: &[&str]) -> Value {
    let r = app
        .post("/v1/roles", json!({"name": name, "permissions": permissions}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn create_key(app: &TestApp, secret: &str, role: &str) -> (StatusCode, Value) {
    let r = app
        .call(
            Method::POST,
            "/v1/api_keys",
            Some(secret),
            Some(json!({"name": format!("{role} key"), "role": role})),
        )
        .await;
    (r.status, r.body)
}

both!(route_role_matrix, route_role_matrix_case);
async fn route_role_matrix_case(app: &TestApp) {
    create_role(
        app,
        "support",
        &["payments:read", "refunds:read", "refunds:write", "customers:read"],
    )
    .await;
    let mut keys = Vec::new();
    for role in ["admin", "developer", "viewer", "support"] {
        let (status, body) = create_key(app, &app.admin_key, role).await;
        assert_eq!(status, 200, "{body}");
        let permissions: Vec<Permission> = app.get("/v1/roles?limit=100").await.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == role)
            .unwrap()["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| Permission::parse(p.as_str().unwrap()).unwrap())
            .collect();
        keys.push((role, body["secret"].as_str().unwrap().to_owned(), permissions));
    }
    let mut checked = 0;
    for route in routes() {
        for (role, secret, permissions) in &keys {
            let r = app
                .call(
                    route.method.clone(),
                    &concrete(route.path),
                    Some(secret),
                    Some(json!({})),
                )
                .await;
            let allowed = permissions.contains(&route.permission);
            if allowed {
                assert!(
                    r.status != 401 && r.status != 403 && !r.status.is_server_error(),
                    "{role} must reach {} {}: {} {}",
                    route.method,
                    route.path,
                    r.status,
                    r.body
                );
            } else {
                r.assert_error(403, "permission_error", "permission_denied");
                let message = r.body["error"]["message"].as_str().unwrap();
                assert!(message.contains(&route.permission.to_string()), "{message}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, routes().len() * 4);
}

both!(no_privilege_escalation, no_privilege_escalation_case);
async fn no_privilege_escalation_case(app: &TestApp) {
    create_role(app, "keymaster", &["api_keys:read", "api_keys:write"]).await;
    let (_, body) = create_key(app, &app.admin_key, "keymaster").await;
    let keymaster = body["secret"].as_str().unwrap().to_owned();
    for role in ["admin", "developer", "viewer"] {
        let (status, body) = create_key(app, &keymaster, role).await;
        assert_eq!(status, 403, "keymaster granted {role}: {body}");
        assert_eq!(body["error"]["code"], "permission_denied");
    }
    let (status, _) = create_key(app, &keymaster, "keymaster").await;
    assert_eq!(status, 200, "a key may grant a role it covers");

    let viewer = app.key("viewer").await;
    let (status, body) = create_key(app, &viewer, "admin").await;
    assert_eq!(status, 403, "{body}");
    let developer = app.key("developer").await;
    let role_id = create_role(app, "editable", &["accounts:read"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/roles/{role_id}"),
            Some(&developer),
            Some(json!({"permissions": ["accounts:write"]})),
        )
        .await;
    r.assert_error(403, "permission_error", "permission_denied");
    // Even an admin-made role cannot be widened by a key that lacks the permission.
    create_role(app, "rolesmith", &["roles:read", "roles:write"]).await;
    let (_, body) = create_key(app, &app.admin_key, "rolesmith").await;
    let rolesmith = body["secret"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/roles/{role_id}"),
            Some(&rolesmith),
            Some(json!({"permissions": ["accounts:write"]})),
        )
        .await;
    r.assert_error(403, "permission_error", "permission_denied");
    let r = app
        .call(
            Method::POST,
            "/v1/roles",
            Some(&rolesmith),
            Some(json!({"name": "god", "permissions": ["audit:read"]})),
        )
        .await;
    r.assert_error(403, "permission_error", "permission_denied");
}

both!(revocation_and_secrets, revocation_and_secrets_case);
async fn revocation_and_secrets_case(app: &TestApp) {
    let (status, created) = create_key(app, &app.admin_key, "developer").await;
    assert_eq!(status, 200);
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk_") && secret.len() >= 3 + 26 + 1 + 52);
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));

    // A second process on the same database, with its own cache.
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        auth_cache_ttl: Duration::from_millis(300),
        ..Config::default()
    };
    config.webhooks.master_key = Some(settle_core::secrets::MasterKeys::generate_text());
    let other = Application::with_store(&config, Arc::clone(app.store()), Arc::new(SystemClock))
        .await
        .unwrap();
    let other_settle = other.settle().clone();
    assert!(other_settle.authenticate(&secret).await.is_ok());

    assert_eq!(
        app.call(Method::GET, "/v1/accounts", Some(&secret), None).await.status,
        200
    );
    let got = app.get(&format!("/v1/api_keys/{id}")).await;
    assert_eq!(got.status, 200);
    assert!(got.body.get("secret").is_none(), "the secret is shown only once");
    let listed = app.get("/v1/api_keys?limit=100").await;
    assert!(
        listed.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("secret").is_none())
    );
    assert!(!listed.body.to_string().contains(&secret));

    // Not in the database in clear, in any column of any key.
    let rows = sqlx::query("SELECT * FROM api_keys")
        .fetch_all(&app.db.reads)
        .await
        .unwrap();
    for row in &rows {
        for i in 0..row.len() {
            if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                assert!(!text.contains(&secret[20..]), "column {i} holds the secret");
            }
            if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                assert!(!String::from_utf8_lossy(&bytes).contains(&secret[20..]));
            }
        }
    }

    let revoked = app
        .call(
            Method::DELETE,
            &format!("/v1/api_keys/{id}"),
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked.body["revoked_at"].as_i64().is_some());
    let r = app.call(Method::GET, "/v1/accounts", Some(&secret), None).await;
    r.assert_error(401, "authentication_error", "api_key_invalid");
    // The other process stops accepting it within its cache TTL.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        other_settle.authenticate(&secret).await.is_err(),
        "revocation reaches other processes within the TTL"
    );

    // last_used is recorded off the request path, in batches.
    let (_, created) = create_key(app, &app.admin_key, "viewer").await;
    let (secret, id) = (
        created["secret"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
    );
    assert!(app.get(&format!("/v1/api_keys/{id}")).await.body["last_used"].is_null());
    app.call(Method::GET, "/v1/accounts", Some(&secret), None).await;
    app.settle.flush_key_uses().await.unwrap();
    assert!(
        app.get(&format!("/v1/api_keys/{id}")).await.body["last_used"]
            .as_i64()
            .is_some()
    );
}

both!(role_rules, role_rules_case);
async fn role_rules_case(app: &TestApp) {
    let roles = app.get("/v1/roles?limit=100").await;
    let builtin: Vec<&Value> = roles.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["builtin"] == true)
        .collect();
    assert_eq!(
        builtin.len(),
        3,
        "admin, developer and viewer exist from the first start"
    );
    for role in builtin {
        let id = role["id"].as_str().unwrap();
        let r = app
            .call(
                Method::PATCH,
                &format!("/v1/roles/{id}"),
                Some(&app.admin_key),
                Some(json!({"permissions": []})),
            )
            .await;
        r.assert_error(409, "invalid_request_error", "invalid_state");
        let r = app
            .call(Method::DELETE, &format!("/v1/roles/{id}"), Some(&app.admin_key), None)
            .await;
        r.assert_error(409, "invalid_request_error", "invalid_state");
    }
    let role = create_role(app, "auditor", &["audit:read"]).await;
    let id = role["id"].as_str().unwrap().to_owned();
    app.post("/v1/roles", json!({"name": "auditor", "permissions": []}))
        .await
        .assert_error(409, "invalid_request_error", "resource_in_use");
    app.post("/v1/roles", json!({"name": "Bad Name", "permissions": []}))
        .await
        .assert_error(400, "invalid_request_error", "parameter_invalid");
    app.post("/v1/roles", json!({"name": "x", "permissions": ["money:print"]}))
        .await
        .assert_error(400, "invalid_request_error", "parameter_invalid");

    let stale = app
        .client
        .patch(app.url(&format!("/v1/roles/{id}")))
        .bearer_auth(&app.admin_key)
        .header("if-match", "\"7\"")
        .json(&json!({"permissions": ["audit:read", "events:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let ok = app
        .call(
            Method::PATCH,
            &format!("/v1/roles/{id}"),
            Some(&app.admin_key),
            Some(json!({"permissions": ["audit:read", "events:read"]})),
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["version"], 2);

    let (_, key) = create_key(app, &app.admin_key, "auditor").await;
    let r = app
        .call(Method::DELETE, &format!("/v1/roles/{id}"), Some(&app.admin_key), None)
        .await;
    r.assert_error(409, "invalid_request_error", "resource_in_use");
    app.call(
        Method::DELETE,
        &format!("/v1/api_keys/{}", key["id"].as_str().unwrap()),
        Some(&app.admin_key),
        None,
    )
    .await;
    let r = app
        .call(Method::DELETE, &format!("/v1/roles/{id}"), Some(&app.admin_key), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["deleted"], true);
}

async fn policy(app: &TestApp, text: &str) -> String {
    let r = app.post("/v1/policies", json!({"name": "rule", "policy": text})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.id()
}

both!(policy_examples, policy_examples_case);
async fn policy_examples_case(app: &TestApp) {
    create_role(
        app,
        "support",
        &[
            "payments:read",
            "payments:write",
            "refunds:read",
            "refunds:write",
            "accounts:read",
        ],
    )
    .await;
    let (_, body) = create_key(app, &app.admin_key, "support").await;
    let support = body["secret"].as_str().unwrap().to_owned();
    let refund_limit = policy(
        app,
        r#"forbid(principal, action == Action::"refunds:write", resource) when { principal.role == "support" && resource.amount > 5000 };"#,
    )
    .await;
    assert!(refund_limit.starts_with("pol_"));

    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    let pay = app
        .post(
            "/v1/payments",
            json!({"amount": 20_000, "currency": "usd", "source": bank, "destination": shop}),
        )
        .await
        .id();
    let refund = |amount: Option<i64>| {
        let body = match amount {
            Some(a) => json!({"payment": pay, "amount": a}),
            None => json!({"payment": pay}),
        };
        app.call(Method::POST, "/v1/refunds", Some(&support), Some(body))
    };
    assert_eq!(refund(Some(5_000)).await.status, 200, "5,000 is allowed");
    let r = refund(Some(5_001)).await;
    r.assert_error(403, "permission_error", "policy_denied");
    assert!(r.body["error"]["message"].as_str().unwrap().contains(&refund_limit));
    // A full refund is judged by what it would actually refund (15,000).
    refund(None)
        .await
        .assert_error(403, "permission_error", "policy_denied");
    // Admin keys are not limited by that policy.
    let r = app.post("/v1/refunds", json!({"payment": pay, "amount": 9_999})).await;
    assert_eq!(r.status, 200);
    let left = app.get(&format!("/v1/payments/{pay}")).await.body["amount_refunded"].clone();
    assert_eq!(left, 14_999, "the denied refunds changed nothing");

    // "This key may only create payments whose source is one of these accounts."
    let support_id = body["id"].as_str().unwrap();
    let other_bank = app.account("other bank", "usd", true).await;
    policy(
        app,
        &format!(
            r#"forbid(principal == ApiKey::"{support_id}", action == Action::"payments:write", resource) unless {{ ["{bank}"].contains(resource.source) }};"#
        ),
    )
    .await;
    let body = |source: &str| json!({"amount": 10, "currency": "usd", "source": source, "destination": shop});
    assert_eq!(
        app.call(Method::POST, "/v1/payments", Some(&support), Some(body(&bank)))
            .await
            .status,
        200
    );
    let r = app
        .call(Method::POST, "/v1/payments", Some(&support), Some(body(&other_bank)))
        .await;
    r.assert_error(403, "permission_error", "policy_denied");
    assert_eq!(
        app.post("/v1/payments", body(&other_bank)).await.status,
        200,
        "other keys are unaffected"
    );

    // Policies that do not parse or do not fit the schema are refused with 422.
    let r = app
        .post(
            "/v1/policies",
            json!({"name": "broken", "policy": "forbid(principal, action, resource) when { resource.amount > };"}),
        )
        .await;
    r.assert_error(422, "invalid_request_error", "policy_invalid");
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("line"),
        "{}",
        r.body
    );
    let r = app
        .post("/v1/policies", json!({"name": "unknown", "policy": r#"forbid(principal, action == Action::"refunds:write", resource) when { resource.colour == "red" };"#}))
        .await;
    r.assert_error(422, "invalid_request_error", "policy_invalid");
    let schema = app
        .client
        .get(app.url("/v1/policies/schema"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert!(schema.text().await.unwrap().contains("entity Refund"));

    // Deleting the limit lifts it.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/policies/{refund_limit}"),
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(refund(Some(5_001)).await.status, 200);
}

both!(audit_log, audit_log_case);
async fn audit_log_case(app: &TestApp) {
    let developer = app.key("developer").await;
    let ok = app
        .call(
            Method::POST,
            "/v1/customers",
            Some(&developer),
            Some(json!({"name": "Ada"})),
        )
        .await;
    assert_eq!(ok.status, 200);
    let bad = app.call(Method::POST, "/v1/payments", Some(&developer), Some(json!({"amount": 1, "currency": "usd", "source": format!("acct_{UNKNOWN}"), "destination": format!("acct_{UNKNOWN}")}))).await;
    assert_eq!(bad.status, 400);
    let denied = app
        .call(
            Method::POST,
            "/v1/roles",
            Some(&developer),
            Some(json!({"name": "x", "permissions": []})),
        )
        .await;
    assert_eq!(denied.status, 403);
    app.call(Method::GET, "/v1/audit_events", Some(&developer), None)
        .await
        .assert_error(403, "permission_error", "permission_denied");

    let events = app.get("/v1/audit_events?limit=100").await;
    assert_eq!(events.status, 200, "{}", events.body);
    let data = events.body["data"].as_array().unwrap();
    let find = |op: &str| {
        data.iter()
            .find(|e| e["operation"] == op)
            .unwrap_or_else(|| panic!("no {op} in {data:?}"))
    };
    let created = find("create_customer");
    assert_eq!(created["outcome"], "succeeded");
    assert_eq!(created["target"], ok.body["id"]);
    assert_eq!(created["request_id"], ok.headers["request-id"].to_str().unwrap());
    assert!(created["api_key"].as_str().unwrap().starts_with("key_"));
    assert_eq!(find("create_payment")["outcome"], "parameter_invalid");
    let role = find("create_role");
    assert_eq!(role["outcome"], "permission_denied");
    assert_eq!(role["status"], 403);
    assert!(data.iter().all(|e| e["object"] == "audit_event"));
}
