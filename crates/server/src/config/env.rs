//! The environment layer of the configuration: `SETTLE_*` variables and
//! the conventional `DATABASE_URL`, `NATS_URL`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use super::*;

/// An on/off setting: `true`/`1` or `false`/`0`, anything else refused.
fn parse_flag(name: &str, value: &str) -> anyhow::Result<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => bail!("{name} `{other}` is neither true nor false"),
    }
}

impl Config {
    pub(super) fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
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
        if let Some(v) = env("SETTLE_DB_LISTEN_URL").filter(|v| !v.is_empty()) {
            self.database_listen_url = Some(v);
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
            self.statement_header = parse_flag("SETTLE_STATEMENT_COUNT_HEADER", &v)?;
        }
        if let Some(v) = env("SETTLE_GRAPHQL_INTROSPECTION") {
            self.graphql_introspection = parse_flag("SETTLE_GRAPHQL_INTROSPECTION", &v)?;
        }
        if let Some(d) = ms("SETTLE_GRPC_SLOW_CLIENT_MS")? {
            self.grpc_watch.slow_client_grace = d;
        }
        if let Some(v) = env("SETTLE_GRPC_STREAM_BUFFER") {
            self.grpc_watch.buffer = v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .context("SETTLE_GRPC_STREAM_BUFFER must be a number from 1 to 100000")?;
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
        self.traces = super::traces::from_env(env)?;
        if let Some(v) = env("SETTLE_METRICS_WEBHOOK_ENDPOINTS") {
            self.metrics_webhook_endpoints = v
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= 10_000)
                .context("SETTLE_METRICS_WEBHOOK_ENDPOINTS must be a number from 0 to 10000")?;
        }
        self.apply_cache_env(env, &ms)?;
        self.apply_queue_env(env, &ms)?;
        super::admission::apply_env(&mut self.admission, env)?;
        self.apply_webhook_env(env, &ms)
    }

    /// The read cache: `SETTLE_CACHE=off` turns it off.
    fn apply_cache_env(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
        ms: &dyn Fn(&str) -> anyhow::Result<Option<Duration>>,
    ) -> anyhow::Result<()> {
        if let Some(v) = env("SETTLE_CACHE") {
            self.cache.enabled = match v.as_str() {
                "on" => true,
                "off" => false,
                other => parse_flag("SETTLE_CACHE", other)?,
            };
        }
        if let Some(v) = env("SETTLE_CACHE_BYTES") {
            self.cache.max_bytes = v.parse().context("SETTLE_CACHE_BYTES must be a number of bytes")?;
        }
        if let Some(d) = ms("SETTLE_CACHE_TTL_MS")? {
            self.cache.ttl = d.max(Duration::from_millis(1));
        }
        if let Some(d) = ms("SETTLE_CACHE_STALE_MS")? {
            self.cache.stale_for = d;
        }
        if let Some(v) = env("REDIS_URL").filter(|v| !v.is_empty()) {
            self.redis_url = Some(v);
        }
        if let Some(d) = ms("SETTLE_REDIS_TIMEOUT_MS")? {
            self.redis.timeout = d.max(Duration::from_millis(1));
        }
        if let Some(d) = ms("SETTLE_REDIS_BREAKER_COOLDOWN_MS")? {
            self.redis.breaker_cooldown = d;
        }
        if let Some(d) = ms("SETTLE_CACHE_LEASE_MS")? {
            self.redis.lease = d;
        }
        if let Some(v) = env("SETTLE_CACHE_XFETCH_BETA") {
            let beta = v.parse().context("SETTLE_CACHE_XFETCH_BETA must be a number")?;
            self.cache.xfetch_beta = super::check_beta(beta)?;
        }
        Ok(())
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
            w.allow_private_targets = parse_flag("SETTLE_WEBHOOK_ALLOW_PRIVATE_TARGETS", &v)?;
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
        if let Some(v) = env("SETTLE_QUEUE_POLL") {
            q.poll = parse_duration(&v)
                .context("SETTLE_QUEUE_POLL")?
                .max(Duration::from_millis(1));
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
