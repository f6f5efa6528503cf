//! `settle seed` and `settle verify` from the outside, on both databases:
//! a small seed passes every invariant and serves keyset pages; a seed
//! killed (SIGKILL) mid-run leaves a database that still verifies.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{TestApp, both};

const BIN: &str = env!("CARGO_BIN_EXE_settle");

fn settle(app: &TestApp) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("DATABASE_URL");
    match (app.db.sqlite_dir(), &app.db.url) {
        (Some(dir), _) => cmd.env("SETTLE_DATA_DIR", dir),
        (_, Some(url)) => cmd.env("DATABASE_URL", url),
        _ => unreachable!("a test database is SQLite or PostgreSQL"),
    };
    cmd
}

fn run(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

both!(seed_then_verify, seed_then_verify_case);
async fn seed_then_verify_case(app: &TestApp) {
    let mut cmd = settle(app);
    cmd.args([
        "seed",
        "--accounts",
        "300",
        "--customers",
        "100",
        "--payments",
        "6000",
        "--batch",
        "1000",
        "--verify",
    ]);
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("seeded 6000 payments"), "{stderr}");
    assert_eq!(
        stderr.matches("verify: ").count(),
        settle_store::sql::verify::INVARIANTS.len()
    );
    assert!(!stderr.contains("VIOLATIONS"));

    let page = app.get("/v1/payments?limit=100&status=succeeded").await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 100);
    assert_eq!(page.body["has_more"], true);
    let last = page.body["data"][99]["id"].as_str().unwrap().to_owned();
    let next = app
        .get(&format!(
            "/v1/payments?limit=100&status=succeeded&starting_after={last}"
        ))
        .await;
    assert!(next.body["data"][0]["id"].as_str().unwrap() < last.as_str());
    let refunds = app.get("/v1/refunds?limit=5").await;
    assert!(
        !refunds.body["data"].as_array().unwrap().is_empty(),
        "a fraction of payments is refunded"
    );
}

both!(
    interrupted_seed_stays_consistent,
    interrupted_seed_stays_consistent_case
);
async fn interrupted_seed_stays_consistent_case(app: &TestApp) {
    let mut cmd = settle(app);
    cmd.args(["seed", "--accounts", "200", "--payments", "5000000", "--batch", "2000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Let a few batches commit, then kill it in the middle of the next one.
    let mut waited = Duration::ZERO;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
        let page = app.get("/v1/payments?limit=100").await;
        if page.body["has_more"] == true || waited > Duration::from_secs(30) {
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the seed was killed before it finished");
    let mut verify = settle(app);
    verify.arg("verify");
    let out = run(verify);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("VIOLATIONS"));
    assert_eq!(
        app.get("/v1/payments?limit=100").await.body["has_more"],
        true,
        "committed batches stay"
    );
}
