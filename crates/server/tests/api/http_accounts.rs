//! Proves the `/v1/accounts` routes over HTTP, black-box: opening, reading (with `ETag`), listing, editing name and metadata, listing ledger entries, and every 4xx each route can answer.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Resp, TestApp, both};

/// Well-formed ids that name nothing.
const NO_ACCOUNT: &str = "acct_01M8FQ6ZTWESP8TXJ5FPWECSQ1";
const NO_CUSTOMER: &str = "cus_01M8FQ6ZTWESP8TXJ5FPWECSQ1";

async fn patch(app: &TestApp, path: &str, body: Value) -> Resp {
    app.call(Method::PATCH, path, Some(&app.admin_key), Some(body)).await
}

fn etag(r: &Resp) -> String {
    r.headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no ETag in {:?}", r.headers))
        .to_owned()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("present")
        .as_secs() as i64
}

/// Asserts a 400 `invalid_request_error` with `code` and `param`.
fn assert_400(r: &Resp, code: &str, param: &str) {
    r.assert_error(400, "invalid_request_error", code);
    assert_eq!(r.body["error"]["param"], param, "body: {}", r.body);
}

/// Every id that must read as "names nothing" in a path: well-formed but
/// unknown, malformed, of another type, and empty after the prefix.
fn missing_path_ids() -> Vec<String> {
    vec![
        NO_ACCOUNT.to_owned(),
        "acct_nope".to_owned(),
        NO_CUSTOMER.to_owned(),
        "pay_01M8FQ6ZTWESP8TXJ5FPWECSQ1".to_owned(),
        "acct_".to_owned(),
        "01M8FQ6ZTWESP8TXJ5FPWECSQ1".to_owned(),
        // 27 characters and a character outside Crockford's alphabet.
        "acct_01M8FQ6ZTWESP8TXJ5FPWECSQ12".to_owned(),
        "acct_01M8FQ6ZTWESP8TXJ5FPWECSQU".to_owned(),
    ]
}

