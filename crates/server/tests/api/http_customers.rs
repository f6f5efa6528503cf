//! Proves the `/v1/customers` routes over HTTP, black-box: create, read (with `ETag`), list (with the `email` filter), edit (null clears), delete (refused while an account refers to the customer), and every 4xx each route can answer.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Resp, TestApp, both};

/// A well-formed customer id that names nothing.
const NO_CUSTOMER: &str = "cus_01M8FQ6ZTWESP8TXJ5FPWECSQ1";

async fn patch(app: &TestApp, path: &str, body: Value) -> Resp {
    app.call(Method::PATCH, path, Some(&app.admin_key), Some(body)).await
}

async fn delete(app: &TestApp, path: &str) -> Resp {
    app.call(Method::DELETE, path, Some(&app.admin_key), None).await
}

fn etag(r: &Resp) -> String {
    r.headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no ETag in {:?}", r.headers))
        .to_owned()
}

fn assert_400(r: &Resp, code: &str, param: &str) {
    r.assert_error(400, "invalid_request_error", code);
    assert_eq!(r.body["error"]["param"], param, "body: {}", r.body);
}

fn ids(list: &Resp) -> Vec<String> {
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["object"], "list", "{}", list.body);
    list.body["data"]
        .as_array()
        .expect("present")
        .iter()
        .map(|c| c["id"].as_str().expect("present").to_owned())
        .collect()
}

/// Ids that must read as "names nothing" in a path.
fn missing_path_ids() -> [&'static str; 5] {
    [
        NO_CUSTOMER,
        "cus_nope",
        "acct_01M8FQ6ZTWESP8TXJ5FPWECSQ1",
        "cus_",
        "cus_01M8FQ6ZTWESP8TXJ5FPWECSQ1X",
    ]
}

