//! Storage for Settle: the [`Store`] trait every service calls, the types it
//! speaks, and the SQL that SQLite and PostgreSQL share. Backend crates add
//! only what really differs: connecting, migrations, and how a write
//! transaction is run (one writer task with group commit on SQLite, pooled
//! transactions with row locks on PostgreSQL).

pub mod context;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod list;
pub mod queue;
pub mod records;
pub mod sql;
mod store;

pub use context::WriteContext;
pub use error::StoreError;
pub use list::{CreatedRange, Cursor, ListQuery, Page};
pub use store::Store;
