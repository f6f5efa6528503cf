//! GraphQL at `/graphql` over the same pipeline as REST: a page of 100
//! payments with each one's customer, accounts and newest refunds in at
//! most 4 SQL statements (batched loads, a window per payment for the
//! refunds), a page of 100 accounts with customers and newest entries in
//! 3, a nested object the key may not read as a field error naming the
//! permission or policy, idempotency keys shared with REST, clear errors
//! for bad queries, GraphiQL served from the binary, and every exposed
//! operation letting in or refusing each built-in role as REST does
//! (webhooks, keys, roles and policies round trips: `graphql_admin`).

use std::time::Duration;

use serde_json::{Value, json};
use settle::config::Config;

use crate::support::{Backend, TestApp, both, run_config};

/// Posts `query` as `key`; the JSON answer and the statements it cost.
pub(crate) async fn graphql(app: &TestApp, key: &str, query: &str, variables: Value) -> (u16, Value, Option<u64>) {
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(key)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let statements = res
        .headers()
        .get("settle-statements")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, res.json().await.unwrap(), statements)
}

async fn warm(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    let config = Config {
        statement_header: true,
        auth_cache_ttl: Duration::from_secs(3600),
        ..Config::default()
    };
    run_config(backend, config, case).await
}

const PAGE: &str = "query($first: Int) { payments(first: $first) { edges { node { id amount \
    customer { id name } source { id balance } destination { id balance } \
    refunds(first: 10) { edges { node { id amount } } pageInfo { hasNextPage } } } } \
    pageInfo { hasNextPage endCursor } } }";

async fn a_page_with_its_relations_costs_at_most_four_statements_case(app: &TestApp) {
    let bank = app.account("bank", "usd", true).await;
    for n in 0..100 {
        let customer = app.post("/v1/customers", json!({"name": format!("c{n}")})).await.id();
        let shop = app.account(&format!("shop{n}"), "usd", false).await;
        let pay = app
            .post(
                "/v1/payments",
                json!({"amount": 1000, "currency": "usd", "source": bank, "destination": shop, "customer": customer}),
            )
            .await;
        assert_eq!(pay.status, 200, "{}", pay.body);
        if n % 10 == 0 {
            for _ in 0..2 {
                let r = app
                    .post("/v1/refunds", json!({"payment": pay.id(), "amount": 100}))
                    .await;
                assert_eq!(r.status, 200, "{}", r.body);
            }
        }
    }
    // Warm the key and policy caches.
    graphql(
        app,
        &app.admin_key,
        "{ payments(first: 1) { edges { cursor } } }",
        json!({}),
    )
    .await;
    let mut counts = Vec::new();
    for first in [100, 10] {
        let (status, body, statements) = graphql(app, &app.admin_key, PAGE, json!({"first": first})).await;
        assert_eq!(status, 200);
        assert!(body.get("errors").is_none(), "{body}");
        let edges = body["data"]["payments"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), first);
        for edge in edges {
            let node = &edge["node"];
            assert!(node["customer"]["name"].as_str().unwrap().starts_with('c'), "{node}");
            assert_eq!(node["source"]["id"], bank.as_str());
            assert!(node["destination"]["balance"].is_i64());
        }
        let refunded = edges
            .iter()
            .filter(|e| !e["node"]["refunds"]["edges"].as_array().unwrap().is_empty())
            .count();
        assert!(refunded >= first / 10, "refunds shown on {refunded} payments");
        counts.push(statements.expect("Settle-Statements header"));
    }
    assert!(
        counts.iter().all(|n| *n <= 4) && counts[0] == counts[1],
        "statements for 100 and for 10 payments: {counts:?}"
    );
}
both!(
    a_page_with_its_relations_costs_at_most_four_statements,
    a_page_with_its_relations_costs_at_most_four_statements_case,
    super::warm
);

const ACCOUNTS: &str = "query($first: Int) { accounts(first: $first) { edges { node { id name \
    customer { id name } entries(first: 3) { edges { node { id amount accountId paymentId } } \
    pageInfo { hasNextPage } } } } } }";

