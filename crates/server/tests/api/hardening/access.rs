//! Managing keys and roles never reaches past what the caller holds, and
//! private addresses stay refused in every IPv6 spelling.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use settle::config::Config;
use settle_core::clock::SystemClock;

use super::assert_400;
use crate::support::{TestApp, TestDb, both};

async fn key_managers_cannot_touch_stronger_keys_case(app: &TestApp) {
    let r = app
        .post(
            "/v1/roles",
            json!({"name": "key_manager", "permissions": ["api_keys:read", "api_keys:write"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let made = app
        .post("/v1/api_keys", json!({"name": "manager", "role": "key_manager"}))
        .await;
    let manager = made.body["secret"].as_str().unwrap().to_owned();
    let admin = app.post("/v1/api_keys", json!({"name": "ops", "role": "admin"})).await;
    let admin_id = admin.id();
    let admin_secret = admin.body["secret"].as_str().unwrap().to_owned();

    // Revoking an admin key needs every permission an admin holds.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/api_keys/{admin_id}"),
            Some(&manager),
            None,
        )
        .await;
    r.assert_error(403, "permission_error", "permission_denied");
    let still = app.call(Method::GET, "/v1/customers", Some(&admin_secret), None).await;
    assert_eq!(still.status, 200, "the admin key must still work: {}", still.body);

    // A key no stronger than the manager may be revoked by it.
    let peer = app
        .post("/v1/api_keys", json!({"name": "peer", "role": "key_manager"}))
        .await;
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/api_keys/{}", peer.id()),
            Some(&manager),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Role managers: editing or deleting a role changes every key holding it.
    app.post(
        "/v1/roles",
        json!({"name": "role_manager", "permissions": ["roles:read", "roles:write"]}),
    )
    .await;
    let roles = app
        .post("/v1/api_keys", json!({"name": "roles", "role": "role_manager"}))
        .await;
    let roles = roles.body["secret"].as_str().unwrap().to_owned();
    let payer = app
        .post("/v1/roles", json!({"name": "payer", "permissions": ["payments:write"]}))
        .await
        .id();
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/roles/{payer}"),
            Some(&roles),
            Some(json!({"permissions": ["roles:read"]})),
        )
        .await;
    r.assert_error(403, "permission_error", "permission_denied");
    let r = app
        .call(Method::DELETE, &format!("/v1/roles/{payer}"), Some(&roles), None)
        .await;
    r.assert_error(403, "permission_error", "permission_denied");
    let kept = app.get(&format!("/v1/roles/{payer}")).await;
    assert_eq!(kept.body["permissions"], json!(["payments:write"]));
}
both!(
    key_managers_cannot_touch_stronger_keys,
    key_managers_cannot_touch_stronger_keys_case
);

async fn ipv6_forms_of_private_addresses_are_refused_case(app: &TestApp) {
    // The default: private targets refused.
    let db = TestDb::create(app.db.backend).await;
    let guarded = TestApp::spawn_config(db, Arc::new(SystemClock), Config::default()).await;
    for url in [
        "http://[::127.0.0.1]/",                          // IPv4-compatible loopback
        "http://[::ffff:0:127.0.0.1]/",                   // IPv4-translated
        "http://[2002:7f00:1::]/",                        // 6to4 of 127.0.0.1
        "http://[2002:c0a8:101::1]/",                     // 6to4 of 192.168.1.1
        "http://[64:ff9b::7f00:1]/",                      // NAT64 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",                   // NAT64 of 169.254.169.254
        "http://[64:ff9b:1::808:808]/",                   // local-use NAT64
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", // Teredo, client 127.0.0.1
        "http://[::ffff:127.0.0.1]/",
    ] {
        let r = guarded
            .post("/v1/webhook_endpoints", json!({"url": url, "enabled_events": ["*"]}))
            .await;
        assert_400(&r, "parameter_invalid", "url");
    }
    assert_eq!(guarded.get("/v1/webhook_endpoints").await.body["data"], json!([]));
    guarded.finish().await;
}
both!(
    ipv6_forms_of_private_addresses_are_refused,
    ipv6_forms_of_private_addresses_are_refused_case
);
