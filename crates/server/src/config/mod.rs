//! Configuration in four layers, each overriding the one before: embedded
//! defaults, an optional `settle.toml`, `SETTLE_*` environment variables (and
//! the conventional `DATABASE_URL`), then command-line flags. The database
//! URL may hold a password, so `Debug` never prints it.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings a running Settle uses.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None` selects the embedded SQLite database in `data_dir`.
    pub database_url: Option<String>,
    /// Where PostgreSQL's commit listener connects (`SETTLE_DB_LISTEN_URL`);
    /// `None` uses `database_url`. A pooler in transaction mode (PgBouncer)
    /// cannot LISTEN, so this may point at PostgreSQL itself.
    pub database_listen_url: Option<String>,
    pub log_format: LogFormat,
    /// Database connections; `None` takes the backend's default (SQLite: 8
    /// readers plus the writer; PostgreSQL: 16).
    pub db_pool_size: Option<u32>,
    /// How long a request waits for a database connection before its 503.
    pub db_acquire_timeout: Duration,
    pub request_timeout: Duration,
    /// The listener's limits: header and idle timeouts, body pace, connection cap.
    pub http: settle_api::ListenerOptions,
    /// `SETTLE_STATEMENT_COUNT_HEADER`: answer with `Settle-Statements`.
    pub statement_header: bool,
    /// `SETTLE_GRAPHQL_INTROSPECTION`: whether `/graphql` answers schema
    /// introspection (GraphiQL needs it; a deployment may hide its schema).
    pub graphql_introspection: bool,
    /// How `WatchEvents` treats its clients: `SETTLE_GRPC_STREAM_BUFFER`
    /// events wait for a reader at most, and a reader that leaves them
    /// waiting `SETTLE_GRPC_SLOW_CLIENT_MS` is cut.
    pub grpc_watch: settle_grpc::Watch,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// An in-flight idempotency claim older than this may be taken over.
    pub idempotency_lock_timeout: Duration,
    /// Idempotency records are kept at least this long.
    pub idempotency_retention: Duration,
    /// How often the reaper sweeps expired idempotency records.
    pub idempotency_reap_interval: Duration,
    /// How long keys, roles and policies are cached: the bound on how late a
    /// revocation made by another process takes effect here.
    pub auth_cache_ttl: Duration,
    /// Webhook endpoints with `/metrics` series of their own
    /// (`SETTLE_METRICS_WEBHOOK_ENDPOINTS`); the rest are summed as `other`.
    pub metrics_webhook_endpoints: usize,
    /// Trace export (`OTEL_*`); off by default.
    pub traces: Option<traces::TraceConfig>,
    /// The read cache of single objects (`SETTLE_CACHE*`, `cache_*`).
    pub cache: settle_core::cache::CacheOptions,
    /// `REDIS_URL`: the read cache's shared tier; none by default.
    pub redis_url: Option<String>,
    /// The shared tier's call timeout and breaker (`SETTLE_REDIS_*`).
    pub redis: settle_core::cache::shared::SharedOptions,
    pub queue: QueueConfig,
    pub webhooks: WebhookConfig,
    /// Rate limits and the adaptive concurrency limit.
    pub admission: settle_core::admission::AdmissionOptions,
}

/// Webhook delivery and the master key that seals signing secrets.
#[derive(Clone)]
pub struct WebhookConfig {
    /// `SETTLE_MASTER_KEY`; without it, `master.key` in the data directory.
    pub master_key: Option<String>,
    /// `SETTLE_WEBHOOK_ALLOW_PRIVATE_TARGETS`: loopback and private
    /// receivers are refused unless this is set (tests, local demos).
    pub allow_private_targets: bool,
    /// `SETTLE_WEBHOOK_RETRY_SCHEDULE`, e.g. `5s,5m,30m`.
    pub retry_schedule: settle_domain::webhook::RetrySchedule,
    pub timeout: Duration,
    /// Requests in flight to one endpoint, at most. Each endpoint starts
    /// at 4 (or this, if lower); its limit grows by one per round of fast
    /// answers up to this and halves while the receiver is unreachable.
    pub max_in_flight: usize,
    /// How long a rotated-out secret keeps signing.
    pub secret_grace: Duration,
    /// An endpoint whose attempts all failed for this long is disabled.
    pub disable_after: Duration,
    /// The endpoint breaker counts transport failures (no answer at all;
    /// an answered 5xx never counts) over this sliding window...
    pub breaker_window: Duration,
    /// ...once it holds at least this many requests...
    pub breaker_min_requests: u32,
    /// ...and opens when this percentage of them failed...
    pub breaker_failure_percent: u32,
    /// ...for this long, then lets one trial request through.
    pub breaker_cooldown: Duration,
}

