//! SQLite backend. One file in the data directory, in WAL mode with
//! `synchronous=FULL` (a commit survives power loss). Every write goes
//! through one writer thread that owns the only write connection, so
//! `SQLITE_BUSY` never reaches a user, and commits concurrent writes together
//! (group commit); reads run on the calling thread on a pooled connection.
//! Both use rusqlite directly: sqlx's SQLite driver hands every statement
//! and row to a worker thread and back, which cost more than the statements.
//! sqlx still applies the migrations and serves tools that run their own SQL.

mod connection;
mod exec;
mod fault;
mod reads;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use settle_store::StoreError;
use settle_store::sql::{Dialect, SqlStore};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

pub use connection::{READER_CACHE_KIB, WRITER_CACHE_KIB};
pub use reads::SqliteReads;
pub use writer::SqliteWriter;

/// The SQLite schema, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How to open the database; every field has a default in the server config.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Read connections; writes always use exactly one more.
    pub read_pool_size: u32,
    /// How long a read waits for a free connection before the request gets 503.
    pub acquire_timeout: Duration,
    /// The most writes one commit may carry.
    pub max_batch: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            read_pool_size: 8,
            acquire_timeout: Duration::from_secs(3),
            max_batch: 256,
        }
    }
}

/// How often idle connections hand their page cache back.
const MEMORY_RELEASE_INTERVAL: Duration = Duration::from_secs(30);

/// The sqlx pool for migrations and for tools that run their own SQL: small,
/// and empty when unused.
async fn tool_pool(url: &str, acquire_timeout: Duration) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .idle_timeout(Duration::from_secs(10))
        .acquire_timeout(acquire_timeout)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                for setting in connection::settings(READER_CACHE_KIB) {
                    conn.execute(sqlx::AssertSqlSafe(setting)).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

/// Opens (creating if needed) `settle.db` in `data_dir`, applies pending
/// migrations, and starts the writer task.
pub async fn open(data_dir: &Path, options: &SqliteOptions) -> Result<SqlStore, StoreError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", data_dir.display())))?;
    let file = data_dir.join("settle.db");
    open_file(&file, options).await
}

/// Opens a database file directly; tests give each case its own file.
pub async fn open_file(file: &Path, options: &SqliteOptions) -> Result<SqlStore, StoreError> {
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let tools = tool_pool(&url, options.acquire_timeout).await?;
    MIGRATOR
        .run(&tools)
        .await
        .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
    let writer = Arc::new(SqliteWriter::start(file.to_path_buf(), options.max_batch)?);
    let reads = SqliteReads::new(file.to_path_buf(), options.read_pool_size, options.acquire_timeout);
    release_memory_when_idle(&writer, &reads);
    Ok(SqlStore::new(
        Dialect::Sqlite,
        tools,
        Arc::new(reads),
        writer,
        latest_version(),
    ))
}

/// Page caches fill under load and would stay full for the life of the
/// process; this hands them back once the connections sit idle. It stops
/// when the store is dropped.
fn release_memory_when_idle(writer: &Arc<SqliteWriter>, reads: &SqliteReads) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (writer, reads) = (Arc::downgrade(writer), reads.releaser());
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(MEMORY_RELEASE_INTERVAL);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(writer) = writer.upgrade() else { return };
            writer.release_memory();
            if !reads.release() {
                return;
            }
        }
    });
}

fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}
