//! Admission as a client meets it: a key over its rate limit gets 429 with
//! `Retry-After` and the `RateLimit-*` headers, a wrong secret drains
//! nothing, and two processes share one limit through Redis (and each
//! keeps its share when Redis stops); under overload lists are shed before
//! single reads and single reads before money, with a 503 before anything
//! runs; sustained shedding turns the brownout on.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use settle::config::Config;
use settle_core::admission::{ConcurrencyOptions, Rate};
use settle_core::clock::SystemClock;

use crate::pipeline::Blocker;
use crate::support::{
    Backend, PrivateRedis, Resp, TestApp, both, free_port, postgres_available, redis_available, run_config,
};

fn header(r: &Resp, name: &str) -> String {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header: {:?}", r.headers))
        .to_str()
        .unwrap()
        .to_owned()
}

async fn pay_as(app: &TestApp, key: &str, source: &str, destination: &str) -> Resp {
    let body = json!({"amount": 100, "currency": "usd", "source": source, "destination": destination});
    app.call(Method::POST, "/v1/payments", Some(key), Some(body)).await
}

/// Two accounts: one that may go negative, and one to pay into.
async fn accounts(app: &TestApp) -> (String, String) {
    (
        app.account("src", "usd", true).await,
        app.account("dst", "usd", false).await,
    )
}

async fn payments_count(app: &TestApp) -> usize {
    let list = app.get("/v1/payments?limit=100").await;
    assert_eq!(list.status, 200, "{}", list.body);
    list.body["data"].as_array().unwrap().len()
}

fn money_per_minute(limit: &str) -> Config {
    let mut config = Config::default();
    config.admission.rate.money = Rate::parse(limit).unwrap();
    config
}