impl WebhookConfig {
    /// What the service layer needs of these settings, with the master
    /// keys already loaded (from the environment or the data directory).
    pub fn setup(&self, keys: settle_core::secrets::MasterKeys) -> settle_core::webhook::WebhookSetup {
        settle_core::webhook::WebhookSetup {
            keys,
            allow_private_targets: self.allow_private_targets,
            rotation_grace: self.secret_grace,
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            master_key: None,
            allow_private_targets: false,
            retry_schedule: settle_domain::webhook::RetrySchedule::default(),
            timeout: Duration::from_secs(15),
            max_in_flight: 64,
            secret_grace: Duration::from_secs(24 * 3600),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            breaker_window: Duration::from_secs(30),
            breaker_min_requests: 10,
            breaker_failure_percent: 50,
            breaker_cooldown: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("master_key", &self.master_key.as_ref().map(|_| "***"))
            .field("allow_private_targets", &self.allow_private_targets)
            .field("retry_schedule", &self.retry_schedule)
            .field("timeout", &self.timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("secret_grace", &self.secret_grace)
            .field("disable_after", &self.disable_after)
            .field("breaker_window", &self.breaker_window)
            .field("breaker_min_requests", &self.breaker_min_requests)
            .field("breaker_failure_percent", &self.breaker_failure_percent)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .finish()
    }
}

/// Which queue carries events and slow work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueBackend {
    /// The jobs table in Settle's own database (the default).
    Embedded,
    /// NATS JetStream, fed from the database outbox by the relay.
    Nats,
}

/// The queue, its workers and the external processor.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// `SETTLE_QUEUE` (`embedded` or `nats`); setting `NATS_URL` alone selects NATS.
    pub backend: QueueBackend,
    pub nats_url: String,
    /// Names this deployment's streams and subjects (`SETTLE_NATS_PREFIX`).
    pub nats_prefix: String,
    /// How long a claimed job stays with a worker before another may take
    /// it (`SETTLE_QUEUE_LEASE`, e.g. `30s`): the most a crash delays work.
    pub lease: Duration,
    /// The safety net under the commit stream: a worker that heard of no
    /// commit looks again after this long (`SETTLE_QUEUE_POLL`, `queue_poll`).
    /// Commits wake workers at once; this only bounds how late a missed
    /// notification is noticed.
    pub poll: Duration,
    /// Deliveries before a message goes to the dead letters.
    pub max_deliveries: u32,
    /// Processed-message records are kept this long.
    pub processed_retention: Duration,
    /// The external processor (`SETTLE_PROCESSOR_URL`); without it,
    /// processor payments wait in the queue.
    pub processor_url: Option<String>,
    pub processor_timeout: Duration,
    /// Charges in flight at once, per process.
    pub processor_concurrency: usize,
    /// Transient failures in a row that open the breaker.
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// `SETTLE_TLS_EXTRA_ROOTS`: a PEM file of CA certificates trusted, on
    /// top of the public roots, by the processor and webhook clients.
    pub tls_extra_roots: Option<PathBuf>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            backend: QueueBackend::Embedded,
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_prefix: "settle".into(),
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            max_deliveries: 25,
            processed_retention: Duration::from_secs(7 * 24 * 3600),
            processor_url: None,
            processor_timeout: Duration::from_secs(10),
            processor_concurrency: 16,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
            tls_extra_roots: None,
        }
    }
}

