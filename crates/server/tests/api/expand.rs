//! `expand[]` on REST reads, black-box: expanded fields are the objects a
//! GET of each returns and nothing else changes; lists expand every item
//! and page as before; paths are checked (relation, `data.`, four levels);
//! an object the key may not read is a 403, never an id left in place; the
//! loads are batched (statement counts fixed whatever the page size); and
//! an expanded `ETag` follows the expanded objects while `If-Match` still
//! compares the version.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use settle::config::Config;

use crate::support::{Backend, Resp, TestApp, both, run_config};

/// A payment with a customer, from an account of another customer.
struct Fixture {
    customer: String,
    /// Owned by `source_owner`; may go negative, so nothing needs funding.
    source: String,
    source_owner: String,
    destination: String,
    payment: String,
}

async fn created(app: &TestApp, path: &str, body: Value) -> String {
    let r = app.post(path, body).await;
    assert_eq!(r.status, 200, "POST {path}: {}", r.body);
    r.id()
}

async fn fixture(app: &TestApp, n: usize) -> Fixture {
    let customer = created(
        app,
        "/v1/customers",
        json!({"name": format!("payer {n}"), "email": format!("payer{n}@example.com")}),
    )
    .await;
    let source_owner = created(app, "/v1/customers", json!({"name": format!("owner {n}")})).await;
    let source = created(
        app,
        "/v1/accounts",
        json!({"name": format!("source {n}"), "currency": "usd", "allow_negative": true, "customer": source_owner}),
    )
    .await;
    let destination = created(
        app,
        "/v1/accounts",
        json!({"name": format!("destination {n}"), "currency": "usd"}),
    )
    .await;
    let payment = created(
        app,
        "/v1/payments",
        json!({"amount": 1_000 + n, "currency": "usd", "source": source, "destination": destination,
               "customer": customer, "description": format!("order {n}"), "metadata": {"n": n.to_string()}}),
    )
    .await;
    Fixture {
        customer,
        source,
        source_owner,
        destination,
        payment,
    }
}

