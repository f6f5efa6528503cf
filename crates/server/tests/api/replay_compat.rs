//! Idempotency records keep replaying byte for byte across changes of the
//! store: a record holds the status and body the API face answered, and a
//! replay sends exactly those bytes back, whatever today's code would
//! render. The record here is stored through the store's own contract with
//! a body no current serializer produces (indented, keys out of order).

use reqwest::Method;
use settle_core::auth::key_id_of;
use settle_store::idempotency::{ClaimOutcome, StoredResponse};

use crate::support::{TestApp, both};

async fn a_stored_response_replays_byte_for_byte_case(app: &TestApp) {
    let key = key_id_of(&app.admin_key).expect("the admin key's id");
    let body = br#"{"name": "stored long ago"}"#;
    let hash = settle_api::idempotency::request_hash(&Method::POST, "/v1/customers", body);
    let ClaimOutcome::Claimed(claim) = app.settle.claim_idempotency(key, "old-1", hash).await.unwrap() else {
        panic!("a fresh key is claimed")
    };
    let stored = b"{\n  \"object\": \"customer\",\n  \"id\": \"cus_0000000000000000000000000\",\n  \"name\": \"stored long ago\"\n}".to_vec();
    let record = StoredResponse {
        status: 200,
        body: stored.clone(),
    };
    assert!(app.settle.complete_idempotency(&claim, &record).await.unwrap());

    let res = app
        .client
        .post(app.url("/v1/customers"))
        .bearer_auth(&app.admin_key)
        .header("idempotency-key", "old-1")
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(
        res.bytes().await.unwrap().to_vec(),
        stored,
        "the replay is the stored bytes"
    );
    // Nothing ran: the record answered.
    assert_eq!(app.get("/v1/customers").await.body["data"], serde_json::json!([]));
}
both!(
    a_stored_response_replays_byte_for_byte,
    a_stored_response_replays_byte_for_byte_case
);
