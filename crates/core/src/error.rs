//! Errors of the service layer: storage and domain outcomes plus the
//! authentication and permission failures only this layer knows.

use settle_domain::rbac::Permission;
use settle_store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No usable key: `code` says whether it was missing, unknown or expired.
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// The key's role lacks the permission the operation needs.
    #[error("this API key's role lacks the `{0}` permission")]
    Forbidden(Permission),
    /// Under overload a single read is answered from the cache alone, and
    /// this one was not cached.
    #[error("not cached, and the database is not asked under overload")]
    NotCached,
}

impl From<settle_domain::DomainError> for ServiceError {
    fn from(e: settle_domain::DomainError) -> Self {
        ServiceError::Store(StoreError::Domain(e))
    }
}
