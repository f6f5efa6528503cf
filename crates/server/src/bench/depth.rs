//! Page cost by depth on an already seeded database: the first page, a page
//! at depth 1M and at depth 9M (scaled down on smaller data), by keyset
//! (the store's own list query) and by `OFFSET` (the naive way, for
//! comparison only), with no filter, one status and one customer. Each
//! figure is the median of several runs; ratios are to the first keyset
//! page with a cursor (page 2) of the same filter.

use std::time::{Duration, Instant};

use anyhow::Context;
use settle_domain::ids::{CustomerId, PaymentId};
use settle_domain::payment::PaymentStatus;
use settle_store::prelude::*;
use settle_store::records::PaymentFilter;
use settle_store::sql::SqlStore;
use settle_store::{Cursor, ListQuery, Store};
use sqlx::{AssertSqlSafe, Row};

use super::ratio;

const PAGE: u32 = 100;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn filter_sql(filter: &Option<PaymentFilter>) -> (String, Option<Vec<u8>>, Option<String>) {
    match filter {
        None => (String::new(), None, None),
        Some(PaymentFilter::Status(s)) => ("WHERE status = $1 ".into(), None, Some(s.as_str().to_owned())),
        Some(PaymentFilter::Customer(c)) => ("WHERE customer_id = $1 ".into(), Some(c.to_bytes()), None),
        Some(_) => (String::new(), None, None),
    }
}

async fn id_at(store: &SqlStore, filter: &Option<PaymentFilter>, depth: u64) -> anyhow::Result<PaymentId> {
    let (clause, bytes, text) = filter_sql(filter);
    let sql = format!(
        "SELECT id FROM payments {clause}ORDER BY id DESC LIMIT 1 OFFSET {}",
        depth.saturating_sub(1)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    if let Some(b) = bytes {
        q = q.bind(b);
    }
    if let Some(t) = text {
        q = q.bind(t);
    }
    let row = q.fetch_one(store.reads()).await.context("depth beyond the data")?;
    PaymentId::from_bytes(&row.try_get::<Vec<u8>, _>("id")?).context("bad id")
}

async fn time_keyset(
    store: &SqlStore,
    filter: &Option<PaymentFilter>,
    cursor: Option<PaymentId>,
    runs: usize,
) -> anyhow::Result<Duration> {
    let q = ListQuery {
        limit: PAGE,
        cursor: cursor.map(|c| Cursor::StartingAfter(c.uuid())),
        filter: filter.clone(),
        created: Default::default(),
    };
    let mut samples = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let page = store.list_payments(&q).await?;
        samples.push(t.elapsed());
        anyhow::ensure!(page.data.len() as u32 == PAGE, "short page");
    }
    Ok(median(samples))
}

async fn time_offset(
    store: &SqlStore,
    filter: &Option<PaymentFilter>,
    depth: u64,
    runs: usize,
) -> anyhow::Result<Duration> {
    let (clause, bytes, text) = filter_sql(filter);
    let sql = format!(
        "SELECT {} FROM payments {clause}ORDER BY id DESC LIMIT {PAGE} OFFSET {depth}",
        settle_store::sql::plans::LISTS[2].1
    );
    let mut samples = Vec::new();
    for _ in 0..runs {
        let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
        if let Some(b) = bytes.clone() {
            q = q.bind(b);
        }
        if let Some(t) = text.clone() {
            q = q.bind(t);
        }
        let t = Instant::now();
        let rows = q.fetch_all(store.reads()).await?;
        samples.push(t.elapsed());
        anyhow::ensure!(rows.len() as u32 == PAGE, "short page");
    }
    Ok(median(samples))
}

async fn count(store: &SqlStore, filter: &Option<PaymentFilter>) -> anyhow::Result<u64> {
    let (clause, bytes, text) = filter_sql(filter);
    let mut q = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM payments {clause}")));
    if let Some(b) = bytes {
        q = q.bind(b);
    }
    if let Some(t) = text {
        q = q.bind(t);
    }
    Ok(q.fetch_one(store.reads()).await?.try_get::<i64, _>("n")? as u64)
}

async fn busiest_customer(store: &SqlStore) -> anyhow::Result<Option<CustomerId>> {
    let row = sqlx::query(
        "SELECT customer_id FROM payments WHERE customer_id IS NOT NULL GROUP BY customer_id ORDER BY COUNT(*) DESC LIMIT 1",
    )
    .fetch_optional(store.reads())
    .await?;
    Ok(row
        .and_then(|r| r.try_get::<Vec<u8>, _>("customer_id").ok())
        .and_then(|b| CustomerId::from_bytes(&b)))
}

pub async fn run(store: &SqlStore, runs: usize) -> anyhow::Result<()> {
    let runs = runs.max(1);
    let mut filters: Vec<(String, Option<PaymentFilter>)> = vec![
        ("all payments".into(), None),
        (
            "status=succeeded".into(),
            Some(PaymentFilter::Status(PaymentStatus::Succeeded)),
        ),
    ];
    if let Some(c) = busiest_customer(store).await? {
        filters.push((format!("customer={c}"), Some(PaymentFilter::Customer(c))));
    }
    println!(
        "settle bench depth: {} , {PAGE}-item pages, median of {runs} runs",
        store_backend(store)
    );
    println!(
        "  {:<44} {:>10} {:>12} {:>10} {:>12} {:>10}",
        "filter / depth", "keyset", "vs page 2", "OFFSET", "vs page 2", "rows"
    );
    for (name, filter) in filters {
        let n = count(store, &filter).await?;
        if n < u64::from(PAGE) * 3 {
            continue;
        }
        // 1M and 9M of 10M; proportionally less on smaller data.
        let scale = |of_ten: u64| {
            if n >= 10_000_000 {
                of_ten * 1_000_000
            } else {
                n * of_ten / 10
            }
        };
        let depths = [0, u64::from(PAGE), scale(1), scale(9).min(n - u64::from(PAGE))];
        // The baseline is the first page that has a cursor (page 2): every
        // deeper page has one too, and a cursor costs one primary-key probe
        // (it must name something), so page 1 alone would hide depth behind
        // that probe. Page 1 is printed as well. Warm the cache once first.
        time_keyset(store, &filter, None, runs).await?;
        let first = time_keyset(
            store,
            &filter,
            Some(id_at(store, &filter, u64::from(PAGE)).await?),
            runs,
        )
        .await?;
        for depth in depths {
            let cursor = if depth == 0 {
                None
            } else {
                Some(id_at(store, &filter, depth).await?)
            };
            let keyset = time_keyset(store, &filter, cursor, runs).await?;
            let offset_runs = if depth == 0 { runs } else { runs.min(3) };
            let offset = time_offset(store, &filter, depth, offset_runs).await?;
            let secs = |d: Duration| d.as_secs_f64();
            println!(
                "  {:<44} {:>8.2}ms {:>12} {:>8.2}ms {:>12} {:>10}",
                format!("{name} @ {depth}"),
                secs(keyset) * 1e3,
                ratio(secs(keyset), secs(first)),
                secs(offset) * 1e3,
                ratio(secs(offset), secs(first)),
                n
            );
        }
    }
    Ok(())
}

fn store_backend(store: &SqlStore) -> &'static str {
    store.backend()
}
