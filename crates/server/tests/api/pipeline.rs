//! The operation pipeline as a client meets it: a deadline the client may
//! shorten (`Settle-Timeout-Ms`), a write not begun by its deadline is not
//! begun (on SQLite, refused before its batch opens; on PostgreSQL, its
//! statements time out with what is left), and "the same parameters" of an
//! idempotency key is the typed input, not the bytes of the body.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use settle_domain::ids::AccountId;
use sqlx::{Connection, Executor};

use crate::support::{Backend, Resp, TestApp, both};

async fn post_with(app: &TestApp, path: &str, headers: &[(&str, &str)], body: Value) -> Resp {
    let mut req = app
        .client
        .request(Method::POST, app.url(path))
        .bearer_auth(&app.admin_key)
        .json(&body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    Resp::read(req.send().await.unwrap()).await
}

async fn timeout_header_rules_case(app: &TestApp) {
    let body = json!({"name": "a", "currency": "usd"});
    for bad in ["abc", "0", "-5", "1.5", "", "86400001", "9223372036854775808"] {
        let r = post_with(app, "/v1/accounts", &[("settle-timeout-ms", bad)], body.clone()).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        assert_eq!(r.body["error"]["param"], "Settle-Timeout-Ms", "{bad:?}: {}", r.body);
    }
    // Longer than the server's own budget: allowed, the server's applies.
    let r = post_with(app, "/v1/accounts", &[("settle-timeout-ms", "86400000")], body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_with(app, "/v1/accounts", &[("settle-timeout-ms", "5000")], body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let accounts = app.get("/v1/accounts").await;
    assert_eq!(accounts.body["data"].as_array().unwrap().len(), 2);
}
both!(timeout_header_rules, timeout_header_rules_case);

/// Holds what keeps writes from beginning: SQLite's write lock (another
/// connection's `BEGIN IMMEDIATE`), or on PostgreSQL the source account's
/// row lock.
pub(crate) struct Blocker(sqlx::AnyConnection);

impl Blocker {
    pub(crate) async fn take(app: &TestApp, account: &str) -> Blocker {
        sqlx::any::install_default_drivers();
        match app.db.backend {
            Backend::Sqlite => {
                let file = app.db.sqlite_dir().unwrap().join("settle.db");
                let mut conn = sqlx::AnyConnection::connect(&format!("sqlite://{}", file.display()))
                    .await
                    .unwrap();
                conn.execute("BEGIN IMMEDIATE").await.unwrap();
                Blocker(conn)
            }
            Backend::Postgres => {
                let mut conn = sqlx::AnyConnection::connect(app.db.url.as_deref().unwrap())
                    .await
                    .unwrap();
                conn.execute("BEGIN").await.unwrap();
                let id = AccountId::parse(account).unwrap().to_bytes();
                sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
                    .bind(id)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                Blocker(conn)
            }
        }
    }

    pub(crate) async fn release(mut self) {
        self.0.execute("ROLLBACK").await.unwrap();
        self.0.close().await.unwrap();
    }
}

async fn a_write_not_begun_by_its_deadline_is_not_begun_case(app: &TestApp) {
    blocked_write_is_refused(app, Budget::Client).await;
}
both!(
    a_write_not_begun_by_its_deadline_is_not_begun,
    a_write_not_begun_by_its_deadline_is_not_begun_case
);

/// The server's own budget (`SETTLE_REQUEST_TIMEOUT_MS`) at 300 ms: the
/// same refusal is the server's, 504 with `Retry-After`.
async fn the_server_budget_is_a_deadline_too_case(app: &TestApp) {
    blocked_write_is_refused(app, Budget::Server).await;
}
both!(
    the_server_budget_is_a_deadline_too,
    the_server_budget_is_a_deadline_too_case,
    crate::pipeline::short_budget
);

async fn short_budget(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    let config = settle::config::Config {
        request_timeout: Duration::from_millis(300),
        ..settle::config::Config::default()
    };
    crate::support::run_config(backend, config, case).await;
}

/// Whose budget runs out in [`blocked_write_is_refused`].
#[derive(PartialEq)]
enum Budget {
    /// `Settle-Timeout-Ms: 300` on the request; the server's is 30 s.
    Client,
    /// The server's own, at 300 ms for every request.
    Server,
}

/// A payment whose write cannot begin (the database is held) while its
/// deadline passes is refused, writes nothing, and releases its
/// idempotency key. A write sent before it, whose deadline is the server's
/// 30 s, still commits once the database is free; with the server's budget
/// at 300 ms, on PostgreSQL that one times out too (its statement waited
/// for the row lock past what was left), on SQLite it had begun and
/// commits.
async fn blocked_write_is_refused(app: &TestApp, budget: Budget) {
    let (status, kind, late_headers): (u16, &str, &[(&str, &str)]) = match budget {
        Budget::Client => (408, "invalid_request_error", &[("settle-timeout-ms", "300")]),
        Budget::Server => (504, "api_error", &[]),
    };
    let first_commits = budget == Budget::Client || app.db.backend == Backend::Sqlite;
    let alice = app.account("alice", "usd", false).await;
    let shop = app.account("shop", "usd", false).await;
    app.fund(&alice, "usd", 10_000).await;
    let pay = |amount: i64| json!({"amount": amount, "currency": "usd", "source": alice, "destination": shop});

    let blocker = Blocker::take(app, &alice).await;
    // On SQLite a first write waits for the lock inside its batch; the
    // deadline of the next one, queued behind it, passes meanwhile.
    let first = {
        let (app_url, key, body) = (app.url("/v1/payments"), app.admin_key.clone(), pay(100));
        let client = app.client.clone();
        tokio::spawn(async move {
            let res = client.post(app_url).bearer_auth(key).json(&body).send().await.unwrap();
            Resp::read(res).await
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    let late = {
        let (app_url, key, body) = (app.url("/v1/payments"), app.admin_key.clone(), pay(200));
        let client = app.client.clone();
        let headers: Vec<(String, String)> = late_headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        tokio::spawn(async move {
            let mut req = client
                .post(app_url)
                .bearer_auth(key)
                .header("idempotency-key", "deadline-1")
                .json(&body);
            for (name, value) in headers {
                req = req.header(name, value);
            }
            Resp::read(req.send().await.unwrap()).await
        })
    };
    tokio::time::sleep(Duration::from_millis(900)).await;
    blocker.release().await;
    let late = late.await.unwrap();
    // The client's own budget is the client's to lengthen (a 4xx); the
    // server's is the server's (504, retry later).
    late.assert_error(status, kind, "deadline_exceeded");
    assert_eq!(
        late.headers.contains_key("retry-after"),
        status == 504,
        "{:?}",
        late.headers
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the refusal waited for the lock to go: {:?}",
        started.elapsed()
    );
    let first = first.await.unwrap();
    let first_amount = if first_commits {
        assert_eq!(
            first.status, 200,
            "a write begun before its deadline commits: {}",
            first.body
        );
        100
    } else {
        first.assert_error(504, "api_error", "deadline_exceeded");
        0
    };

    // Nothing of the late payment was written, and its key was released:
    // the same request, the database free, now succeeds.
    let shop_now = app.get(&format!("/v1/accounts/{shop}")).await;
    assert_eq!(shop_now.body["balance"], first_amount, "{}", shop_now.body);
    let payments = app.get(&format!("/v1/payments?destination={shop}")).await;
    let written = usize::from(first_commits);
    assert_eq!(
        payments.body["data"].as_array().unwrap().len(),
        written,
        "{}",
        payments.body
    );
    let again = post_with(app, "/v1/payments", &[("idempotency-key", "deadline-1")], pay(200)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(!again.headers.contains_key("idempotent-replayed"));
    let shop_now = app.get(&format!("/v1/accounts/{shop}")).await;
    assert_eq!(shop_now.body["balance"], first_amount + 200, "{}", shop_now.body);
}

async fn same_typed_input_is_the_same_request_case(app: &TestApp) {
    let alice = app.account("alice", "usd", false).await;
    let shop = app.account("shop", "usd", false).await;
    app.fund(&alice, "usd", 10_000).await;
    let key = [("idempotency-key", "typed-1")];
    let first = post_with(
        app,
        "/v1/payments",
        &key,
        json!({"amount": 500, "currency": "usd", "source": alice, "destination": shop}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    // The default spelled out, keys in another order: the same typed input.
    let same = post_with(
        app,
        "/v1/payments",
        &key,
        json!({"capture": true, "destination": shop, "source": alice, "currency": "usd", "amount": 500}),
    )
    .await;
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(same.headers["idempotent-replayed"], "true");
    assert_eq!(same.body, first.body);
    // Another value of a parameter is another request.
    let other = post_with(
        app,
        "/v1/payments",
        &key,
        json!({"amount": 500, "currency": "usd", "source": alice, "destination": shop, "capture": false}),
    )
    .await;
    other.assert_error(422, "idempotency_error", "idempotency_key_reused");
    // The same body to another operation is another request too.
    let refund = post_with(app, "/v1/refunds", &key, json!({"payment": first.id()})).await;
    refund.assert_error(422, "idempotency_error", "idempotency_key_reused");
    let shop_now = app.get(&format!("/v1/accounts/{shop}")).await;
    assert_eq!(shop_now.body["balance"], 500, "one effect: {}", shop_now.body);
}
both!(
    same_typed_input_is_the_same_request,
    same_typed_input_is_the_same_request_case
);
