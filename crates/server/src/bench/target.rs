//! The database a benchmark runs against, created fresh and removed after.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use settle_store::Store;
use sqlx::{Connection, Executor};

pub enum Target {
    Sqlite { dir: PathBuf },
    Postgres { server_url: String, name: String },
}

impl Target {
    pub async fn create(database_url: Option<String>) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let suffix = format!("{}_{:x}", std::process::id(), rand::random::<u32>());
        match database_url {
            None => {
                let dir = std::env::temp_dir().join(format!("settle_bench_{suffix}"));
                std::fs::create_dir_all(&dir)?;
                Ok(Target::Sqlite { dir })
            }
            Some(url) => {
                let name = format!("settle_bench_{suffix}");
                let mut conn = sqlx::AnyConnection::connect(&url)
                    .await
                    .context("connect to PostgreSQL")?;
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await?;
                let _ = conn.close().await;
                Ok(Target::Postgres { server_url: url, name })
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Target::Sqlite { .. } => "sqlite",
            Target::Postgres { .. } => "postgres",
        }
    }

    /// The URL of this benchmark's own PostgreSQL database.
    pub fn postgres_url(&self) -> Option<String> {
        match self {
            Target::Postgres { server_url, name } => {
                let base = server_url.rsplit_once('/').map_or(server_url.as_str(), |(b, _)| b);
                Some(format!("{base}/{name}"))
            }
            Target::Sqlite { .. } => None,
        }
    }

    pub fn sqlite_file(&self) -> Option<PathBuf> {
        match self {
            Target::Sqlite { dir } => Some(dir.join("settle.db")),
            Target::Postgres { .. } => None,
        }
    }

    /// The SQL store itself, for benchmarks that also run their own SQL
    /// through its tool pool; `pool_size` as `settle serve` takes it (none:
    /// the store's default).
    pub async fn open_sql_store(&self, pool_size: Option<u32>) -> anyhow::Result<settle_store::sql::SqlStore> {
        match self {
            Target::Sqlite { dir } => {
                let mut options = settle_store_sqlite::SqliteOptions::default();
                options.read_pool_size = pool_size.unwrap_or(options.read_pool_size);
                Ok(settle_store_sqlite::open(dir, &options).await?)
            }
            Target::Postgres { .. } => {
                let url = self.postgres_url().unwrap_or_default();
                let mut options = settle_store_postgres::PostgresOptions::default();
                options.pool_size = pool_size.unwrap_or(options.pool_size);
                Ok(settle_store_postgres::open(&url, &options).await?)
            }
        }
    }

    pub async fn open_store(&self, pool_size: Option<u32>) -> anyhow::Result<Arc<dyn Store>> {
        Ok(Arc::new(self.open_sql_store(pool_size).await?))
    }

    pub async fn remove(self) {
        match self {
            Target::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Target::Postgres { server_url, name } => {
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&server_url).await {
                    let _ = conn
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                }
            }
        }
    }
}