async fn ok(app: &TestApp, path: &str) -> Resp {
    let r = app.get(path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r
}

/// What a plain GET of the object `id` (by its prefix) returns.
async fn object(app: &TestApp, id: &str) -> Value {
    let route = match id.split_once('_').map(|(prefix, _)| prefix) {
        Some("cus") => "customers",
        Some("acct") => "accounts",
        Some("pay") => "payments",
        Some("re") => "refunds",
        _ => panic!("no route for {id}"),
    };
    ok(app, &format!("/v1/{route}/{id}")).await.body
}

/// Checks `expanded` is `plain` with each of `fields` replaced by the
/// object its id names, as a GET of that object returns it.
async fn assert_expanded(app: &TestApp, plain: &Value, expanded: &Value, fields: &[&str]) {
    let mut rest = expanded.clone();
    for field in fields {
        let id = plain[field]
            .as_str()
            .unwrap_or_else(|| panic!("`{field}` of {plain} is not an id"));
        assert_eq!(expanded[field], object(app, id).await, "`{field}` of {expanded}");
        rest[field] = plain[field].clone();
    }
    assert_eq!(&rest, plain, "only the expanded fields change");
}

const ALL3: &str = "expand[]=customer&expand[]=source&expand[]=destination";
const DATA3: &str = "expand[]=data.customer&expand[]=data.source&expand[]=data.destination";

both!(retrieve_expands_to_full_objects, retrieve_case);
async fn retrieve_case(app: &TestApp) {
    let f = fixture(app, 1).await;
    let path = format!("/v1/payments/{}", f.payment);
    let plain = ok(app, &path).await.body;
    assert_eq!(
        (&plain["customer"], &plain["source"], &plain["destination"]),
        (&json!(f.customer), &json!(f.source), &json!(f.destination)),
        "without expand the relations are ids"
    );
    let expanded = ok(app, &format!("{path}?{ALL3}")).await.body;
    assert_expanded(app, &plain, &expanded, &["customer", "source", "destination"]).await;
    // Expanded one at a time, the others stay ids.
    let one = ok(app, &format!("{path}?expand[]=source")).await.body;
    assert_expanded(app, &plain, &one, &["source"]).await;
    // An expanded account shows its own customer as an id unless asked.
    assert_eq!(one["source"]["customer"], f.source_owner.as_str());
    let nested = ok(app, &format!("{path}?expand[]=source.customer")).await.body;
    assert_eq!(nested["source"]["customer"], object(app, &f.source_owner).await);
    assert_eq!(nested["customer"], f.customer.as_str());
}

both!(list_expands_every_item, list_case);
async fn list_case(app: &TestApp) {
    let mut fixtures = Vec::new();
    for n in 0..5 {
        fixtures.push(fixture(app, n).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&starting_after={c}"));
        let plain = ok(app, &format!("/v1/payments?limit=2{after}")).await.body;
        let expanded = ok(app, &format!("/v1/payments?limit=2{after}&{DATA3}")).await.body;
        for key in ["object", "has_more", "url"] {
            assert_eq!(expanded[key], plain[key], "`{key}` of a page is unchanged");
        }
        let (p, e) = (plain["data"].as_array().unwrap(), expanded["data"].as_array().unwrap());
        assert_eq!(p.len(), e.len(), "{expanded}");
        for (p, e) in p.iter().zip(e) {
            assert_expanded(app, p, e, &["customer", "source", "destination"]).await;
            seen.push(p["id"].as_str().unwrap().to_owned());
        }
        if plain["has_more"] == false {
            break;
        }
        cursor = seen.last().cloned();
    }
    let mut made: Vec<String> = fixtures.iter().map(|f| f.payment.clone()).collect();
    made.reverse();
    assert_eq!(seen, made, "every payment once, newest first");
}

both!(nested_expansion, nested_case);
async fn nested_case(app: &TestApp) {
    let mut refunds = Vec::new();
    let mut fixtures = Vec::new();
    for n in 0..3 {
        let f = fixture(app, n).await;
        refunds.push(created(app, "/v1/refunds", json!({"payment": f.payment, "amount": 100})).await);
        fixtures.push(f);
    }
    let (f, refund) = (&fixtures[0], &refunds[0]);

    // One refund: payment → its source account → that account's customer.
    let path = format!("/v1/refunds/{refund}");
    let plain = ok(app, &path).await.body;
    let expanded = ok(app, &format!("{path}?expand[]=payment.source.customer")).await.body;
    let mut payment = object(app, &f.payment).await;
    let mut source = object(app, &f.source).await;
    source["customer"] = object(app, &f.source_owner).await;
    payment["source"] = source;
    let mut want = plain.clone();
    want["payment"] = payment;
    assert_eq!(expanded, want, "only the path asked for is expanded");

    // A page of refunds, four levels counting `data`.
    let page = ok(app, "/v1/refunds?expand[]=data.payment.source.customer").await.body;
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "{page}");
    for (item, f) in data.iter().zip(fixtures.iter().rev()) {
        assert_eq!(item["payment"]["id"], f.payment.as_str(), "{item}");
        assert_eq!(item["payment"]["source"]["id"], f.source.as_str(), "{item}");
        assert_eq!(
            item["payment"]["source"]["customer"],
            object(app, &f.source_owner).await,
            "{item}"
        );
        assert_eq!(item["payment"]["customer"], f.customer.as_str(), "not asked: an id");
        assert_eq!(
            item["payment"]["destination"],
            f.destination.as_str(),
            "not asked: an id"
        );
    }

    // Ledger entries: the payment's entry and the refund's, on the destination.
    let entries_path = format!("/v1/accounts/{}/entries", f.destination);
    let plain = ok(app, &entries_path).await.body;
    let expanded = ok(
        app,
        &format!("{entries_path}?expand[]=data.payment&expand[]=data.refund&expand[]=data.account"),
    )
    .await
    .body;
    let (p, e) = (plain["data"].as_array().unwrap(), expanded["data"].as_array().unwrap());
    assert_eq!(p.len(), 2, "{plain}");
    assert_eq!(p.len(), e.len(), "{expanded}");
    let mut expanded_payments = 0;
    for (p, e) in p.iter().zip(e) {
        let fields: Vec<&str> = ["account", "payment", "refund"]
            .into_iter()
            .filter(|field| p[field].is_string())
            .collect();
        assert_expanded(app, p, e, &fields).await;
        for field in ["payment", "refund"] {
            if p[field].is_null() {
                assert!(e[field].is_null(), "an absent relation stays null: {e}");
            }
        }
        expanded_payments += usize::from(e["payment"]["id"] == f.payment.as_str());
    }
    assert!(
        expanded_payments >= 1,
        "the payment's entry shows the payment: {expanded}"
    );
    let only_payment = ok(app, &format!("{entries_path}?expand[]=data.payment")).await.body;
    for (p, e) in p.iter().zip(only_payment["data"].as_array().unwrap()) {
        let fields: &[&str] = if p["payment"].is_string() { &["payment"] } else { &[] };
        assert_expanded(app, p, e, fields).await;
    }
}

/// A 400 about `expand`, saying nothing of the objects it would have shown.
fn assert_refused(r: &Resp, secrets: &[&str]) {
    r.assert_error(400, "invalid_request_error", "parameter_invalid");
    assert_eq!(r.body["error"]["param"], "expand", "{}", r.body);
    assert_only_an_error(r, secrets);
}

/// The body is `{"error": {...}}` alone, and none of `secrets` is in it.
fn assert_only_an_error(r: &Resp, secrets: &[&str]) {
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error"], "{}", r.body);
    let mut fields: Vec<&String> = r.body["error"].as_object().unwrap().keys().collect();
    fields.sort();
    assert!(
        fields
            .iter()
            .all(|f| ["code", "message", "param", "request_id", "type"].contains(&f.as_str())),
        "{}",
        r.body
    );
    let text = r.body.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "`{secret}` leaked: {text}");
    }
}

