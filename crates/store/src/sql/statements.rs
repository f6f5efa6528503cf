//! Counting the statements the store runs, per process and per request, so
//! a test can pin what an operation costs ("a page of 100 payments is two
//! statements") on both databases, and `/metrics` can show the rate.
//!
//! A request's count lives in a task-local set by the HTTP layer
//! ([`scope`]); a write job running on another task (SQLite's writer)
//! carries the count of the request that queued it. Transaction control
//! (`BEGIN`, `COMMIT`, savepoints) belongs to the backend's executor and is
//! not counted: on SQLite one `COMMIT` serves a whole batch of requests.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

static PROCESS: AtomicU64 = AtomicU64::new(0);

tokio::task_local! {
    static REQUEST: Arc<AtomicU64>;
}

/// Statements run by this process since it started.
pub fn process_total() -> u64 {
    PROCESS.load(Ordering::Relaxed)
}

/// Runs `work` with `count` as the request's statement counter.
pub async fn scope<F: Future>(count: Arc<AtomicU64>, work: F) -> F::Output {
    REQUEST.scope(count, work).await
}

/// The counter of the request the current task serves, if any.
pub fn current() -> Option<Arc<AtomicU64>> {
    REQUEST.try_with(Arc::clone).ok()
}

/// Counts one statement for the process and for `request` (or, without
/// one, for the request the current task serves).
pub(crate) fn record(request: Option<&Arc<AtomicU64>>) {
    PROCESS.fetch_add(1, Ordering::Relaxed);
    match request {
        Some(count) => {
            count.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            let _ = REQUEST.try_with(|count| count.fetch_add(1, Ordering::Relaxed));
        }
    }
}