/// A page of accounts with each one's customer and newest entries: the
/// accounts, their customers, and a window of entries per account, three
/// statements whatever the page size; each account's entries are REST's.
async fn a_page_of_accounts_with_their_entries_costs_three_statements_case(app: &TestApp) {
    let bank = app.account("bank", "usd", true).await;
    // With the bank, 100 accounts; every tenth shop is paid four times.
    for n in 0..99 {
        let customer = app.post("/v1/customers", json!({"name": format!("c{n}")})).await.id();
        let shop = app
            .post(
                "/v1/accounts",
                json!({"name": format!("shop{n}"), "currency": "usd", "customer": customer}),
            )
            .await
            .id();
        for i in 0..if n % 10 == 0 { 4 } else { 1 } {
            let pay = app
                .post(
                    "/v1/payments",
                    json!({"amount": 100 + i, "currency": "usd", "source": bank, "destination": shop}),
                )
                .await;
            assert_eq!(pay.status, 200, "{}", pay.body);
        }
    }
    graphql(
        app,
        &app.admin_key,
        "{ accounts(first: 1) { edges { cursor } } }",
        json!({}),
    )
    .await;
    let mut counts = Vec::new();
    for first in [100, 10] {
        let (status, body, statements) = graphql(app, &app.admin_key, ACCOUNTS, json!({"first": first})).await;
        assert_eq!(status, 200);
        assert!(body.get("errors").is_none(), "{body}");
        let edges = body["data"]["accounts"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), first);
        counts.push(statements.expect("Settle-Statements header"));
        if first != 100 {
            continue;
        }
        let mut more = 0;
        for edge in edges {
            let node = &edge["node"];
            let id = node["id"].as_str().unwrap();
            if id != bank {
                assert!(node["customer"]["name"].as_str().unwrap().starts_with('c'), "{node}");
            }
            let rest = app.get(&format!("/v1/accounts/{id}/entries?limit=3")).await;
            let rest_ids: Vec<&Value> = rest.body["data"].as_array().unwrap().iter().map(|e| &e["id"]).collect();
            let entries = node["entries"]["edges"].as_array().unwrap();
            let ids: Vec<&Value> = entries.iter().map(|e| &e["node"]["id"]).collect();
            assert_eq!(ids, rest_ids, "{id}: the newest entries, newest first");
            assert!(entries.iter().all(|e| e["node"]["accountId"] == id), "{node}");
            assert_eq!(
                node["entries"]["pageInfo"]["hasNextPage"], rest.body["has_more"],
                "{node}"
            );
            more += usize::from(rest.body["has_more"] == true);
        }
        assert_eq!(more, 11, "the bank and the ten shops paid four times have more");
    }
    assert!(
        counts.iter().all(|n| *n <= 3) && counts[0] == counts[1],
        "statements for 100 and for 10 accounts: {counts:?}"
    );
}
both!(
    a_page_of_accounts_with_their_entries_costs_three_statements,
    a_page_of_accounts_with_their_entries_costs_three_statements_case,
    super::warm
);

/// An account's nested entries are shown on the terms of REST's
/// `/v1/accounts/{id}/entries`: a policy forbidding to read one account
/// refuses its entries (a field error), and only its.
async fn nested_entries_follow_the_policies_of_their_account_case(app: &TestApp) {
    let hidden = app.account("hidden", "usd", false).await;
    app.fund(&hidden, "usd", 100).await;
    let shown = app.account("shown", "usd", false).await;
    app.fund(&shown, "usd", 100).await;
    let text = format!(
        r#"forbid(principal, action == Action::"accounts:read", resource) when {{ resource.account == "{hidden}" }};"#
    );
    let r = app.post("/v1/policies", json!({"name": "hide", "policy": text})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rest = app.get(&format!("/v1/accounts/{hidden}/entries")).await;
    rest.assert_error(403, "permission_error", "policy_denied");
    let list = app.get("/v1/accounts?limit=10").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let query = "{ accounts(first: 10) { edges { node { id entries(first: 5) { edges { node { id } } } } } } }";
    let (_, body, _) = graphql(app, &app.admin_key, query, json!({})).await;
    let errors = body["errors"].as_array().expect("a field error");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["extensions"]["code"], "policy_denied", "{body}");
    let edges = body["data"]["accounts"]["edges"].as_array().unwrap();
    for edge in edges {
        let node = &edge["node"];
        if node["id"] == hidden.as_str() {
            assert!(node["entries"].is_null(), "{node}");
        } else {
            assert_eq!(node["entries"]["edges"].as_array().unwrap().len(), 1, "{node}");
        }
    }
    assert!(edges.iter().any(|e| e["node"]["id"] == shown.as_str()), "{body}");
}
both!(
    nested_entries_follow_the_policies_of_their_account,
    nested_entries_follow_the_policies_of_their_account_case
);

