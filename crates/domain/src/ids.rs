//! Typed identifiers. Internally a UUIDv7 (time-ordered, 16 bytes); at the API
//! boundary a type prefix plus 26 Crockford base32 characters, which sort in
//! the same order as the bytes. A malformed id or one with another type's
//! prefix parses to `None`, so callers treat it exactly like an id that names
//! nothing.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ENCODED_LEN: usize = 26;

/// Encodes 128 bits as 26 Crockford base32 characters, most significant first.
pub fn encode_base32(value: u128) -> String {
    let mut out = [0u8; ENCODED_LEN];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 5 * (ENCODED_LEN - 1 - i);
        *slot = ALPHABET[((value >> shift) & 0x1f) as usize];
    }
    out.iter().map(|&b| b as char).collect()
}

/// Decodes what [`encode_base32`] produced; lower case is accepted, anything
/// else (wrong length, a letter outside the alphabet, more than 128 bits) is not.
pub fn decode_base32(text: &str) -> Option<u128> {
    if text.len() != ENCODED_LEN {
        return None;
    }
    let mut value: u128 = 0;
    for (i, ch) in text.bytes().enumerate() {
        let digit = ALPHABET.iter().position(|&a| a == ch.to_ascii_uppercase())? as u128;
        if i == 0 && digit > 7 {
            return None;
        }
        value = (value << 5) | digit;
    }
    Some(value)
}

/// Defines an id newtype with its API prefix.
macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// The prefix this type shows at the API boundary.
            pub const PREFIX: &'static str = $prefix;

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn uuid(&self) -> Uuid {
                self.0
            }

            /// The 16 bytes storage keeps; big-endian, so byte order is time order.
            pub fn to_bytes(&self) -> Vec<u8> {
                self.0.as_bytes().to_vec()
            }

            /// Reads the 16 bytes storage keeps; `None` for any other length.
            pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
                Uuid::from_slice(bytes).ok().map(Self)
            }

            /// Parses `prefix_XXXXXXXXXXXXXXXXXXXXXXXXXX`; `None` when malformed
            /// or carrying another type's prefix.
            pub fn parse(text: &str) -> Option<Self> {
                let rest = text.strip_prefix($prefix)?.strip_prefix('_')?;
                decode_base32(rest).map(|v| Self(Uuid::from_u128(v)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, encode_base32(self.0.as_u128()))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!("`{text}` is not a valid {} id", $prefix))
                })
            }
        }
    };
}

define_id!(
    /// An account: a balance in one currency.
    AccountId, "acct");
define_id!(
    /// A customer: the person or business accounts and payments belong to.
    CustomerId, "cus");
define_id!(
    /// A payment moving money from a source to a destination account.
    PaymentId, "pay");
define_id!(
    /// A refund moving captured money back.
    RefundId, "re");
define_id!(
    /// One signed line of the double-entry ledger.
    LedgerEntryId, "le");
define_id!(
    /// An API key; recoverable from the key's secret so lookup is one read.
    ApiKeyId, "key");
define_id!(
    /// A role: a named set of permissions.
    RoleId, "role");
define_id!(
    /// An attribute policy (Cedar text).
    PolicyId, "pol");
define_id!(
    /// One audit log record.
    AuditEventId, "au");
define_id!(
    /// An event: a state change, written with the change itself.
    EventId, "evt");
define_id!(
    /// A webhook endpoint: a receiver URL and the events it wants.
    WebhookEndpointId, "we");
define_id!(
    /// One event's delivery to one endpoint, kept until a 2xx or the end of the schedule.
    WebhookDeliveryId, "wd");
define_id!(
    /// One try of a delivery, as the receiver answered it.
    WebhookAttemptId, "wa");
define_id!(
    /// A replay: an endpoint's events of a time range, delivered again.
    WebhookReplayId, "wrp");

/// The smallest UUIDv7 whose timestamp is `unix_ms`: the lower bound of all
/// ids created in that millisecond, which turns a `created` range into an id
/// range that the primary-key order serves.
pub fn min_uuid_at_ms(unix_ms: u64) -> u128 {
    let ms = u128::from(unix_ms.min((1u64 << 48) - 1));
    (ms << 80) | (0x7u128 << 76)
}

/// Builds a UUIDv7 from a millisecond timestamp and 74 bits of entropy or
/// sequence; callers guarantee monotonicity by choosing `rand_74`.
pub fn uuid_v7(unix_ms: u64, rand_74: u128) -> Uuid {
    let ms = u128::from(unix_ms & ((1u64 << 48) - 1));
    let rand_a = (rand_74 >> 62) & 0xfff; // 12 bits
    let rand_b = rand_74 & ((1u128 << 62) - 1); // 62 bits
    Uuid::from_u128((ms << 80) | (0x7u128 << 76) | (rand_a << 64) | (0b10u128 << 62) | rand_b)
}

/// The 74 variable bits of a UUIDv7, so a generator can continue a sequence.
pub fn v7_random_bits(uuid: Uuid) -> u128 {
    let v = uuid.as_u128();
    (((v >> 64) & 0xfff) << 62) | (v & ((1u128 << 62) - 1))
}

/// The millisecond timestamp of a UUIDv7.
pub fn v7_unix_ms(uuid: Uuid) -> u64 {
    (uuid.as_u128() >> 80) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_round_trips_and_sorts() {
        let values = [0u128, 1, 31, 32, u128::MAX / 3, u128::MAX - 1, u128::MAX];
        for v in values {
            assert_eq!(decode_base32(&encode_base32(v)), Some(v));
        }
        let mut encoded: Vec<String> = values.iter().map(|&v| encode_base32(v)).collect();
        let sorted = encoded.clone();
        encoded.sort();
        assert_eq!(encoded, sorted);
    }

    #[test]
    fn base32_rejects_garbage() {
        assert_eq!(decode_base32("short"), None);
        assert_eq!(decode_base32(&"U".repeat(26)), None);
        assert_eq!(decode_base32(&format!("8{}", "0".repeat(25))), None);
        assert!(decode_base32(&"z".repeat(26)).is_none());
        assert!(decode_base32(&format!("7{}", "z".repeat(25))).is_some());
    }

    #[test]
    fn prefixes_are_checked() {
        let id = AccountId::from_uuid(uuid_v7(1_700_000_000_000, 42));
        let text = id.to_string();
        assert!(text.starts_with("acct_"));
        assert_eq!(AccountId::parse(&text), Some(id));
        assert_eq!(
            CustomerId::parse(&text.replace("acct_", "cus_")).map(|c| c.uuid()),
            Some(id.uuid())
        );
        assert_eq!(PaymentId::parse(&text), None);
        assert_eq!(AccountId::parse("acct_"), None);
        assert_eq!(AccountId::parse(&text.to_lowercase()), Some(id));
    }

    #[test]
    fn v7_layout() {
        let u = uuid_v7(1_700_000_000_123, (1u128 << 74) - 1);
        assert_eq!(u.get_version_num(), 7);
        assert_eq!(v7_unix_ms(u), 1_700_000_000_123);
        assert_eq!(v7_random_bits(u), (1u128 << 74) - 1);
        assert!(min_uuid_at_ms(1_700_000_000_123) <= uuid_v7(1_700_000_000_123, 0).as_u128());
        assert!(uuid_v7(1_700_000_000_122, (1u128 << 74) - 1).as_u128() < min_uuid_at_ms(1_700_000_000_123));
    }
}
