//! Structured logs on stderr (stdout stays clean for commands whose output
//! scripts capture): text by default, JSON with `SETTLE_LOG_FORMAT=json`;
//! the level comes from `SETTLE_LOG` (e.g. `info`, `settle=debug`).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("SETTLE_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests start many apps in one process) is harmless.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
