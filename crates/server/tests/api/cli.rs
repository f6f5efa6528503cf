//! The `settle` binary from the outside: `keys create` prints the secret
//! alone on stdout and writes where `serve` reads (on both databases),
//! `migrate` works, bad configuration fails clearly, SIGTERM stops cleanly.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::{
    Server, create_pg_database, drop_pg_database, free_port, postgres_available, temp_dir, wait_ready,
};

const BIN: &str = env!("CARGO_BIN_EXE_settle");

/// `settle` run in `data_dir` on SQLite there, or on `database_url`.
pub(crate) fn settle(data_dir: &Path, database_url: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(data_dir)
        .env_remove("DATABASE_URL")
        .env("SETTLE_DATA_DIR", data_dir.join("data"));
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd
}

/// An admin key made by `keys create` in `dir`'s database.
pub(crate) fn admin_secret(dir: &Path) -> String {
    let out = settle(dir, None)
        .args(["keys", "create", "--role", "admin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn key_then_serve(database_url: Option<&str>) {
    let dir = temp_dir("settle_cli");
    let out = settle(&dir, database_url)
        .args(["keys", "create", "--role", "developer", "--name", "ci"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout must hold the secret alone: {stdout:?}");
    let secret = lines[0];
    assert!(secret.starts_with("sk_") && secret.len() > 60, "{secret}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(secret),
        "the secret must not be logged"
    );

    let port = free_port();
    let child = settle(&dir, database_url)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    let client = crate::support::http_client();
    let r = client
        .post(format!("{base}/v1/accounts"))
        .bearer_auth(secret)
        .json(&json!({"name": "x", "currency": "usd"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the key made by `keys create` must work on the server");
    // A developer key may not manage keys' resources it lacks: checked elsewhere; here, SIGTERM.
    let status = server.terminate().await;
    assert!(status.success(), "graceful shutdown must exit 0, got {status:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn keys_create_then_serve_sqlite() {
    key_then_serve(None).await;
}

#[tokio::test]
async fn keys_create_then_serve_postgres() {
    if !postgres_available() {
        return;
    }
    let name = format!("settle_cli_{:x}", rand::random::<u32>());
    let url = create_pg_database(&name).await;
    key_then_serve(Some(&url)).await;
    drop_pg_database(&name).await;
}

#[test]
fn migrate_and_bad_configuration() {
    let dir = temp_dir("settle_cli");
    let out = settle(&dir, None).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.join("data/settle.db").exists());
    assert!(out.stdout.is_empty());

    let out = settle(&dir, Some("mysql://nope")).arg("migrate").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));

    let out = settle(&dir, None)
        .args(["keys", "create", "--role", "root"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout when no key was made");

    std::fs::write(dir.join("settle.toml"), "listen = 5\n").unwrap();
    let out = settle(&dir, None).arg("migrate").output().unwrap();
    assert!(!out.status.success(), "an invalid settle.toml must be an error");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn password_never_logged() {
    let dir = temp_dir("settle_cli");
    let out = settle(&dir, Some("postgres://app:hunter2@127.0.0.1:1/nope"))
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `SETTLE_LOG_FORMAT=json`: one JSON line per request with its id, method,
/// route, status and latency, and no secret anywhere in the log.
#[tokio::test]
async fn json_request_log() {
    let dir = temp_dir("settle_cli");
    let secret = admin_secret(&dir);
    let port = free_port();
    let log = std::fs::File::create(dir.join("log.json")).unwrap();
    let child = settle(&dir, None)
        .env("SETTLE_LOG_FORMAT", "json")
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    let res = crate::support::http_client()
        .get(format!("{base}/v1/accounts"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let request_id = res.headers()["request-id"].to_str().unwrap().to_owned();
    // A clean exit writes every queued log line before it ends.
    assert!(server.terminate().await.success());
    let text = std::fs::read_to_string(dir.join("log.json")).unwrap();
    assert!(!text.contains(&secret), "no secret in the log");
    let line: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no JSON line for {request_id} in {text}"));
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/v1/accounts");
    assert_eq!(line["status"], 200);
    assert!(line["latency_ms"].as_f64().is_some());
    let _ = std::fs::remove_dir_all(dir);
}

/// `secrets reseal` finishes a master-key rotation: secrets sealed under the
/// old key are sealed under the new one, after which the old key can go; a
/// key that opens nothing is a clear failure.
#[tokio::test]
async fn secrets_reseal_finishes_a_key_rotation() {
    use settle_core::secrets::MasterKeys;
    let dir = temp_dir("settle_cli");
    let (old, new) = (MasterKeys::generate_text(), MasterKeys::generate_text());
    let secret = admin_secret(&dir);
    let port = free_port();
    let child = settle(&dir, None)
        .env("SETTLE_MASTER_KEY", &old)
        .env("SETTLE_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    let http = crate::support::http_client();
    for _ in 0..2 {
        let r = http
            .post(format!("{base}/v1/webhook_endpoints"))
            .bearer_auth(&secret)
            .json(&json!({"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    drop(server);

    let reseal = |keys: &str| {
        settle(&dir, None)
            .env("SETTLE_MASTER_KEY", keys)
            .args(["secrets", "reseal"])
            .output()
            .unwrap()
    };
    let out = reseal(&format!("{new},{old}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2 endpoints, 2 resealed under the current master key"
    );
    // The old key is no longer needed: the new one alone opens everything.
    let out = reseal(&new);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2 endpoints, 0 resealed under the current master key"
    );
    // A key that opens nothing stops with the reason, and changes nothing.
    let out = reseal(&MasterKeys::generate_text());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no master key can open"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = reseal(&new);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 resealed"));
    let _ = std::fs::remove_dir_all(dir);
}
