//! The SQLite and PostgreSQL schemas evolve in lockstep (same migration
//! versions and descriptions), and opening a database again re-runs
//! migrations harmlessly and leaves the store ready.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use settle_domain::account::NewAccount;
use settle_domain::metadata::Metadata;
use settle_domain::money::Currency;
use settle_store::prelude::*;
use settle_store::{ListQuery, Store, WriteContext};
use settle_store_sqlite::SqliteOptions;

use crate::support::{Backend, TestDb, postgres_available, temp_dir};

fn versions(m: &sqlx::migrate::Migrator) -> Vec<i64> {
    m.iter().map(|m| m.version).collect()
}

fn descriptions(m: &sqlx::migrate::Migrator) -> Vec<String> {
    m.iter().map(|m| m.description.to_string()).collect()
}

#[test]
fn both_backends_have_the_same_migrations() {
    let (sqlite, postgres) = (&settle_store_sqlite::MIGRATOR, &settle_store_postgres::MIGRATOR);
    assert!(!versions(sqlite).is_empty(), "no SQLite migrations embedded");
    assert_eq!(
        versions(sqlite),
        versions(postgres),
        "migration versions differ between SQLite and PostgreSQL"
    );
    assert_eq!(
        descriptions(sqlite),
        descriptions(postgres),
        "migration descriptions differ"
    );
}

#[test]
fn migration_versions_increase() {
    for m in [&settle_store_sqlite::MIGRATOR, &settle_store_postgres::MIGRATOR] {
        let v = versions(m);
        assert!(
            v.windows(2).all(|w| w[0] < w[1]),
            "versions must strictly increase: {v:?}"
        );
        assert!(v.iter().all(|&x| x > 0), "versions start at 1: {v:?}");
    }
}

fn context() -> WriteContext {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    WriteContext {
        request_id: "migrations-test".into(),
        actor: None,
        now_ms,
        idempotency: None,
        audit: None,
        success_status: None,
        policy: None,
        deadline: None,
        trace: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_sqlite_is_harmless() {
    let dir = temp_dir("settle_migrate");
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(reopen_sqlite(&dir))).await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn reopen_sqlite(dir: &std::path::Path) {
    let options = SqliteOptions::default();
    let usd = Currency::parse("usd").unwrap();
    let first = settle_store_sqlite::open(dir, &options).await.expect("first open");
    first.readiness().await.expect("ready after the first open");
    let new = NewAccount::new("kept".into(), usd, false, None, Metadata::default()).unwrap();
    let account = first.create_account(&context(), new).await.expect("account");

    // A second store on the same directory while the first is still open.
    let second = settle_store_sqlite::open(dir, &options).await.expect("second open");
    second.readiness().await.expect("ready after the second open");
    assert_eq!(second.account(account.id).await.unwrap(), Some(account.clone()));
    drop(second);
    first.readiness().await.expect("the first store is still ready");
    drop(first);

    for round in 1..=2usize {
        let again = settle_store_sqlite::open(dir, &options)
            .await
            .unwrap_or_else(|e| panic!("reopen {round}: {e}"));
        again.readiness().await.expect("ready after reopening");
        assert_eq!(
            again.account(account.id).await.unwrap(),
            Some(account.clone()),
            "data survives reopening"
        );
        let listed = again.list_accounts(&ListQuery::first(10)).await.unwrap();
        assert_eq!(listed.data.len(), round, "reopening must not duplicate or lose rows");
        let new = NewAccount::new(format!("round {round}"), usd, false, None, Metadata::default()).unwrap();
        again
            .create_account(&context(), new)
            .await
            .expect("still writable after reopening");
    }

    // Each migration is recorded once, however often it was offered.
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("settle.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("connect");
    let applied: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .expect("migrations table");
    conn.close().await.expect("close");
    let expected: Vec<(i64, bool)> = versions(&settle_store_sqlite::MIGRATOR)
        .into_iter()
        .map(|v| (v, true))
        .collect();
    assert_eq!(applied, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_is_ready_after_open_on_both_backends() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backend == Backend::Postgres && !postgres_available() {
            continue;
        }
        let db = TestDb::create(backend).await;
        let outcome = db.store.readiness().await;
        let name = db.store.backend();
        db.drop_db().await;
        outcome.unwrap_or_else(|e| panic!("{backend:?} not ready after open: {e}"));
        assert_eq!(
            name,
            if backend == Backend::Sqlite {
                "sqlite"
            } else {
                "postgres"
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_postgres_is_harmless() {
    if !postgres_available() {
        return;
    }
    let name = format!("settle_m_{}_{:x}", std::process::id(), rand::random::<u64>());
    let url = crate::support::create_pg_database(&name).await;
    let options = settle_store_postgres::PostgresOptions::default();
    let outcome = async {
        let first = settle_store_postgres::open(&url, &options).await.expect("first open");
        let new = NewAccount::new(
            "kept".into(),
            Currency::parse("eur").unwrap(),
            false,
            None,
            Metadata::default(),
        )
        .unwrap();
        let account = first.create_account(&context(), new).await.expect("account");
        drop(first);
        let again = settle_store_postgres::open(&url, &options).await.expect("reopen");
        again.readiness().await.expect("ready after reopening");
        assert_eq!(again.account(account.id).await.unwrap(), Some(account));
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    crate::support::drop_pg_database(&name).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