/// `30s`, `500ms`, `2m`; a bare number is seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a duration such as 30s or 500ms"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 24 * 3600),
        other => bail!("unknown duration unit `{other}` in `{text}` (use ms, s, m, h or d)"),
    })
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./settle-data"),
            database_url: None,
            database_listen_url: None,
            log_format: LogFormat::Text,
            db_pool_size: None,
            db_acquire_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(30),
            http: settle_api::ListenerOptions::default(),
            statement_header: false,
            graphql_introspection: true,
            grpc_watch: settle_grpc::Watch::default(),
            shutdown_timeout: Duration::from_secs(30),
            idempotency_lock_timeout: Duration::from_secs(60),
            idempotency_retention: Duration::from_secs(24 * 3600),
            idempotency_reap_interval: Duration::from_secs(300),
            auth_cache_ttl: Duration::from_secs(5),
            metrics_webhook_endpoints: settle_core::webhook::stats::DEFAULT_LABELLED_ENDPOINTS,
            traces: None,
            cache: settle_core::cache::CacheOptions::default(),
            redis_url: None,
            redis: settle_core::cache::shared::SharedOptions::default(),
            queue: QueueConfig::default(),
            webhooks: WebhookConfig::default(),
            admission: settle_core::admission::AdmissionOptions::default(),
        }
    }
}

impl Config {
    /// The URL PostgreSQL's commit listener connects to; `None` on SQLite,
    /// whose only writer is this process (its commits ring in process).
    pub fn commit_listener_url(&self) -> Option<String> {
        let url = self.database_url.as_deref()?;
        let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        postgres.then(|| self.database_listen_url.clone().unwrap_or_else(|| url.to_owned()))
    }
}

/// `scheme://user:password@host/db` → `scheme://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(redact_url))
            .field(
                "database_listen_url",
                &self.database_listen_url.as_deref().map(redact_url),
            )
            .field("log_format", &self.log_format)
            .field("db_pool_size", &self.db_pool_size)
            .field("db_acquire_timeout", &self.db_acquire_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("http", &self.http)
            .field("statement_header", &self.statement_header)
            .field("graphql_introspection", &self.graphql_introspection)
            .field("grpc_watch", &self.grpc_watch)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("idempotency_lock_timeout", &self.idempotency_lock_timeout)
            .field("idempotency_retention", &self.idempotency_retention)
            .field("idempotency_reap_interval", &self.idempotency_reap_interval)
            .field("auth_cache_ttl", &self.auth_cache_ttl)
            .field("metrics_webhook_endpoints", &self.metrics_webhook_endpoints)
            .field(
                "traces",
                &self
                    .traces
                    .as_ref()
                    .map(|t| (redact_url(&t.endpoint), t.protocol, &t.service_name)),
            )
            .field("cache", &self.cache)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("redis", &self.redis)
            .field("queue", &self.queue)
            .field("webhooks", &self.webhooks)
            .field("admission", &self.admission)
            .finish()
    }
}