async fn a_nested_object_the_key_may_not_read_is_a_field_error_case(app: &TestApp) {
    let alice = app.account("alice", "usd", false).await;
    app.fund(&alice, "usd", 500).await;
    let role = app
        .post(
            "/v1/roles",
            json!({"name": "payments_only", "permissions": ["payments:read"]}),
        )
        .await;
    assert_eq!(role.status, 200, "{}", role.body);
    let key = app
        .post("/v1/api_keys", json!({"name": "narrow", "role": "payments_only"}))
        .await;
    let secret = key.body["secret"].as_str().unwrap().to_owned();
    let query = "{ payments(first: 5) { edges { node { id amount source { id balance } } } } }";
    let (status, body, _) = graphql(app, &secret, query, json!({})).await;
    assert_eq!(status, 200);
    let errors = body["errors"].as_array().expect("a field error");
    assert_eq!(errors[0]["extensions"]["code"], "permission_denied", "{body}");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("accounts:read"),
        "{body}"
    );
    assert!(!body.to_string().contains("\"balance\":"), "no balance leaks: {body}");
    // Without the permission for the list itself, the whole field fails.
    let (_, body, _) = graphql(app, &secret, "{ accounts(first: 1) { edges { cursor } } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "permission_denied", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["status"], 403);
}
both!(
    a_nested_object_the_key_may_not_read_is_a_field_error,
    a_nested_object_the_key_may_not_read_is_a_field_error_case
);

const CREATE: &str = "mutation($input: CreatePaymentInput!, $key: String) { \
    createPayment(input: $input, idempotencyKey: $key) { id amount status } }";

/// An idempotency key is the same request on both faces: GraphQL first,
/// then REST with the same parameters, replays; other parameters refuse.
async fn idempotency_keys_are_shared_with_rest_case(app: &TestApp) {
    let alice = app.account("alice", "usd", false).await;
    app.fund(&alice, "usd", 10_000).await;
    let shop = app.account("shop", "usd", false).await;
    let input = json!({"amount": 700, "currency": "usd", "source": alice, "destination": shop});
    let (_, first, _) = graphql(
        app,
        &app.admin_key,
        CREATE,
        json!({"input": input, "key": "both-faces"}),
    )
    .await;
    assert!(first.get("errors").is_none(), "{first}");
    let id = first["data"]["createPayment"]["id"].as_str().unwrap().to_owned();
    let rest = app
        .client
        .post(app.url("/v1/payments"))
        .bearer_auth(&app.admin_key)
        .header("idempotency-key", "both-faces")
        .json(&json!({"amount": 700, "currency": "usd", "source": alice, "destination": shop}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.headers()["idempotent-replayed"], "true");
    let rest: Value = rest.json().await.unwrap();
    assert_eq!(rest["id"], id.as_str());
    let (_, again, _) = graphql(
        app,
        &app.admin_key,
        CREATE,
        json!({"input": input, "key": "both-faces"}),
    )
    .await;
    assert_eq!(again["data"]["createPayment"]["id"], id.as_str(), "{again}");
    let other = json!({"amount": 701, "currency": "usd", "source": alice, "destination": shop});
    let (_, refused, _) = graphql(
        app,
        &app.admin_key,
        CREATE,
        json!({"input": other, "key": "both-faces"}),
    )
    .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "idempotency_key_reused",
        "{refused}"
    );
    let shop_now = app.get(&format!("/v1/accounts/{shop}")).await;
    assert_eq!(shop_now.body["balance"], 700, "one effect");
}
both!(
    idempotency_keys_are_shared_with_rest,
    idempotency_keys_are_shared_with_rest_case
);