both!(create_returns_the_account, create_returns_the_account_case);
async fn create_returns_the_account_case(app: &TestApp) {
    let before = now_secs();
    let r = app
        .post("/v1/accounts", json!({"name": "Operating", "currency": "usd"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = &r.body;
    let id = b["id"].as_str().expect("present");
    assert!(id.starts_with("acct_") && id.len() == "acct_".len() + 26, "{id}");
    assert_eq!(b["object"], "account");
    assert_eq!(b["name"], "Operating");
    assert_eq!(b["currency"], "usd");
    assert_eq!(b["balance"], 0);
    assert_eq!(b["pending_out"], 0);
    assert_eq!(b["available"], 0);
    assert_eq!(b["allow_negative"], false, "allow_negative defaults to false");
    assert_eq!(b["customer"], Value::Null);
    assert_eq!(b["metadata"], json!({}));
    assert_eq!(b["version"], 1);
    let created = b["created"].as_i64().expect("present");
    assert!(
        created >= before - 1 && created <= now_secs() + 1,
        "created {created} is not now"
    );
    assert!(etag(&r).starts_with("\"1-"), "{}", etag(&r));
}

both!(
    create_with_customer_and_metadata,
    create_with_customer_and_metadata_case
);
async fn create_with_customer_and_metadata_case(app: &TestApp) {
    let customer = app.post("/v1/customers", json!({"name": "Ada"})).await.id();
    let r = app
        .post(
            "/v1/accounts",
            json!({"name": "Bank", "currency": "jpy", "allow_negative": true, "customer": customer,
                   "metadata": {"team": "ops", "k".repeat(40): "v".repeat(500)}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["currency"], "jpy");
    assert_eq!(r.body["allow_negative"], true);
    assert_eq!(r.body["customer"], customer.as_str());
    assert_eq!(r.body["metadata"]["team"], "ops");
    assert_eq!(
        r.body["metadata"]["k".repeat(40)],
        "v".repeat(500),
        "the limits themselves are allowed"
    );

    // Fifty keys is the limit, not past it.
    let fifty: serde_json::Map<String, Value> = (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = app
        .post(
            "/v1/accounts",
            json!({"name": "Fifty", "currency": "usd", "metadata": fifty}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["metadata"].as_object().expect("present").len(), 50);
}

both!(
    retrieve_returns_the_same_account_with_etag,
    retrieve_returns_the_same_account_with_etag_case
);
async fn retrieve_returns_the_same_account_with_etag_case(app: &TestApp) {
    let created = app
        .post(
            "/v1/accounts",
            json!({"name": "a", "currency": "eur", "metadata": {"x": "1"}}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.id();
    let r = app.get(&format!("/v1/accounts/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, created.body);
    assert!(etag(&r).starts_with("\"1-"), "{}", etag(&r));
    // Lower-case base32 names the same account.
    let lower = format!("acct_{}", id.trim_start_matches("acct_").to_ascii_lowercase());
    let r = app.get(&format!("/v1/accounts/{lower}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], id.as_str());
}

both!(unknown_ids_in_the_path_are_404, unknown_ids_in_the_path_are_404_case);
async fn unknown_ids_in_the_path_are_404_case(app: &TestApp) {
    // A real account exists, so "names nothing" is not "the table is empty".
    app.account("real", "usd", false).await;
    for id in missing_path_ids() {
        let r = app.get(&format!("/v1/accounts/{id}")).await;
        r.assert_error(404, "invalid_request_error", "resource_missing");
        assert!(
            r.body["error"].get("param").is_none(),
            "a path id carries no param: {}",
            r.body
        );
        let r = patch(app, &format!("/v1/accounts/{id}"), json!({"name": "x"})).await;
        r.assert_error(404, "invalid_request_error", "resource_missing");
        let r = app.get(&format!("/v1/accounts/{id}/entries")).await;
        r.assert_error(404, "invalid_request_error", "resource_missing");
    }
}

both!(
    list_is_newest_first_and_paginates,
    list_is_newest_first_and_paginates_case
);
async fn list_is_newest_first_and_paginates_case(app: &TestApp) {
    let empty = app.get("/v1/accounts").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(
        empty.body,
        json!({"object": "list", "data": [], "has_more": false, "url": "/v1/accounts"})
    );

    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(app.account(&format!("a{i}"), "usd", false).await);
    }
    let r = app.get("/v1/accounts").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["object"], "list");
    assert_eq!(r.body["url"], "/v1/accounts");
    assert_eq!(r.body["has_more"], false);
    let got: Vec<&str> = r.body["data"]
        .as_array()
        .expect("present")
        .iter()
        .map(|a| a["id"].as_str().expect("present"))
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(got, newest_first);
    assert!(
        r.body["data"]
            .as_array()
            .expect("present")
            .iter()
            .all(|a| a["object"] == "account")
    );

    let page = app.get("/v1/accounts?limit=2").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["has_more"], true);
    assert_eq!(page.body["data"].as_array().expect("present").len(), 2);
    let next = app
        .get(&format!("/v1/accounts?limit=2&starting_after={}", ids[1]))
        .await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_eq!(next.body["has_more"], false);
    assert_eq!(next.body["data"][0]["id"], ids[0].as_str());
}

both!(list_filters_by_customer, list_filters_by_customer_case);
async fn list_filters_by_customer_case(app: &TestApp) {
    let customer = app.post("/v1/customers", json!({"name": "Ada"})).await.id();
    let hers = app
        .post(
            "/v1/accounts",
            json!({"name": "hers", "currency": "usd", "customer": customer}),
        )
        .await
        .id();
    app.account("other", "usd", false).await;
    let r = app.get(&format!("/v1/accounts?customer={customer}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let data = r.body["data"].as_array().expect("present");
    assert_eq!(data.len(), 1, "{}", r.body);
    assert_eq!(data[0]["id"], hers.as_str());

    let r = app.get(&format!("/v1/accounts?customer={NO_CUSTOMER}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"], json!([]));
    let r = app.get("/v1/accounts?customer=cus_nope").await;
    assert_400(&r, "resource_missing", "customer");
}

both!(
    create_refuses_a_customer_that_names_nothing,
    create_refuses_a_customer_that_names_nothing_case
);
async fn create_refuses_a_customer_that_names_nothing_case(app: &TestApp) {
    let account = app.account("an account", "usd", false).await;
    for customer in [NO_CUSTOMER, "cus_nope", account.as_str(), ""] {
        let r = app
            .post(
                "/v1/accounts",
                json!({"name": "a", "currency": "usd", "customer": customer}),
            )
            .await;
        assert_400(&r, "resource_missing", "customer");
    }
    let list = app.get("/v1/accounts").await;
    assert_eq!(
        list.body["data"].as_array().expect("present").len(),
        1,
        "a refused create wrote nothing: {}",
        list.body
    );
}

both!(create_refuses_bad_currencies, create_refuses_bad_currencies_case);
async fn create_refuses_bad_currencies_case(app: &TestApp) {
    for currency in ["USD", "xyz", "", "us", "usdd", " usd"] {
        let r = app
            .post("/v1/accounts", json!({"name": "a", "currency": currency}))
            .await;
        assert_400(&r, "parameter_invalid", "currency");
    }
}

both!(create_refuses_bad_names, create_refuses_bad_names_case);
async fn create_refuses_bad_names_case(app: &TestApp) {
    for name in ["".to_owned(), "   ".to_owned(), "x".repeat(201), "a\u{0}b".to_owned()] {
        let r = app.post("/v1/accounts", json!({"name": name, "currency": "usd"})).await;
        assert_400(&r, "parameter_invalid", "name");
    }
    let r = app
        .post("/v1/accounts", json!({"name": "x".repeat(200), "currency": "usd"}))
        .await;
    assert_eq!(r.status, 200, "200 characters is allowed: {}", r.body);
}

both!(
    create_refuses_oversized_metadata,
    create_refuses_oversized_metadata_case
);
async fn create_refuses_oversized_metadata_case(app: &TestApp) {
    let many: serde_json::Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        json!(many),
        json!({"k".repeat(41): "v"}),
        json!({"k": "v".repeat(501)}),
        json!({"": "v"}),
    ];
    for metadata in cases {
        let r = app
            .post(
                "/v1/accounts",
                json!({"name": "a", "currency": "usd", "metadata": metadata}),
            )
            .await;
        assert_400(&r, "parameter_invalid", "metadata");
    }
}

both!(
    create_refuses_wrong_types_and_missing_fields,
    create_refuses_malformed_bodies_case
);
async fn create_refuses_malformed_bodies_case(app: &TestApp) {
    let wrong_types = [
        ("name", json!({"name": 5, "currency": "usd"})),
        ("currency", json!({"name": "a", "currency": 840})),
        (
            "allow_negative",
            json!({"name": "a", "currency": "usd", "allow_negative": "yes"}),
        ),
        ("customer", json!({"name": "a", "currency": "usd", "customer": 7})),
        ("metadata", json!({"name": "a", "currency": "usd", "metadata": ["a"]})),
        (
            "metadata.k",
            json!({"name": "a", "currency": "usd", "metadata": {"k": 1}}),
        ),
    ];
    for (param, body) in wrong_types {
        let r = app.post("/v1/accounts", body).await;
        assert_400(&r, "parameter_invalid", param);
    }

    let r = app.post("/v1/accounts", json!({"currency": "usd"})).await;
    assert_400(&r, "parameter_missing", "name");
    let r = app.post("/v1/accounts", json!({"name": "a"})).await;
    assert_400(&r, "parameter_missing", "currency");
    // No body at all reads as `{}`: the first required field is missing.
    let r = app.post_raw("/v1/accounts", "").await;
    r.assert_error(400, "invalid_request_error", "parameter_missing");

    let list = app.get("/v1/accounts").await;
    assert_eq!(list.body["data"], json!([]), "refused creates wrote nothing");
}

both!(unknown_fields_are_named, unknown_fields_are_named_case);
async fn unknown_fields_are_named_case(app: &TestApp) {
    let r = app
        .post("/v1/accounts", json!({"name": "a", "currency": "usd", "colour": "red"}))
        .await;
    assert_400(&r, "parameter_unknown", "colour");
    assert!(
        r.body["error"]["message"].as_str().expect("message").contains("colour"),
        "{}",
        r.body
    );
    // Fields of the account that are not inputs are unknown too.
    let r = app
        .post("/v1/accounts", json!({"name": "a", "currency": "usd", "balance": 100}))
        .await;
    assert_400(&r, "parameter_unknown", "balance");
    assert_eq!(
        app.get("/v1/accounts").await.body["data"],
        json!([]),
        "refused creates wrote nothing"
    );

    let id = app.account("a", "usd", false).await;
    let path = format!("/v1/accounts/{id}");
    for field in ["currency", "allow_negative", "customer", "balance"] {
        let r = patch(app, &path, json!({field: "x", "name": "b"})).await;
        assert_400(&r, "parameter_unknown", field);
    }
    let after = app.get(&path).await;
    assert_eq!(
        after.body["version"], 1,
        "refused edits changed nothing: {}",
        after.body
    );
    assert_eq!(after.body["name"], "a");
}

both!(patch_edits_name_and_metadata, patch_edits_name_and_metadata_case);
async fn patch_edits_name_and_metadata_case(app: &TestApp) {
    let created = app
        .post(
            "/v1/accounts",
            json!({"name": "old", "currency": "usd", "metadata": {"a": "1", "b": "2", "c": "3"}}),
        )
        .await;
    let id = created.id();
    let path = format!("/v1/accounts/{id}");

    let r = patch(app, &path, json!({"name": "new"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], "new");
    assert_eq!(
        r.body["metadata"],
        json!({"a": "1", "b": "2", "c": "3"}),
        "absent metadata is kept"
    );
    assert_eq!(r.body["version"], 2);
    assert!(etag(&r).starts_with("\"2-"), "{}", etag(&r));

    // null and "" remove a key, a value sets one, absent keys stay.
    let r = patch(app, &path, json!({"metadata": {"a": null, "b": "", "d": "4"}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["metadata"], json!({"c": "3", "d": "4"}));
    assert_eq!(r.body["name"], "new", "absent name is kept");
    assert_eq!(r.body["version"], 3);

    // Removing a key that is not there is not an error.
    let r = patch(app, &path, json!({"metadata": {"zzz": null}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["metadata"], json!({"c": "3", "d": "4"}));

    // What PATCH answered is what GET reads back, and the other fields did not move.
    let last = r.body.clone();
    let got = app.get(&path).await;
    assert_eq!(got.body, last);
    assert!(etag(&got).starts_with(&format!("\"{}-", last["version"])));
    for field in ["id", "currency", "balance", "allow_negative", "customer", "created"] {
        assert_eq!(got.body[field], created.body[field], "{field}");
    }
}

both!(patch_refuses_bad_input, patch_refuses_bad_input_case);
async fn patch_refuses_bad_input_case(app: &TestApp) {
    let fifty: serde_json::Map<String, Value> = (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    let id = app
        .post(
            "/v1/accounts",
            json!({"name": "a", "currency": "usd", "metadata": fifty}),
        )
        .await
        .id();
    let path = format!("/v1/accounts/{id}");

    for name in ["", "  "] {
        assert_400(
            &patch(app, &path, json!({"name": name})).await,
            "parameter_invalid",
            "name",
        );
    }
    // A 51st key is refused after the merge; replacing one is fine.
    assert_400(
        &patch(app, &path, json!({"metadata": {"k50": "v"}})).await,
        "parameter_invalid",
        "metadata",
    );
    assert_400(
        &patch(app, &path, json!({"metadata": {"k0": "v".repeat(501)}})).await,
        "parameter_invalid",
        "metadata",
    );
    assert_400(
        &patch(app, &path, json!({"metadata": {"k".repeat(41): "v"}})).await,
        "parameter_invalid",
        "metadata",
    );
    let r = patch(app, &path, json!({"metadata": {"k0": null, "k".repeat(40): "v"}})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    assert_400(
        &patch(app, &path, json!({"name": 5})).await,
        "parameter_invalid",
        "name",
    );
    assert_400(
        &patch(app, &path, json!({"metadata": "x"})).await,
        "parameter_invalid",
        "metadata",
    );
    assert_400(
        &patch(app, &path, json!({"metadata": {"a": 1}})).await,
        "parameter_invalid",
        "metadata.a",
    );

    let after = app.get(&path).await;
    assert_eq!(
        after.body["version"], 2,
        "only the one good edit applied: {}",
        after.body
    );
    assert_eq!(after.body["currency"], "usd");
    assert_eq!(after.body["allow_negative"], false);
}

both!(
    entries_list_the_ledger_newest_first,
    entries_list_the_ledger_newest_first_case
);
async fn entries_list_the_ledger_newest_first_case(app: &TestApp) {
    let wallet = app.account("wallet", "usd", false).await;
    let path = format!("/v1/accounts/{wallet}/entries");
    let r = app.get(&path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"object": "list", "data": [], "has_more": false, "url": path})
    );

    let bank = app.fund(&wallet, "usd", 500).await;
    let shop = app.account("shop", "usd", false).await;
    let pay = app
        .post(
            "/v1/payments",
            json!({"amount": 200, "currency": "usd", "source": wallet, "destination": shop}),
        )
        .await;
    assert_eq!(pay.status, 200, "{}", pay.body);

    let r = app.get(&path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let data = r.body["data"].as_array().expect("present");
    let amounts: Vec<i64> = data.iter().map(|e| e["amount"].as_i64().expect("present")).collect();
    assert_eq!(amounts, [-200, 500], "newest first: {}", r.body);
    for e in data {
        assert_eq!(e["object"], "ledger_entry");
        assert_eq!(e["account"], wallet.as_str());
        assert!(e["id"].as_str().expect("present").starts_with("le_"), "{e}");
        assert_eq!(e["refund"], Value::Null);
        assert!(e["created"].is_i64());
    }
    assert_eq!(data[0]["payment"], pay.body["id"]);
    let balance = app.get(&format!("/v1/accounts/{wallet}")).await.body["balance"]
        .as_i64()
        .expect("present");
    assert_eq!(balance, amounts.iter().sum::<i64>(), "the entries sum to the balance");

    // The other sides of both movements are on their own accounts.
    let bank_entries = app.get(&format!("/v1/accounts/{bank}/entries")).await;
    assert_eq!(bank_entries.body["data"].as_array().expect("present").len(), 1);
    assert_eq!(bank_entries.body["data"][0]["amount"], -500);
    let shop_entries = app.get(&format!("/v1/accounts/{shop}/entries")).await;
    assert_eq!(shop_entries.body["data"][0]["amount"], 200);

    // Pagination over entries.
    let first = app.get(&format!("{path}?limit=1")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["has_more"], true);
    let newest = first.body["data"][0]["id"].as_str().expect("present").to_owned();
    let second = app.get(&format!("{path}?limit=1&starting_after={newest}")).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["data"][0]["amount"], 500);
    assert_eq!(second.body["has_more"], false);
}

both!(
    entries_refuse_filters_and_bad_cursors,
    entries_refuse_filters_and_bad_cursors_case
);
async fn entries_refuse_filters_and_bad_cursors_case(app: &TestApp) {
    let wallet = app.account("wallet", "usd", false).await;
    let path = format!("/v1/accounts/{wallet}/entries");
    // The list is filter-free: even `account` or `payment` is unknown here.
    for filter in ["account", "payment", "customer"] {
        let r = app.get(&format!("{path}?{filter}={wallet}")).await;
        assert_400(&r, "parameter_unknown", filter);
    }
    // An account id is not a ledger-entry cursor.
    let r = app.get(&format!("{path}?starting_after={wallet}")).await;
    assert_400(&r, "resource_missing", "starting_after");
    let r = app
        .get(&format!("{path}?ending_before=le_01M8FQ6ZTWESP8TXJ5FPWECSQ1"))
        .await;
    assert_400(&r, "resource_missing", "ending_before");
    let r = app.get(&format!("{path}?limit=0")).await;
    assert_400(&r, "parameter_invalid", "limit");
}
