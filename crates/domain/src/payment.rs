//! Payments and their state machine. Each transition takes the accounts it
//! touches (already locked by storage), checks every rule, changes them, and
//! returns the ledger postings to write; storage only persists the result.
//!
//! ```text
//! processing ──► succeeded ──► (refunds)
//!     └────────► failed
//! requires_capture ──► succeeded (capture, full or partial)
//!     └──────────────► canceled
//! ```

use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::ids::{AccountId, CustomerId, PaymentId};
use crate::ledger::{Posting, transfer};
use crate::metadata::Metadata;
use crate::money::{Amount, Currency, checked_add};
use crate::{DomainError, text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Waiting for an external processor; no money has moved.
    Processing,
    /// Authorized: the amount is held on the source.
    RequiresCapture,
    Succeeded,
    Canceled,
    Failed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Processing,
        PaymentStatus::RequiresCapture,
        PaymentStatus::Succeeded,
        PaymentStatus::Canceled,
        PaymentStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Processing => "processing",
            PaymentStatus::RequiresCapture => "requires_capture",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Canceled => "canceled",
            PaymentStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "object", rename = "payment")]
pub struct Payment {
    pub id: PaymentId,
    pub amount: i64,
    pub currency: Currency,
    pub source: AccountId,
    pub destination: AccountId,
    pub customer: Option<CustomerId>,
    pub status: PaymentStatus,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub description: Option<String>,
    pub metadata: Metadata,
    pub version: i64,
    pub created: i64,
}

/// A validated request to create a payment.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub amount: Amount,
    pub currency: Currency,
    pub source: AccountId,
    pub destination: AccountId,
    pub customer: Option<CustomerId>,
    pub capture: bool,
    pub description: Option<String>,
    pub metadata: Metadata,
}

impl NewPayment {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        amount: Amount,
        currency: Currency,
        source: AccountId,
        destination: AccountId,
        customer: Option<CustomerId>,
        capture: bool,
        description: Option<String>,
        metadata: Metadata,
    ) -> Result<Self, DomainError> {
        if source == destination {
            return Err(DomainError::invalid(
                "destination",
                "`destination` must differ from `source`",
            ));
        }
        let description = description
            .map(|d| text::bounded("description", d, 1000, false))
            .transpose()?;
        Ok(Self {
            amount,
            currency,
            source,
            destination,
            customer,
            capture,
            description,
            metadata,
        })
    }
}

/// What opening a payment decided: its first status and what it posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub status: PaymentStatus,
    pub amount_captured: i64,
    pub postings: Vec<Posting>,
}

fn check_pair(currency: Currency, source: &Account, destination: &Account) -> Result<(), DomainError> {
    source.ensure_currency(currency)?;
    destination.ensure_currency(currency)
}

/// Opens a payment: settles at once (`capture: true`) or holds the amount on
/// the source (`capture: false`). Funds are checked against `available`.
pub fn open(new: &NewPayment, source: &mut Account, destination: &mut Account) -> Result<Opened, DomainError> {
    check_pair(new.currency, source, destination)?;
    let amount = new.amount;
    if source.processor {
        // Nothing moves until the processor answers; see `settle` and `fail`.
        if !new.capture {
            return Err(DomainError::invalid(
                "capture",
                "payments from a processor-backed account settle when the processor answers: `capture: false` is not supported",
            ));
        }
        return Ok(Opened {
            status: PaymentStatus::Processing,
            amount_captured: 0,
            postings: Vec::new(),
        });
    }
    if new.capture {
        source.ensure_can_spend(amount)?;
        source.post(-amount.get())?;
        destination.post(amount.get())?;
        Ok(Opened {
            status: PaymentStatus::Succeeded,
            amount_captured: amount.get(),
            postings: transfer(source.id, destination.id, amount.get()).to_vec(),
        })
    } else {
        source.hold(amount)?;
        Ok(Opened {
            status: PaymentStatus::RequiresCapture,
            amount_captured: 0,
            postings: Vec::new(),
        })
    }
}

fn require(payment: &Payment, status: PaymentStatus, action: &str) -> Result<(), DomainError> {
    if payment.status != status {
        return Err(DomainError::InvalidState(format!(
            "cannot {action} a payment whose status is `{}`",
            payment.status.as_str()
        )));
    }
    Ok(())
}

