//! Every relation `expand[]` reaches, on retrieve and on list, answered as
//! the document says: a schema that allows only the id where the object
//! goes would reject what the client asked for.

#![allow(clippy::wildcard_imports)]

use super::contract::Contract;
use super::*;
/// Every operation that takes `expand[]`, with paths that expand every
/// relation it has, and the fields those paths turn into objects.
fn expansions(ids: &BTreeMap<&str, String>) -> Vec<(&'static str, String, &'static [&'static str])> {
    let (payment, account, refund) = (&ids["payment"], &ids["account"], &ids["refund"]);
    vec![
        (
            "list_payments",
            "/v1/payments?expand[]=data.customer&expand[]=data.source".to_owned(),
            &["customer", "source"],
        ),
        (
            "retrieve_payment",
            format!("/v1/payments/{payment}?expand[]=customer&expand[]=source&expand[]=destination"),
            &["customer", "source", "destination"],
        ),
        (
            "list_accounts",
            "/v1/accounts?expand[]=data.customer".to_owned(),
            &["customer"],
        ),
        (
            "retrieve_account",
            format!("/v1/accounts/{account}?expand[]=customer"),
            &["customer"],
        ),
        (
            "list_refunds",
            "/v1/refunds?expand[]=data.payment".to_owned(),
            &["payment"],
        ),
        (
            "retrieve_refund",
            format!("/v1/refunds/{refund}?expand[]=payment"),
            &["payment"],
        ),
        (
            "list_ledger_entries",
            format!("/v1/accounts/{account}/entries?expand[]=data.account&expand[]=data.payment&expand[]=data.refund"),
            &["account", "payment", "refund"],
        ),
    ]
}

both!(
    expanded_responses_match_the_document,
    expanded_responses_match_the_document_case
);
/// `expand[]` replaces an id with its object, so a schema that allows only
/// the id there rejects the answer a client asked for; kept apart from
/// [`every_response_matches_the_document_case`] so each says what it found.
async fn expanded_responses_match_the_document_case(app: &TestApp) {
    let mut c = Contract::new(app).await;
    let customer = app.post("/v1/customers", json!({"name": "Ada"})).await.id();
    let account = app
        .post(
            "/v1/accounts",
            json!({"name": "alice", "currency": "usd", "customer": customer}),
        )
        .await
        .id();
    let bank = app.account("bank", "usd", true).await;
    let payment = app
        .post(
            "/v1/payments",
            json!({"amount": 1_000, "currency": "usd", "source": bank, "destination": account, "customer": customer}),
        )
        .await
        .id();
    let refund = app
        .post("/v1/refunds", json!({"payment": payment, "amount": 100}))
        .await
        .id();
    let ids = BTreeMap::from([("payment", payment), ("account", account), ("refund", refund)]);

    for (operation, path, fields) in expansions(&ids) {
        let body = c.ok(operation, &path, None).await;
        // The server did expand (a null relation stays null): otherwise
        // this checks nothing.
        let shown: Vec<&Value> = body["data"].as_array().map_or(vec![&body], |d| d.iter().collect());
        for field in fields {
            assert!(
                shown.iter().all(|o| o[field].is_null() || o[field].is_object())
                    && shown.iter().any(|o| o[field].is_object()),
                "{path} did not expand `{field}`: {body}"
            );
        }
        let route = c.route(operation);
        if !has_parameter(operation_of(&c.doc, route), "expand[]", "query") {
            let name = describe(route);
            c.problems
                .push(format!("{name} takes `expand[]`, which the document does not list"));
        }
    }
    let problems = std::mem::take(&mut c.problems);
    assert!(
        problems.is_empty(),
        "{} disagreements of expanded answers with /openapi.json:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
