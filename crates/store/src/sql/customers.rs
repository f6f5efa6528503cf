//! Customer rows: insert, read, edit with a version check, delete when unused.

use settle_domain::customer::Customer;
use settle_domain::ids::CustomerId;

use super::db::{Executor, query};
use super::rows::{self, CUSTOMER_COLS};
use crate::error::StoreResult;

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
