//! The objects the read cache keeps, and the version each shows.

use settle_domain::account::Account;
use settle_domain::customer::Customer;
use settle_domain::payment::Payment;
use settle_domain::refund::Refund;
use settle_domain::webhook::WebhookEndpoint;
use settle_store::records::Event;

use super::Cacheable;

macro_rules! versioned {
    ($($t:ty => $kind:literal),*) => {
        $(impl Cacheable for $t {
            const KIND: &'static str = $kind;

            fn version(&self) -> Option<i64> {
                Some(self.version)
            }
        })*
    };
}

versioned!(Account => "account", Customer => "customer", Payment => "payment", WebhookEndpoint => "webhook_endpoint");

/// Never edited: no version, and nothing to invalidate.
macro_rules! unversioned {
    ($($t:ty => $kind:literal),*) => {
        $(impl Cacheable for $t {
            const KIND: &'static str = $kind;

            fn version(&self) -> Option<i64> {
                None
            }
        })*
    };
}

unversioned!(Refund => "refund", Event => "event");

/// The kinds entries carry, as the shared tier stores them.
pub(super) const NAMES: [&str; 6] = ["account", "customer", "payment", "refund", "event", "webhook_endpoint"];