both!(bad_paths_are_refused, bad_paths_case);
async fn bad_paths_case(app: &TestApp) {
    let f = fixture(app, 7).await;
    let refund = created(app, "/v1/refunds", json!({"payment": f.payment, "amount": 10})).await;
    let secrets = ["payer 7", "payer7@example.com", "owner 7", "source 7", "destination 7"];
    let payment = format!("/v1/payments/{}", f.payment);
    let entries = format!("/v1/accounts/{}/entries", f.source);
    for path in [
        // Not a relation.
        format!("{payment}?expand[]=amount"),
        format!("{payment}?expand[]=customer&expand[]=amount"),
        format!("{payment}?expand[]=customer.email"),
        format!("{payment}?expand[]="),
        "/v1/payments?expand[]=data.amount".to_owned(),
        // A list's path without `data.`, and `data` alone.
        "/v1/payments?expand[]=customer".to_owned(),
        "/v1/payments?expand[]=data.customer&expand[]=source".to_owned(),
        "/v1/payments?expand[]=data".to_owned(),
        "/v1/refunds?expand[]=payment".to_owned(),
        format!("{entries}?expand[]=payment"),
        // `data.` on a single object.
        format!("{payment}?expand[]=data.customer"),
        // Five levels, every step a relation.
        format!("{entries}?expand[]=data.refund.payment.source.customer"),
        format!("/v1/refunds/{refund}?expand[]=payment.source.customer.x.y"),
    ] {
        let r = app.get(&path).await;
        assert!(r.status == 400, "GET {path}: {} {}", r.status, r.body);
        assert_refused(&r, &secrets);
    }
    // Four levels on the same list is fine.
    ok(app, &format!("{entries}?expand[]=data.refund.payment.source")).await;
}