async fn over_the_limit_is_429_with_headers_case(app: &TestApp) {
    let (src, dst) = accounts(app).await;
    for remaining in ["2", "1", "0"] {
        let paid = pay_as(app, &app.admin_key, &src, &dst).await;
        assert_eq!(paid.status, 200, "{}", paid.body);
        assert_eq!(header(&paid, "ratelimit-limit"), "3");
        assert_eq!(header(&paid, "ratelimit-remaining"), remaining);
        let reset: u64 = header(&paid, "ratelimit-reset").parse().unwrap();
        assert!((1..=60).contains(&reset), "reset {reset}");
    }
    let refused = pay_as(app, &app.admin_key, &src, &dst).await;
    refused.assert_error(429, "rate_limit_error", "rate_limited");
    let retry: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!(
        (1..=20).contains(&retry),
        "one payment fits again within 20 s at 3/m: {retry}"
    );
    assert_eq!(header(&refused, "ratelimit-remaining"), "0");
    assert_eq!(payments_count(app).await, 3, "a refused payment changes nothing");

    // Reads are another class with their own bucket, and say so.
    let read = app.get(&format!("/v1/accounts/{src}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(header(&read, "ratelimit-limit"), "20000");

    // A wrong secret naming a fresh key is refused as unauthenticated and
    // takes nothing from that key's bucket.
    let fresh = app.key("admin").await;
    let mut wrong = fresh.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    for _ in 0..5 {
        let r = pay_as(app, &wrong, &src, &dst).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.headers.get("ratelimit-remaining").is_none());
    }
    for remaining in ["2", "1", "0"] {
        let paid = pay_as(app, &fresh, &src, &dst).await;
        assert_eq!(paid.status, 200, "{}", paid.body);
        assert_eq!(header(&paid, "ratelimit-remaining"), remaining);
    }
    assert_eq!(app.metric("settle_rate_limited_total{class=\"money\"}").await, 1);
    assert!(
        app.metric("settle_requests_total{operation=\"create_payment\",face=\"rest\",outcome=\"shed\"}")
            .await
            >= 1
    );
}
both!(
    over_the_limit_is_429_with_headers,
    over_the_limit_is_429_with_headers_case,
    crate::admission::three_payments_a_minute
);

async fn three_payments_a_minute(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    run_config(backend, money_per_minute("3/m"), case).await;
}

async fn limits_can_be_turned_off_case(app: &TestApp) {
    let (src, dst) = accounts(app).await;
    for _ in 0..3 {
        let paid = pay_as(app, &app.admin_key, &src, &dst).await;
        assert_eq!(paid.status, 200, "{}", paid.body);
        assert!(paid.headers.get("ratelimit-limit").is_none());
    }
}
both!(
    limits_can_be_turned_off,
    limits_can_be_turned_off_case,
    crate::admission::limits_off
);

async fn limits_off(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    let mut config = money_per_minute("1/m");
    config.admission.rate.enabled = false;
    run_config(backend, config, case).await;
}

fn fixed_limit(limit: u32, brownout_after: Duration) -> Config {
    let mut config = Config::default();
    config.admission.concurrency = ConcurrencyOptions {
        min_limit: limit,
        max_limit: limit,
        initial_limit: limit,
        brownout_after,
        ..ConcurrencyOptions::default()
    };
    config
}

/// Waits until `n` payments are running (held by the blocker).
async fn money_in_flight(app: &TestApp, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.metric("settle_admission_in_flight{class=\"money\"}").await != n {
        assert!(std::time::Instant::now() < deadline, "never {n} payments in flight");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_shed(r: &Resp) {
    r.assert_error(503, "api_error", "overloaded");
    assert_eq!(header(r, "retry-after"), "1");
}

/// With the limit fixed at 10 and payments held in flight by a database
/// lock: at 5 running a list is shed and a read is not; at 8 a read is
/// shed (answered from the cache if it can be); at 10 a payment is. Every held payment commits once released.
async fn lists_go_first_then_reads_then_money_case(app: &TestApp) {
    let (src, dst) = accounts(app).await;
    let blocker = Blocker::take(app, &src).await;
    let mut held = Vec::new();
    let mut hold = |n: usize| {
        for _ in 0..n {
            let (client, url, key) = (app.client.clone(), app.url("/v1/payments"), app.admin_key.clone());
            let body = json!({"amount": 100, "currency": "usd", "source": src, "destination": dst});
            held.push(tokio::spawn(async move {
                let res = client.post(url).bearer_auth(key).json(&body).send().await.unwrap();
                Resp::read(res).await
            }));
        }
    };
    hold(5);
    money_in_flight(app, 5).await;
    assert_shed(&app.get("/v1/payments").await);
    assert_eq!(app.get(&format!("/v1/accounts/{dst}")).await.status, 200);
    hold(3);
    money_in_flight(app, 8).await;
    // A shed single read is answered from the cache when it holds the
    // object, and refused when it does not: the database is not asked.
    let cached = app.get(&format!("/v1/accounts/{dst}")).await;
    assert_eq!(cached.status, 200, "{}", cached.body);
    assert_eq!(header(&cached, "settle-cache"), "hit");
    assert_shed(&app.get(&format!("/v1/accounts/{src}")).await);
    assert_shed(&app.get(&format!("/v1/accounts/{dst}?expand[]=customer")).await);
    assert_shed(&app.get("/v1/customers").await);
    hold(2);
    money_in_flight(app, 10).await;
    assert_shed(&pay_as(app, &app.admin_key, &src, &dst).await);
    blocker.release().await;
    for payment in held {
        let paid = payment.await.unwrap();
        assert_eq!(paid.status, 200, "{}", paid.body);
    }
    assert_eq!(payments_count(app).await, 10, "the shed payment was never made");
    assert_eq!(
        app.metric("settle_admission_shed_total{class=\"bulk\",reason=\"overloaded\"}")
            .await,
        2
    );
    assert_eq!(
        app.metric("settle_admission_shed_total{class=\"standard\",reason=\"overloaded\"}")
            .await,
        3,
        "the cached read was shed too, and answered from the cache"
    );
    assert_eq!(
        app.metric("settle_admission_shed_total{class=\"money\",reason=\"overloaded\"}")
            .await,
        1
    );
    assert_eq!(app.metric("settle_admission_limit").await, 10);
}
both!(
    lists_go_first_then_reads_then_money,
    lists_go_first_then_reads_then_money_case,
    crate::admission::limit_of_ten
);

async fn limit_of_ten(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    run_config(backend, fixed_limit(10, Duration::from_secs(600)), case).await;
}

/// Shedding that goes on (here: at once) turns the brownout on: lists are
/// refused outright, saying why, while single reads are served.
async fn sustained_shedding_browns_out_lists_case(app: &TestApp) {
    let (src, dst) = accounts(app).await;
    let blocker = Blocker::take(app, &src).await;
    let held: Vec<_> = (0..2)
        .map(|_| {
            let (client, url, key) = (app.client.clone(), app.url("/v1/payments"), app.admin_key.clone());
            let body = json!({"amount": 100, "currency": "usd", "source": src, "destination": dst});
            tokio::spawn(async move { client.post(url).bearer_auth(key).json(&body).send().await.unwrap() })
        })
        .collect();
    money_in_flight(app, 2).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.metric("settle_admission_brownout").await == 0 {
        assert!(std::time::Instant::now() < deadline, "the brownout never began");
        assert_shed(&app.get(&format!("/v1/accounts/{dst}")).await);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    blocker.release().await;
    for payment in held {
        assert_eq!(payment.await.unwrap().status(), 200);
    }
    let list = app.get("/v1/payments").await;
    assert_shed(&list);
    assert!(
        list.body["error"]["message"].as_str().unwrap().contains("brownout"),
        "{}",
        list.body
    );
    assert_eq!(app.get(&format!("/v1/accounts/{dst}")).await.status, 200);
    assert!(
        app.metric("settle_admission_shed_total{class=\"bulk\",reason=\"brownout\"}")
            .await
            >= 1
    );
}
both!(
    sustained_shedding_browns_out_lists,
    sustained_shedding_browns_out_lists_case,
    crate::admission::limit_of_two
);

async fn limit_of_two(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    run_config(backend, fixed_limit(2, Duration::ZERO), case).await;
}

/// Two processes with one Redis share a key's limit of 4 a minute: two
/// payments on each, then a fifth is refused on either. When Redis dies,
/// each keeps half of the limit (2 live processes, counted by heartbeats)
/// in buckets of its own.
async fn two_processes_share_one_limit(backend: Backend) {
    if !redis_available() || (backend == Backend::Postgres && !postgres_available()) {
        return;
    }
    let redis = PrivateRedis::start(free_port());
    let mut config = money_per_minute("4/m");
    config.redis_url = Some(redis.url());
    config.admission.rate.heartbeat_every = Duration::from_millis(50);
    let config_b = config.clone();
    run_config(backend, config, async |a: &TestApp| {
        let db = match a.db.backend {
            Backend::Postgres => a.db.another_process().await.unwrap(),
            Backend::Sqlite => a.db.same_store(),
        };
        let b = TestApp::spawn_config(db, Arc::new(SystemClock), config_b).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while a.metric("settle_live_processes").await != 2 || b.metric("settle_live_processes").await != 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the processes never counted each other"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (src, dst) = accounts(a).await;
        let key = a.admin_key.clone();
        for (app, remaining) in [(a, "3"), (&b, "2"), (a, "1"), (&b, "0")] {
            let paid = pay_as(app, &key, &src, &dst).await;
            assert_eq!(paid.status, 200, "{}", paid.body);
            assert_eq!(header(&paid, "ratelimit-remaining"), remaining);
        }
        for app in [a, &b] {
            let refused = pay_as(app, &key, &src, &dst).await;
            refused.assert_error(429, "rate_limit_error", "rate_limited");
        }
        assert!(a.metric("settle_rate_limit_checks_total{decided=\"shared\"}").await >= 3);

        redis.signal("KILL");
        for _ in 0..2 {
            let paid = pay_as(a, &key, &src, &dst).await;
            assert_eq!(paid.status, 200, "{}", paid.body);
            assert_eq!(
                header(&paid, "ratelimit-limit"),
                "2",
                "half of 4 for each of 2 processes"
            );
        }
        let refused = pay_as(a, &key, &src, &dst).await;
        refused.assert_error(429, "rate_limit_error", "rate_limited");
        assert!(a.metric("settle_rate_limit_checks_total{decided=\"fallback\"}").await >= 3);
        assert_eq!(a.metric("settle_live_processes").await, 2, "the last count stands");
        b.finish().await;
    })
    .await;
}

mod two_processes_share_one_limit {
    use crate::support::{Backend, runtime};

    #[test]
    fn sqlite() {
        runtime().block_on(super::two_processes_share_one_limit(Backend::Sqlite));
    }

    #[test]
    fn postgres() {
        runtime().block_on(super::two_processes_share_one_limit(Backend::Postgres));
    }
}
