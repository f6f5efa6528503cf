//! The objects the read cache keeps, and the version each shows.

use settle_domain::account::Account;
use settle_domain::customer::Customer;
use settle_domain::payment::Payment;
use settle_domain::refund::Refund;
use settle_domain::webhook::WebhookEndpoint;
use settle_store::records::Event;

use super::Cacheable;

macro_rules! versioned {
    ($($t:ty),*) => {
        $(impl Cacheable for $t {
            fn version(&self) -> Option<i64> {
                Some(self.version)
            }
        })*
    };
}

versioned!(Account, Customer, Payment, WebhookEndpoint);

/// Never edited: no version, and nothing to invalidate.
macro_rules! unversioned {
    ($($t:ty),*) => {
        $(impl Cacheable for $t {
            fn version(&self) -> Option<i64> {
                None
            }
        })*
    };
}

unversioned!(Refund, Event);
