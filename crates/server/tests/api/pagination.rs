//! Cursor pagination: a walk page by page while rows are being inserted
//! sees every older row exactly once, in order; `ending_before` walks back;
//! `created` bounds and filters combine with cursors.

use std::collections::HashSet;

use serde_json::json;

use crate::support::{Resp, TestApp, both};

fn ids(r: &Resp) -> Vec<String> {
    r.body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.body))
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn make_payments(app: &TestApp, source: &str, destination: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = app
            .post(
                "/v1/payments",
                json!({"amount": 1, "currency": "usd", "source": source, "destination": destination}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        out.push(r.id());
    }
    out
}

both!(walk_during_inserts, walk_during_inserts_case);
async fn walk_during_inserts_case(app: &TestApp) {
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    let existing = make_payments(app, &bank, &shop, 60).await;

    let writer = {
        let (http, url, key) = (app.client.clone(), app.url("/v1/payments"), app.admin_key.clone());
        let body = json!({"amount": 1, "currency": "usd", "source": bank, "destination": shop});
        tokio::spawn(async move {
            for _ in 0..40 {
                let r = http.post(&url).bearer_auth(&key).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        })
    };

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/payments?limit=7&starting_after={c}"),
            None => "/v1/payments?limit=7".to_owned(),
        };
        let page = app.get(&path).await;
        let page_ids = ids(&page);
        seen.extend(page_ids.iter().cloned());
        cursor = page_ids.last().cloned();
        tokio::task::yield_now().await;
        if !page.body["has_more"].as_bool().unwrap() {
            break;
        }
    }
    writer.await.unwrap();

    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(sorted, seen, "pages must be newest first with no repeats");
    let seen: HashSet<_> = seen.into_iter().collect();
    for id in &existing {
        assert!(seen.contains(id), "{id} existed before the walk and was skipped");
    }
    // The funding payments to `bank` do not exist: every payment listed is one of ours.
    assert!(seen.len() >= existing.len());
}

both!(walk_backwards_and_filters, walk_backwards_and_filters_case);
async fn walk_backwards_and_filters_case(app: &TestApp) {
    let bank = app.account("bank", "usd", true).await;
    let a = app.account("a", "usd", false).await;
    let b = app.account("b", "usd", false).await;
    let to_a = make_payments(app, &bank, &a, 9).await;
    let to_b = make_payments(app, &bank, &b, 3).await;

    // Forward through destination=a, 4 at a time.
    let first = app.get(&format!("/v1/payments?destination={a}&limit=4")).await;
    assert_eq!(ids(&first), to_a.iter().rev().take(4).cloned().collect::<Vec<_>>());
    assert_eq!(first.body["has_more"], true);
    assert_eq!(first.body["object"], "list");
    assert_eq!(first.body["url"], "/v1/payments");
    let last_of_first = ids(&first)[3].clone();
    let second = app
        .get(&format!(
            "/v1/payments?destination={a}&limit=4&starting_after={last_of_first}"
        ))
        .await;
    assert_eq!(
        ids(&second),
        to_a.iter().rev().skip(4).take(4).cloned().collect::<Vec<_>>()
    );

    // Backward from the oldest: the `limit` items just newer, still newest first.
    let back = app
        .get(&format!(
            "/v1/payments?destination={a}&limit=3&ending_before={}",
            to_a[0]
        ))
        .await;
    assert_eq!(ids(&back), vec![to_a[3].clone(), to_a[2].clone(), to_a[1].clone()]);
    assert_eq!(back.body["has_more"], true);
    let newest = app
        .get(&format!(
            "/v1/payments?destination={a}&limit=3&ending_before={}",
            to_a[5]
        ))
        .await;
    assert_eq!(ids(&newest), vec![to_a[8].clone(), to_a[7].clone(), to_a[6].clone()]);
    assert_eq!(newest.body["has_more"], false);

    // Without a filter the b payments interleave by time; limit=100 gets all.
    let all = app.get("/v1/payments?limit=100").await;
    assert_eq!(ids(&all).len(), to_a.len() + to_b.len());

    // created bounds: everything is from "now", so a range in the past is empty
    // and a range around now contains all.
    let now = app.get(&format!("/v1/payments/{}", to_b[2])).await.body["created"]
        .as_i64()
        .unwrap();
    let past = app.get(&format!("/v1/payments?created[lt]={}", now - 3600)).await;
    assert!(ids(&past).is_empty());
    let around = app
        .get(&format!(
            "/v1/payments?limit=100&created[gte]={}&created[lte]={}",
            now - 3600,
            now + 1
        ))
        .await;
    assert_eq!(ids(&around).len(), 12);
    let filtered = app
        .get(&format!(
            "/v1/payments?limit=100&destination={b}&created[gt]={}",
            now - 3600
        ))
        .await;
    assert_eq!(ids(&filtered), to_b.iter().rev().cloned().collect::<Vec<_>>());

    // A cursor that names nothing is refused.
    let r = app
        .get("/v1/payments?starting_after=pay_01M8FQ6ZTWESP8TXJ5FPWECSQ1")
        .await;
    r.assert_error(400, "invalid_request_error", "resource_missing");
    assert_eq!(r.body["error"]["param"], "starting_after");
}