async fn bad_requests_get_clear_errors_case(app: &TestApp) {
    for (query, expect) in [
        ("{ payments(first: 1) { edges { node { nope } } } }", "nope"),
        ("{ payments(first: 1) ", "expected"),
        ("{ payments(first: 1000) { edges { cursor } } }", "first"),
    ] {
        let (status, body, _) = graphql(app, &app.admin_key, query, json!({})).await;
        assert!(status < 500, "{query}: {status}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            message.contains(expect) || body.to_string().to_lowercase().contains(expect),
            "{query}: {body}"
        );
    }
    // Past the depth limit: refused before anything runs.
    let deep = "{ refunds { edges { node { payment { refunds { edges { node { payment { refunds { edges { node { id } } } } } } } } } } } }";
    let (status, body, _) = graphql(app, &app.admin_key, deep, json!({})).await;
    assert!(status < 500);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("deep"),
        "{body}"
    );
    let raw = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.admin_key)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let (_, body, _) = graphql(app, "sk_nope", "{ payments { edges { cursor } } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "api_key_invalid", "{body}");
}
both!(bad_requests_get_clear_errors, bad_requests_get_clear_errors_case);

async fn graphiql_is_served_from_the_binary_case(app: &TestApp) {
    // GraphiQL reads the schema by introspection, on by default.
    let (_, body, _) = graphql(app, &app.admin_key, "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query", "{body}");
    let page = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "no network: {html}"
    );
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ] {
        assert!(html.contains(asset), "{asset}");
        let r = app
            .client
            .get(app.url(&format!("/graphql/assets/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(r.bytes().await.unwrap().len() > 5_000, "{asset}");
    }
}
both!(
    graphiql_is_served_from_the_binary,
    graphiql_is_served_from_the_binary_case
);

/// Introspection can be turned off; queries still work.
async fn introspection_can_be_turned_off_case(app: &TestApp) {
    let (_, body, _) = graphql(app, &app.admin_key, "{ __schema { queryType { name } } }", json!({})).await;
    assert!(body["data"]["__schema"].is_null(), "the schema stays hidden: {body}");
    let (_, body, _) = graphql(
        app,
        &app.admin_key,
        "{ payments(first: 1) { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
}
both!(
    introspection_can_be_turned_off,
    introspection_can_be_turned_off_case,
    super::no_introspection
);

async fn no_introspection(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    let config = Config {
        graphql_introspection: false,
        ..Config::default()
    };
    run_config(backend, config, case).await
}

/// Updates check `expectedVersion` as REST checks `If-Match`; `null`
/// clears a customer's field; a deleted customer is gone on both faces.
async fn updates_and_deletes_case(app: &TestApp) {
    let customer = app
        .post("/v1/customers", json!({"name": "Ada", "email": "ada@example.com"}))
        .await
        .id();
    let account = app.account("wallet", "usd", false).await;
    let update = "mutation($id: ID!, $v: Int) { updateAccount(id: $id, input: {name: \"renamed\"}, \
        expectedVersion: $v) { name version } }";
    let (_, ok, _) = graphql(app, &app.admin_key, update, json!({"id": account, "v": 1})).await;
    assert_eq!(ok["data"]["updateAccount"]["name"], "renamed", "{ok}");
    assert_eq!(ok["data"]["updateAccount"]["version"], 2);
    let (_, stale, _) = graphql(app, &app.admin_key, update, json!({"id": account, "v": 1})).await;
    assert_eq!(stale["errors"][0]["extensions"]["code"], "version_conflict", "{stale}");
    assert_eq!(stale["errors"][0]["extensions"]["status"], 412);

    let clear = "mutation($id: ID!) { updateCustomer(id: $id, input: {email: {value: null}}) { name email } }";
    let (_, cleared, _) = graphql(app, &app.admin_key, clear, json!({"id": customer})).await;
    assert_eq!(cleared["data"]["updateCustomer"]["name"], "Ada", "{cleared}");
    assert!(cleared["data"]["updateCustomer"]["email"].is_null(), "{cleared}");
    let delete = "mutation($id: ID!) { deleteCustomer(id: $id) }";
    let (_, deleted, _) = graphql(app, &app.admin_key, delete, json!({"id": customer})).await;
    assert_eq!(deleted["data"]["deleteCustomer"], customer.as_str(), "{deleted}");
    let gone = app.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(gone.status, 404);

    let hook = app
        .post(
            "/v1/webhook_endpoints",
            json!({"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}),
        )
        .await;
    assert_eq!(hook.status, 200, "{}", hook.body);
    let (_, hooks, _) = graphql(
        app,
        &app.admin_key,
        "{ webhookEndpoints(first: 5) { edges { node { id url enabledEvents status } } } }",
        json!({}),
    )
    .await;
    let node = &hooks["data"]["webhookEndpoints"]["edges"][0]["node"];
    assert_eq!(node["id"], hook.id().as_str(), "{hooks}");
    assert_eq!(node["enabledEvents"], json!(["*"]));
    assert!(!hooks.to_string().contains("whsec_"), "never the secret");
}
both!(updates_and_deletes, updates_and_deletes_case);

/// Each operation GraphQL exposes, as a document that is valid GraphQL
/// (lists ask for `first: 0`, which the page refuses: a key without the
/// permission must hear about the permission first, as on REST)
/// whatever the ids name: what the pipeline decides is then all that
/// differs from REST.
const EXPOSED: &[(&str, &str)] = &[
    ("retrieve_payment", "{ payment(id: \"pay_0\") { id } }"),
    ("list_payments", "{ payments(first: 0) { edges { cursor } } }"),
    ("retrieve_account", "{ account(id: \"acct_0\") { id } }"),
    ("list_accounts", "{ accounts(first: 0) { edges { cursor } } }"),
    ("retrieve_customer", "{ customer(id: \"cus_0\") { id } }"),
    ("list_customers", "{ customers(first: 0) { edges { cursor } } }"),
    ("retrieve_refund", "{ refund(id: \"re_0\") { id } }"),
    ("list_refunds", "{ refunds(first: 0) { edges { cursor } } }"),
    ("retrieve_event", "{ event(id: \"evt_0\") { id } }"),
    ("list_events", "{ events(first: 0) { edges { cursor } } }"),
    ("retrieve_webhook_endpoint", "{ webhookEndpoint(id: \"we_0\") { id } }"),
    (
        "list_webhook_endpoints",
        "{ webhookEndpoints(first: 0) { edges { cursor } } }",
    ),
    (
        "create_payment",
        "mutation { createPayment(input: {amount: 1, currency: \"usd\", source: \"acct_0\", destination: \"acct_1\"}) { id } }",
    ),
    ("capture_payment", "mutation { capturePayment(id: \"pay_0\") { id } }"),
    ("cancel_payment", "mutation { cancelPayment(id: \"pay_0\") { id } }"),
    (
        "create_refund",
        "mutation { createRefund(input: {payment: \"pay_0\"}) { id } }",
    ),
    (
        "create_account",
        "mutation { createAccount(input: {name: \"x\", currency: \"usd\"}) { id } }",
    ),
    (
        "update_account",
        "mutation { updateAccount(id: \"acct_0\", input: {name: \"x\"}) { id } }",
    ),
    (
        "create_customer",
        "mutation { createCustomer(input: {name: \"x\"}) { id } }",
    ),
    (
        "update_customer",
        "mutation { updateCustomer(id: \"cus_0\", input: {}) { id } }",
    ),
    ("delete_customer", "mutation { deleteCustomer(id: \"cus_0\") }"),
    (
        "list_ledger_entries",
        "{ ledgerEntries(account: \"acct_0\", first: 0) { edges { cursor } } }",
    ),
    (
        "list_webhook_deliveries",
        "{ webhookDeliveries(endpoint: \"we_0\", first: 0, status: \"failed\") { edges { cursor } } }",
    ),
    ("retrieve_webhook_delivery", "{ webhookDelivery(id: \"wd_0\") { id } }"),
    (
        "list_webhook_attempts",
        "{ webhookAttempts(delivery: \"wd_0\", first: 0) { edges { cursor } } }",
    ),
    (
        "list_webhook_replays",
        "{ webhookReplays(endpoint: \"we_0\", first: 0) { edges { cursor } } }",
    ),
    ("list_api_keys", "{ apiKeys(first: 0) { edges { cursor } } }"),
    ("retrieve_api_key", "{ apiKey(id: \"key_0\") { id } }"),
    ("list_roles", "{ roles(first: 0) { edges { cursor } } }"),
    ("retrieve_role", "{ role(id: \"role_0\") { id } }"),
    ("list_policies", "{ policies(first: 0) { edges { cursor } } }"),
    ("retrieve_policy", "{ policy(id: \"pol_0\") { id } }"),
    ("list_audit_events", "{ auditEvents(first: 0) { edges { cursor } } }"),
    (
        "create_webhook_endpoint",
        "mutation { createWebhookEndpoint(input: {url: \"http://127.0.0.1:9/x\", enabledEvents: [\"*\"]}) { secret } }",
    ),
    (
        "update_webhook_endpoint",
        "mutation { updateWebhookEndpoint(id: \"we_0\", input: {}) { id } }",
    ),
    (
        "delete_webhook_endpoint",
        "mutation { deleteWebhookEndpoint(id: \"we_0\") }",
    ),
    (
        "rotate_webhook_secret",
        "mutation { rotateWebhookSecret(id: \"we_0\") { secret } }",
    ),
    (
        "replay_webhooks",
        "mutation { replayWebhooks(id: \"we_0\", since: 0) { id } }",
    ),
    (
        "retry_webhook_delivery",
        "mutation { retryWebhookDelivery(id: \"wd_0\") { id } }",
    ),
    ("send_webhook_test", "mutation { sendWebhookTest(id: \"we_0\") { id } }"),
    (
        "create_api_key",
        "mutation { createApiKey(input: {name: \"x\", role: \"viewer\"}) { secret } }",
    ),
    ("revoke_api_key", "mutation { revokeApiKey(id: \"key_0\") { id } }"),
    (
        "create_role",
        "mutation { createRole(input: {name: \"x\", permissions: [\"accounts:read\"]}) { id } }",
    ),
    (
        "update_role",
        "mutation { updateRole(id: \"role_0\", input: {}) { id } }",
    ),
    ("delete_role", "mutation { deleteRole(id: \"role_0\") }"),
    (
        "create_policy",
        "mutation { createPolicy(input: {name: \"x\", policy: \"not cedar\"}) { id } }",
    ),
    (
        "update_policy",
        "mutation { updatePolicy(id: \"pol_0\", input: {status: \"bogus\"}) { id } }",
    ),
    ("delete_policy", "mutation { deletePolicy(id: \"pol_0\") }"),
];

/// For every operation GraphQL exposes and every built-in role, the key is
/// let in or refused alike on both faces, and a refusal names the same
/// permission; generated from the operation registry.
async fn the_same_key_gets_the_same_answer_on_both_faces_case(app: &TestApp) {
    use settle_core::pipeline::registry::by_name;
    let mut checked = 0;
    for role in ["admin", "developer", "viewer"] {
        let key = app.key(role).await;
        for (operation, document) in EXPOSED {
            let spec = by_name(operation).unwrap_or_else(|| panic!("{operation} is not registered"));
            let rest = app.operation_as(operation, &key).await;
            let rest_denied = rest.status == 403;
            let (_, body, _) = graphql(app, &key, document, json!({})).await;
            let code = body["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let graphql_denied = code == "permission_denied";
            assert_eq!(
                rest_denied, graphql_denied,
                "{role} {operation}: REST {} {}, GraphQL {body}",
                rest.status, rest.body
            );
            if graphql_denied {
                let message = body["errors"][0]["message"].as_str().unwrap_or_default();
                assert!(message.contains(&spec.permission.to_string()), "{operation}: {message}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, EXPOSED.len() * 3);
}
both!(
    the_same_key_gets_the_same_answer_on_both_faces,
    the_same_key_gets_the_same_answer_on_both_faces_case
);

/// Every registered operation is in [`EXPOSED`], so the parity above
/// covers each one, but for those GraphQL leaves to REST on purpose.
#[test]
fn every_operation_is_exposed_or_left_out_on_purpose() {
    const LEFT_TO_REST: &[&str] = &[
        // A text document (the Cedar schema), not an object.
        "policy_schema",
        // An operator's view of the queue, served to the dashboard.
        "queue_summary",
        // The dashboard's overview of deliveries, likewise.
        "webhook_stats",
    ];
    for spec in settle_core::pipeline::registry::ALL {
        let exposed = EXPOSED.iter().any(|(name, _)| *name == spec.name);
        assert!(
            exposed != LEFT_TO_REST.contains(&spec.name),
            "{}: exposed on GraphQL {exposed}, left to REST {}",
            spec.name,
            LEFT_TO_REST.contains(&spec.name)
        );
    }
    assert_eq!(
        EXPOSED.len() + LEFT_TO_REST.len(),
        settle_core::pipeline::registry::ALL.len()
    );
}
