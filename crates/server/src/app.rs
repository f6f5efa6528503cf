//! Start-up: open the store the configuration names, build the HTTP app,
//! bind, and serve until a shutdown signal, finishing in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use settle_api::ApiOptions;
use settle_core::clock::{Clock, SystemClock};
use settle_core::{ServiceOptions, Settle};
use settle_store::Store;
use settle_store::prelude::*;
use settle_store::sql::SqlStore;
use settle_store_postgres::PostgresOptions;
use settle_store_sqlite::SqliteOptions;
use tokio::net::TcpListener;

use crate::config::{Config, redact_url};
use crate::queue::QueueRuntime;

/// Opens the database the configuration selects (PostgreSQL when
/// `DATABASE_URL` says so, else SQLite in the data directory) and applies
/// pending migrations. Every subcommand goes through here, so `settle keys
/// create` writes where `settle serve` reads.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = open_sql_store(config).await?;
    store
        .sync_builtin_roles(SystemClock.now_ms())
        .await
        .context("cannot create the built-in roles")?;
    Ok(Arc::new(store))
}

/// [`open_store`] without the trait object, for commands that need the SQL
/// store itself (bulk seeding, benchmarks).
pub async fn open_sql_store(config: &Config) -> anyhow::Result<SqlStore> {
    match config.database_url.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let mut options = PostgresOptions {
                acquire_timeout: config.db_acquire_timeout,
                ..PostgresOptions::default()
            };
            if let Some(size) = config.db_pool_size {
                options.pool_size = size;
            }
            let store = settle_store_postgres::open(url, &options)
                .await
                .with_context(|| format!("cannot open PostgreSQL at {}", redact_url(url)))?;
            Ok(store)
        }
        Some(url) => bail!(
            "DATABASE_URL must start with postgres:// (got {}); leave it unset for SQLite",
            redact_url(url)
        ),
        None => {
            let mut options = SqliteOptions {
                acquire_timeout: config.db_acquire_timeout,
                ..SqliteOptions::default()
            };
            if let Some(size) = config.db_pool_size {
                options.read_pool_size = size;
            }
            let store = settle_store_sqlite::open(&config.data_dir, &options)
                .await
                .with_context(|| format!("cannot open SQLite in {}", config.data_dir.display()))?;
            Ok(store)
        }
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    http: settle_api::ListenerOptions,
    stats: Arc<settle_api::ListenerStats>,
    settle: Settle,
    shutdown_timeout: std::time::Duration,
    reap_interval: std::time::Duration,
    queue: QueueRuntime,
    /// Ends the open gRPC streams when shutdown begins.
    close_streams: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Opens the store and binds the listener (port 0 picks a free port).
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let store = open_store(config).await?;
        Self::with_store(config, store, Arc::new(SystemClock)).await
    }

    /// Builds around an existing store and clock; tests inject both.
    pub async fn with_store(config: &Config, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        if let Some(traces) = &config.traces {
            let tls = match &config.queue.tls_extra_roots {
                Some(path) => settle_core::tls::OutgoingTls::with_extra_roots_file(path).map_err(anyhow::Error::msg)?,
                None => settle_core::tls::OutgoingTls::default(),
            };
            crate::otlp::start(traces, &tls)?;
        }
        store
            .sync_builtin_roles(clock.now_ms())
            .await
            .context("cannot create the built-in roles")?;
        let options = ServiceOptions {
            idempotency_lock_timeout: config.idempotency_lock_timeout,
            idempotency_retention: config.idempotency_retention,
            auth_cache_ttl: config.auth_cache_ttl,
            commit_poll: config.queue.poll,
            operation_budget: config.request_timeout,
            cache: crate::redis_cache::cache_options(config)?,
            admission: crate::redis_rates::admission_options(config)?,
            labelled_webhook_endpoints: config.metrics_webhook_endpoints,
        };
        let settle = Settle::with_options(store, clock, options);
        let keys = crate::master_key::load(config.webhooks.master_key.as_deref(), &config.data_dir)?;
        settle.attach_webhooks(config.webhooks.setup(keys));
        let queue = QueueRuntime::build(&config.queue, &config.webhooks, &settle, config.commit_listener_url()).await?;
        let stats = Arc::new(settle_api::ListenerStats::default());
        let rest = settle_api::app_with(
            settle.clone(),
            &ApiOptions {
                // The pipeline's own deadline answers first (504, nothing
                // started); this outer cut is the backstop for the rest.
                request_timeout: config.request_timeout + std::time::Duration::from_secs(2),
                listener: Arc::clone(&stats),
                statement_header: config.statement_header,
            },
            settle_graphql::router(settle_graphql::Limits {
                introspection: config.graphql_introspection,
                ..settle_graphql::Limits::default()
            }),
        );
        let (close_streams, closing) = settle_grpc::Closing::channel();
        let router = settle_grpc::alongside(
            rest,
            settle_grpc::router(settle.clone(), config.grpc_watch, closing),
            config.statement_header,
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Ok(Self {
            listener,
            router,
            http: config.http.clone(),
            stats,
            settle,
            shutdown_timeout: config.shutdown_timeout,
            reap_interval: config.idempotency_reap_interval,
            queue,
            close_streams,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn settle(&self) -> &Settle {
        &self.settle
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets
    /// in-flight requests finish (bounded by the shutdown timeout).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let reaper = tokio::spawn(reap_idempotency_keys(self.settle.clone(), self.reap_interval));
        let flusher = tokio::spawn(flush_key_uses(self.settle.clone()));
        let heartbeats = tokio::spawn(std::sync::Arc::clone(self.settle.rate_limiter()).run_heartbeats());
        let workers = self.queue.spawn(&self.settle);
        let settle = self.settle.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let timeout = self.shutdown_timeout;
        let close_streams = self.close_streams;
        let server = settle_api::listener::serve(self.listener, self.router, self.http, self.stats, async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = close_streams.send(true);
            let _ = stop_tx.send(());
        });
        let drain_deadline = async move {
            let _ = stop_rx.await;
            tokio::time::sleep(timeout).await;
        };
        tokio::select! {
            result = server => result.context("server failed")?,
            () = drain_deadline => tracing::warn!("shutdown timeout reached with requests still running"),
        }
        reaper.abort();
        flusher.abort();
        heartbeats.abort();
        for worker in workers {
            worker.abort();
        }
        let _ = settle.flush_key_uses().await;
        // Spans still queued go out before the process does.
        crate::otlp::flush(std::time::Duration::from_secs(5)).await;
        Ok(())
    }
}

/// Writes keys' `last_used` every few seconds, in one batch, so no request
/// waits on it.
async fn flush_key_uses(settle: Settle) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tick.tick().await;
        if let Err(e) = settle.flush_key_uses().await {
            tracing::warn!(error = %e, "could not record API key use; retrying next round");
        }
    }
}

/// Background sweep of idempotency records past their retention, in
/// batches, so the table stays small without one long delete.
async fn reap_idempotency_keys(settle: Settle, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every.max(std::time::Duration::from_millis(10)));
    loop {
        tick.tick().await;
        match settle.reap_idempotency(1000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "reaped expired idempotency keys"),
            Err(e) => tracing::warn!(error = %e, "idempotency reaper failed; retrying next round"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
