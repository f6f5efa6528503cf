//! GraphQL's writes and reads of webhooks, API keys, roles, policies, the
//! audit log and ledger entries, each checked against what REST shows of
//! the same objects: a round trip through every such mutation and query,
//! secrets shown once (a replay of the same idempotency key, on either
//! face, gives the same object without it), and `expectedVersion`
//! refusing a stale edit.

use std::time::Duration;

use serde_json::{Value, json};
use settle::config::Config;

use crate::graphql::graphql;
use crate::support::{Backend, TestApp, both, eventually, run_config};
use crate::webhooks::receiver;

/// A queue polled often, so deliveries happen within the test's patience.
async fn fast_queue(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    let mut config = Config::default();
    config.queue.poll = Duration::from_millis(10);
    run_config(backend, config, case).await
}

/// `document` run by the admin key: its `data`, with no error.
async fn ok(app: &TestApp, document: &str, variables: Value) -> Value {
    let (status, body, _) = graphql(app, &app.admin_key, document, variables).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{document}: {body}");
    body["data"].clone()
}

/// `document` run by the admin key: the code of its first error.
async fn refused(app: &TestApp, document: &str, variables: Value) -> String {
    let (_, body, _) = graphql(app, &app.admin_key, document, variables).await;
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {body}"))
        .to_owned()
}

/// GraphQL's `node` and REST's `rest` agree on each (GraphQL field, REST field).
fn same(node: &Value, rest: &Value, fields: &[(&str, &str)]) {
    for (ours, theirs) in fields {
        assert_eq!(node[*ours], rest[*theirs], "{ours}: GraphQL {node}, REST {rest}");
    }
}

fn nodes(connection: &Value) -> Vec<Value> {
    let edges = connection["edges"].as_array().unwrap_or_else(|| panic!("{connection}"));
    edges.iter().map(|e| e["node"].clone()).collect()
}

/// The ids of a GraphQL page and of a REST list, to compare order and content.
fn ids(nodes: &[Value]) -> Vec<Value> {
    nodes.iter().map(|n| n["id"].clone()).collect()
}

async fn rest_ids(app: &TestApp, path: &str) -> Vec<Value> {
    let r = app.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    ids(r.body["data"].as_array().unwrap())
}

const ENDPOINT: &[(&str, &str)] = &[
    ("id", "id"),
    ("url", "url"),
    ("enabledEvents", "enabled_events"),
    ("description", "description"),
    ("metadata", "metadata"),
    ("status", "status"),
    ("version", "version"),
];
const DELIVERY: &[(&str, &str)] = &[
    ("id", "id"),
    ("endpointId", "endpoint"),
    ("eventId", "event"),
    ("status", "status"),
    ("attempts", "attempts"),
    ("lastStatus", "last_status"),
];

const CREATE_ENDPOINT: &str = "mutation($input: CreateWebhookEndpointInput!, $key: String) { \
    createWebhookEndpoint(input: $input, idempotencyKey: $key) { \
    webhookEndpoint { id url enabledEvents description metadata status version } secret secretOmitted } }";
const UPDATE_ENDPOINT: &str = "mutation($id: ID!, $input: UpdateWebhookEndpointInput!, $v: Int) { \
    updateWebhookEndpoint(id: $id, input: $input, expectedVersion: $v) { \
    id url enabledEvents description metadata status version } }";
const DELIVERIES: &str = "query($endpoint: ID!, $status: String) { \
    webhookDeliveries(endpoint: $endpoint, first: 10, status: $status) { \
    edges { node { id endpointId eventId status attempts lastStatus } } } }";
const ATTEMPTS: &str = "query($id: ID!) { webhookAttempts(delivery: $id, first: 10) { \
    edges { node { id deliveryId responseStatus requestId error } } } }";

