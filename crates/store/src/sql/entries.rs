//! Ledger entries are written with their movement (see `movement`) and
//! never updated or deleted; this module reads them.

use settle_domain::ids::AccountId;
use settle_domain::ledger::LedgerEntry;

use super::db::{Executor, query};
use super::rows;
use crate::error::StoreResult;

/// The sum of one account's entries, through `ledger_entries_account_id`.
pub const SUM_SQL: &str =
    "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM ledger_entries WHERE account_id = $1";

pub async fn sum<E: Executor + ?Sized>(ex: &mut E, account: AccountId) -> StoreResult<i64> {
    let row = query(SUM_SQL).bind(account.to_bytes()).fetch_one(ex).await?;
    row.try_get("total")
}

/// The newest `first` entries of each account, one window per account,
/// through `ledger_entries_account_id`.
pub async fn of_accounts<E: Executor + ?Sized>(
    ex: &mut E,
    dialect: super::Dialect,
    accounts: &[AccountId],
    first: u32,
) -> StoreResult<Vec<LedgerEntry>> {
    let ids = accounts.iter().map(|id| id.to_bytes()).collect();
    rows::newest_per_parent(ex, dialect, rows::ENTRIES_OF_ACCOUNTS, ids, first, rows::entry).await
}