/// A key whose role has exactly `permissions`, made over REST.
async fn key_with(app: &TestApp, role: &str, permissions: &[&str]) -> String {
    created(app, "/v1/roles", json!({"name": role, "permissions": permissions})).await;
    let r = app
        .post("/v1/api_keys", json!({"name": format!("{role} key"), "role": role}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["secret"].as_str().unwrap().to_owned()
}

async fn get_as(app: &TestApp, key: &str, path: &str) -> Resp {
    app.call(Method::GET, path, Some(key), None).await
}

fn assert_denied(r: &Resp, permission: &str, secrets: &[&str]) {
    r.assert_error(403, "permission_error", "permission_denied");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(permission), "names `{permission}`: {message}");
    assert_only_an_error(r, secrets);
}

both!(expansion_needs_the_read_permission, permissions_case);
async fn permissions_case(app: &TestApp) {
    let f = fixture(app, 3).await;
    let refund = created(app, "/v1/refunds", json!({"payment": f.payment, "amount": 10})).await;
    let key = key_with(app, "payments_reader", &["payments:read"]).await;
    let secrets = ["payer 3", "payer3@example.com", "owner 3", "source 3", "destination 3"];
    let path = format!("/v1/payments/{}", f.payment);

    let r = get_as(app, &key, &path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["customer"], f.customer.as_str());
    for (query, permission) in [
        ("expand[]=customer", "customers:read"),
        ("expand[]=source", "accounts:read"),
        ("expand[]=destination", "accounts:read"),
        ("expand[]=source.customer", "accounts:read"),
    ] {
        let r = get_as(app, &key, &format!("{path}?{query}")).await;
        assert_denied(&r, permission, &secrets);
        let r = get_as(app, &key, &format!("/v1/payments?{}", query.replace("=", "=data."))).await;
        assert_denied(&r, permission, &secrets);
    }
    // Reading the account but not its customer: the second level is refused.
    let key = key_with(app, "payments_and_accounts", &["payments:read", "accounts:read"]).await;
    let r = get_as(app, &key, &format!("{path}?expand[]=source")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["source"]["id"], f.source.as_str());
    let r = get_as(app, &key, &format!("{path}?expand[]=source.customer")).await;
    assert_denied(&r, "customers:read", &secrets);
    // Refunds and entries follow the same rule.
    let key = key_with(app, "refunds_reader", &["refunds:read", "accounts:read"]).await;
    let r = get_as(app, &key, &format!("/v1/refunds/{refund}?expand[]=payment")).await;
    assert_denied(&r, "payments:read", &secrets);
    let r = get_as(
        app,
        &key,
        &format!("/v1/accounts/{}/entries?expand[]=data.payment", f.source),
    )
    .await;
    assert_denied(&r, "payments:read", &secrets);
}

async fn policy(app: &TestApp, name: &str, text: &str) {
    let r = app.post("/v1/policies", json!({"name": name, "policy": text})).await;
    assert_eq!(r.status, 200, "{text}: {}", r.body);
}

both!(policy_forbids_one_expanded_account, policy_account_case);
async fn policy_account_case(app: &TestApp) {
    let hidden = fixture(app, 1).await;
    let shown = fixture(app, 2).await;
    policy(
        app,
        "hide one account",
        &format!(
            r#"forbid(principal, action == Action::"accounts:read", resource) when {{ resource.account == "{}" }};"#,
            hidden.source
        ),
    )
    .await;
    let secrets = ["owner 1", "source 1"];
    let r = app
        .get(&format!("/v1/payments/{}?expand[]=source", hidden.payment))
        .await;
    r.assert_error(403, "permission_error", "policy_denied");
    assert_only_an_error(&r, &secrets);
    // Its other relations, and another payment's accounts, still expand.
    let r = ok(
        app,
        &format!("/v1/payments/{}?expand[]=destination&expand[]=customer", hidden.payment),
    )
    .await;
    assert_eq!(r.body["destination"]["id"], hidden.destination.as_str());
    let r = ok(app, &format!("/v1/payments/{}?{ALL3}", shown.payment)).await;
    assert_eq!(r.body["source"]["id"], shown.source.as_str());
    // A page holding it is refused as a whole, not served with a hole.
    let r = app.get(&format!("/v1/payments?{DATA3}")).await;
    r.assert_error(403, "permission_error", "policy_denied");
    assert_only_an_error(&r, &secrets);
}

both!(policy_forbids_expanded_customers, policy_customers_case);
async fn policy_customers_case(app: &TestApp) {
    let f = fixture(app, 1).await;
    let key = key_with(app, "support_desk", &["payments:read", "customers:read"]).await;
    let path = format!("/v1/payments/{}", f.payment);
    ok(app, &format!("{path}?expand[]=customer")).await;
    policy(
        app,
        "desk sees no customers",
        r#"forbid(principal, action == Action::"customers:read", resource) when { principal.role == "support_desk" };"#,
    )
    .await;
    let secrets = ["payer 1", "payer1@example.com"];
    let r = get_as(app, &key, &path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["customer"], f.customer.as_str());
    for path in [
        format!("{path}?expand[]=customer"),
        "/v1/payments?expand[]=data.customer".to_owned(),
    ] {
        let r = get_as(app, &key, &path).await;
        r.assert_error(403, "permission_error", "policy_denied");
        assert_only_an_error(&r, &secrets);
    }
    // Other keys are not concerned.
    let r = ok(app, &format!("{path}?expand[]=customer")).await;
    assert_eq!(r.body["customer"]["id"], f.customer.as_str());
}

// A policy can single out one customer by its id (`resource.id`): that
// customer is refused on GET and in an expansion alike, the others not.
both!(policy_forbids_one_expanded_customer, policy_one_customer_case);

async fn policy_one_customer_case(app: &TestApp) {
    let hidden = fixture(app, 1).await;
    let shown = fixture(app, 2).await;
    policy(
        app,
        "hide one customer",
        &format!(
            r#"forbid(principal, action == Action::"customers:read", resource) when {{ resource.id == "{}" }};"#,
            hidden.customer
        ),
    )
    .await;
    let r = ok(app, &format!("/v1/payments/{}?expand[]=customer", shown.payment)).await;
    assert_eq!(r.body["customer"]["id"], shown.customer.as_str());
    let secrets = ["payer 1", "payer1@example.com"];
    for path in [
        format!("/v1/customers/{}", hidden.customer),
        format!("/v1/payments/{}?expand[]=customer", hidden.payment),
    ] {
        let r = app.get(&path).await;
        r.assert_error(403, "permission_error", "policy_denied");
        assert_only_an_error(&r, &secrets);
    }
}

/// The `Settle-Statements` of a successful GET, and its body.
async fn counted(app: &TestApp, path: &str) -> (u64, Value) {
    let r = ok(app, path).await;
    let n = r
        .headers
        .get("settle-statements")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Settle-Statements header");
    (n, r.body)
}

/// Keys and policies cached for the whole case, so the counts are the reads' own.
async fn with_warm_caches(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    let config = Config {
        statement_header: true,
        auth_cache_ttl: Duration::from_secs(3600),
        ..Config::default()
    };
    run_config(backend, config, case).await
}

both!(expansion_is_batched, batched_case, super::with_warm_caches);
async fn batched_case(app: &TestApp) {
    let mut fixtures = Vec::new();
    for n in 0..100 {
        fixtures.push(fixture(app, n).await);
    }
    for f in &fixtures[..30] {
        created(app, "/v1/refunds", json!({"payment": f.payment, "amount": 1})).await;
    }
    counted(app, "/v1/payments?limit=1").await; // warms the key and policy caches

    let (plain_100, _) = counted(app, "/v1/payments?limit=100").await;
    let (plain_10, _) = counted(app, "/v1/payments?limit=10").await;
    let (expanded_100, page_100) = counted(app, &format!("/v1/payments?limit=100&{DATA3}")).await;
    let (expanded_10, page_10) = counted(app, &format!("/v1/payments?limit=10&{DATA3}")).await;
    for (page, len) in [(&page_100, 100), (&page_10, 10)] {
        let data = page["data"].as_array().unwrap();
        assert_eq!(data.len(), len);
        for item in data {
            for field in ["customer", "source", "destination"] {
                assert!(item[field]["id"].is_string(), "`{field}` expanded: {item}");
            }
        }
    }
    let counts = format!(
        "payments: plain limit=100 {plain_100}, limit=10 {plain_10}; expanded limit=100 {expanded_100}, limit=10 {expanded_10}"
    );
    assert_eq!(plain_100, plain_10, "{counts}");
    assert_eq!(expanded_100, expanded_10, "fixed whatever the page size: {counts}");
    assert!(
        expanded_100 <= plain_100 + 2,
        "one statement per kind (customers, accounts): {counts}"
    );

    // Three levels of refunds: payments; accounts and the payments'
    // customers; the accounts' customers: one statement each.
    let deep = "expand[]=data.payment.source.customer&expand[]=data.payment.customer";
    let (refunds_plain, _) = counted(app, "/v1/refunds?limit=30").await;
    let (refunds_30, page_30) = counted(app, &format!("/v1/refunds?limit=30&{deep}")).await;
    let (refunds_3, _) = counted(app, &format!("/v1/refunds?limit=3&{deep}")).await;
    let data = page_30["data"].as_array().unwrap();
    assert_eq!(data.len(), 30);
    assert!(
        data.iter()
            .all(|r| r["payment"]["source"]["customer"]["id"].is_string() && r["payment"]["customer"]["id"].is_string()),
        "{page_30}"
    );
    let counts = format!(
        "{counts}; refunds: plain limit=30 {refunds_plain}, expanded limit=30 {refunds_30}, limit=3 {refunds_3}"
    );
    assert_eq!(refunds_30, refunds_3, "{counts}");
    assert!(
        refunds_30 <= refunds_plain + 4,
        "one statement per kind per level: {counts}"
    );
    eprintln!("{:?}: {counts}", app.db.backend);
}

async fn patch_if_match(app: &TestApp, path: &str, tag: &str, name: &str) -> Resp {
    let req = app
        .client
        .patch(app.url(path))
        .bearer_auth(&app.admin_key)
        .header("if-match", tag)
        .json(&json!({"name": name}));
    Resp::read(req.send().await.unwrap()).await
}

both!(expanded_etag, etag_case);
async fn etag_case(app: &TestApp) {
    let f = fixture(app, 1).await;
    let etag = |r: &Resp| r.headers["etag"].to_str().unwrap().to_owned();
    let path = format!("/v1/payments/{}", f.payment);
    let expanded_path = format!("{path}?expand[]=customer");

    let plain = etag(&ok(app, &path).await);
    let expanded = etag(&ok(app, &expanded_path).await);
    assert!(plain.starts_with("\"1-"), "{plain}");
    assert_ne!(expanded, plain);
    assert!(expanded.starts_with("\"1-"), "the version comes first: {expanded}");
    assert_eq!(
        etag(&ok(app, &expanded_path).await),
        expanded,
        "stable while nothing changes"
    );

    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/customers/{}", f.customer),
            Some(&app.admin_key),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = ok(app, &expanded_path).await;
    assert_eq!(after.body["customer"]["name"], "renamed");
    let changed = etag(&after);
    assert_ne!(changed, expanded, "the customer changed");
    assert!(changed.starts_with("\"1-"), "{changed}");
    assert_eq!(etag(&ok(app, &path).await), plain, "the payment itself did not change");

    // `If-Match` with an expanded ETag compares the version.
    let account = format!("/v1/accounts/{}", f.source);
    let tag = etag(&ok(app, &format!("{account}?expand[]=customer")).await);
    assert!(tag.starts_with("\"1-"), "{tag}");
    let r = patch_if_match(app, &account, &tag, "first").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["version"], 2);
    let r = patch_if_match(app, &account, &tag, "second").await;
    r.assert_error(412, "invalid_request_error", "version_conflict");
    assert_eq!(ok(app, &account).await.body["name"], "first");
}

/// An operation whose answer has nothing to expand refuses `expand[]`
/// instead of ignoring it (a client would believe it got what it asked).
async fn expand_where_nothing_expands_case(app: &TestApp) {
    let f = fixture(app, 1).await;
    for path in [
        format!("/v1/customers/{}?expand[]=account", f.customer),
        "/v1/customers?expand[]=data.x".to_owned(),
        "/v1/events?expand[]=data.object".to_owned(),
    ] {
        let r = app.get(&path).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        assert_eq!(r.body["error"]["param"], "expand", "{path}: {}", r.body);
    }
    let r = app
        .post(
            "/v1/customers?expand[]=customer",
            serde_json::json!({"name": "not created"}),
        )
        .await;
    r.assert_error(400, "invalid_request_error", "parameter_invalid");
    let customers = ok(app, "/v1/customers?limit=100").await;
    assert!(
        customers.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "not created"),
        "a refused request changes nothing"
    );
}
both!(expand_where_nothing_expands, expand_where_nothing_expands_case);
