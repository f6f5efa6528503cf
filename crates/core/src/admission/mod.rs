//! What decides whether a request is served when more arrive than Settle
//! can serve well: a rate limit per API key and class (a key that sends
//! too much gets 429 without costing anyone else), and a concurrency limit
//! that finds its own level from measured latency and sheds the least
//! important work first (503), before it touches the database.
//!
//! Both sit in the operation pipeline, so every face obeys the same rules.

mod concurrency;
mod rate;

use std::time::Duration;

pub use concurrency::{Admission, AdmissionSnapshot, ConcurrencyOptions, Permit, Shed};
pub use rate::{
    Noted, Rate, RateLimiter, RateOptions, RateStats, RateVerdict, SharedRates, VerdictSlot, gcra, note_permissions,
    note_rate_verdicts,
};

use crate::pipeline::OperationSpec;
use settle_domain::rbac::{Action, Resource};

/// How much an operation matters when not everything can be served, most
/// important first: money moving is what a payments backend is for; a
/// single read is cheap and usually feeds a decision; lists, searches,
/// replays and exports are expensive and can wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Money,
    Standard,
    Bulk,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Money, Class::Standard, Class::Bulk];

    /// The label `/metrics` and the configuration use.
    pub fn name(self) -> &'static str {
        match self {
            Class::Money => "money",
            Class::Standard => "standard",
            Class::Bulk => "bulk",
        }
    }

    /// What a client is told it was refused for doing too much of.
    fn described(self) -> &'static str {
        match self {
            Class::Money => "payment, capture, cancel and refund",
            Class::Standard => "single-object",
            Class::Bulk => "list, replay and summary",
        }
    }
}

impl OperationSpec {
    /// The class this operation is admitted in: writes to payments and
    /// refunds move money; lists, replays and the summaries scan many
    /// rows; everything else touches one object.
    pub fn class(&self) -> Class {
        let money = self.permission.action == Action::Write
            && matches!(self.permission.resource, Resource::Payments | Resource::Refunds);
        if money {
            Class::Money
        } else if self.name.starts_with("list_")
            || matches!(self.name, "replay_webhooks" | "queue_summary" | "webhook_stats")
        {
            Class::Bulk
        } else {
            Class::Standard
        }
    }
}

impl OperationSpec {
    /// Reads one object through the read cache (and nothing else unless
    /// it expands): shed under overload, it is still answered from the
    /// cache, stale if need be, rather than refused.
    pub fn reads_through_cache(&self) -> bool {
        matches!(
            self.name,
            "retrieve_account"
                | "retrieve_customer"
                | "retrieve_payment"
                | "retrieve_refund"
                | "retrieve_event"
                | "retrieve_webhook_endpoint"
        )
    }
}

/// The admission settings (`SETTLE_RATE_LIMIT*`, `SETTLE_ADMISSION*`).
#[derive(Debug, Clone, Default)]
pub struct AdmissionOptions {
    pub rate: RateOptions,
    pub concurrency: ConcurrencyOptions,
}

/// Whole seconds for `Retry-After`, at least one.
fn retry_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests;
