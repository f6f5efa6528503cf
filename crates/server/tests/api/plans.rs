//! Index plan tests: every query path (each list with and without its
//! filter, in both directions, and the probes) is `EXPLAIN`ed on both
//! databases and must use its named index with no sort step (SQLite: no
//! `USE TEMP B-TREE`; PostgreSQL: no `Sort` node, with sequential and bitmap
//! scans discouraged). The indexes that exist must be exactly the ones the
//! paths use, so an index no query needs is noticed too.

use std::collections::BTreeSet;

use settle_store::sql::plans::{QueryPath, query_paths};
use sqlx::{Executor, Row};

use settle_store::sql::list::FilterValue;

use crate::support::{Backend, TestApp, both};

async fn explain(app: &TestApp, path: &QueryPath) -> Vec<String> {
    let mut conn = app.db.reads.begin().await.unwrap();
    let prefix = match app.db.backend {
        Backend::Sqlite => "EXPLAIN QUERY PLAN ",
        Backend::Postgres => {
            conn.execute("SET LOCAL enable_seqscan = off").await.unwrap();
            conn.execute("SET LOCAL enable_bitmapscan = off").await.unwrap();
            "EXPLAIN "
        }
    };
    let sql = format!("{prefix}{}", path.sql);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for bind in path.binds.clone() {
        query = match bind {
            FilterValue::Text(t) => query.bind(t),
            FilterValue::Bytes(b) => query.bind(b),
            FilterValue::Int(i) => query.bind(i),
        };
    }
    let rows = query
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", path.name));
    rows.iter()
        .map(|r| match app.db.backend {
            Backend::Sqlite => r.try_get::<String, _>("detail").unwrap(),
            Backend::Postgres => r.try_get::<String, _>(0).unwrap(),
        })
        .collect()
}

fn table_of(sql: &str) -> &str {
    sql.split(" FROM ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("")
}

/// The index a plan line uses, if any.
fn used_index(backend: Backend, line: &str) -> Option<String> {
    match backend {
        Backend::Sqlite => {
            if line.contains("USING PRIMARY KEY") {
                return Some("PRIMARY KEY".into());
            }
            let rest = line
                .split("USING COVERING INDEX ")
                .nth(1)
                .or_else(|| line.split("USING INDEX ").nth(1))?;
            rest.split_whitespace().next().map(str::to_owned)
        }
        Backend::Postgres => line
            .split(" using ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_owned),
    }
}

fn has_sort(backend: Backend, plan: &[String]) -> bool {
    plan.iter().any(|line| match backend {
        Backend::Sqlite => line.contains("USE TEMP B-TREE"),
        Backend::Postgres => {
            let t = line.trim_start().trim_start_matches("->").trim_start();
            t.starts_with("Sort ") || t.starts_with("Incremental Sort")
        }
    })
}

async fn existing_indexes(app: &TestApp) -> BTreeSet<String> {
    let sql = match app.db.backend {
        Backend::Sqlite => {
            "SELECT name AS n FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'"
        }
        Backend::Postgres => {
            "SELECT CAST(indexname AS TEXT) AS n FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE '%_pkey'"
        }
    };
    let rows = sqlx::query(sql).fetch_all(&app.db.reads).await.unwrap();
    rows.iter().map(|r| r.try_get::<String, _>("n").unwrap()).collect()
}

both!(every_path_uses_its_index, every_path_uses_its_index_case);
async fn every_path_uses_its_index_case(app: &TestApp) {
    let backend = app.db.backend;
    let mut used = BTreeSet::new();
    let mut failures = Vec::new();
    for path in query_paths() {
        let plan = explain(app, &path).await;
        let expected = match (path.index, backend) {
            (Some(index), _) => index.to_owned(),
            (None, Backend::Sqlite) => "PRIMARY KEY".to_owned(),
            (None, Backend::Postgres) => format!("{}_pkey", table_of(&path.sql)),
        };
        let indexes: Vec<String> = plan.iter().filter_map(|l| used_index(backend, l)).collect();
        if !indexes.contains(&expected) {
            failures.push(format!("{}: expected {expected}, plan: {plan:?}", path.name));
        }
        if path.ordered && has_sort(backend, &plan) {
            failures.push(format!("{}: the index must serve the order, plan: {plan:?}", path.name));
        }
        used.extend(indexes);
    }
    assert!(failures.is_empty(), "{backend:?} plans:\n{}", failures.join("\n"));

    let existing = existing_indexes(app).await;
    let unused: Vec<_> = existing.iter().filter(|i| !used.contains(*i)).collect();
    assert!(unused.is_empty(), "{backend:?}: indexes no query path uses: {unused:?}");
    let expected: BTreeSet<String> = query_paths()
        .iter()
        .filter_map(|p| p.index.map(str::to_owned))
        .collect();
    assert_eq!(
        existing, expected,
        "{backend:?}: the schema's secondary indexes are exactly the ones the paths need"
    );
}

#[test]
fn every_list_has_both_directions() {
    let paths = query_paths();
    for (table, _, filters) in settle_store::sql::plans::LISTS {
        for (column, _) in filters.iter() {
            let n = paths
                .iter()
                .filter(|p| p.name.starts_with(&format!("list {table} by {column} ")))
                .count();
            assert_eq!(n, 2, "{table}.{column}");
        }
    }
}
