//! Attribute policies under attack: texts built to exhaust a stack are
//! refused with 422 before Cedar parses them (and the server keeps
//! answering), a policy at the limits works, and a policy that locks every
//! key out is lifted with `settle policies disable|delete` on the database.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use settle::config::Config;
use settle_core::policy::limits::{MAX_BYTES, MAX_DEPTH, MAX_OPERATORS};
use settle_domain::ids::PolicyId;
use settle_store::records::StoredPolicy;

use crate::support::{Backend, TestApp, both, eventually, run_config};

const HEAD: &str = "forbid(principal, action, resource) when { ";

/// The server still serves: a read through auth and the policy engine.
async fn alive(app: &TestApp) {
    let r = app.get("/v1/accounts").await;
    assert_eq!(r.status, 200, "the server must keep answering: {}", r.body);
}

async fn refused(app: &TestApp, text: &str, limit: &str) {
    let r = app
        .post("/v1/policies", json!({"name": "attack", "policy": text}))
        .await;
    r.assert_error(422, "invalid_request_error", "policy_invalid");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(limit), "{message}");
    alive(app).await;
}

both!(attack_shapes_are_refused, attack_shapes_are_refused_case);
async fn attack_shapes_are_refused_case(app: &TestApp) {
    let parens = format!(
        r#"{HEAD}{}principal.role == "zz"{} }};"#,
        "(".repeat(200),
        ")".repeat(200)
    );
    refused(
        app,
        &parens,
        &format!("201 levels deep; the limit is {MAX_DEPTH} levels"),
    )
    .await;
    let sets = format!("{HEAD}{}1{} == 1 }};", "[".repeat(200), "]".repeat(200));
    refused(app, &sets, &format!("the limit is {MAX_DEPTH} levels")).await;
    let plus = format!(
        r#"forbid(principal, action == Action::"refunds:write", resource) when {{ resource.amount{} > 0 }};"#,
        " + 1".repeat(50_000)
    );
    refused(app, &plus, &format!("the limit is {MAX_BYTES} bytes")).await;
    let ifs = format!(
        r#"{HEAD}{}true{} }};"#,
        "if principal.role == \"a\" then ".repeat(1_250),
        " else false".repeat(1_250)
    );
    refused(app, &ifs, &format!("the limit is {MAX_BYTES} bytes")).await;
    // Short enough to pass the size limit, the same shapes meet the others.
    let plus = format!(
        r#"forbid(principal, action == Action::"refunds:write", resource) when {{ resource.amount{} > 0 }};"#,
        " + 1".repeat(1_000)
    );
    refused(app, &plus, &format!("has 1003 operators; the limit is {MAX_OPERATORS}")).await;
    let ifs = format!(r#"{HEAD}{}true }};"#, "if true then false else ".repeat(200));
    refused(app, &ifs, "201 levels deep").await;
    // 1,000 `&&` terms once validated and then denied every request it met.
    let ands = format!(r#"{HEAD}true{} }};"#, " && true".repeat(999));
    refused(app, &ands, "the limit is").await;

    // PATCH is checked the same way, and leaves the policy as it was.
    let ok = r#"forbid(principal, action == Action::"refunds:write", resource) when { resource.amount > 5000 };"#;
    let r = app.post("/v1/policies", json!({"name": "fine", "policy": ok})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "enabled");
    let id = r.id();
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/policies/{id}"),
            Some(&app.admin_key),
            Some(json!({"policy": parens})),
        )
        .await;
    r.assert_error(422, "invalid_request_error", "policy_invalid");
    alive(app).await;
    assert_eq!(app.get(&format!("/v1/policies/{id}")).await.body["policy"], ok);
}

both!(policy_at_the_limits_works, policy_at_the_limits_works_case);
async fn policy_at_the_limits_works_case(app: &TestApp) {
    // Brackets as deep as allowed (the `when` braces are one level) and as
    // many operators as allowed, evaluated on every account read.
    let depth = MAX_DEPTH - 1;
    let alternatives = (MAX_OPERATORS - 3) / 3;
    let text = format!(
        r#"forbid(principal, action == Action::"accounts:read", resource) when {{ {}principal.name{} == {}"zz"{}{} }};"#,
        "[".repeat(depth),
        "]".repeat(depth),
        "[".repeat(depth),
        "]".repeat(depth),
        r#" || principal.role == "nobody""#.repeat(alternatives),
    );
    let r = app
        .post("/v1/policies", json!({"name": "at the limits", "policy": text}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    alive(app).await;
    // One more operator is refused.
    let over = text.replace(" };", r#" || principal.role == "x" };"#);
    refused(app, &over, "operators; the limit is").await;
    // A hundred account ids is one operator, whatever the length of the list.
    let ids: Vec<String> = (0..100)
        .map(|i| format!(r#""acct_01JABCDEFGHJKMNPQRSTVW{i:04}""#))
        .collect();
    let list = format!(
        r#"forbid(principal, action == Action::"payments:write", resource) unless {{ [{}].contains(resource.source) || principal.role == "admin" }};"#,
        ids.join(", ")
    );
    let r = app
        .post("/v1/policies", json!({"name": "sources", "policy": list}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    alive(app).await;
}

/// A short auth cache TTL, so a change made by another process (the
/// command line) reaches the server within the test.
async fn with_short_ttl(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    let config = Config {
        auth_cache_ttl: Duration::from_millis(200),
        ..Config::default()
    };
    run_config(backend, config, case).await
}

/// `settle <args>` on the test's own database.
fn settle_cli(app: &TestApp, args: &[&str]) -> Output {
    let scratch = std::env::temp_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_settle"));
    cmd.current_dir(&scratch).env_remove("DATABASE_URL").args(args);
    match (&app.db.url, app.db.sqlite_dir()) {
        (Some(url), _) => cmd.env("DATABASE_URL", url),
        (None, Some(dir)) => cmd.env("SETTLE_DATA_DIR", dir),
        (None, None) => panic!("the test database has neither a URL nor a directory"),
    };
    let out = cmd.output().expect("run settle");
    assert!(
        out.status.success(),
        "settle {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn listed(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

async fn locked_out(app: &TestApp) {
    let r = app.get("/v1/accounts").await;
    r.assert_error(403, "permission_error", "policy_denied");
}

async fn until_served(app: &TestApp) {
    eventually(Duration::from_secs(10), "the server to serve again", || async {
        (app.get("/v1/accounts").await.status == 200).then_some(())
    })
    .await;
}

both!(
    forbid_everything_then_break_glass,
    forbid_everything_case,
    super::with_short_ttl
);
async fn forbid_everything_case(app: &TestApp) {
    let r = app
        .post(
            "/v1/policies",
            json!({"name": "lock", "policy": "forbid(principal, action, resource);"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.id();
    locked_out(app).await;
    let path = format!("/v1/policies/{id}");
    app.call(Method::DELETE, &path, Some(&app.admin_key), None)
        .await
        .assert_error(403, "permission_error", "policy_denied");

    settle_cli(app, &["policies", "disable", &id]);
    until_served(app).await;
    let r = app.get(&format!("/v1/policies/{id}")).await;
    assert_eq!(r.body["status"], "disabled", "{}", r.body);
    let out = settle_cli(app, &["policies", "list"]);
    let rows = listed(&out);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["status"], "disabled");
    assert_eq!(rows[0]["compiles"], true);
    let audit = app.get("/v1/audit_events?limit=100").await;
    assert!(
        audit.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["operation"] == "disable_policy" && e["api_key"].is_null()),
        "the break-glass is in the audit log: {}",
        audit.body
    );

    // Enabled again through the API (it compiles), it locks everyone out at once.
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/policies/{id}"),
            Some(&app.admin_key),
            Some(json!({"status": "enabled"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "enabled");
    locked_out(app).await;
    settle_cli(app, &["policies", "delete", &id]);
    until_served(app).await;
    assert!(listed(&settle_cli(app, &["policies", "list"])).is_empty());
}

both!(
    stored_policy_that_no_longer_compiles,
    no_longer_compiles_case,
    super::with_short_ttl
);
async fn no_longer_compiles_case(app: &TestApp) {
    // As if stored before the limits: written by the store, which does not validate.
    let deep = format!(
        r#"{HEAD}{}principal.role == "zz"{} }};"#,
        "(".repeat(200),
        ")".repeat(200)
    );
    let stored = |text: String, disabled_at: Option<i64>| StoredPolicy {
        id: PolicyId::from_uuid(uuid::Uuid::nil()),
        name: "old".into(),
        policy: text,
        description: None,
        version: 1,
        created: 0,
        disabled_at,
    };
    let ctx = app.settle.context("test", None);
    let old = app
        .store()
        .create_policy(&ctx, stored(deep.clone(), None))
        .await
        .unwrap();
    let id = old.id.to_string();
    eventually(Duration::from_secs(10), "every request to be denied", || async {
        (app.get("/v1/accounts").await.code() == "policy_denied").then_some(())
    })
    .await;
    locked_out(app).await;

    let rows = listed(&settle_cli(app, &["policies", "list"]));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["status"], "enabled");
    assert_eq!(rows[0]["compiles"], false);
    let error = rows[0]["error"].as_str().unwrap();
    assert!(error.contains("201 levels deep"), "{error}");
    settle_cli(app, &["policies", "delete", &id]);
    until_served(app).await;

    // A disabled policy that does not compile stays off: enabling it is refused.
    let parked = app.store().create_policy(&ctx, stored(deep, Some(1))).await.unwrap();
    alive(app).await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/policies/{}", parked.id),
            Some(&app.admin_key),
            Some(json!({"status": "enabled"})),
        )
        .await;
    r.assert_error(422, "invalid_request_error", "policy_invalid");
    assert_eq!(
        app.get(&format!("/v1/policies/{}", parked.id)).await.body["status"],
        "disabled"
    );
    alive(app).await;
}

#[test]
fn cli_policies_needs_a_policy_that_exists() {
    let dir = crate::support::temp_dir("settle_policies_cli");
    let out = Command::new(env!("CARGO_BIN_EXE_settle"))
        .current_dir(&dir)
        .env_remove("DATABASE_URL")
        .env("SETTLE_DATA_DIR", dir.join("data"))
        .args(["policies", "disable", "pol_nothing"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot disable pol_nothing"));
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
