//! The double-entry ledger: every movement is a set of postings that sum to
//! zero, and an account's balance is the sum of its entries.

use serde::Serialize;

use crate::ids::{AccountId, LedgerEntryId, PaymentId, RefundId};

/// One signed line of the ledger; never changed or deleted once written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "object", rename = "ledger_entry")]
pub struct LedgerEntry {
    pub id: LedgerEntryId,
    pub account: AccountId,
    pub amount: i64,
    pub payment: Option<PaymentId>,
    pub refund: Option<RefundId>,
    pub created: i64,
}

/// A posting before storage gives it an id: `amount` is signed, negative
/// leaves the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    pub account: AccountId,
    pub amount: i64,
}

/// A transfer of `amount` from one account to another, as two postings.
pub fn transfer(from: AccountId, to: AccountId, amount: i64) -> [Posting; 2] {
    [
        Posting {
            account: from,
            amount: -amount,
        },
        Posting { account: to, amount },
    ]
}

/// True when the postings of one movement balance, the invariant every
/// movement must keep.
pub fn balanced(postings: &[Posting]) -> bool {
    postings.iter().try_fold(0i64, |acc, p| acc.checked_add(p.amount)) == Some(0)
}
