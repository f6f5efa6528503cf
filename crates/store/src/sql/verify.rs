//! The ledger's invariants as SQL, checked over the whole database after a
//! seed (`settle seed --verify`) and by tests: each query returns the number
//! of violations.

use super::db::{Executor, query};
use crate::error::StoreResult;

/// (invariant, query counting its violations)
pub const INVARIANTS: &[(&str, &str)] = &[
    (
        "every balance equals the sum of its account's entries",
        "SELECT COUNT(*) AS n FROM accounts a LEFT JOIN \
         (SELECT account_id, SUM(amount) AS s FROM ledger_entries GROUP BY account_id) e ON e.account_id = a.id \
         WHERE a.balance <> COALESCE(e.s, 0)",
    ),
    (
        "every movement's entries sum to zero",
        "SELECT COUNT(*) AS n FROM (SELECT payment_id, refund_id FROM ledger_entries \
         GROUP BY payment_id, refund_id HAVING SUM(amount) <> 0) m",
    ),
    (
        "the sum of all balances is zero",
        "SELECT COUNT(*) AS n FROM (SELECT SUM(balance) AS s FROM accounts) t WHERE COALESCE(t.s, 0) <> 0",
    ),
    (
        "no account without allow_negative is below zero",
        "SELECT COUNT(*) AS n FROM accounts WHERE allow_negative = 0 AND balance - pending_out < 0",
    ),
    (
        "pending_out equals the sum of the account's uncaptured payments",
        "SELECT COUNT(*) AS n FROM accounts a LEFT JOIN \
         (SELECT source_id, SUM(amount) AS s FROM payments WHERE status = 'requires_capture' GROUP BY source_id) h \
         ON h.source_id = a.id WHERE a.pending_out <> COALESCE(h.s, 0)",
    ),
    (
        "no payment is refunded beyond its capture",
        "SELECT COUNT(*) AS n FROM payments WHERE amount_refunded > amount_captured OR amount_captured > amount",
    ),
    (
        "each payment's refunds add up to amount_refunded",
        "SELECT COUNT(*) AS n FROM payments p LEFT JOIN \
         (SELECT payment_id, SUM(amount) AS s FROM refunds GROUP BY payment_id) r ON r.payment_id = p.id \
         WHERE p.amount_refunded <> COALESCE(r.s, 0)",
    ),
];

/// Runs every invariant; returns (invariant, violations) for each.
pub async fn check(pool: &mut (impl Executor + ?Sized)) -> StoreResult<Vec<(&'static str, i64)>> {
    let mut out = Vec::new();
    for (name, sql) in INVARIANTS {
        let row = query(*sql).fetch_one(pool).await?;
        out.push((*name, row.try_get::<i64, _>("n")?));
    }
    Ok(out)
}
