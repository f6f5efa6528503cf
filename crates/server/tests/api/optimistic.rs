//! Optimistic locking on edits: `ETag` on reads, `If-Match` on PATCH, and
//! two concurrent edits of the same version end as one 200 and one 412.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, both};

async fn patch(
    app: &TestApp,
    path: &str,
    if_match: Option<&str>,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let mut req = app.client.patch(app.url(path)).bearer_auth(&app.admin_key).json(&body);
    if let Some(tag) = if_match {
        req = req.header("if-match", tag);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.json().await.unwrap())
}

both!(concurrent_edits_one_wins, concurrent_edits_one_wins_case);
async fn concurrent_edits_one_wins_case(app: &TestApp) {
    for (kind, create) in [
        ("customers", json!({"name": "Ada"})),
        ("accounts", json!({"name": "main", "currency": "usd"})),
    ] {
        for round in 0..10 {
            let id = app.post(&format!("/v1/{kind}"), create.clone()).await.id();
            let path = format!("/v1/{kind}/{id}");
            let got = app.get(&path).await;
            let tag = got.headers["etag"].to_str().unwrap().to_owned();
            assert!(tag.starts_with("\"1-"), "{tag}");
            let a = patch(app, &path, Some(&tag), json!({"name": format!("a{round}")}));
            let b = patch(app, &path, Some(&tag), json!({"name": format!("b{round}")}));
            let ((sa, ba), (sb, bb)) = tokio::join!(a, b);
            let mut statuses = [sa.as_u16(), sb.as_u16()];
            statuses.sort();
            assert_eq!(statuses, [200, 412], "{kind}: {ba} / {bb}");
            let loser = if sa == StatusCode::PRECONDITION_FAILED {
                &ba
            } else {
                &bb
            };
            assert_eq!(loser["error"]["code"], "version_conflict");
            assert_eq!(loser["error"]["type"], "invalid_request_error");
            let winner = if sa == StatusCode::OK { &ba } else { &bb };
            let now = app.get(&path).await;
            assert_eq!(now.body["version"], 2);
            assert_eq!(now.body["name"], winner["name"]);
        }
    }
}

both!(if_match_rules, if_match_rules_case);
async fn if_match_rules_case(app: &TestApp) {
    let id = app
        .post("/v1/customers", json!({"name": "Ada", "metadata": {"a": "1"}}))
        .await
        .id();
    let path = format!("/v1/customers/{id}");
    let (s, body) = patch(app, &path, None, json!({"metadata": {"b": "2"}})).await;
    assert_eq!(s, 200);
    assert_eq!(body["version"], 2);
    assert_eq!(body["metadata"], json!({"a": "1", "b": "2"}));
    let (s, body) = patch(app, &path, Some("\"1\""), json!({"name": "late"})).await;
    assert_eq!(s, 412, "{body}");
    assert_eq!(body["error"]["code"], "version_conflict");
    let (s, body) = patch(app, &path, Some("W/\"2\""), json!({"metadata": {"a": null}})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["metadata"], json!({"b": "2"}));
    let (s, _) = patch(app, &path, Some("*"), json!({"name": "star"})).await;
    assert_eq!(s, 200);
    let (s, body) = patch(app, &path, Some("yesterday"), json!({"name": "x"})).await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["code"], "parameter_invalid");
    let got = app.get(&path).await;
    assert_eq!(got.body["version"], 4);
    assert_eq!(got.body["name"], "star");
    assert!(got.headers["etag"].to_str().unwrap().starts_with("\"4-"));
    let (s, body) = patch(
        app,
        "/v1/customers/cus_01M8FQ6ZTWESP8TXJ5FPWECSQ1",
        Some("\"1\""),
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(s, 404, "{body}");
}