both!(create_returns_the_customer, create_returns_the_customer_case);
async fn create_returns_the_customer_case(app: &TestApp) {
    let r = app
        .post(
            "/v1/customers",
            json!({"name": "Ada Lovelace", "email": "ada@example.com", "metadata": {"tier": "gold"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.id();
    assert!(id.starts_with("cus_") && id.len() == "cus_".len() + 26, "{id}");
    assert_eq!(r.body["object"], "customer");
    assert_eq!(r.body["name"], "Ada Lovelace");
    assert_eq!(r.body["email"], "ada@example.com");
    assert_eq!(r.body["metadata"], json!({"tier": "gold"}));
    assert_eq!(r.body["version"], 1);
    assert!(
        r.body["created"].as_i64().is_some_and(|c| c > 1_600_000_000),
        "{}",
        r.body
    );
    assert!(etag(&r).starts_with("\"1-"), "{}", etag(&r));

    // Every field is optional.
    let r = app.post("/v1/customers", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], Value::Null);
    assert_eq!(r.body["email"], Value::Null);
    assert_eq!(r.body["metadata"], json!({}));
}

both!(
    retrieve_returns_the_same_customer_with_etag,
    retrieve_returns_the_same_customer_with_etag_case
);
async fn retrieve_returns_the_same_customer_with_etag_case(app: &TestApp) {
    let created = app
        .post("/v1/customers", json!({"name": "Grace", "email": "grace@example.com"}))
        .await;
    let r = app.get(&format!("/v1/customers/{}", created.id())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, created.body);
    assert!(etag(&r).starts_with("\"1-"), "{}", etag(&r));
}

both!(create_refuses_bad_input, create_refuses_bad_input_case);
async fn create_refuses_bad_input_case(app: &TestApp) {
    for email in ["", "ab.co", "a@b", "a@.b", "a b@c.d", "@b.co", "a@b@c.d", "a@b.co."] {
        let r = app.post("/v1/customers", json!({"email": email})).await;
        assert_400(&r, "parameter_invalid", "email");
    }
    assert_400(
        &app.post("/v1/customers", json!({"email": 5})).await,
        "parameter_invalid",
        "email",
    );
    assert_400(
        &app.post("/v1/customers", json!({"name": ""})).await,
        "parameter_invalid",
        "name",
    );
    assert_400(
        &app.post("/v1/customers", json!({"name": "x".repeat(201)})).await,
        "parameter_invalid",
        "name",
    );
    assert_400(
        &app.post("/v1/customers", json!({"name": ["a"]})).await,
        "parameter_invalid",
        "name",
    );
    let many: serde_json::Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_400(
        &app.post("/v1/customers", json!({"metadata": many})).await,
        "parameter_invalid",
        "metadata",
    );
    assert_400(
        &app.post("/v1/customers", json!({"metadata": {"k": "v".repeat(501)}}))
            .await,
        "parameter_invalid",
        "metadata",
    );
    assert_400(
        &app.post("/v1/customers", json!({"metadata": {"k".repeat(41): "v"}}))
            .await,
        "parameter_invalid",
        "metadata",
    );

    assert_eq!(
        ids(&app.get("/v1/customers").await),
        Vec::<String>::new(),
        "refused creates wrote nothing"
    );
}

both!(unknown_fields_are_named, unknown_fields_are_named_case);
async fn unknown_fields_are_named_case(app: &TestApp) {
    for field in ["phone", "id", "version"] {
        let r = app.post("/v1/customers", json!({"name": "a", field: "555"})).await;
        assert_400(&r, "parameter_unknown", field);
    }
    assert_eq!(
        ids(&app.get("/v1/customers").await),
        Vec::<String>::new(),
        "refused creates wrote nothing"
    );
    let id = app.post("/v1/customers", json!({"name": "a"})).await.id();
    let path = format!("/v1/customers/{id}");
    for field in ["phone", "id", "created"] {
        let r = patch(app, &path, json!({"name": "b", field: "555"})).await;
        assert_400(&r, "parameter_unknown", field);
    }
    let after = app.get(&path).await;
    assert_eq!(
        after.body["version"], 1,
        "refused edits changed nothing: {}",
        after.body
    );
}

both!(
    list_is_newest_first_and_filters_by_email,
    list_is_newest_first_and_filters_by_email_case
);
async fn list_is_newest_first_and_filters_by_email_case(app: &TestApp) {
    let empty = app.get("/v1/customers").await;
    assert_eq!(
        empty.body,
        json!({"object": "list", "data": [], "has_more": false, "url": "/v1/customers"})
    );

    let a = app.post("/v1/customers", json!({"email": "a@example.com"})).await.id();
    let b = app.post("/v1/customers", json!({"email": "b@example.com"})).await.id();
    let a2 = app
        .post("/v1/customers", json!({"email": "a@example.com", "name": "again"}))
        .await
        .id();
    let none = app.post("/v1/customers", json!({"name": "no email"})).await.id();

    let all = app.get("/v1/customers").await;
    assert_eq!(ids(&all), [none.as_str(), a2.as_str(), b.as_str(), a.as_str()]);
    assert_eq!(all.body["has_more"], false);
    assert_eq!(all.body["url"], "/v1/customers");

    assert_eq!(
        ids(&app.get("/v1/customers?email=a@example.com").await),
        [a2.as_str(), a.as_str()]
    );
    assert_eq!(
        ids(&app.get("/v1/customers?email=a%40example.com").await),
        [a2.as_str(), a.as_str()]
    );
    assert_eq!(ids(&app.get("/v1/customers?email=b@example.com").await), [b.as_str()]);
    assert_eq!(
        ids(&app.get("/v1/customers?email=nobody@example.com").await),
        Vec::<String>::new()
    );

    let page = app.get("/v1/customers?email=a@example.com&limit=1").await;
    assert_eq!(ids(&page), [a2.as_str()]);
    assert_eq!(page.body["has_more"], true);
    let next = app
        .get(&format!(
            "/v1/customers?email=a@example.com&limit=1&starting_after={a2}"
        ))
        .await;
    assert_eq!(ids(&next), [a.as_str()]);
    assert_eq!(next.body["has_more"], false);

    let r = app.get("/v1/customers?name=again").await;
    assert_400(&r, "parameter_unknown", "name");
}

both!(patch_edits_and_null_clears, patch_edits_and_null_clears_case);
async fn patch_edits_and_null_clears_case(app: &TestApp) {
    let created = app
        .post(
            "/v1/customers",
            json!({"name": "Ada", "email": "ada@example.com", "metadata": {"a": "1", "b": "2"}}),
        )
        .await;
    let path = format!("/v1/customers/{}", created.id());

    let r = patch(app, &path, json!({"name": "Ada L."})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], "Ada L.");
    assert_eq!(r.body["email"], "ada@example.com", "absent email is kept");
    assert_eq!(r.body["version"], 2);
    assert!(etag(&r).starts_with("\"2-"), "{}", etag(&r));

    let r = patch(app, &path, json!({"name": null})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], Value::Null, "null clears the name");
    assert_eq!(r.body["email"], "ada@example.com");
    assert_eq!(r.body["version"], 3);

    let r = patch(
        app,
        &path,
        json!({"email": "lovelace@example.org", "metadata": {"a": null, "b": "", "c": "3"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["email"], "lovelace@example.org");
    assert_eq!(r.body["metadata"], json!({"c": "3"}));
    assert_eq!(r.body["name"], Value::Null, "a cleared name stays cleared");

    let r = patch(app, &path, json!({"email": null})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["email"], Value::Null);

    let last = r.body.clone();
    let got = app.get(&path).await;
    assert_eq!(got.body, last, "GET reads what PATCH answered");
    assert_eq!(got.body["id"], created.body["id"]);
    assert_eq!(got.body["created"], created.body["created"]);
    assert!(etag(&got).starts_with(&format!("\"{}-", last["version"])));

    // The email filter follows the edit.
    assert_eq!(
        ids(&app.get("/v1/customers?email=ada@example.com").await),
        Vec::<String>::new()
    );
}

both!(patch_refuses_bad_input, patch_refuses_bad_input_case);
async fn patch_refuses_bad_input_case(app: &TestApp) {
    let id = app
        .post("/v1/customers", json!({"name": "Ada", "email": "ada@example.com"}))
        .await
        .id();
    let path = format!("/v1/customers/{id}");
    for email in ["not-an-email", "", "a@b"] {
        assert_400(
            &patch(app, &path, json!({"email": email})).await,
            "parameter_invalid",
            "email",
        );
    }
    assert_400(
        &patch(app, &path, json!({"name": ""})).await,
        "parameter_invalid",
        "name",
    );
    assert_400(
        &patch(app, &path, json!({"name": 1})).await,
        "parameter_invalid",
        "name",
    );
    assert_400(
        &patch(app, &path, json!({"metadata": {"k".repeat(41): "v"}})).await,
        "parameter_invalid",
        "metadata",
    );

    let after = app.get(&path).await;
    assert_eq!(after.body["version"], 1, "no refused edit applied: {}", after.body);
    assert_eq!(after.body["email"], "ada@example.com");
    assert_eq!(after.body["name"], "Ada");
}

both!(delete_removes_the_customer, delete_removes_the_customer_case);
async fn delete_removes_the_customer_case(app: &TestApp) {
    let keep = app.post("/v1/customers", json!({"name": "keep"})).await.id();
    let gone = app
        .post("/v1/customers", json!({"name": "gone", "email": "gone@example.com"}))
        .await
        .id();
    let path = format!("/v1/customers/{gone}");

    let r = delete(app, &path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"id": gone, "object": "customer", "deleted": true}));

    app.get(&path)
        .await
        .assert_error(404, "invalid_request_error", "resource_missing");
    patch(app, &path, json!({"name": "x"}))
        .await
        .assert_error(404, "invalid_request_error", "resource_missing");
    delete(app, &path)
        .await
        .assert_error(404, "invalid_request_error", "resource_missing");
    assert_eq!(ids(&app.get("/v1/customers").await), [keep.as_str()]);
    assert_eq!(
        ids(&app.get("/v1/customers?email=gone@example.com").await),
        Vec::<String>::new()
    );
    // A deleted customer can no longer be named by an account.
    let r = app
        .post(
            "/v1/accounts",
            json!({"name": "a", "currency": "usd", "customer": gone}),
        )
        .await;
    assert_400(&r, "resource_missing", "customer");
    // The other customer is untouched.
    assert_eq!(app.get(&format!("/v1/customers/{keep}")).await.status, 200);
}

both!(delete_refuses_a_customer_in_use, delete_refuses_a_customer_in_use_case);
async fn delete_refuses_a_customer_in_use_case(app: &TestApp) {
    let customer = app.post("/v1/customers", json!({"name": "owner"})).await.id();
    let account = app
        .post(
            "/v1/accounts",
            json!({"name": "a", "currency": "usd", "customer": customer}),
        )
        .await;
    assert_eq!(account.status, 200, "{}", account.body);

    let r = delete(app, &format!("/v1/customers/{customer}")).await;
    r.assert_error(409, "invalid_request_error", "resource_in_use");
    let still = app.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(still.status, 200, "a refused delete removed nothing: {}", still.body);
    assert_eq!(
        ids(&app.get(&format!("/v1/accounts?customer={customer}")).await),
        [account.id()]
    );

    // A payment that names a customer holds it too.
    let payer = app.post("/v1/customers", json!({"name": "payer"})).await.id();
    let from = app.account("from", "usd", true).await;
    let to = app.account("to", "usd", false).await;
    let pay = app
        .post(
            "/v1/payments",
            json!({"amount": 1, "currency": "usd", "source": from, "destination": to, "customer": payer}),
        )
        .await;
    assert_eq!(pay.status, 200, "{}", pay.body);
    delete(app, &format!("/v1/customers/{payer}"))
        .await
        .assert_error(409, "invalid_request_error", "resource_in_use");
    assert_eq!(app.get(&format!("/v1/customers/{payer}")).await.status, 200);
    assert_eq!(
        app.get(&format!("/v1/payments/{}", pay.id())).await.body["customer"],
        payer.as_str()
    );

    // A customer nothing refers to is deleted.
    let free = app.post("/v1/customers", json!({"name": "free"})).await.id();
    assert_eq!(delete(app, &format!("/v1/customers/{free}")).await.status, 200);
}

both!(unknown_ids_in_the_path_are_404, unknown_ids_in_the_path_are_404_case);
async fn unknown_ids_in_the_path_are_404_case(app: &TestApp) {
    app.post("/v1/customers", json!({"name": "real"})).await;
    for id in missing_path_ids() {
        let path = format!("/v1/customers/{id}");
        app.get(&path)
            .await
            .assert_error(404, "invalid_request_error", "resource_missing");
        patch(app, &path, json!({"name": "x"}))
            .await
            .assert_error(404, "invalid_request_error", "resource_missing");
        delete(app, &path)
            .await
            .assert_error(404, "invalid_request_error", "resource_missing");
    }
    assert_eq!(ids(&app.get("/v1/customers").await).len(), 1);
}