/// The keys `settle.toml` may hold; unknown keys are an error, not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayer {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_listen_url: Option<String>,
    log_format: Option<String>,
    db_pool_size: Option<u32>,
    db_acquire_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    shutdown_timeout_ms: Option<u64>,
    http_header_timeout: Option<String>,
    http_idle_timeout: Option<String>,
    http_body_grace: Option<String>,
    http_min_body_rate: Option<u64>,
    http_max_connections: Option<usize>,
    idempotency_lock_timeout_ms: Option<u64>,
    idempotency_retention_secs: Option<u64>,
    idempotency_reap_interval_secs: Option<u64>,
    queue_poll: Option<String>,
    cache: Option<bool>,
    cache_bytes: Option<u64>,
    cache_ttl_ms: Option<u64>,
    cache_stale_ms: Option<u64>,
    cache_xfetch_beta: Option<f64>,
    redis_url: Option<String>,
    redis_timeout_ms: Option<u64>,
    rate_limits: Option<admission::AdmissionFile>,
    concurrency: Option<admission::ConcurrencyFile>,
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Default, Clone)]
pub struct FlagLayer {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// XFetch's beta: 0 (never refresh early) up to 10.
fn check_beta(beta: f64) -> anyhow::Result<f64> {
    if (0.0..=10.0).contains(&beta) {
        Ok(beta)
    } else {
        bail!("the cache's XFetch beta must be from 0 to 10, not {beta}")
    }
}

fn parse_listen(text: &str) -> anyhow::Result<SocketAddr> {
    text.parse()
        .with_context(|| format!("`{text}` is not an address such as 127.0.0.1:8080"))
}

fn parse_log_format(text: &str) -> anyhow::Result<LogFormat> {
    match text {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => bail!("log format `{other}` is neither `text` nor `json`"),
    }
}

impl Config {
    /// Builds the configuration from every layer. `config_file` is the
    /// explicit `--config`/`SETTLE_CONFIG` path (which must exist); without
    /// one, `./settle.toml` is read if present.
    pub fn load(
        config_file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &FlagLayer,
    ) -> anyhow::Result<Self> {
        let mut config = Config::default();
        let explicit = config_file
            .map(Path::to_path_buf)
            .or_else(|| env("SETTLE_CONFIG").map(PathBuf::from));
        let path = explicit.clone().unwrap_or_else(|| PathBuf::from("settle.toml"));
        if explicit.is_some() || path.exists() {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let file: FileLayer = toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))?;
            config.apply_file(file)?;
        }
        config.apply_env(env)?;
        if let Some(listen) = &flags.listen {
            config.listen = parse_listen(listen)?;
        }
        if let Some(dir) = &flags.data_dir {
            config.data_dir = dir.clone();
        }
        Ok(config)
    }

    fn apply_file(&mut self, f: FileLayer) -> anyhow::Result<()> {
        if let Some(v) = f.listen {
            self.listen = parse_listen(&v)?;
        }
        if let Some(v) = f.data_dir {
            self.data_dir = v;
        }
        if f.database_url.is_some() {
            self.database_url = f.database_url;
        }
        if f.database_listen_url.is_some() {
            self.database_listen_url = f.database_listen_url;
        }
        if f.redis_url.is_some() {
            self.redis_url = f.redis_url;
        }
        if let Some(ms) = f.redis_timeout_ms {
            self.redis.timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(v) = f.cache {
            self.cache.enabled = v;
        }
        if let Some(v) = f.cache_bytes {
            self.cache.max_bytes = v;
        }
        if let Some(ms) = f.cache_ttl_ms {
            self.cache.ttl = Duration::from_millis(ms.max(1));
        }
        if let Some(ms) = f.cache_stale_ms {
            self.cache.stale_for = Duration::from_millis(ms);
        }
        if let Some(beta) = f.cache_xfetch_beta {
            self.cache.xfetch_beta = check_beta(beta)?;
        }
        if let Some(v) = f.queue_poll {
            self.queue.poll = parse_duration(&v).context("queue_poll")?.max(Duration::from_millis(1));
        }
        if let Some(v) = f.log_format {
            self.log_format = parse_log_format(&v)?;
        }
        if f.db_pool_size.is_some() {
            self.db_pool_size = f.db_pool_size;
        }
        if let Some(ms) = f.db_acquire_timeout_ms {
            self.db_acquire_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = f.request_timeout_ms {
            self.request_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = f.shutdown_timeout_ms {
            self.shutdown_timeout = Duration::from_millis(ms);
        }
        if let Some(v) = f.http_header_timeout {
            self.http.header_timeout = parse_duration(&v).context("http_header_timeout")?;
        }
        if let Some(v) = f.http_idle_timeout {
            self.http.idle_timeout = parse_duration(&v).context("http_idle_timeout")?;
        }
        if let Some(v) = f.http_body_grace {
            self.http.body.grace = parse_duration(&v).context("http_body_grace")?;
        }
        if let Some(v) = f.http_min_body_rate {
            self.http.body.min_rate = v.max(1);
        }
        if let Some(v) = f.http_max_connections {
            self.http.max_connections = v.max(1);
        }
        if let Some(ms) = f.idempotency_lock_timeout_ms {
            self.idempotency_lock_timeout = Duration::from_millis(ms);
        }
        if let Some(secs) = f.idempotency_retention_secs {
            self.idempotency_retention = Duration::from_secs(secs);
        }
        if let Some(secs) = f.idempotency_reap_interval_secs {
            self.idempotency_reap_interval = Duration::from_secs(secs);
        }
        admission::apply_file(&mut self.admission, f.rate_limits, f.concurrency)
    }
}

mod admission;
mod env;
pub mod traces;

#[cfg(test)]
mod tests;
