//! One keyset query for every list: optional equality filters, an id range
//! (cursor and `created` bounds), ordered by id, `limit + 1` rows to learn
//! `has_more`. With an index on `(filter_columns.., id)` the database walks
//! the index from the bound, so page 100,000 costs what page 1 costs.

use super::db::{Executor, Row, Value, query};
use crate::error::{StoreError, StoreResult};
use crate::list::{CreatedRange, Cursor, Page};

/// A value an equality filter compares with.
#[derive(Debug, Clone)]
pub enum FilterValue {
    Text(String),
    Bytes(Vec<u8>),
    Int(i64),
}

impl From<FilterValue> for Value {
    fn from(v: FilterValue) -> Value {
        match v {
            FilterValue::Text(t) => Value::Text(t),
            FilterValue::Bytes(b) => Value::Bytes(b),
            FilterValue::Int(i) => Value::Int(i),
        }
    }
}

/// What a resource's list query needs to know.
pub struct ListSpec<'a> {
    pub table: &'static str,
    pub columns: &'static str,
    pub filters: Vec<(&'static str, FilterValue)>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
    pub created: &'a CreatedRange,
}

/// Builds the SQL of a list query; public to the crate so plan tests can
/// explain exactly what runs.
pub fn list_sql(table: &str, columns: &str, filter_columns: &[&str], ascending: bool, limit: u32) -> String {
    let filter: String = filter_columns
        .iter()
        .enumerate()
        .map(|(i, col)| format!("{col} = ${} AND ", i + 1))
        .collect();
    let (lo, hi) = (filter_columns.len() + 1, filter_columns.len() + 2);
    let order = if ascending { "ASC" } else { "DESC" };
    format!(
        "SELECT {columns} FROM {table} WHERE {filter}id >= ${lo} AND id <= ${hi} ORDER BY id {order} LIMIT {}",
        limit + 1
    )
}

pub async fn fetch_page<T>(
    pool: &mut (impl Executor + ?Sized),
    spec: ListSpec<'_>,
    decode: fn(&Row) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    if let Some(cursor) = spec.cursor {
        let sql = format!("SELECT 1 AS found FROM {} WHERE id = $1", spec.table);
        let found = query(sql)
            .bind(cursor.id().as_bytes().to_vec())
            .fetch_optional(pool)
            .await?;
        if found.is_none() {
            let param = match cursor {
                Cursor::StartingAfter(_) => "starting_after",
                Cursor::EndingBefore(_) => "ending_before",
            };
            return Err(StoreError::NotFound {
                what: "cursor object",
                param: Some(param),
            });
        }
    }
    let Some((lo, hi)) = spec.created.id_bounds(spec.cursor) else {
        return Ok(Page {
            data: Vec::new(),
            has_more: false,
        });
    };
    let ascending = matches!(spec.cursor, Some(Cursor::EndingBefore(_)));
    let sql = list_sql(
        spec.table,
        spec.columns,
        &spec.filters.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        ascending,
        spec.limit,
    );
    let mut query = query(sql);
    for (_, value) in spec.filters {
        query = query.bind(value);
    }
    let rows = query
        .bind(lo.to_be_bytes().to_vec())
        .bind(hi.to_be_bytes().to_vec())
        .fetch_all(pool)
        .await?;
    let has_more = rows.len() > spec.limit as usize;
    let mut data = rows
        .iter()
        .take(spec.limit as usize)
        .map(decode)
        .collect::<StoreResult<Vec<T>>>()?;
    if ascending {
        data.reverse();
    }
    Ok(Page { data, has_more })
}
