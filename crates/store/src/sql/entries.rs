//! Ledger entries: written in the same transaction as the movement they
//! record, never updated or deleted.

use settle_domain::ids::{AccountId, LedgerEntryId, PaymentId, RefundId};
use settle_domain::ledger::{Posting, balanced};
use sqlx::AnyConnection;
use sqlx::AssertSqlSafe;
use sqlx::{Any, Executor, Row};

use crate::error::{StoreError, StoreResult};
use crate::ids::IdGenerator;

/// Inserts the postings of one movement in one statement, after checking
/// they balance (a bug here would break the ledger, so it is refused).
pub async fn insert(
    conn: &mut AnyConnection,
    ids: &IdGenerator,
    now_ms: u64,
    postings: &[Posting],
    payment: Option<PaymentId>,
    refund: Option<RefundId>,
) -> StoreResult<()> {
    if postings.is_empty() {
        return Ok(());
    }
    if !balanced(postings) {
        return Err(StoreError::Internal("postings do not sum to zero".into()));
    }
    let values: Vec<String> = (0..postings.len())
        .map(|i| {
            let b = i * 6;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO ledger_entries (id, account_id, amount, payment_id, refund_id, created) VALUES {}",
        values.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for p in postings {
        query = query
            .bind(LedgerEntryId::from_uuid(ids.next(now_ms)).to_bytes())
            .bind(p.account.to_bytes())
            .bind(p.amount)
            .bind(payment.map(|x| x.to_bytes()))
            .bind(refund.map(|x| x.to_bytes()))
            .bind((now_ms / 1000) as i64);
    }
    query.execute(conn).await?;
    Ok(())
}

/// The sum of one account's entries, through `ledger_entries_account_id`.
pub const SUM_SQL: &str = "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM ledger_entries WHERE account_id = $1";

pub async fn sum<'e, E: Executor<'e, Database = Any>>(ex: E, account: AccountId) -> StoreResult<i64> {
    let row = sqlx::query(SUM_SQL)
    .bind(account.to_bytes())
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("total")?)
}
