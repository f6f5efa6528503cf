//! What can go wrong in storage, sorted by what the caller should do about it.

use settle_domain::DomainError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// An id names nothing. `param` is `None` for the object the request is
    /// about (an id in the path: 404) and names the field otherwise (400).
    #[error("no such {what}")]
    NotFound {
        what: &'static str,
        param: Option<&'static str>,
    },
    /// A domain rule refused the operation; nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// `If-Match` named an older version than the stored one.
    #[error("version {expected} is stale; the current version is {current}")]
    VersionConflict { expected: i64, current: i64 },
    /// The object is referenced by others and cannot be removed.
    #[error("{0}")]
    InUse(String),
    /// The database cannot serve now (pool exhausted, down, busy); retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database's storage refused a write (disk full, file read-only,
    /// I/O error, locked by another process). The whole transaction was
    /// rolled back; the message names the cause for the operator and the
    /// client, since the fix is theirs (free space, file attributes).
    #[error("database storage fault: {0}")]
    StorageFault(String),
    /// A transaction lost a deadlock or serialization race; the runner retries it.
    #[error("transaction conflict: {0}")]
    Retry(String),
    /// The request's idempotency claim was taken over (it ran past the lock
    /// timeout); its transaction was rolled back.
    #[error("the idempotency key was claimed by another request")]
    ClaimLost,
    /// The request's deadline passed before its write began; nothing was
    /// written (a write that began is never cut short: it commits or fails
    /// on its own).
    #[error("the request's deadline passed before the write began")]
    DeadlineExceeded,
    /// An attribute policy forbade the operation; nothing was written.
    #[error("{0}")]
    PolicyDenied(String),
    /// Anything else: a bug or corrupted data. Never shown to clients.
    #[error("storage error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut => StoreError::Unavailable("timed out waiting for a database connection".into()),
            sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // PostgreSQL: deadlock_detected, serialization_failure.
                Some("40P01") | Some("40001") => StoreError::Retry(db.message().to_owned()),
                // PostgreSQL query_canceled: the transaction's statement
                // timeout, set from the request's deadline, ran out; the
                // transaction rolled back.
                Some("57014") => StoreError::DeadlineExceeded,
                // PostgreSQL foreign_key_violation: a referenced row vanished under
                // a concurrent transaction; rerunning sees the committed state.
                Some("23503") => StoreError::Retry(db.message().to_owned()),
                // PostgreSQL: admin shutdown, cannot connect now, too many connections.
                Some("57P01") | Some("57P03") | Some("53300") => StoreError::Unavailable(db.message().to_owned()),
                // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
                Some(code) if code.len() < 5 && matches!(code.parse::<i32>().map(|c| c & 0xff), Ok(5) | Ok(6)) => {
                    StoreError::Unavailable(db.message().to_owned())
                }
                _ => StoreError::Internal(e.to_string()),
            },
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

/// Shorthand for every store result.
pub type StoreResult<T> = Result<T, StoreError>;
