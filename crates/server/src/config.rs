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
            shutdown_timeout: Duration::from_secs(30),
            idempotency_lock_timeout: Duration::from_secs(60),
            idempotency_retention: Duration::from_secs(24 * 3600),
            idempotency_reap_interval: Duration::from_secs(300),
            auth_cache_ttl: Duration::from_secs(5),
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
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("idempotency_lock_timeout", &self.idempotency_lock_timeout)
            .field("idempotency_retention", &self.idempotency_retention)
            .field("idempotency_reap_interval", &self.idempotency_reap_interval)
            .field("auth_cache_ttl", &self.auth_cache_ttl)
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
