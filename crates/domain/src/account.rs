//! Accounts hold a balance in one currency. `pending_out` is money reserved by
//! uncaptured payments; spending is checked against `available`.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::ids::{AccountId, CustomerId};
use crate::metadata::Metadata;
use crate::money::{Amount, Currency, checked_add, checked_sub};
use crate::{DomainError, text};

/// An account as stored. Balances change only through the functions here, so
/// every change is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub currency: Currency,
    pub balance: i64,
    pub pending_out: i64,
    pub allow_negative: bool,
    /// Funded by an external processor: payments from it wait for the
    /// processor's answer (`processing`) before any money moves.
    pub processor: bool,
    pub customer: Option<CustomerId>,
    pub metadata: Metadata,
    pub version: i64,
    pub created: i64,
}

impl Account {
    pub fn available(&self) -> i64 {
        self.balance.saturating_sub(self.pending_out)
    }

    /// Refuses to spend more than is available, unless the account is a
    /// funding source that may go negative.
    pub fn ensure_can_spend(&self, amount: Amount) -> Result<(), DomainError> {
        if !self.allow_negative && self.available() < amount.get() {
            return Err(DomainError::InsufficientFunds {
                available: self.available(),
                requested: amount.get(),
            });
        }
        Ok(())
    }

    pub fn ensure_currency(&self, currency: Currency) -> Result<(), DomainError> {
        if self.currency != currency {
            return Err(DomainError::CurrencyMismatch {
                expected: currency.code().to_owned(),
                found: self.currency.code().to_owned(),
            });
        }
        Ok(())
    }

    /// Adds a signed amount to the balance (a ledger posting).
    pub fn post(&mut self, delta: i64) -> Result<(), DomainError> {
        self.balance = checked_add(self.balance, delta)?;
        Ok(())
    }

    /// Reserves `amount` against `available` for an uncaptured payment.
    pub fn hold(&mut self, amount: Amount) -> Result<(), DomainError> {
        self.ensure_can_spend(amount)?;
        self.pending_out = checked_add(self.pending_out, amount.get())?;
        Ok(())
    }

    /// Gives back a reservation made by [`Account::hold`].
    pub fn release(&mut self, amount: i64) -> Result<(), DomainError> {
        let left = checked_sub(self.pending_out, amount)?;
        if left < 0 {
            return Err(DomainError::InvalidState("release exceeds the amount held".into()));
        }
        self.pending_out = left;
        Ok(())
    }
}

impl Serialize for Account {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Account", 13)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("object", "account")?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("currency", &self.currency)?;
        st.serialize_field("balance", &self.balance)?;
        st.serialize_field("pending_out", &self.pending_out)?;
        st.serialize_field("available", &self.available())?;
        st.serialize_field("allow_negative", &self.allow_negative)?;
        st.serialize_field("processor", &self.processor)?;
        st.serialize_field("customer", &self.customer)?;
        st.serialize_field("metadata", &self.metadata)?;
        st.serialize_field("version", &self.version)?;
        st.serialize_field("created", &self.created)?;
        st.end()
    }
}

/// A validated request to open an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub currency: Currency,
    pub allow_negative: bool,
    pub processor: bool,
    pub customer: Option<CustomerId>,
    pub metadata: Metadata,
}

impl NewAccount {
    pub fn new(
        name: String,
        currency: Currency,
        allow_negative: bool,
        customer: Option<CustomerId>,
        metadata: Metadata,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            name: text::bounded("name", name, 200, true)?,
            currency,
            allow_negative,
            processor: false,
            customer,
            metadata,
        })
    }

    /// Marks the account as funded by an external processor. Such an
    /// account is a funding source, so it must be allowed to go negative.
    pub fn funded_by_processor(mut self, processor: bool) -> Result<Self, DomainError> {
        if processor && !self.allow_negative {
            return Err(DomainError::invalid(
                "processor",
                "a processor-backed account is a funding source: it needs `allow_negative: true`",
            ));
        }
        self.processor = processor;
        Ok(self)
    }
}

/// A validated edit of the fields a client may change.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub metadata: Option<std::collections::BTreeMap<String, Option<String>>>,
}

impl AccountPatch {
    pub fn new(
        name: Option<String>,
        metadata: Option<std::collections::BTreeMap<String, Option<String>>>,
    ) -> Result<Self, DomainError> {
        let name = name.map(|n| text::bounded("name", n, 200, true)).transpose()?;
        Ok(Self { name, metadata })
    }

    /// Applies the edit, checking the merged metadata.
    pub fn apply(&self, account: &mut Account) -> Result<(), DomainError> {
        if let Some(name) = &self.name {
            account.name = name.clone();
        }
        if let Some(patch) = &self.metadata {
            account.metadata = account.metadata.merge(patch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ids::uuid_v7;

    pub fn account(n: u128, balance: i64, allow_negative: bool) -> Account {
        Account {
            id: AccountId::from_uuid(uuid_v7(1_700_000_000_000, n)),
            name: format!("a{n}"),
            currency: Currency::parse("usd").unwrap(),
            balance,
            pending_out: 0,
            allow_negative,
            processor: false,
            customer: None,
            metadata: Metadata::default(),
            version: 1,
            created: 1_700_000_000,
        }
    }

    #[test]
    fn holds_count_against_available() {
        let mut a = account(1, 100, false);
        a.hold(Amount::parse("amount", 60).unwrap()).unwrap();
        assert_eq!(a.available(), 40);
        assert!(matches!(
            a.hold(Amount::parse("amount", 41).unwrap()),
            Err(DomainError::InsufficientFunds { .. })
        ));
        a.release(60).unwrap();
        assert_eq!(a.available(), 100);
        assert!(a.release(1).is_err());
    }

    #[test]
    fn negative_only_when_allowed() {
        let one = Amount::parse("amount", 1).unwrap();
        assert!(account(1, 0, false).ensure_can_spend(one).is_err());
        assert!(account(1, 0, true).ensure_can_spend(one).is_ok());
    }

    #[test]
    fn serializes_available() {
        let json = serde_json::to_value(account(1, 100, false)).unwrap();
        assert_eq!(json["object"], "account");
        assert_eq!(json["available"], 100);
        assert!(json["id"].as_str().unwrap().starts_with("acct_"));
    }
}
