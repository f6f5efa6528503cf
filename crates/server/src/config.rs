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
    pub queue: QueueConfig,
    pub webhooks: WebhookConfig,
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
    /// Requests in flight to one endpoint, at most (its limit shrinks
    /// while the receiver is unreachable and grows back to this).
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
            max_in_flight: 4,
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
    /// How long an idle worker waits before looking again.
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
            poll: Duration::from_millis(20),
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
            log_format: LogFormat::Text,
            db_pool_size: None,
            db_acquire_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(30),
            http: settle_api::ListenerOptions::default(),
            statement_header: false,
            shutdown_timeout: Duration::from_secs(30),
            idempotency_lock_timeout: Duration::from_secs(60),
            idempotency_retention: Duration::from_secs(24 * 3600),
            idempotency_reap_interval: Duration::from_secs(300),
            auth_cache_ttl: Duration::from_secs(5),
            queue: QueueConfig::default(),
            webhooks: WebhookConfig::default(),
        }
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
            .field("log_format", &self.log_format)
            .field("db_pool_size", &self.db_pool_size)
            .field("db_acquire_timeout", &self.db_acquire_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("http", &self.http)
            .field("statement_header", &self.statement_header)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("idempotency_lock_timeout", &self.idempotency_lock_timeout)
            .field("idempotency_retention", &self.idempotency_retention)
            .field("idempotency_reap_interval", &self.idempotency_reap_interval)
            .field("auth_cache_ttl", &self.auth_cache_ttl)
            .field("queue", &self.queue)
            .field("webhooks", &self.webhooks)
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
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Default, Clone)]
pub struct FlagLayer {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
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
        Ok(())
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let ms = |name: &str| -> anyhow::Result<Option<Duration>> {
            env(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map(Duration::from_millis)
                        .with_context(|| format!("{name} must be milliseconds"))
                })
                .transpose()
        };
        if let Some(v) = env("SETTLE_LISTEN") {
            self.listen = parse_listen(&v)?;
        }
        if let Some(v) = env("SETTLE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("DATABASE_URL").filter(|v| !v.is_empty()) {
            self.database_url = Some(v);
        }
        if let Some(v) = env("SETTLE_LOG_FORMAT") {
            self.log_format = parse_log_format(&v)?;
        }
        if let Some(v) = env("SETTLE_DB_POOL_SIZE") {
            self.db_pool_size = Some(v.parse().context("SETTLE_DB_POOL_SIZE must be a number")?);
        }
        if let Some(d) = ms("SETTLE_DB_ACQUIRE_TIMEOUT_MS")? {
            self.db_acquire_timeout = d;
        }
        if let Some(d) = ms("SETTLE_REQUEST_TIMEOUT_MS")? {
            self.request_timeout = d;
        }
        if let Some(d) = ms("SETTLE_SHUTDOWN_TIMEOUT_MS")? {
            self.shutdown_timeout = d;
        }
        self.apply_http_env(env)?;
        if let Some(v) = env("SETTLE_STATEMENT_COUNT_HEADER") {
            self.statement_header = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => bail!("SETTLE_STATEMENT_COUNT_HEADER `{other}` is neither true nor false"),
            };
        }
        if let Some(d) = ms("SETTLE_IDEMPOTENCY_LOCK_TIMEOUT_MS")? {
            self.idempotency_lock_timeout = d;
        }
        if let Some(d) = ms("SETTLE_IDEMPOTENCY_RETENTION_MS")? {
            self.idempotency_retention = d;
        }
        if let Some(d) = ms("SETTLE_IDEMPOTENCY_REAP_INTERVAL_MS")? {
            self.idempotency_reap_interval = d;
        }
        if let Some(d) = ms("SETTLE_AUTH_CACHE_TTL_MS")? {
            self.auth_cache_ttl = d;
        }
        self.apply_queue_env(env, &ms)?;
        self.apply_webhook_env(env, &ms)
    }

    /// The listener's limits; durations as `10s` / `250ms`.
    fn apply_http_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let duration = |name: &str| {
            env(name)
                .map(|v| parse_duration(&v).context(name.to_owned()))
                .transpose()
        };
        let number = |name: &str| {
            env(name)
                .map(|v| v.parse::<u64>().with_context(|| format!("{name} must be a number")))
                .transpose()
        };
        let h = &mut self.http;
        if let Some(d) = duration("SETTLE_HTTP_HEADER_TIMEOUT")? {
            h.header_timeout = d;
        }
        if let Some(d) = duration("SETTLE_HTTP_IDLE_TIMEOUT")? {
            h.idle_timeout = d;
        }
        if let Some(d) = duration("SETTLE_HTTP_BODY_GRACE")? {
            h.body.grace = d;
        }
        if let Some(n) = number("SETTLE_HTTP_MIN_BODY_RATE")? {
            h.body.min_rate = n.max(1);
        }
        if let Some(n) = number("SETTLE_HTTP_MAX_CONNECTIONS")? {
            h.max_connections = usize::try_from(n).unwrap_or(usize::MAX).max(1);
        }
        Ok(())
    }

    fn apply_webhook_env(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
        ms: &dyn Fn(&str) -> anyhow::Result<Option<Duration>>,
    ) -> anyhow::Result<()> {
        let w = &mut self.webhooks;
        if let Some(key) = env("SETTLE_MASTER_KEY").filter(|v| !v.is_empty()) {
            w.master_key = Some(key);
        }
        if let Some(v) = env("SETTLE_WEBHOOK_ALLOW_PRIVATE_TARGETS") {
            w.allow_private_targets = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => bail!("SETTLE_WEBHOOK_ALLOW_PRIVATE_TARGETS `{other}` is neither true nor false"),
            };
        }
        if let Some(v) = env("SETTLE_WEBHOOK_RETRY_SCHEDULE") {
            w.retry_schedule = settle_domain::webhook::RetrySchedule::parse(&v)
                .map_err(|e| anyhow::anyhow!("SETTLE_WEBHOOK_RETRY_SCHEDULE: {e}"))?;
        }
        if let Some(d) = ms("SETTLE_WEBHOOK_TIMEOUT_MS")? {
            w.timeout = d;
        }
        if let Some(v) = env("SETTLE_WEBHOOK_MAX_IN_FLIGHT") {
            w.max_in_flight = v
                .parse::<usize>()
                .context("SETTLE_WEBHOOK_MAX_IN_FLIGHT must be a number")?
                .max(1);
        }
        if let Some(v) = env("SETTLE_WEBHOOK_SECRET_GRACE") {
            w.secret_grace = parse_duration(&v).context("SETTLE_WEBHOOK_SECRET_GRACE")?;
        }
        if let Some(v) = env("SETTLE_WEBHOOK_DISABLE_AFTER") {
            w.disable_after = parse_duration(&v).context("SETTLE_WEBHOOK_DISABLE_AFTER")?;
        }
        if env("SETTLE_WEBHOOK_BREAKER_FAILURES").is_some() {
            // Refused rather than ignored: it meant failures in a row,
            // answered 5xx included, which the breaker no longer counts.
            bail!(
                "SETTLE_WEBHOOK_BREAKER_FAILURES is no longer read: the endpoint breaker now opens on a rate of \
                 transport failures; use SETTLE_WEBHOOK_BREAKER_WINDOW, _MIN_REQUESTS and _FAILURE_PERCENT"
            );
        }
        if let Some(v) = env("SETTLE_WEBHOOK_BREAKER_WINDOW") {
            w.breaker_window = parse_duration(&v)
                .context("SETTLE_WEBHOOK_BREAKER_WINDOW")?
                .max(Duration::from_millis(10));
        }
        if let Some(v) = env("SETTLE_WEBHOOK_BREAKER_MIN_REQUESTS") {
            w.breaker_min_requests = v
                .parse::<u32>()
                .context("SETTLE_WEBHOOK_BREAKER_MIN_REQUESTS must be a number")?
                .max(1);
        }
        if let Some(v) = env("SETTLE_WEBHOOK_BREAKER_FAILURE_PERCENT") {
            let percent = v
                .trim_end_matches('%')
                .parse::<u32>()
                .context("SETTLE_WEBHOOK_BREAKER_FAILURE_PERCENT must be a number")?;
            if !(1..=100).contains(&percent) {
                bail!("SETTLE_WEBHOOK_BREAKER_FAILURE_PERCENT must be between 1 and 100");
            }
            w.breaker_failure_percent = percent;
        }
        if let Some(d) = ms("SETTLE_WEBHOOK_BREAKER_COOLDOWN_MS")? {
            w.breaker_cooldown = d;
        }
        Ok(())
    }

    fn apply_queue_env(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
        ms: &dyn Fn(&str) -> anyhow::Result<Option<Duration>>,
    ) -> anyhow::Result<()> {
        let q = &mut self.queue;
        let number = |name: &str| -> anyhow::Result<Option<u64>> {
            env(name)
                .map(|v| v.parse::<u64>().with_context(|| format!("{name} must be a number")))
                .transpose()
        };
        if let Some(url) = env("NATS_URL").filter(|v| !v.is_empty()) {
            q.nats_url = url;
            q.backend = QueueBackend::Nats;
        }
        if let Some(v) = env("SETTLE_QUEUE") {
            q.backend = match v.as_str() {
                "embedded" => QueueBackend::Embedded,
                "nats" => QueueBackend::Nats,
                other => bail!("SETTLE_QUEUE `{other}` is neither `embedded` nor `nats`"),
            };
        }
        if let Some(v) = env("SETTLE_NATS_PREFIX") {
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                bail!("SETTLE_NATS_PREFIX must be letters, digits, `_` or `-`");
            }
            q.nats_prefix = v;
        }
        if let Some(v) = env("SETTLE_QUEUE_LEASE") {
            q.lease = parse_duration(&v).context("SETTLE_QUEUE_LEASE")?;
        }
        if let Some(d) = ms("SETTLE_QUEUE_POLL_MS")? {
            q.poll = d.max(Duration::from_millis(1));
        }
        if let Some(n) = number("SETTLE_QUEUE_MAX_DELIVERIES")? {
            q.max_deliveries = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        }
        if let Some(path) = env("SETTLE_TLS_EXTRA_ROOTS").filter(|v| !v.is_empty()) {
            q.tls_extra_roots = Some(PathBuf::from(path));
        }
        if let Some(url) = env("SETTLE_PROCESSOR_URL").filter(|v| !v.is_empty()) {
            q.processor_url = Some(url);
        }
        if let Some(d) = ms("SETTLE_PROCESSOR_TIMEOUT_MS")? {
            q.processor_timeout = d;
        }
        if let Some(n) = number("SETTLE_PROCESSOR_CONCURRENCY")? {
            q.processor_concurrency = usize::try_from(n.max(1)).unwrap_or(1);
        }
        if let Some(n) = number("SETTLE_PROCESSOR_BREAKER_FAILURES")? {
            q.breaker_failures = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        }
        if let Some(d) = ms("SETTLE_PROCESSOR_BREAKER_COOLDOWN_MS")? {
            q.breaker_cooldown = d;
        }
        if let Some(d) = ms("SETTLE_PROCESSOR_RETRY_BASE_MS")? {
            q.retry_base = d.max(Duration::from_millis(1));
        }
        if let Some(d) = ms("SETTLE_PROCESSOR_RETRY_MAX_MS")? {
            q.retry_max = d.max(q.retry_base);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn layers_override_in_order() {
        let dir = std::env::temp_dir().join(format!("settle-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("settle.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/from/file\"\ndb_pool_size = 4\n",
        )
        .unwrap();
        let env = env_of(&[("SETTLE_DATA_DIR", "/from/env")]);
        let flags = FlagLayer {
            listen: Some("127.0.0.1:9100".into()),
            data_dir: None,
        };
        let c = Config::load(Some(&file), &env, &flags).unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.data_dir, PathBuf::from("/from/env"));
        assert_eq!(c.db_pool_size, Some(4));
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        assert!(Config::load(Some(&file), &env, &FlagLayer::default()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn queue_settings() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("2 days").is_err());
        let c = Config::load(None, &env_of(&[]), &FlagLayer::default()).unwrap();
        assert_eq!(
            (c.queue.backend, c.queue.lease),
            (QueueBackend::Embedded, Duration::from_secs(30))
        );
        let env = env_of(&[("NATS_URL", "nats://n:4222"), ("SETTLE_QUEUE_LEASE", "5s")]);
        let c = Config::load(None, &env, &FlagLayer::default()).unwrap();
        assert_eq!(
            (c.queue.backend, c.queue.lease),
            (QueueBackend::Nats, Duration::from_secs(5))
        );
        let env = env_of(&[("SETTLE_QUEUE", "kafka")]);
        assert!(Config::load(None, &env, &FlagLayer::default()).is_err());
    }

    #[test]
    fn webhook_breaker_settings() {
        let c = Config::load(None, &env_of(&[]), &FlagLayer::default()).unwrap();
        let w = &c.webhooks;
        assert_eq!(
            (
                w.breaker_window,
                w.breaker_min_requests,
                w.breaker_failure_percent,
                w.breaker_cooldown
            ),
            (Duration::from_secs(30), 10, 50, Duration::from_secs(60))
        );
        let env = env_of(&[
            ("SETTLE_WEBHOOK_BREAKER_WINDOW", "10s"),
            ("SETTLE_WEBHOOK_BREAKER_MIN_REQUESTS", "20"),
            ("SETTLE_WEBHOOK_BREAKER_FAILURE_PERCENT", "75%"),
            ("SETTLE_WEBHOOK_BREAKER_COOLDOWN_MS", "1000"),
        ]);
        let c = Config::load(None, &env, &FlagLayer::default()).unwrap();
        let w = &c.webhooks;
        assert_eq!(
            (
                w.breaker_window,
                w.breaker_min_requests,
                w.breaker_failure_percent,
                w.breaker_cooldown
            ),
            (Duration::from_secs(10), 20, 75, Duration::from_secs(1))
        );
        for bad in [
            ("SETTLE_WEBHOOK_BREAKER_FAILURE_PERCENT", "0"),
            ("SETTLE_WEBHOOK_BREAKER_FAILURE_PERCENT", "101"),
            ("SETTLE_WEBHOOK_BREAKER_FAILURES", "5"),
        ] {
            assert!(
                Config::load(None, &env_of(&[bad]), &FlagLayer::default()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let c = Config {
            database_url: Some("postgres://app:hunter2@db/settle".into()),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("app:***@db"));
    }
}
