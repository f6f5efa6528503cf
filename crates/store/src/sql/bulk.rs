//! Bulk writes for `settle seed`: many rows per statement, one transaction
//! per batch, balances written in the same transaction as the entries that
//! explain them, so an interrupted seed leaves a consistent database.

use std::sync::Arc;

use settle_domain::account::Account;
use settle_domain::customer::Customer;
use settle_domain::ids::AccountId;
use settle_domain::ledger::LedgerEntry;
use settle_domain::payment::Payment;
use settle_domain::refund::Refund;

use super::db::{Executor, Query, query};
use super::{Dialect, SqlStore};
use crate::error::StoreResult;

/// One batch of generated rows, written in one transaction.
#[derive(Debug, Default, Clone)]
pub struct SeedBatch {
    pub customers: Vec<Customer>,
    pub accounts: Vec<Account>,
    pub payments: Vec<Payment>,
    pub refunds: Vec<Refund>,
    pub entries: Vec<LedgerEntry>,
    /// Accounts whose balance or hold changed: (id, balance, pending_out).
    pub balances: Vec<(AccountId, i64, i64)>,
}

impl SeedBatch {
    pub fn rows(&self) -> usize {
        self.customers.len() + self.accounts.len() + self.payments.len() + self.refunds.len() + self.entries.len()
    }
}

/// Inserts `count` rows of `columns.len()` values each, as few statements as
/// the parameter limits allow (SQLite 32,766, PostgreSQL 65,535).
async fn insert_rows(
    conn: &mut (impl Executor + ?Sized),
    d: Dialect,
    head: &str,
    columns: usize,
    count: usize,
    bind: impl Fn(Query, usize) -> Query,
) -> StoreResult<()> {
    let per_statement = (30_000 / columns).max(1);
    let mut start = 0;
    while start < count {
        let n = per_statement.min(count - start);
        let mut values = String::with_capacity(n * columns * 5);
        for row in 0..n {
            values.push_str(if row == 0 { "(" } else { ", (" });
            for col in 0..columns {
                if col > 0 {
                    values.push_str(", ");
                }
                values.push_str(&d.placeholder(row * columns + col + 1));
            }
            values.push(')');
        }
        let mut query = query(format!("{head} {values}"));
        for i in start..start + n {
            query = bind(query, i);
        }
        query.execute(&mut *conn).await?;
        start += n;
    }
    Ok(())
}

async fn write_batch(conn: &mut (impl Executor + ?Sized), d: Dialect, b: &SeedBatch) -> StoreResult<()> {
    insert_rows(
        conn,
        d,
        "INSERT INTO customers (id, name, email, metadata, version, created) VALUES",
        6,
        b.customers.len(),
        |q, i| {
            let c = &b.customers[i];
            q.bind(c.id.to_bytes())
                .bind(c.name.clone())
                .bind(c.email.clone())
                .bind(c.metadata.to_json())
                .bind(c.version)
                .bind(c.created)
        },
    )
    .await?;
    insert_rows(
        conn,
        d,
        "INSERT INTO accounts (id, name, currency, balance, pending_out, allow_negative, customer_id, metadata, version, created) VALUES",
        10,
        b.accounts.len(),
        |q, i| {
            let a = &b.accounts[i];
            q.bind(a.id.to_bytes())
                .bind(a.name.clone())
                .bind(a.currency.code().to_owned())
                .bind(a.balance)
                .bind(a.pending_out)
                .bind(i64::from(a.allow_negative))
                .bind(a.customer.map(|c| c.to_bytes()))
                .bind(a.metadata.to_json())
                .bind(a.version)
                .bind(a.created)
        },
    )
    .await?;
    insert_rows(
        conn,
        d,
        "INSERT INTO payments (id, amount, currency, source_id, destination_id, customer_id, status, amount_captured, \
         amount_refunded, description, metadata, version, created) VALUES",
        13,
        b.payments.len(),
        |q, i| {
            let p = &b.payments[i];
            q.bind(p.id.to_bytes())
                .bind(p.amount)
                .bind(p.currency.code().to_owned())
                .bind(p.source.to_bytes())
                .bind(p.destination.to_bytes())
                .bind(p.customer.map(|c| c.to_bytes()))
                .bind(p.status.as_str().to_owned())
                .bind(p.amount_captured)
                .bind(p.amount_refunded)
                .bind(p.description.clone())
                .bind(p.metadata.to_json())
                .bind(p.version)
                .bind(p.created)
        },
    )
    .await?;
    insert_rows(
        conn,
        d,
        "INSERT INTO refunds (id, payment_id, amount, currency, reason, status, created) VALUES",
        7,
        b.refunds.len(),
        |q, i| {
            let r = &b.refunds[i];
            q.bind(r.id.to_bytes())
                .bind(r.payment.to_bytes())
                .bind(r.amount)
                .bind(r.currency.code().to_owned())
                .bind(r.reason.map(|x| x.as_str().to_owned()))
                .bind(r.status.as_str().to_owned())
                .bind(r.created)
        },
    )
    .await?;
    insert_rows(
        conn,
        d,
        "INSERT INTO ledger_entries (id, account_id, amount, payment_id, refund_id, created) VALUES",
        6,
        b.entries.len(),
        |q, i| {
            let e = &b.entries[i];
            q.bind(e.id.to_bytes())
                .bind(e.account.to_bytes())
                .bind(e.amount)
                .bind(e.payment.map(|x| x.to_bytes()))
                .bind(e.refund.map(|x| x.to_bytes()))
                .bind(e.created)
        },
    )
    .await?;
    // Both databases accept UPDATE ... FROM (VALUES ...) and name the
    // columns of a bare VALUES list column1, column2, ...
    let per_statement = 30_000 / 3;
    for chunk in b.balances.chunks(per_statement) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "({}, {}, {})",
                    d.placeholder(i * 3 + 1),
                    d.placeholder(i * 3 + 2),
                    d.placeholder(i * 3 + 3)
                )
            })
            .collect();
        let sql = format!(
            "UPDATE accounts SET balance = v.column2, pending_out = v.column3 FROM (VALUES {}) AS v WHERE accounts.id = v.column1",
            values.join(", ")
        );
        let mut query = query(sql);
        for (id, balance, pending) in chunk {
            query = query.bind(id.to_bytes()).bind(*balance).bind(*pending);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

impl SqlStore {
    /// Writes one seed batch in one transaction, through the same writer as
    /// every other write (so it is safe beside a running server).
    pub async fn write_seed_batch(&self, batch: Arc<SeedBatch>) -> StoreResult<()> {
        let d = self.dialect;
        self.write_background(move |conn| {
            let batch = Arc::clone(&batch);
            Box::pin(async move {
                write_batch(conn, d, &batch).await?;
                // New balances: cached copies of these accounts go.
                for (id, _, _) in &batch.balances {
                    conn.changed(id.uuid());
                }
                Ok(())
            })
        })
        .await
    }
}