/// Every webhook mutation and query, against REST.
async fn webhooks_round_trip_case(app: &TestApp) {
    let (url, _) = receiver(&[200]).await;
    let input = json!({"url": url, "enabledEvents": ["payment.succeeded"], "description": "ops"});
    let vars = json!({"input": input, "key": "hook-1"});
    let created = ok(app, CREATE_ENDPOINT, vars.clone()).await["createWebhookEndpoint"].clone();
    let endpoint = created["webhookEndpoint"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["secretOmitted"], false);
    let rest = app.get(&format!("/v1/webhook_endpoints/{endpoint}")).await;
    same(&created["webhookEndpoint"], &rest.body, ENDPOINT);

    // The same key again, on either face: the same endpoint, no secret.
    let again = ok(app, CREATE_ENDPOINT, vars).await["createWebhookEndpoint"].clone();
    assert_eq!(again["webhookEndpoint"], created["webhookEndpoint"]);
    assert!(again["secret"].is_null(), "{again}");
    assert_eq!(again["secretOmitted"], true);
    let body = json!({"url": url, "enabled_events": ["payment.succeeded"], "description": "ops"});
    let res = app
        .client
        .post(app.url("/v1/webhook_endpoints"))
        .bearer_auth(&app.admin_key)
        .header("idempotency-key", "hook-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(res.headers()["idempotent-secret-omitted"], "true");
    let res: Value = res.json().await.unwrap();
    assert_eq!(res["id"], endpoint.as_str());
    let listed = ok(
        app,
        "{ webhookEndpoints(first: 10) { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(ids(&nodes(&listed["webhookEndpoints"])), vec![json!(endpoint)]);

    let edit = json!({"description": {"value": null}, "metadata": {"team": "ops"}});
    let updated = ok(app, UPDATE_ENDPOINT, json!({"id": endpoint, "input": edit, "v": 1})).await;
    let updated = &updated["updateWebhookEndpoint"];
    assert_eq!(
        (updated["version"].clone(), updated["description"].clone()),
        (json!(2), Value::Null)
    );
    assert_eq!(updated["metadata"], json!({"team": "ops"}));
    let rest = app.get(&format!("/v1/webhook_endpoints/{endpoint}")).await;
    same(updated, &rest.body, ENDPOINT);
    let stale = json!({"id": endpoint, "input": {"status": "disabled"}, "v": 1});
    assert_eq!(refused(app, UPDATE_ENDPOINT, stale).await, "version_conflict");

    let rotate = "mutation($id: ID!) { rotateWebhookSecret(id: $id) { webhookEndpoint { id } secret secretOmitted } }";
    let rotated = ok(app, rotate, json!({"id": endpoint})).await["rotateWebhookSecret"].clone();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret, "{rotated}");
    assert_eq!(rotated["webhookEndpoint"]["id"], endpoint.as_str());

    // A payment: its entries, and its delivery with an attempt.
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    for amount in [100, 200, 300] {
        app.pay(&bank, &shop, amount).await;
    }
    let entries = "query($account: ID!, $after: String) { ledgerEntries(account: $account, first: 2, after: $after) { \
        edges { cursor node { id accountId amount paymentId refundId created } } pageInfo { hasNextPage endCursor } } }";
    let page = ok(app, entries, json!({"account": shop})).await["ledgerEntries"].clone();
    let rest = app.get(&format!("/v1/accounts/{shop}/entries?limit=2")).await;
    let first = nodes(&page);
    for (node, rest) in first.iter().zip(rest.body["data"].as_array().unwrap()) {
        let fields = [("id", "id"), ("accountId", "account"), ("amount", "amount")];
        same(node, rest, &fields);
        same(
            node,
            rest,
            &[("paymentId", "payment"), ("refundId", "refund"), ("created", "created")],
        );
    }
    assert_eq!(first.len(), 2);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let after = page["pageInfo"]["endCursor"].clone();
    let next = ok(app, entries, json!({"account": shop, "after": after})).await["ledgerEntries"].clone();
    let cursor = after.as_str().unwrap();
    let rest = rest_ids(
        app,
        &format!("/v1/accounts/{shop}/entries?limit=2&starting_after={cursor}"),
    )
    .await;
    assert_eq!(ids(&nodes(&next)), rest);
    assert_eq!(next["pageInfo"]["hasNextPage"], false);

    let deliveries = eventually(Duration::from_secs(30), "three deliveries, delivered", || async {
        let got = nodes(&ok(app, DELIVERIES, json!({"endpoint": endpoint})).await["webhookDeliveries"]);
        (got.len() == 3 && got.iter().all(|d| d["status"] == "delivered")).then_some(got)
    })
    .await;
    let rest = app
        .get(&format!("/v1/webhook_endpoints/{endpoint}/deliveries?limit=10"))
        .await;
    let rest = rest.body["data"].as_array().unwrap().clone();
    assert_eq!(ids(&deliveries), ids(&rest), "newest first, as REST");
    for (node, rest) in deliveries.iter().zip(&rest) {
        same(node, rest, DELIVERY);
    }
    let pending = ok(app, DELIVERIES, json!({"endpoint": endpoint, "status": "pending"})).await;
    assert!(nodes(&pending["webhookDeliveries"]).is_empty());
    let bad = json!({"endpoint": endpoint, "status": "lost"});
    assert_eq!(refused(app, DELIVERIES, bad).await, "parameter_invalid");

    let delivery = deliveries[0]["id"].as_str().unwrap().to_owned();
    let one = "query($id: ID!) { webhookDelivery(id: $id) { id endpointId eventId status attempts lastStatus } }";
    let got = ok(app, one, json!({"id": delivery})).await["webhookDelivery"].clone();
    same(
        &got,
        &app.get(&format!("/v1/webhook_deliveries/{delivery}")).await.body,
        DELIVERY,
    );
    let attempts = nodes(&ok(app, ATTEMPTS, json!({"id": delivery})).await["webhookAttempts"]);
    let rest = app.get(&format!("/v1/webhook_deliveries/{delivery}/attempts")).await;
    let rest = rest.body["data"].as_array().unwrap().clone();
    assert_eq!(ids(&attempts), ids(&rest));
    let fields = [
        ("id", "id"),
        ("deliveryId", "delivery"),
        ("responseStatus", "response_status"),
        ("requestId", "request_id"),
        ("error", "error"),
    ];
    same(&attempts[0], &rest[0], &fields);
    assert_eq!(attempts[0]["responseStatus"], 200);

    let retry = "mutation($id: ID!) { retryWebhookDelivery(id: $id) { id endpointId } }";
    let retried = ok(app, retry, json!({"id": delivery})).await["retryWebhookDelivery"].clone();
    assert_eq!(retried["id"], delivery.as_str());
    eventually(Duration::from_secs(30), "a second attempt", || async {
        let n = nodes(&ok(app, ATTEMPTS, json!({"id": delivery})).await["webhookAttempts"]).len();
        (n == 2).then_some(())
    })
    .await;

    let replay = "mutation($id: ID!, $key: String) { replayWebhooks(id: $id, since: 0, idempotencyKey: $key) { \
        id endpointId since until status deliveries } }";
    let replayed = ok(app, replay, json!({"id": endpoint, "key": "replay-1"})).await["replayWebhooks"].clone();
    assert_eq!(replayed["endpointId"], endpoint.as_str());
    assert_eq!(replayed["since"], 0);
    let again = ok(app, replay, json!({"id": endpoint, "key": "replay-1"})).await["replayWebhooks"].clone();
    assert_eq!(again["id"], replayed["id"], "one replay for one key");
    let replays = "query($id: ID!) { webhookReplays(endpoint: $id, first: 10) { edges { node { id endpointId } } } }";
    let listed = nodes(&ok(app, replays, json!({"id": endpoint})).await["webhookReplays"]);
    assert_eq!(ids(&listed), vec![replayed["id"].clone()]);
    assert_eq!(
        ids(&listed),
        rest_ids(app, &format!("/v1/webhook_endpoints/{endpoint}/replay")).await
    );

    let delete = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }";
    let deleted = ok(app, delete, json!({"id": endpoint})).await;
    assert_eq!(deleted["deleteWebhookEndpoint"], endpoint.as_str());
    assert_eq!(app.get(&format!("/v1/webhook_endpoints/{endpoint}")).await.status, 404);
    let gone = "query($id: ID!) { webhookEndpoint(id: $id) { id } }";
    assert_eq!(refused(app, gone, json!({"id": endpoint})).await, "resource_missing");
}
both!(webhooks_round_trip, webhooks_round_trip_case, super::fast_queue);