/// Captures all or part of a held payment: the captured amount moves, the
/// rest of the hold is released.
pub fn capture(
    payment: &mut Payment,
    amount: Option<Amount>,
    source: &mut Account,
    destination: &mut Account,
) -> Result<Vec<Posting>, DomainError> {
    require(payment, PaymentStatus::RequiresCapture, "capture")?;
    let captured = amount.map_or(payment.amount, Amount::get);
    if captured > payment.amount {
        return Err(DomainError::AmountTooLarge(format!(
            "cannot capture {captured}: only {} is authorized",
            payment.amount
        )));
    }
    source.release(payment.amount)?;
    source.post(-captured)?;
    destination.post(captured)?;
    payment.status = PaymentStatus::Succeeded;
    payment.amount_captured = captured;
    payment.version += 1;
    Ok(transfer(source.id, destination.id, captured).to_vec())
}

/// Cancels a held payment and releases the whole hold.
pub fn cancel(payment: &mut Payment, source: &mut Account) -> Result<(), DomainError> {
    require(payment, PaymentStatus::RequiresCapture, "cancel")?;
    source.release(payment.amount)?;
    payment.status = PaymentStatus::Canceled;
    payment.version += 1;
    Ok(())
}

/// Settles a payment the external processor accepted.
pub fn settle(
    payment: &mut Payment,
    source: &mut Account,
    destination: &mut Account,
) -> Result<Vec<Posting>, DomainError> {
    require(payment, PaymentStatus::Processing, "settle")?;
    let amount = Amount::parse("amount", payment.amount)?;
    source.ensure_can_spend(amount)?;
    source.post(-amount.get())?;
    destination.post(amount.get())?;
    payment.status = PaymentStatus::Succeeded;
    payment.amount_captured = amount.get();
    payment.version += 1;
    Ok(transfer(source.id, destination.id, amount.get()).to_vec())
}

/// Fails a payment the external processor declined; no money moved, so
/// nothing is posted.
pub fn fail(payment: &mut Payment) -> Result<(), DomainError> {
    require(payment, PaymentStatus::Processing, "fail")?;
    payment.status = PaymentStatus::Failed;
    payment.version += 1;
    Ok(())
}

