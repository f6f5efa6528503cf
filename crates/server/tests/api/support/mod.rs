//! Test support: a fresh database per test (a temporary SQLite file, or a
//! new PostgreSQL database dropped afterwards), the whole app served on a
//! free port, and small HTTP helpers.

#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use settle::app::Application;
use settle::config::Config;
use settle_core::clock::SystemClock;
use settle_core::{Settle, clock::Clock};
use settle_store::Store;
use settle_store::sql::SqlStore;
use settle_store_postgres::PostgresOptions;
use settle_store_sqlite::SqliteOptions;
use sqlx::{Connection, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one case as two tests, `<name>::sqlite` and `<name>::postgres`, on
/// the runtime `settle serve` uses (see [`runtime`]); `$run` (default
/// [`run`]) serves the app the case gets.
macro_rules! both {
    ($name:ident, $case:ident) => {
        $crate::support::both!($name, $case, $crate::support::run);
    };
    ($name:ident, $case:ident, $run:path) => {
        mod $name {
            #[test]
            fn sqlite() {
                $crate::support::runtime().block_on($run($crate::support::Backend::Sqlite, super::$case))
            }

            #[test]
            fn postgres() {
                $crate::support::runtime().block_on($run($crate::support::Backend::Postgres, super::$case))
            }
        }
    };
}
pub(crate) use both;

/// Four workers with the stack size of `settle serve`'s runtime, so a
/// request evaluating a policy at the limits has the stack it has in
/// production (the default 2 MiB of a test runtime is not enough for it in
/// a debug build).
pub fn runtime() -> tokio::runtime::Runtime {
    settle::runtime::builder()
        .worker_threads(4)
        .build()
        .expect("test runtime")
}

pub fn admin_url() -> String {
    std::env::var("SETTLE_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn postgres_addr(url: &str) -> SocketAddr {
    let host_port = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432");
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    host_port
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5432)))
}

/// Whether the PostgreSQL variants run. Under `CI=true` a missing server
/// fails the test; elsewhere it is skipped, and said so once on the real
/// stderr (past the test harness's capture) so nobody mistakes a skip for a pass.
pub fn postgres_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let url = admin_url();
        let up = TcpStream::connect_timeout(&postgres_addr(&url), Duration::from_secs(2)).is_ok();
        if !up {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "CI=true but PostgreSQL at {url} is not reachable: the PostgreSQL suite must run in CI");
            let _ = std::io::stderr().write_all(
                format!(
                    "\n*** settle tests: PostgreSQL at {url} is not reachable: SKIPPED the `postgres` variant of every suite \
                     (only `sqlite` ran). Set SETTLE_TEST_DATABASE_URL or start PostgreSQL; CI=true makes this a failure. ***\n\n"
                )
                .as_bytes(),
            );
        }
        up
    })
}

/// A database that exists for one test.
pub struct TestDb {
    pub backend: Backend,
    pub store: Arc<dyn Store>,
    /// PostgreSQL: the database to drop; SQLite: the directory to remove.
    pg_name: Option<String>,
    dir: Option<PathBuf>,
    pub url: Option<String>,
    /// A sqlx pool on the database, for the tests' own SQL (on PostgreSQL
    /// also the store's pool).
    pub reads: sqlx::AnyPool,
    /// The store itself, for what only the SQL store offers.
    pub sql: Arc<SqlStore>,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{:x}", std::process::id(), rand::random::<u64>())
}

pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl TestDb {
    pub async fn create(backend: Backend) -> TestDb {
        Self::create_with(backend, None, Duration::from_secs(3)).await
    }

    /// A database whose pool has `pool_size` connections (read connections
    /// on SQLite) and the given acquire timeout.
    pub async fn create_with(backend: Backend, pool_size: Option<u32>, acquire_timeout: Duration) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = temp_dir("settle_test");
                let mut options = SqliteOptions {
                    acquire_timeout,
                    ..SqliteOptions::default()
                };
                options.read_pool_size = pool_size.unwrap_or(options.read_pool_size);
                let store = settle_store_sqlite::open(&dir, &options).await.expect("open sqlite");
                let reads = store.reads().clone();
                let sql = Arc::new(store);
                TestDb {
                    backend,
                    store: sql.clone(),
                    sql,
                    pg_name: None,
                    dir: Some(dir),
                    url: None,
                    reads,
                }
            }
            Backend::Postgres => {
                let name = unique("settle_t");
                let url = create_pg_database(&name).await;
                let mut options = PostgresOptions {
                    acquire_timeout,
                    ..PostgresOptions::default()
                };
                options.pool_size = pool_size.unwrap_or(options.pool_size);
                let store = settle_store_postgres::open(&url, &options)
                    .await
                    .expect("open postgres");
                let reads = store.reads().clone();
                let sql = Arc::new(store);
                TestDb {
                    backend,
                    store: sql.clone(),
                    sql,
                    pg_name: Some(name),
                    dir: None,
                    url: Some(url),
                    reads,
                }
            }
        }
    }

    /// A SQLite database in `dir`, a directory the test prepared (a small
    /// mount, say); [`TestDb::drop_db`] removes it.
    pub async fn sqlite_in(dir: PathBuf) -> TestDb {
        let store = settle_store_sqlite::open(&dir, &SqliteOptions::default())
            .await
            .expect("open sqlite");
        let reads = store.reads().clone();
        let sql = Arc::new(store);
        TestDb {
            backend: Backend::Sqlite,
            store: sql.clone(),
            sql,
            pg_name: None,
            dir: Some(dir),
            url: None,
            reads,
        }
    }

    /// The same PostgreSQL database through a store of its own, as another
    /// Settle process sees it (its own pool, commit bus and listener);
    /// dropping it leaves the database. `None` on SQLite, which one
    /// process serves.
    pub async fn another_process(&self) -> Option<TestDb> {
        let url = self.url.clone()?;
        let store = settle_store_postgres::open(&url, &PostgresOptions::default())
            .await
            .expect("open postgres");
        let reads = store.reads().clone();
        let sql = Arc::new(store);
        Some(TestDb {
            backend: Backend::Postgres,
            store: sql.clone(),
            sql,
            pg_name: None,
            dir: None,
            url: Some(url),
            reads,
        })
    }

    /// The same store again, for a second app in this process: another
    /// cache, the same commit bus (it hears every change at once, as one
    /// SQLite process would). Dropping it leaves the database.
    pub fn same_store(&self) -> TestDb {
        TestDb {
            backend: self.backend,
            store: Arc::clone(&self.store),
            sql: Arc::clone(&self.sql),
            pg_name: None,
            dir: None,
            url: self.url.clone(),
            reads: self.reads.clone(),
        }
    }

    /// The directory (SQLite) or URL (PostgreSQL) a `settle` process should use.
    pub fn sqlite_dir(&self) -> Option<&PathBuf> {
        self.dir.as_ref()
    }

    pub async fn drop_db(self) {
        drop(self.store);
        drop(self.sql);
        if let Some(name) = self.pg_name {
            drop_pg_database(&name).await;
        }
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Creates an empty PostgreSQL database and returns its URL.
pub async fn create_pg_database(name: &str) -> String {
    sqlx::any::install_default_drivers();
    let admin = admin_url();
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to PostgreSQL admin database");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create database");
    let _ = conn.close().await;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
    format!("{base}/{name}")
}

pub async fn drop_pg_database(name: &str) {
    if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin_url()).await {
        let _ = conn
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await;
        let _ = conn.close().await;
    }
}

