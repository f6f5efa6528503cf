//! Customer rows: insert, read, edit with a version check, delete when unused.

use settle_domain::customer::{Customer, CustomerPatch, NewCustomer};
use settle_domain::ids::CustomerId;

use super::Tx;
use super::db::{Executor, query};
use super::events::{self, Subject};
use super::rows::{self, CUSTOMER_COLS};
use super::store::{check_version, lost_race};
use crate::error::{StoreError, StoreResult};
use crate::records::Deleted;

pub async fn insert(conn: &mut (impl Executor + ?Sized), c: &Customer) -> StoreResult<()> {
    query("INSERT INTO customers (id, name, email, metadata, version, created) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(c.id.to_bytes())
        .bind(c.name.clone())
        .bind(c.email.clone())
        .bind(c.metadata.to_json())
        .bind(c.version)
        .bind(c.created)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get<E: Executor + ?Sized>(ex: &mut E, id: CustomerId) -> StoreResult<Option<Customer>> {
    get_locked(ex, id, "").await
}

/// Reads a customer with a lock clause from [`super::Dialect`].
pub async fn get_locked<E: Executor + ?Sized>(ex: &mut E, id: CustomerId, lock: &str) -> StoreResult<Option<Customer>> {
    rows::by_id(ex, "customers", CUSTOMER_COLS, id.to_bytes(), lock, rows::customer).await
}

/// Saves an edit only if the version is still the one read; false otherwise.
pub async fn save_edit(conn: &mut (impl Executor + ?Sized), c: &Customer, read_version: i64) -> StoreResult<bool> {
    let done =
        query("UPDATE customers SET name = $1, email = $2, metadata = $3, version = $4 WHERE id = $5 AND version = $6")
            .bind(c.name.clone())
            .bind(c.email.clone())
            .bind(c.metadata.to_json())
            .bind(c.version)
            .bind(c.id.to_bytes())
            .bind(read_version)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The probes for references to a customer.
pub const IN_USE_SQL: [&str; 2] = [
    "SELECT 1 AS found FROM accounts WHERE customer_id = $1 LIMIT 1",
    "SELECT 1 AS found FROM payments WHERE customer_id = $1 LIMIT 1",
];

/// True when an account or a payment refers to the customer. Each probe is
/// served by the `(customer_id, id)` index its list filter uses.
pub async fn in_use(conn: &mut (impl Executor + ?Sized), id: CustomerId) -> StoreResult<bool> {
    for sql in IN_USE_SQL {
        if query(sql)
            .bind(id.to_bytes())
            .fetch_optional(&mut *conn)
            .await?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

pub async fn delete(conn: &mut (impl Executor + ?Sized), id: CustomerId) -> StoreResult<bool> {
    let done = query("DELETE FROM customers WHERE id = $1")
        .bind(id.to_bytes())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Adds a customer and writes `customer.created`.
pub async fn create(tx: &mut Tx<'_>, new: NewCustomer) -> StoreResult<Customer> {
    let customer = Customer {
        id: CustomerId::from_uuid(tx.next_id()),
        name: new.name,
        email: new.email,
        metadata: new.metadata,
        version: 1,
        created: tx.ctx.now_secs(),
    };
    insert(&mut *tx, &customer).await?;
    let subject = Subject::created("customer", customer.id.to_bytes());
    events::emit_in(tx, subject, &["customer.created"], &customer).await?;
    Ok(customer)
}

/// Applies `patch` if the version is still `if_version` (when given) and
/// writes `customer.updated`.
pub async fn update(
    tx: &mut Tx<'_>,
    id: CustomerId,
    patch: CustomerPatch,
    if_version: Option<i64>,
) -> StoreResult<Customer> {
    let mut customer = get(&mut *tx, id).await?.ok_or(StoreError::NotFound {
        what: "customer",
        param: None,
    })?;
    let read_version = customer.version;
    check_version(if_version, read_version)?;
    patch.apply(&mut customer)?;
    customer.version += 1;
    tx.changed(id.uuid());
    if !save_edit(&mut *tx, &customer, read_version).await? {
        return Err(lost_race(if_version, read_version + 1));
    }
    let subject = Subject::changed("customer", customer.id.to_bytes());
    events::emit_in(tx, subject, &["customer.updated"], &customer).await?;
    Ok(customer)
}

/// Removes a customer nothing refers to (held first, so a concurrent new
/// reference waits) and writes `customer.deleted`.
pub async fn remove(tx: &mut Tx<'_>, id: CustomerId) -> StoreResult<Deleted> {
    let lock = tx.dialect.lock_rows();
    if get_locked(&mut *tx, id, lock).await?.is_none() {
        return Err(StoreError::NotFound {
            what: "customer",
            param: None,
        });
    }
    if in_use(&mut *tx, id).await? {
        return Err(StoreError::InUse("the customer has accounts or payments".into()));
    }
    tx.changed(id.uuid());
    delete(&mut *tx, id).await?;
    let deleted = Deleted {
        id: id.to_string(),
        object: "customer",
        deleted: true,
    };
    events::emit_in(
        tx,
        Subject::changed("customer", id.to_bytes()),
        &["customer.deleted"],
        &deleted,
    )
    .await?;
    Ok(deleted)
}