/// Refunds part or all of what is left of a captured payment, from the
/// destination back to the source. Returns the refunded amount and postings.
pub fn refund(
    payment: &mut Payment,
    amount: Option<Amount>,
    source: &mut Account,
    destination: &mut Account,
) -> Result<(i64, Vec<Posting>), DomainError> {
    require(payment, PaymentStatus::Succeeded, "refund")?;
    let remaining = payment.amount_captured - payment.amount_refunded;
    let requested = amount.map_or(remaining, Amount::get);
    if remaining <= 0 {
        return Err(DomainError::AmountTooLarge(
            "the payment has already been fully refunded".into(),
        ));
    }
    if requested > remaining {
        return Err(DomainError::AmountTooLarge(format!(
            "cannot refund {requested}: only {remaining} is left to refund"
        )));
    }
    let requested_amount = Amount::parse("amount", requested)?;
    destination.ensure_can_spend(requested_amount)?;
    destination.post(-requested)?;
    source.post(requested)?;
    payment.amount_refunded = checked_add(payment.amount_refunded, requested)?;
    payment.version += 1;
    Ok((requested, transfer(destination.id, source.id, requested).to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::tests::account;
    use crate::ids::uuid_v7;
    use crate::ledger::balanced;

    fn amt(v: i64) -> Amount {
        Amount::parse("amount", v).unwrap()
    }

    fn new_payment(src: &Account, dst: &Account, amount: i64, capture: bool) -> NewPayment {
        NewPayment::new(
            amt(amount),
            src.currency,
            src.id,
            dst.id,
            None,
            capture,
            None,
            Metadata::default(),
        )
        .unwrap()
    }

    fn payment_from(new: &NewPayment, opened: &Opened) -> Payment {
        Payment {
            id: PaymentId::from_uuid(uuid_v7(1_700_000_000_000, 9)),
            amount: new.amount.get(),
            currency: new.currency,
            source: new.source,
            destination: new.destination,
            customer: None,
            status: opened.status,
            amount_captured: opened.amount_captured,
            amount_refunded: 0,
            description: None,
            metadata: Metadata::default(),
            version: 1,
            created: 0,
        }
    }

    #[test]
    fn immediate_capture_moves_money() {
        let (mut s, mut d) = (account(1, 100, false), account(2, 0, false));
        let new = new_payment(&s, &d, 70, true);
        let opened = open(&new, &mut s, &mut d).unwrap();
        assert_eq!(opened.status, PaymentStatus::Succeeded);
        assert!(balanced(&opened.postings));
        assert_eq!((s.balance, d.balance), (30, 70));
        assert!(matches!(
            open(&new, &mut s, &mut d),
            Err(DomainError::InsufficientFunds { .. })
        ));
    }

    #[test]
    fn partial_capture_releases_the_rest() {
        let (mut s, mut d) = (account(1, 100, false), account(2, 0, false));
        let new = new_payment(&s, &d, 80, false);
        let opened = open(&new, &mut s, &mut d).unwrap();
        assert_eq!((s.balance, s.pending_out, s.available()), (100, 80, 20));
        let mut p = payment_from(&new, &opened);
        assert!(matches!(
            capture(&mut p, Some(amt(81)), &mut s, &mut d),
            Err(DomainError::AmountTooLarge(_))
        ));
        let postings = capture(&mut p, Some(amt(50)), &mut s, &mut d).unwrap();
        assert!(balanced(&postings));
        assert_eq!((s.balance, s.pending_out, d.balance), (50, 0, 50));
        assert_eq!(p.amount_captured, 50);
        assert!(matches!(
            capture(&mut p, None, &mut s, &mut d),
            Err(DomainError::InvalidState(_))
        ));
        assert!(matches!(cancel(&mut p, &mut s), Err(DomainError::InvalidState(_))));
    }

    #[test]
    fn cancel_releases_everything() {
        let (mut s, mut d) = (account(1, 100, false), account(2, 0, false));
        let new = new_payment(&s, &d, 100, false);
        let opened = open(&new, &mut s, &mut d).unwrap();
        let mut p = payment_from(&new, &opened);
        cancel(&mut p, &mut s).unwrap();
        assert_eq!((s.available(), p.status), (100, PaymentStatus::Canceled));
        assert!(matches!(
            refund(&mut p, None, &mut s, &mut d),
            Err(DomainError::InvalidState(_))
        ));
    }

    #[test]
    fn refunds_never_exceed_capture() {
        let (mut s, mut d) = (account(1, 100, false), account(2, 0, false));
        let new = new_payment(&s, &d, 60, true);
        let opened = open(&new, &mut s, &mut d).unwrap();
        let mut p = payment_from(&new, &opened);
        let (r1, postings) = refund(&mut p, Some(amt(20)), &mut s, &mut d).unwrap();
        assert!(balanced(&postings));
        assert_eq!(r1, 20);
        assert!(matches!(
            refund(&mut p, Some(amt(41)), &mut s, &mut d),
            Err(DomainError::AmountTooLarge(_))
        ));
        let (r2, _) = refund(&mut p, None, &mut s, &mut d).unwrap();
        assert_eq!((r2, p.amount_refunded, s.balance, d.balance), (40, 60, 100, 0));
        assert!(matches!(
            refund(&mut p, None, &mut s, &mut d),
            Err(DomainError::AmountTooLarge(_))
        ));
    }

    #[test]
    fn refund_needs_destination_funds() {
        let (mut s, mut d) = (account(1, 100, false), account(2, 0, false));
        let new = new_payment(&s, &d, 60, true);
        let opened = open(&new, &mut s, &mut d).unwrap();
        let mut p = payment_from(&new, &opened);
        d.balance = 10; // the destination spent most of it elsewhere
        assert!(matches!(
            refund(&mut p, None, &mut s, &mut d),
            Err(DomainError::InsufficientFunds { .. })
        ));
    }

    #[test]
    fn processor_outcomes() {
        let (mut s, mut d) = (account(1, 0, true), account(2, 0, false));
        s.processor = true;
        let new = new_payment(&s, &d, 30, true);
        let opened = open(&new, &mut s, &mut d).unwrap();
        assert_eq!(
            (opened.status, s.balance, s.pending_out),
            (PaymentStatus::Processing, 0, 0)
        );
        assert!(open(&new_payment(&s, &d, 30, false), &mut s, &mut d).is_err());
        let mut p = payment_from(&new, &opened);
        let mut q = p.clone();
        settle(&mut p, &mut s, &mut d).unwrap();
        assert_eq!((p.status, s.balance, d.balance), (PaymentStatus::Succeeded, -30, 30));
        fail(&mut q).unwrap();
        assert_eq!(q.status, PaymentStatus::Failed);
        assert!(fail(&mut q).is_err());
    }

    #[test]
    fn currencies_must_match() {
        let (mut s, mut d) = (account(1, 100, false), account(2, 0, false));
        d.currency = Currency::parse("eur").unwrap();
        let new = new_payment(&s, &d, 10, true);
        assert!(matches!(
            open(&new, &mut s, &mut d),
            Err(DomainError::CurrencyMismatch { .. })
        ));
        assert!(NewPayment::new(amt(1), s.currency, s.id, s.id, None, true, None, Metadata::default()).is_err());
    }
}
