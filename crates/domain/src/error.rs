//! Why a domain rule refused an operation, in terms every interface can map
//! to its own error shape.

/// A rule of the domain was broken. Each variant names the rule, so the
/// interfaces can choose the status and code without parsing messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A parameter failed validation; `param` names it for the client.
    #[error("{message}")]
    InvalidParameter { param: String, message: String },
    /// The source (or, for a refund, the destination) cannot cover the amount.
    #[error("insufficient funds: {available} available, {requested} requested")]
    InsufficientFunds { available: i64, requested: i64 },
    /// The accounts or payment involved hold different currencies.
    #[error("currency mismatch: {expected} expected, {found} found")]
    CurrencyMismatch { expected: String, found: String },
    /// More than is left to capture or refund.
    #[error("{0}")]
    AmountTooLarge(String),
    /// The movement would take a balance beyond ±(2^53 − 1), the largest
    /// value every JSON client reads exactly. Distinct from
    /// [`DomainError::AmountTooLarge`], which SPEC keeps for captures and refunds.
    #[error("{0}")]
    BalanceOverflow(String),
    /// An attribute policy's text does not parse or does not fit the schema.
    #[error("{0}")]
    InvalidPolicy(String),
    /// The object's state does not allow the operation (e.g. capturing a canceled payment).
    #[error("{0}")]
    InvalidState(String),
}

impl DomainError {
    /// Shorthand for the most common failure: one bad parameter.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::InvalidParameter {
            param: param.into(),
            message: message.into(),
        }
    }
}
