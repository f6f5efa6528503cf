//! [`crate::Store`] for [`SqlStore`]: the backend's name and readiness.

use async_trait::async_trait;

use super::SqlStore;
use super::db::query;
use super::list::{FilterValue, ListSpec};
use crate::error::{StoreError, StoreResult};
use crate::list::ListQuery;
use crate::store::Store;

pub(super) fn spec<'a, F>(
    table: &'static str,
    columns: &'static str,
    q: &'a ListQuery<F>,
    filters: impl IntoIterator<Item = (&'static str, FilterValue)>,
) -> ListSpec<'a> {
    ListSpec {
        table,
        columns,
        filters: filters.into_iter().collect(),
        limit: q.limit,
        cursor: q.cursor,
        created: &q.created,
    }
}

/// A stale `If-Match` is a conflict; a race without `If-Match` is retried.
pub(super) fn lost_race(if_version: Option<i64>, current: i64) -> StoreError {
    match if_version {
        Some(expected) => StoreError::VersionConflict { expected, current },
        None => StoreError::Retry("the row changed while being edited".into()),
    }
}

/// A stale `If-Match` fails before anything is read-modified-written.
pub(super) fn check_version(if_version: Option<i64>, current: i64) -> StoreResult<()> {
    match if_version {
        Some(expected) if expected != current => Err(StoreError::VersionConflict { expected, current }),
        _ => Ok(()),
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.dialect.name()
    }

    fn pools(&self) -> Vec<crate::pool::PoolSnapshot> {
        vec![self.reads.pool()]
    }

    async fn readiness(&self) -> StoreResult<()> {
        let row = query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut self.reader())
            .await?;
        let applied: i64 = row.try_get("v")?;
        if applied < self.latest_migration {
            return Err(StoreError::Unavailable(format!(
                "migrations pending: {applied} applied, {} expected",
                self.latest_migration
            )));
        }
        Ok(())
    }
}