/// The whole app on a free port, with an admin key.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub admin_key: String,
    pub settle: Settle,
    pub db: TestDb,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// What an HTTP call returned.
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// Reads a response; a body that is not JSON is kept as a string.
    pub async fn read(res: reqwest::Response) -> Resp {
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp { status, headers, body }
    }

    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
            .to_owned()
    }

    /// Asserts SPEC's error shape with the given status, type and code.
    pub fn assert_error(&self, status: u16, kind: &str, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["error"]["type"], kind, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        assert!(
            self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "body: {}",
            self.body
        );
        let request_id = self
            .headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .expect("Request-Id header");
        assert_eq!(self.body["error"]["request_id"], request_id);
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with_clock(backend, Arc::new(SystemClock)).await
    }

    pub async fn spawn_with_clock(backend: Backend, clock: Arc<dyn Clock>) -> TestApp {
        Self::spawn_db(TestDb::create(backend).await, clock).await
    }

    /// Serves an app over a database the caller prepared.
    pub async fn spawn_db(db: TestDb, clock: Arc<dyn Clock>) -> TestApp {
        let mut config = Config::default();
        config.webhooks.allow_private_targets = true;
        Self::spawn_config(db, clock, config).await
    }

    /// Serves an app with `config` (its listen address is replaced by port 0).
    pub async fn spawn_config(db: TestDb, clock: Arc<dyn Clock>, config: Config) -> TestApp {
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            statement_header: true,
            ..config
        };
        // The app hears other processes' commits on the test's database.
        if config.database_url.is_none() {
            config.database_url = db.url.clone();
        }
        // A key of the test's own, so nothing is written to the working directory.
        if config.webhooks.master_key.is_none() {
            config.webhooks.master_key = Some(settle_core::secrets::MasterKeys::generate_text());
        }
        let app = Application::with_store(&config, Arc::clone(&db.store), clock)
            .await
            .expect("build app");
        let addr = app.local_addr().expect("addr");
        let settle = app.settle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = app
                .run_until(async {
                    let _ = stopped.await;
                })
                .await;
        });
        let ctx = settle.context("test", None);
        let (_, admin_key) = settle
            .create_api_key(&ctx, None, "test admin".into(), "admin", None)
            .await
            .expect("admin key");
        let client = http_client_builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("client");
        TestApp {
            addr,
            client,
            admin_key,
            settle,
            db,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Waits until PostgreSQL's commit listener is connected (its first
    /// connection flushes the read cache, which a cache test must not meet
    /// halfway); at once on SQLite.
    pub async fn listening(&self) {
        if self.db.backend == Backend::Sqlite {
            return;
        }
        let bus = self.store().commit_bus();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while bus.subscribe().borrow().resyncs == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the commit listener never connected"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.db.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A new key with `role`.
    pub async fn key(&self, role: &str) -> String {
        let ctx = self.settle.context("test", None);
        self.settle
            .create_api_key(&ctx, None, format!("{role} key"), role, None)
            .await
            .expect("key")
            .1
    }

    /// Any request; `key: None` sends no Authorization header.
    pub async fn call(&self, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Resp::read(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, Some(&self.admin_key), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(&self.admin_key), Some(body)).await
    }

    /// Sends raw bytes as the body (for malformed JSON and size limits).
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Resp {
        self.raw_with(&self.client, Method::POST, path, body).await
    }

    /// Sends `body` as is with `method`, the admin key and a JSON content
    /// type, through `client` (tests of connection handling bring their own).
    pub async fn raw_with(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> Resp {
        let res = client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        Resp::read(res).await
    }

    /// REST's answer to `operation` (a registry name) for `key`, on its
    /// route with an id that names nothing and an empty JSON body: what a
    /// face parity test compares the other faces with.
    pub async fn operation_as(&self, operation: &str, key: &str) -> Resp {
        let route = settle_api::registry::routes()
            .into_iter()
            .find(|r| r.operation == operation)
            .unwrap_or_else(|| panic!("{operation} has no REST route"));
        let path = route.path.replace("{id}", "x_0");
        let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        self.call(method, &path, Some(key), Some(serde_json::json!({}))).await
    }

    /// Opens an account and returns its id.
    pub async fn account(&self, name: &str, currency: &str, allow_negative: bool) -> String {
        let r = self
            .post(
                "/v1/accounts",
                json!({"name": name, "currency": currency, "allow_negative": allow_negative}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.id()
    }

    /// Moves `amount` into `account` from a fresh funding account that may go negative.
    pub async fn fund(&self, account: &str, currency: &str, amount: i64) -> String {
        let bank = self.account("bank", currency, true).await;
        self.pay_in(&bank, account, currency, amount).await;
        bank
    }

    /// Pays `amount` usd from `source` to `destination` (settled at once)
    /// and returns the payment's id.
    pub async fn pay(&self, source: &str, destination: &str, amount: i64) -> String {
        self.pay_in(source, destination, "usd", amount).await
    }

    async fn pay_in(&self, source: &str, destination: &str, currency: &str, amount: i64) -> String {
        let r = self
            .post(
                "/v1/payments",
                json!({"amount": amount, "currency": currency, "source": source, "destination": destination}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.id()
    }

    /// The value of the unlabelled metric `name` at `/metrics`; panics,
    /// with the whole page, when it is missing.
    pub async fn metric(&self, name: &str) -> u64 {
        let page = self.get("/metrics").await;
        let text = page.body.as_str().unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics: {text}"))
    }

    /// Stops the server and drops its database.
    pub async fn finish(self) {
        self.stop().await.drop_db().await;
    }

    async fn stop(mut self) -> TestDb {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
        self.db
    }
}

/// Runs `case` against a fresh app on `backend`, then drops the database,
/// even when the case panics.
pub async fn run(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    run_config(backend, Config::default(), case).await
}

/// [`run`] with a configuration of the case's own (its listen address,
/// and its master key when unset, are the test's).
pub async fn run_config(backend: Backend, mut config: Config, case: impl AsyncFnOnce(&TestApp)) {
    if backend == Backend::Postgres && !postgres_available() {
        return;
    }
    config.webhooks.allow_private_targets = true;
    let app = TestApp::spawn_config(TestDb::create(backend).await, Arc::new(SystemClock), config).await;
    let outcome = AssertUnwindSafe(case(&app)).catch_unwind().await;
    app.stop().await.drop_db().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

mod processes;
mod proxy;

pub use processes::*;
pub use proxy::Proxy;
