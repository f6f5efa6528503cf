//! SQLite backend. One file in the data directory, in WAL mode with
//! `synchronous=FULL` (a commit survives power loss). Reads come from a pool;
//! every write goes through one writer task that owns the only write
//! connection, so `SQLITE_BUSY` never reaches a user, and that task commits
//! concurrent writes together (group commit).

mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use settle_store::StoreError;
use settle_store::sql::{Dialect, SqlStore};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

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

/// Page cache per connection, in KiB: the writer keeps more of the hot
/// index pages (bulk seeding and busy ledgers), readers a modest share.
const WRITER_CACHE_KIB: u32 = 65_536;
const READER_CACHE_KIB: u32 = 16_384;

async fn pool(url: &str, size: u32, acquire_timeout: Duration, cache_kib: u32) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(size)
        .min_connections(size.min(1))
        .acquire_timeout(acquire_timeout)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = -{cache_kib}")))
                    .await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
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
    let write_pool = pool(&url, 1, options.acquire_timeout, WRITER_CACHE_KIB).await?;
    MIGRATOR
        .run(&write_pool)
        .await
        .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
    let reads = pool(
        &url,
        options.read_pool_size.max(1),
        options.acquire_timeout,
        READER_CACHE_KIB,
    )
    .await?;
    let conn = write_pool.acquire().await?;
    let writer = SqliteWriter::start(conn, options.max_batch.max(1));
    Ok(SqlStore::new(
        Dialect::Sqlite,
        reads,
        Arc::new(writer),
        latest_version(),
    ))
}

fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}
