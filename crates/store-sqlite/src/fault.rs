//! What a SQLite error means: a fault of the storage under the database
//! (the transaction is gone, the connection is reopened, the client gets a
//! 503 naming the cause) or an error of one statement.

use rusqlite::ErrorCode;
use settle_store::StoreError;

/// A SQLite error sorted for the caller. `fault` is true when the storage
/// failed: the whole batch must fail and the connection be reopened.
pub(crate) struct Classified {
    pub error: StoreError,
    pub fault: bool,
}

/// Sorts `e` into a store error and says whether it is a storage fault.
pub(crate) fn classify(e: &rusqlite::Error) -> Classified {
    let rusqlite::Error::SqliteFailure(failure, message) = e else {
        return Classified {
            error: StoreError::Internal(e.to_string()),
            fault: false,
        };
    };
    let detail = message.as_deref().unwrap_or("no detail");
    let cause = match failure.code {
        ErrorCode::DiskFull => "the disk holding the database is full".to_owned(),
        ErrorCode::ReadOnly => "the database file is read-only (its permissions, an immutable attribute, or a \
                                read-only mount)"
            .to_owned(),
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            "the database file is locked by another process".to_owned()
        }
        ErrorCode::SystemIoFailure => format!(
            "an I/O error on the database file (SQLite extended code {}: {detail}); the disk may have failed, \
             or the file been made read-only or removed",
            failure.extended_code
        ),
        ErrorCode::CannotOpen | ErrorCode::PermissionDenied => {
            format!("the database file cannot be opened ({detail})")
        }
        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
            format!("the database file is damaged ({detail}); restore it from a backup")
        }
        ErrorCode::OutOfMemory => "SQLite ran out of memory".to_owned(),
        _ => {
            return Classified {
                error: StoreError::Internal(e.to_string()),
                fault: false,
            };
        }
    };
    Classified {
        error: StoreError::StorageFault(cause),
        fault: true,
    }
}
