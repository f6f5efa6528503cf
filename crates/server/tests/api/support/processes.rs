//! Test support outside the app under test: the NATS server, child
//! processes (`settle serve`, `settle processor-sim`), free ports, waiting
//! for readiness, and plain HTTP clients.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

/// The NATS server the NATS suites use (`SETTLE_TEST_NATS_URL`).
pub fn nats_url() -> String {
    std::env::var("SETTLE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Whether the NATS suites run: like [`postgres_available`], a missing
/// server is a failure under `CI=true` and a loud skip elsewhere.
pub fn nats_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let url = nats_url();
        let addr: SocketAddr = url
            .trim_start_matches("nats://")
            .replace("localhost", "127.0.0.1")
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 4222)));
        let up = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok();
        if !up {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "CI=true but NATS at {url} is not reachable: the NATS suites must run in CI"
            );
            let _ = std::io::stderr().write_all(
                format!(
                    "\n*** settle tests: NATS at {url} is not reachable: SKIPPED every NATS JetStream suite. \
                     Set SETTLE_TEST_NATS_URL or start nats-server -js; CI=true makes this a failure. ***\n\n"
                )
                .as_bytes(),
            );
        }
        up
    })
}

/// The Redis server the shared-cache suites use (`SETTLE_TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("SETTLE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Whether the shared-cache suites run: a missing Redis is a failure under
/// `CI=true` and a loud skip elsewhere.
pub fn redis_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let url = redis_url();
        let addr: SocketAddr = url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .replace("localhost", "127.0.0.1")
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 6379)));
        let up = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok();
        let server = std::process::Command::new("redis-server").arg("--version").output().is_ok();
        if !(up && server) {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "CI=true but Redis at {url} is not reachable or redis-server is not installed: the Redis suites must run in CI"
            );
            let _ = std::io::stderr().write_all(
                format!(
                    "\n*** settle tests: Redis at {url} is not reachable or redis-server is missing: SKIPPED every \
                     shared-cache (Redis) suite. Set SETTLE_TEST_REDIS_URL or install redis-server; CI=true makes \
                     this a failure. ***\n\n"
                )
                .as_bytes(),
            );
        }
        up && server
    })
}

/// A `redis-server` of the test's own, on `port`, without persistence:
/// stopped, frozen or killed at the test's will.
pub struct PrivateRedis {
    pub port: u16,
    child: std::process::Child,
}

impl PrivateRedis {
    pub fn start(port: u16) -> PrivateRedis {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        PrivateRedis { port, child }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`) to the server.
    pub fn signal(&self, signal: &str) {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stream prefix no other test (or deployment) uses.
pub fn nats_prefix() -> String {
    format!("t{:x}", rand::random::<u64>())
}

/// Deletes the streams of `prefix` on the test NATS server.
pub async fn delete_nats_streams(prefix: &str) {
    if let Ok(client) = async_nats::connect(nats_url()).await {
        let js = async_nats::jetstream::new(client);
        for suffix in ["EVENTS", "DEAD"] {
            let _ = js.delete_stream(format!("{}_{suffix}", prefix.to_uppercase())).await;
        }
    }
}

/// A `settle processor-sim` child process, killed when dropped.
pub struct Sim {
    pub url: String,
    child: std::process::Child,
}

impl Sim {
    /// Starts the simulator with `args` (e.g. `--failure-rate 0.5`) on a free port.
    pub fn start(args: &[&str]) -> Sim {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_settle"))
            .args(["processor-sim", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start processor-sim");
        let stdout = child.stdout.take().expect("sim stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("sim address");
        Sim {
            url: line.trim().to_owned(),
            child,
        }
    }

    pub async fn stats(&self) -> Value {
        http_client()
            .get(format!("{}/stats", self.url))
            .send()
            .await
            .expect("sim stats")
            .json()
            .await
            .expect("sim stats body")
    }

    pub async fn set_failure_rate(&self, rate: f64) {
        let r = http_client()
            .post(format!("{}/control", self.url))
            .json(&json!({ "failure_rate": rate }))
            .send()
            .await
            .expect("sim control");
        assert_eq!(r.status(), 204);
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics with
/// `what` after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free loopback port for a `settle` process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `settle` child process, killed (SIGKILL) when dropped.
pub struct Server(pub std::process::Child);

impl Server {
    /// Sends SIGTERM and waits (at most 15 s) for the process to exit by
    /// itself: what a clean shutdown leaves behind (flushed logs, ended
    /// streams) is only there once it has.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "settle did not exit after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `base` answers `/readyz` with 200.
pub async fn wait_ready(base: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let client = http_client();
    while std::time::Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server at {base} never became ready");
}

/// The tests' HTTP client. The build links rustls without choosing a
/// provider (Settle's own clients pass theirs in), so install ring first.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    settle_core::tls::install_default_provider();
    reqwest::Client::builder()
}

pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("http client")
}
