//! Account rows: insert, read, lock in id order, save balances, edit with a
//! version check.

use settle_domain::account::{Account, AccountPatch, NewAccount};
use settle_domain::ids::{AccountId, CustomerId};

use super::db::{Executor, query};
use super::events::{self, Subject};
use super::rows::{self, ACCOUNT_COLS};
use super::store::{check_version, lost_race};
use super::{Dialect, Tx};
use crate::error::{StoreError, StoreResult};

pub async fn insert(conn: &mut (impl Executor + ?Sized), a: &Account) -> StoreResult<()> {
    query(
        "INSERT INTO accounts (id, name, currency, balance, pending_out, allow_negative, processor, customer_id, metadata, version, created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(a.id.to_bytes())
    .bind(a.name.clone())
    .bind(a.currency.code().to_owned())
    .bind(a.balance)
    .bind(a.pending_out)
    .bind(i64::from(a.allow_negative))
    .bind(i64::from(a.processor))
    .bind(a.customer.map(|c| c.to_bytes()))
    .bind(a.metadata.to_json())
    .bind(a.version)
    .bind(a.created)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get<E: Executor + ?Sized>(ex: &mut E, id: AccountId) -> StoreResult<Option<Account>> {
    rows::by_id(ex, "accounts", ACCOUNT_COLS, id.to_bytes(), "", rows::account).await
}

/// Locks one or two accounts in ascending id order, the one global order
/// every money movement follows, so two transfers in opposite directions
/// cannot deadlock. Missing accounts are simply absent from the result.
pub async fn lock(conn: &mut (impl Executor + ?Sized), d: Dialect, ids: &[AccountId]) -> StoreResult<Vec<Account>> {
    let sql = match ids.len() {
        1 => format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1{}", d.lock_rows()),
        _ => format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE id IN ($1, $2) ORDER BY id{}",
            d.lock_rows()
        ),
    };
    let mut query = query(sql);
    for id in ids.iter().take(2) {
        query = query.bind(id.to_bytes());
    }
    let found = query.fetch_all(conn).await?;
    found.iter().map(rows::account).collect()
}

/// Locks a payment's two accounts and returns them as (source, destination);
/// `param` names which one is missing if either is.
pub async fn lock_pair(
    conn: &mut (impl Executor + ?Sized),
    d: Dialect,
    source: AccountId,
    destination: AccountId,
) -> StoreResult<(Account, Account)> {
    let mut locked = lock(conn, d, &[source, destination]).await?;
    let take = |locked: &mut Vec<Account>, id: AccountId, param: &'static str| {
        let pos = locked.iter().position(|a| a.id == id);
        pos.map(|p| locked.swap_remove(p)).ok_or(StoreError::NotFound {
            what: "account",
            param: Some(param),
        })
    };
    let s = take(&mut locked, source, "source")?;
    let dst = take(&mut locked, destination, "destination")?;
    Ok((s, dst))
}

/// Saves an edit only if nobody else changed the row since it was read.
/// Returns false when the version moved on.
pub async fn save_edit(conn: &mut (impl Executor + ?Sized), a: &Account, read_version: i64) -> StoreResult<bool> {
    let done = query("UPDATE accounts SET name = $1, metadata = $2, version = $3 WHERE id = $4 AND version = $5")
        .bind(a.name.clone())
        .bind(a.metadata.to_json())
        .bind(a.version)
        .bind(a.id.to_bytes())
        .bind(read_version)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the customer exists, holding it (on PostgreSQL) against deletion
/// until the transaction ends, so a concurrent delete waits and then sees the
/// new reference.
pub async fn customer_exists(conn: &mut (impl Executor + ?Sized), d: Dialect, id: CustomerId) -> StoreResult<bool> {
    let sql = format!("SELECT 1 AS found FROM customers WHERE id = $1{}", d.lock_key_share());
    let row = query(sql).bind(id.to_bytes()).fetch_optional(conn).await?;
    Ok(row.is_some())
}

/// Opens an account (its customer, if any, held against deletion) and
/// writes `account.created`.
pub async fn create(tx: &mut Tx<'_>, new: NewAccount) -> StoreResult<Account> {
    let account = Account {
        id: AccountId::from_uuid(tx.next_id()),
        name: new.name,
        currency: new.currency,
        balance: 0,
        pending_out: 0,
        allow_negative: new.allow_negative,
        processor: new.processor,
        customer: new.customer,
        metadata: new.metadata,
        version: 1,
        created: tx.ctx.now_secs(),
    };
    let d = tx.dialect;
    if let Some(c) = account.customer
        && !customer_exists(&mut *tx, d, c).await?
    {
        return Err(StoreError::NotFound {
            what: "customer",
            param: Some("customer"),
        });
    }
    insert(&mut *tx, &account).await?;
    let subject = Subject::created("account", account.id.to_bytes());
    events::emit_in(tx, subject, &["account.created"], &account).await?;
    Ok(account)
}

/// Applies `patch` if the version is still `if_version` (when given) and
/// writes `account.updated`.
pub async fn update(
    tx: &mut Tx<'_>,
    id: AccountId,
    patch: AccountPatch,
    if_version: Option<i64>,
) -> StoreResult<Account> {
    let mut account = get(&mut *tx, id).await?.ok_or(StoreError::NotFound {
        what: "account",
        param: None,
    })?;
    let read_version = account.version;
    check_version(if_version, read_version)?;
    patch.apply(&mut account)?;
    account.version += 1;
    tx.changed(id.uuid());
    if !save_edit(&mut *tx, &account, read_version).await? {
        return Err(lost_race(if_version, read_version + 1));
    }
    let subject = Subject::changed("account", account.id.to_bytes());
    events::emit_in(tx, subject, &["account.updated"], &account).await?;
    Ok(account)
}
