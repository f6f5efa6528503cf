//! The storage contract: one trait per aggregate, each in its own module
//! with its record types, and [`Store`], their union, which the service
//! holds as one `Arc<dyn Store>`. Methods are coarse: one method is one
//! business operation in one transaction, and every write takes a
//! [`crate::WriteContext`].

use async_trait::async_trait;

use crate::access::AccessStore;
use crate::accounts::AccountStore;
use crate::error::StoreResult;
use crate::events::EventStore;
use crate::idempotency::IdempotencyStore;
use crate::payments::PaymentStore;
use crate::webhooks::WebhookStore;

#[async_trait]
pub trait Store:
    AccountStore + PaymentStore + AccessStore + IdempotencyStore + EventStore + WebhookStore + Send + Sync + 'static
{
    /// `sqlite` or `postgres`, for logs and readiness.
    fn backend(&self) -> &'static str;

    /// Succeeds when the database answers and every migration is applied.
    async fn readiness(&self) -> StoreResult<()>;

    /// The connection pools, for `/metrics`.
    fn pools(&self) -> Vec<crate::pool::PoolSnapshot>;
}