const ROLE: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("permissions", "permissions"),
    ("builtin", "builtin"),
    ("version", "version"),
];
const KEY: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("prefix", "prefix"),
    ("role", "role"),
    ("expiresAt", "expires_at"),
    ("revokedAt", "revoked_at"),
];
const POLICY: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("policy", "policy"),
    ("description", "description"),
    ("status", "status"),
    ("version", "version"),
];

const CREATE_KEY: &str = "mutation($key: String) { createApiKey(input: {name: \"auditor key\", role: \"auditor\"}, \
    idempotencyKey: $key) { apiKey { id name prefix role expiresAt revokedAt } secret secretOmitted } }";
const UPDATE_ROLE: &str = "mutation($id: ID!, $v: Int) { updateRole(id: $id, input: {permissions: [\"audit:read\"]}, \
    expectedVersion: $v) { id name permissions builtin version } }";
const UPDATE_POLICY: &str = "mutation($id: ID!, $v: Int, $status: String) { updatePolicy(id: $id, \
    input: {status: $status, description: {value: null}}, expectedVersion: $v) { \
    id name policy description status version } }";
const BIG_REFUNDS: &str =
    r#"forbid(principal, action == Action::"refunds:write", resource) when { resource.amount > 5000 };"#;

/// Every mutation and query of keys, roles, policies and the audit log,
/// against REST.
async fn access_round_trip_case(app: &TestApp) {
    let create = "mutation { createRole(input: {name: \"auditor\", permissions: [\"audit:read\", \"accounts:read\"]}) { \
        id name permissions builtin version } }";
    let role = ok(app, create, json!({})).await["createRole"].clone();
    let role_id = role["id"].as_str().unwrap().to_owned();
    assert_eq!(role["permissions"], json!(["accounts:read", "audit:read"]), "{role}");
    same(&role, &app.get(&format!("/v1/roles/{role_id}")).await.body, ROLE);
    let updated = ok(app, UPDATE_ROLE, json!({"id": role_id, "v": 1})).await["updateRole"].clone();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["permissions"], json!(["audit:read"]));
    assert_eq!(
        refused(app, UPDATE_ROLE, json!({"id": role_id, "v": 1})).await,
        "version_conflict"
    );
    let one = "query($id: ID!) { role(id: $id) { id name permissions builtin version } }";
    let got = ok(app, one, json!({"id": role_id})).await["role"].clone();
    same(&got, &app.get(&format!("/v1/roles/{role_id}")).await.body, ROLE);
    let roles = nodes(&ok(app, "{ roles(first: 10) { edges { node { id } } } }", json!({})).await["roles"]);
    assert_eq!(ids(&roles), rest_ids(app, "/v1/roles?limit=10").await);
    assert_eq!(roles.len(), 4, "three built-in roles and ours");

    // A key: its secret once, then never again, on either face.
    let created = ok(app, CREATE_KEY, json!({"key": "key-1"})).await["createApiKey"].clone();
    let key_id = created["apiKey"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(created["secretOmitted"], false);
    assert_eq!(created["apiKey"]["role"], "auditor");
    let audit = app
        .call(reqwest::Method::GET, "/v1/audit_events", Some(&secret), None)
        .await;
    assert_eq!(audit.status, 200, "the new key works: {}", audit.body);
    let again = ok(app, CREATE_KEY, json!({"key": "key-1"})).await["createApiKey"].clone();
    assert_eq!(again["apiKey"], created["apiKey"]);
    assert!(again["secret"].is_null(), "{again}");
    assert_eq!(again["secretOmitted"], true);
    let res = app
        .client
        .post(app.url("/v1/api_keys"))
        .bearer_auth(&app.admin_key)
        .header("idempotency-key", "key-1")
        .json(&json!({"name": "auditor key", "role": "auditor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["idempotent-secret-omitted"], "true");
    let res: Value = res.json().await.unwrap();
    assert_eq!(res["id"], key_id.as_str());
    assert!(res.get("secret").is_none());
    let one = "query($id: ID!) { apiKey(id: $id) { id name prefix role expiresAt revokedAt } }";
    let got = ok(app, one, json!({"id": key_id})).await["apiKey"].clone();
    same(&got, &app.get(&format!("/v1/api_keys/{key_id}")).await.body, KEY);
    let keys = nodes(&ok(app, "{ apiKeys(first: 10) { edges { node { id } } } }", json!({})).await["apiKeys"]);
    assert_eq!(ids(&keys), rest_ids(app, "/v1/api_keys?limit=10").await);
    let revoke = "mutation($id: ID!) { revokeApiKey(id: $id) { id name prefix role expiresAt revokedAt } }";
    let revoked = ok(app, revoke, json!({"id": key_id})).await["revokeApiKey"].clone();
    assert!(revoked["revokedAt"].is_i64(), "{revoked}");
    same(&revoked, &app.get(&format!("/v1/api_keys/{key_id}")).await.body, KEY);
    let audit = app
        .call(reqwest::Method::GET, "/v1/audit_events", Some(&secret), None)
        .await;
    assert_eq!(audit.status, 401, "a revoked key is refused");

    let create = "mutation($text: String!) { createPolicy(input: {name: \"cap\", policy: $text, description: \"big\"}) { \
        id name policy description status version } }";
    let policy = ok(app, create, json!({"text": BIG_REFUNDS})).await["createPolicy"].clone();
    let policy_id = policy["id"].as_str().unwrap().to_owned();
    assert_eq!(policy["status"], "enabled");
    same(
        &policy,
        &app.get(&format!("/v1/policies/{policy_id}")).await.body,
        POLICY,
    );
    let bad = json!({"id": policy_id, "v": 1, "status": "paused"});
    assert_eq!(refused(app, UPDATE_POLICY, bad).await, "parameter_invalid");
    let edit = json!({"id": policy_id, "v": 1, "status": "disabled"});
    let updated = ok(app, UPDATE_POLICY, edit.clone()).await["updatePolicy"].clone();
    assert_eq!(
        (updated["status"].clone(), updated["version"].clone()),
        (json!("disabled"), json!(2))
    );
    assert!(updated["description"].is_null(), "{updated}");
    same(
        &updated,
        &app.get(&format!("/v1/policies/{policy_id}")).await.body,
        POLICY,
    );
    assert_eq!(refused(app, UPDATE_POLICY, edit).await, "version_conflict");
    let one = "query($id: ID!) { policy(id: $id) { id name policy description status version } }";
    let got = ok(app, one, json!({"id": policy_id})).await["policy"].clone();
    assert_eq!(got, updated);
    let listed = nodes(&ok(app, "{ policies(first: 10) { edges { node { id } } } }", json!({})).await["policies"]);
    assert_eq!(ids(&listed), rest_ids(app, "/v1/policies?limit=10").await);

    let delete = "mutation($id: ID!) { deletePolicy(id: $id) }";
    assert_eq!(
        ok(app, delete, json!({"id": policy_id})).await["deletePolicy"],
        policy_id.as_str()
    );
    assert_eq!(app.get(&format!("/v1/policies/{policy_id}")).await.status, 404);
    let delete = "mutation($id: ID!) { deleteRole(id: $id) }";
    assert_eq!(
        ok(app, delete, json!({"id": role_id})).await["deleteRole"],
        role_id.as_str()
    );
    assert_eq!(app.get(&format!("/v1/roles/{role_id}")).await.status, 404);

    // The audit log saw all of it, refusals included, as REST lists it.
    let audit = "{ auditEvents(first: 30) { edges { node { id apiKeyId operation permission target requestId \
        outcome status created } } pageInfo { hasNextPage } } }";
    let events = nodes(&ok(app, audit, json!({})).await["auditEvents"]);
    let rest = app.get("/v1/audit_events?limit=30").await;
    let rest = rest.body["data"].as_array().unwrap().clone();
    assert_eq!(ids(&events), ids(&rest));
    let fields = [
        ("id", "id"),
        ("apiKeyId", "api_key"),
        ("operation", "operation"),
        ("permission", "permission"),
        ("target", "target"),
        ("requestId", "request_id"),
        ("outcome", "outcome"),
        ("status", "status"),
        ("created", "created"),
    ];
    for (node, rest) in events.iter().zip(&rest) {
        same(node, rest, &fields);
    }
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["operation"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    for expected in [
        ("create_role", "succeeded"),
        ("update_role", "version_conflict"),
        ("create_api_key", "succeeded"),
        ("revoke_api_key", "succeeded"),
        ("update_policy", "succeeded"),
        ("delete_role", "succeeded"),
    ] {
        assert!(seen.contains(&expected), "{expected:?} in {seen:?}");
    }
}
both!(access_round_trip, access_round_trip_case);
