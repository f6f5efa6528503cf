//! Other processes' commits, heard through PostgreSQL's LISTEN/NOTIFY.
//!
//! The `events_position` and `jobs_notify` triggers queue one notification
//! per transaction that adds events or jobs; PostgreSQL delivers it only
//! after the commit. A dedicated connection listens (sqlx's `Any` pool
//! cannot, and a pooled connection would be handed to requests) and rings
//! the store's [`CommitBus`] for each one. Notifications sent while that
//! connection is down are lost for good, so every (re)connection rings
//! [`CommitBus::resync`]: waiters read again from their own positions.

use std::sync::Arc;
use std::time::Duration;

use settle_store::commits::{CommitBus, Touched};
use sqlx::postgres::PgListener;

/// The channel the triggers notify.
pub const CHANNEL: &str = "settle_commits";

/// The payload of the `webhook_endpoints_notify` trigger's notification.
pub const ENDPOINTS_PAYLOAD: &str = "endpoints";

/// The first character of a changed-objects notification (sent by a
/// change sender's `send_changes`, or by a webhook endpoint's trigger):
/// then the origin of the writes and `/` (when the writer named itself),
/// and the ids of the changed rows, or `*` for "too many to name".
pub const CHANGES_PREFIX: char = 'c';

/// Drops the cached copies of the objects another process changed; this
/// store's own changes were dropped before its writer heard back.
async fn changed(bus: &CommitBus, payload: &str) {
    let ids = match payload.split_once('/') {
        Some((origin, _)) if origin == bus.origin() => return,
        Some((_, ids)) => ids,
        None => payload,
    };
    let parsed: Option<Vec<uuid::Uuid>> = ids.split(',').map(|hex| uuid::Uuid::try_parse(hex).ok()).collect();
    match parsed {
        Some(ids) => bus.changed(&ids).await,
        None => bus.flush(),
    }
}

/// Listens on `url` for as long as the task runs, reconnecting after
/// `retry` whenever the connection is lost or cannot be made. Abort the
/// task to stop it.
pub async fn listen(url: String, bus: Arc<CommitBus>, retry: Duration) {
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    // Whatever committed before this point was not heard.
                    bus.resync();
                    let why = follow(&mut listener, &bus).await;
                    tracing::warn!(error = %why, "commit listener lost its connection; workers read from their positions");
                    bus.resync();
                }
                Err(e) => tracing::warn!(error = %e, "commit listener cannot LISTEN; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "commit listener cannot connect; retrying"),
        }
        tokio::time::sleep(retry).await;
    }
}

/// Rings the bell for each notification until the connection fails;
/// returns why it stopped.
async fn follow(listener: &mut PgListener, bus: &CommitBus) -> String {
    loop {
        match listener.try_recv().await {
            // A changed endpoint says so; any other notification is about
            // events or jobs, without saying which.
            Ok(Some(n)) if n.payload() == ENDPOINTS_PAYLOAD => bus.announce(Touched::ENDPOINTS),
            Ok(Some(n)) if n.payload().starts_with(CHANGES_PREFIX) => changed(bus, &n.payload()[1..]).await,
            Ok(Some(_)) => bus.announce(Touched::QUEUE),
            Ok(None) => return "connection closed".to_owned(),
            Err(e) => return e.to_string(),
        }
    }
}
