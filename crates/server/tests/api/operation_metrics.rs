//! `/metrics` per operation: every request a face hands to the pipeline is
//! counted under the operation's registry name, its face and its outcome
//! class, timed in a histogram, and shown in flight while it runs; the
//! process's own figures (memory, CPU, descriptors, threads) are there too.

use serde_json::json;

use crate::graphql::graphql;
use crate::support::{TestApp, both};

/// Every sample of `/metrics` whose name and labels start with `prefix`
/// (the line up to its value), with its value.
async fn samples(app: &TestApp) -> Vec<(String, f64)> {
    let page = app.get("/metrics").await;
    assert_eq!(page.status, 200);
    let text = page.body.as_str().unwrap_or_default().to_owned();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {l}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {l}"));
            (name.to_owned(), value)
        })
        .collect()
}

fn value(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{name} missing: {samples:?}"))
}

both!(
    every_operation_is_counted_by_face_and_outcome,
    every_operation_is_counted_by_face_and_outcome_case
);
async fn every_operation_is_counted_by_face_and_outcome_case(app: &TestApp) {
    let alice = app.account("alice", "usd", false).await;
    assert_eq!(app.get(&format!("/v1/accounts/{alice}")).await.status, 200);
    assert_eq!(app.get(&format!("/v1/accounts/{alice}")).await.status, 200);
    let missing = app.get("/v1/accounts/acct_0000000000000000000000000Z").await;
    assert!(missing.status.is_client_error(), "{}", missing.body);
    let (status, body, _) = graphql(
        app,
        &app.admin_key,
        "{ accounts(first: 1) { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let s = samples(app).await;
    let rest = "operation=\"retrieve_account\",face=\"rest\"";
    assert_eq!(
        value(&s, &format!("settle_requests_total{{{rest},outcome=\"ok\"}}")),
        2.0
    );
    assert_eq!(
        value(&s, &format!("settle_requests_total{{{rest},outcome=\"client_error\"}}")),
        1.0
    );
    assert_eq!(
        value(&s, &format!("settle_requests_total{{{rest},outcome=\"server_error\"}}")),
        0.0
    );
    assert_eq!(value(&s, &format!("settle_requests_in_flight{{{rest}}}")), 0.0);
    let gql = "operation=\"list_accounts\",face=\"graphql\"";
    assert_eq!(
        value(&s, &format!("settle_requests_total{{{gql},outcome=\"ok\"}}")),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "settle_requests_total{operation=\"create_account\",face=\"rest\",outcome=\"ok\"}"
        ),
        1.0
    );

    // The histogram is cumulative and ends at the count.
    let count = value(&s, &format!("settle_request_duration_seconds_count{{{rest}}}"));
    assert_eq!(count, 3.0);
    let buckets: Vec<f64> = s
        .iter()
        .filter(|(n, _)| n.starts_with(&format!("settle_request_duration_seconds_bucket{{{rest},")))
        .map(|(_, v)| *v)
        .collect();
    assert!(buckets.len() > 5, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "not cumulative: {buckets:?}");
    assert_eq!(buckets.last().copied(), Some(count));
    assert!(value(&s, &format!("settle_request_duration_seconds_sum{{{rest}}}")) > 0.0);

    // Operations that served nothing are not listed.
    assert!(!s.iter().any(|(n, _)| n.contains("operation=\"delete_policy\"")));

    assert!(value(&s, "process_resident_memory_bytes") > 1_000_000.0);
    assert!(value(&s, "process_open_fds") >= 3.0);
    assert!(value(&s, "process_threads") >= 1.0);
    assert!(value(&s, "process_cpu_seconds_total") > 0.0);
}
