//! Money under contention: 8 clients make 2,000+ random payments, holds,
//! partial captures, cancels and refunds among a few hot accounts through
//! HTTP, on each database. Afterwards every ledger invariant must hold and
//! no request may have failed with a deadlock or a 5xx.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::json;
use settle_domain::ids::AccountId;
use settle_store::records::PaymentFilter;
use settle_store::{Cursor, ListQuery};

use crate::support::{TestApp, both};

const CLIENTS: usize = 8;
const OPS_PER_CLIENT: usize = 260;
const HOT_ACCOUNTS: usize = 4;
const START_BALANCE: i64 = 50_000;

#[derive(Default)]
struct Shared {
    held: Vec<String>,
    settled: Vec<String>,
}

/// What the clients saw: counts per (operation, status, code).
type Outcomes = HashMap<(String, u16, String), usize>;

both!(
    random_money_movement_keeps_invariants,
    random_money_movement_keeps_invariants_case
);
async fn random_money_movement_keeps_invariants_case(app: &TestApp) {
    let mut accounts = Vec::new();
    for i in 0..HOT_ACCOUNTS {
        let id = app.account(&format!("hot{i}"), "usd", false).await;
        app.fund(&id, "usd", START_BALANCE).await;
        accounts.push(id);
    }
    let accounts = Arc::new(accounts);
    let shared = Arc::new(Mutex::new(Shared::default()));
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (accounts, shared) = (Arc::clone(&accounts), Arc::clone(&shared));
        let (http, base, key) = (app.client.clone(), app.url(""), app.admin_key.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(client as u64 + 7);
            let mut outcomes = Outcomes::new();
            for _ in 0..OPS_PER_CLIENT {
                let (op, path, body) = next_op(&mut rng, &accounts, &shared);
                let res = http
                    .post(format!("{base}{path}"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .expect("send");
                let status = res.status();
                let body: serde_json::Value = res.json().await.expect("json");
                if status == StatusCode::OK {
                    record(&shared, &op, &body);
                }
                let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
                *outcomes.entry((op, status.as_u16(), code)).or_default() += 1;
            }
            outcomes
        }));
    }
    let mut all = Outcomes::new();
    for t in tasks {
        for (k, v) in t.await.expect("client task") {
            *all.entry(k).or_default() += v;
        }
    }
    let total: usize = all.values().sum();
    assert_eq!(total, CLIENTS * OPS_PER_CLIENT);
    for ((op, status, code), n) in &all {
        let expected = matches!(
            (*status, code.as_str()),
            (200, _) | (422, "insufficient_funds") | (422, "amount_too_large") | (409, "invalid_state")
        );
        assert!(expected, "{n} × {op} answered {status} {code}; outcomes: {all:?}");
    }
    let ok: usize = all.iter().filter(|((_, s, _), _)| *s == 200).map(|(_, n)| n).sum();
    assert!(ok > total / 2, "most operations should succeed: {all:?}");

    check_invariants(app, &accounts).await;
}

fn next_op(rng: &mut StdRng, accounts: &[String], shared: &Mutex<Shared>) -> (String, String, serde_json::Value) {
    let pick = rng.random_range(0..100);
    let (held, settled) = {
        let s = shared.lock().unwrap();
        let h = (!s.held.is_empty()).then(|| s.held[rng.random_range(0..s.held.len())].clone());
        let d = (!s.settled.is_empty()).then(|| s.settled[rng.random_range(0..s.settled.len())].clone());
        (h, d)
    };
    match (pick, held, settled) {
        (0..15, Some(p), _) => {
            let amount = rng.random_range(1..3_000);
            (
                "capture".into(),
                format!("/v1/payments/{p}/capture"),
                json!({"amount_to_capture": amount}),
            )
        }
        (15..22, Some(p), _) => ("cancel".into(), format!("/v1/payments/{p}/cancel"), json!({})),
        (22..40, _, Some(p)) => {
            let amount = rng.random_range(1..2_000);
            (
                "refund".into(),
                "/v1/refunds".into(),
                json!({"payment": p, "amount": amount}),
            )
        }
        _ => {
            let s = rng.random_range(0..accounts.len());
            let d = (s + rng.random_range(1..accounts.len())) % accounts.len();
            let capture = rng.random_bool(0.7);
            let amount = rng.random_range(1..5_000);
            let body = json!({"amount": amount, "currency": "usd", "source": accounts[s], "destination": accounts[d], "capture": capture});
            ("payment".into(), "/v1/payments".into(), body)
        }
    }
}

fn record(shared: &Mutex<Shared>, op: &str, body: &serde_json::Value) {
    let mut s = shared.lock().unwrap();
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    match (op, body["status"].as_str()) {
        ("payment", Some("requires_capture")) => s.held.push(id),
        ("payment", Some("succeeded")) => s.settled.push(id),
        ("capture", Some("succeeded")) => {
            s.held.retain(|h| *h != id);
            s.settled.push(id);
        }
        ("cancel", _) => s.held.retain(|h| *h != id),
        _ => {}
    }
}

async fn check_invariants(app: &TestApp, hot: &[String]) {
    let store = app.store();
    let mut q = ListQuery::first(100);
    let mut all_accounts = Vec::new();
    loop {
        let page = store.list_accounts(&q).await.unwrap();
        q.cursor = page.data.last().map(|a| Cursor::StartingAfter(a.id.uuid()));
        all_accounts.extend(page.data);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(
        all_accounts.len(),
        HOT_ACCOUNTS * 2,
        "hot accounts plus one funding account each"
    );
    let mut total = 0i64;
    for a in &all_accounts {
        assert_eq!(
            store.entries_sum(a.id).await.unwrap(),
            a.balance,
            "balance of {} is not the sum of its entries",
            a.id
        );
        if !a.allow_negative {
            assert!(a.available() >= 0, "{} is below zero: {a:?}", a.id);
        }
        total += a.balance;
        let held: i64 = payments_where(app, PaymentFilter::Source(a.id))
            .await
            .iter()
            .filter(|p| p.status == settle_domain::payment::PaymentStatus::RequiresCapture)
            .map(|p| p.amount)
            .sum();
        assert_eq!(
            held, a.pending_out,
            "pending_out of {} is not the sum of its holds",
            a.id
        );
    }
    assert_eq!(total, 0, "money was created or destroyed");
    for id in hot {
        let id = AccountId::parse(id).unwrap();
        for p in payments_where(app, PaymentFilter::Source(id)).await {
            assert!(p.amount_refunded <= p.amount_captured, "over-refunded: {p:?}");
            assert!(p.amount_captured <= p.amount);
            let q = ListQuery {
                filter: Some(settle_store::records::RefundFilter::Payment(p.id)),
                ..ListQuery::first(100)
            };
            let refunded: i64 = store
                .list_refunds(&q)
                .await
                .unwrap()
                .data
                .iter()
                .map(|r| r.amount)
                .sum();
            assert_eq!(refunded, p.amount_refunded, "refunds of {} do not add up", p.id);
        }
    }
}

async fn payments_where(app: &TestApp, filter: PaymentFilter) -> Vec<settle_domain::payment::Payment> {
    let mut q = ListQuery {
        filter: Some(filter),
        ..ListQuery::first(100)
    };
    let mut out = Vec::new();
    loop {
        let page = app.store().list_payments(&q).await.unwrap();
        q.cursor = page.data.last().map(|p| Cursor::StartingAfter(p.id.uuid()));
        out.extend(page.data);
        if !page.has_more {
            return out;
        }
    }
}
