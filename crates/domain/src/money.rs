//! Money: integer minor units and currencies that know their exponent. Every
//! amount a client sends is a positive integer no larger than 2^53 − 1, so it
//! survives any JSON client, and every sum is checked.

use serde::Serialize;

use crate::DomainError;

/// The largest integer every JSON client can hold exactly.
pub const MAX_SAFE: i64 = (1 << 53) - 1;

/// A positive amount in a currency's minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

impl Amount {
    /// Accepts 1..=2^53 − 1; `param` names the field in the error.
    pub fn parse(param: &str, value: i64) -> Result<Self, DomainError> {
        if value <= 0 {
            return Err(DomainError::invalid(
                param,
                format!("`{param}` must be a positive integer"),
            ));
        }
        if value > MAX_SAFE {
            return Err(DomainError::invalid(
                param,
                format!("`{param}` must be at most {MAX_SAFE}"),
            ));
        }
        Ok(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Adds two balance-like values, refusing results outside ±(2^53 − 1) so a
/// balance is always exact in JSON.
pub fn checked_add(a: i64, b: i64) -> Result<i64, DomainError> {
    a.checked_add(b)
        .filter(|v| (-MAX_SAFE..=MAX_SAFE).contains(v))
        .ok_or_else(|| DomainError::BalanceOverflow(format!("the result would exceed the largest balance, {MAX_SAFE}")))
}

/// Subtracts like [`checked_add`].
pub fn checked_sub(a: i64, b: i64) -> Result<i64, DomainError> {
    b.checked_neg().map_or_else(
        || Err(DomainError::BalanceOverflow("amount out of range".into())),
        |nb| checked_add(a, nb),
    )
}

/// ISO 4217 currencies Settle accepts, with their minor-unit exponent.
const CURRENCIES: &[(&str, u8)] = &[
    ("aed", 2),
    ("ars", 2),
    ("aud", 2),
    ("bhd", 3),
    ("bif", 0),
    ("brl", 2),
    ("cad", 2),
    ("chf", 2),
    ("clp", 0),
    ("cny", 2),
    ("czk", 2),
    ("djf", 0),
    ("dkk", 2),
    ("eur", 2),
    ("gbp", 2),
    ("gnf", 0),
    ("hkd", 2),
    ("huf", 2),
    ("idr", 2),
    ("ils", 2),
    ("inr", 2),
    ("iqd", 3),
    ("isk", 0),
    ("jod", 3),
    ("jpy", 0),
    ("kmf", 0),
    ("krw", 0),
    ("kwd", 3),
    ("lyd", 3),
    ("mxn", 2),
    ("myr", 2),
    ("nok", 2),
    ("nzd", 2),
    ("omr", 3),
    ("php", 2),
    ("pln", 2),
    ("pyg", 0),
    ("ron", 2),
    ("rwf", 0),
    ("sar", 2),
    ("sek", 2),
    ("sgd", 2),
    ("thb", 2),
    ("tnd", 3),
    ("try", 2),
    ("twd", 2),
    ("uah", 2),
    ("ugx", 0),
    ("usd", 2),
    ("vnd", 0),
    ("vuv", 0),
    ("xaf", 0),
    ("xof", 0),
    ("xpf", 0),
    ("zar", 2),
];

/// A lower-case ISO 4217 code from the table above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Currency(&'static str);

impl Currency {
    /// Accepts only lower-case codes Settle knows; `"USD"` is refused rather
    /// than guessed, as Stripe does.
    pub fn parse(code: &str) -> Result<Self, DomainError> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, _)| Currency(c))
            .ok_or_else(|| {
                DomainError::invalid(
                    "currency",
                    format!("`{code}` is not a supported currency (lower-case ISO 4217)"),
                )
            })
    }

    pub fn code(self) -> &'static str {
        self.0
    }

    /// Digits after the decimal point in the currency's major unit.
    pub fn exponent(self) -> u8 {
        CURRENCIES.iter().find(|(c, _)| *c == self.0).map_or(2, |(_, e)| *e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_bounds() {
        assert!(Amount::parse("amount", 0).is_err());
        assert!(Amount::parse("amount", -5).is_err());
        assert!(Amount::parse("amount", MAX_SAFE).is_ok());
        assert!(Amount::parse("amount", MAX_SAFE + 1).is_err());
    }

    #[test]
    fn checked_math() {
        assert_eq!(checked_add(1, 2), Ok(3));
        assert!(checked_add(MAX_SAFE, 1).is_err());
        assert!(checked_sub(-MAX_SAFE, 1).is_err());
        assert!(checked_sub(0, i64::MIN).is_err());
        assert_eq!(checked_sub(5, 7), Ok(-2));
    }

    #[test]
    fn currency_table() {
        assert_eq!(Currency::parse("jpy").map(Currency::exponent), Ok(0));
        assert_eq!(Currency::parse("usd").map(Currency::exponent), Ok(2));
        assert_eq!(Currency::parse("bhd").map(Currency::exponent), Ok(3));
        assert!(Currency::parse("USD").is_err());
        assert!(Currency::parse("xyz").is_err());
    }
}
