//! List parameters: `limit`, cursors, unknown parameters and `created` ranges are validated on every list route, and at most one equality filter is accepted.

use serde_json::json;

use super::assert_400;
use crate::support::{TestApp, both};

/// The list routes, each with an id of its own type that exists.
async fn lists(app: &TestApp) -> Vec<(String, String)> {
    let account = app.account("a", "usd", false).await;
    let bank = app.fund(&account, "usd", 100).await;
    let customer = app.post("/v1/customers", json!({"name": "c"})).await.id();
    let payment = app
        .post(
            "/v1/payments",
            json!({"amount": 5, "currency": "usd", "source": account, "destination": bank}),
        )
        .await;
    assert_eq!(payment.status, 200, "{}", payment.body);
    let refund = app
        .post("/v1/refunds", json!({"payment": payment.id(), "amount": 1}))
        .await;
    assert_eq!(refund.status, 200, "{}", refund.body);
    let entries = format!("/v1/accounts/{account}/entries");
    let entry = app.get(&entries).await.body["data"][0]["id"]
        .as_str()
        .expect("an entry")
        .to_owned();
    vec![
        ("/v1/accounts".to_owned(), account),
        ("/v1/customers".to_owned(), customer),
        ("/v1/payments".to_owned(), payment.id()),
        ("/v1/refunds".to_owned(), refund.id()),
        (entries, entry),
    ]
}

both!(list_parameters_are_validated, list_parameters_are_validated_case);
async fn list_parameters_are_validated_case(app: &TestApp) {
    for (list, own_id) in lists(app).await {
        for limit in ["0", "101", "abc", "-1", "1.5", "", "99999999999999999999"] {
            let r = app.get(&format!("{list}?limit={limit}")).await;
            assert_400(&r, "parameter_invalid", "limit");
        }
        for limit in ["1", "100"] {
            let r = app.get(&format!("{list}?limit={limit}")).await;
            assert_eq!(r.status, 200, "{list}?limit={limit}: {}", r.body);
        }
        let r = app
            .get(&format!("{list}?starting_after={own_id}&ending_before={own_id}"))
            .await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        let r = app.get(&format!("{list}?limit=1&limit=2")).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");

        // A cursor that names nothing: another type's id, a malformed id,
        // and a well-formed id of the right type that does not exist.
        let (prefix, _) = own_id.split_once('_').expect("prefixed id");
        let unknown = format!("{prefix}_01M8FQ6ZTWESP8TXJ5FPWECSQ1");
        let other_type = if prefix == "cus" {
            "acct_01M8FQ6ZTWESP8TXJ5FPWECSQ1"
        } else {
            "cus_01M8FQ6ZTWESP8TXJ5FPWECSQ1"
        };
        for param in ["starting_after", "ending_before"] {
            for cursor in [other_type, "nope", "", unknown.as_str()] {
                let r = app.get(&format!("{list}?{param}={cursor}")).await;
                assert_400(&r, "resource_missing", param);
            }
            let r = app.get(&format!("{list}?{param}={own_id}")).await;
            assert_eq!(r.status, 200, "{list}?{param}={own_id}: {}", r.body);
        }

        for unknown_param in ["foo", "created[eq]", "sort", "LIMIT"] {
            let r = app.get(&format!("{list}?{unknown_param}=1")).await;
            assert_400(&r, "parameter_unknown", unknown_param);
        }
        let r = app.get(&format!("{list}?created[gte]=yesterday")).await;
        assert_400(&r, "parameter_invalid", "created[gte]");
        // Extreme but well-formed ranges are answered, not crashed on.
        for range in [
            "created[gte]=9223372036854775807",
            "created[lt]=-9223372036854775808",
            "created[lte]=0",
            "created[gt]=-1",
        ] {
            let r = app.get(&format!("{list}?{range}")).await;
            assert_eq!(r.status, 200, "{list}?{range}: {}", r.body);
        }
    }
}

both!(at_most_one_equality_filter, at_most_one_equality_filter_case);
async fn at_most_one_equality_filter_case(app: &TestApp) {
    let account = app.account("a", "usd", false).await;
    let bank = app.fund(&account, "usd", 100).await;
    let one = app.get(&format!("/v1/payments?source={bank}")).await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["data"].as_array().expect("data").len(), 1);
    let two = [
        format!("status=succeeded&source={bank}"),
        format!("source={bank}&destination={account}"),
        format!("customer=cus_01M8FQ6ZTWESP8TXJ5FPWECSQ1&destination={account}"),
    ];
    for query in two {
        let r = app.get(&format!("/v1/payments?{query}")).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        assert!(r.body["error"]["param"].is_string(), "{}", r.body);
    }
    // One filter plus a created range is allowed.
    let r = app.get(&format!("/v1/payments?source={bank}&created[gte]=0")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"].as_array().expect("data").len(), 1);
    let r = app.get("/v1/payments?status=nonsense").await;
    assert_400(&r, "parameter_invalid", "status");
}
