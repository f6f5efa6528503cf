//! Storage for Settle: the [`Store`] trait every service calls, the types it
//! speaks, and the SQL that SQLite and PostgreSQL share. Backend crates add
//! only what really differs: connecting, migrations, and how a write
//! transaction is run (one writer task with group commit on SQLite, pooled
//! transactions with row locks on PostgreSQL).

pub mod access;
pub mod accounts;
pub mod commits;
pub mod context;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod ids;
pub mod list;
pub mod payments;
pub mod pool;
pub mod queue;
pub mod records;
pub mod sql;
mod store;
pub mod webhooks;

pub use access::AccessStore;
pub use accounts::AccountStore;
pub use context::WriteContext;
pub use error::StoreError;
pub use events::EventStore;
pub use idempotency::IdempotencyStore;
pub use list::{CreatedRange, Cursor, ListQuery, Page};
pub use payments::PaymentStore;
pub use store::Store;
pub use webhooks::WebhookStore;

/// Every aggregate's trait, for callers of an `Arc<dyn Store>`: a method of
/// a supertrait can only be called where that trait is in scope.
pub mod prelude {
    pub use crate::{AccessStore, AccountStore, EventStore, IdempotencyStore, PaymentStore, Store, WebhookStore};
}
