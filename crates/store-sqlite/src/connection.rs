//! Opening SQLite connections the way every part of the backend expects them:
//! WAL, `synchronous=FULL` (a commit survives power loss), foreign keys on, a
//! busy timeout for a file another process holds, and a bounded page cache
//! (README's memory figures depend on these bounds).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// What a connection is for, which decides its page cache and statement cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The one connection that writes: hot index pages of a busy ledger.
    Writer,
    /// One of the read pool's connections.
    Reader,
}

/// Page cache of the writer connection, in KiB.
pub const WRITER_CACHE_KIB: u32 = 8_192;
/// Page cache of each read connection, in KiB. The operating system's page
/// cache holds the rest of the file; these only spare a system call per page.
pub const READER_CACHE_KIB: u32 = 2_048;

/// How long a statement waits for a lock another process holds before it
/// fails with `SQLITE_BUSY` (a 503 naming the cause).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The settings every connection to the file gets, rusqlite's and the
/// sqlx tool pool's alike (`journal_mode`, kept in the file, aside).
pub(crate) fn settings(cache_kib: u32) -> [String; 4] {
    [
        format!("PRAGMA cache_size = -{cache_kib}"),
        "PRAGMA foreign_keys = ON".to_owned(),
        "PRAGMA synchronous = FULL".to_owned(),
        format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis()),
    ]
}

/// Opens `file` (which must exist: migrations create it) for `role`.
pub(crate) fn open(file: &Path, role: Role) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(file, flags)?;
    let (cache_kib, statements) = match role {
        Role::Writer => (WRITER_CACHE_KIB, 256),
        Role::Reader => (READER_CACHE_KIB, 128),
    };
    conn.set_prepared_statement_cache_capacity(statements);
    for setting in settings(cache_kib) {
        conn.execute_batch(&setting)?;
    }
    match role {
        // The savepoint each write of a batch runs in journals the pages it
        // changes; in memory, not in a temporary file (a profile of the
        // writer showed those temporary-file writes at about 15% of its time).
        Role::Writer => conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA temp_store = MEMORY;")?,
        // A read connection never writes, even by mistake.
        Role::Reader => conn.execute_batch("PRAGMA query_only = ON;")?,
    }
    Ok(conn)
}
