//! Persisting a money movement: the changed balances, the payment row, the
//! refund row if any, the ledger entries and the events. They are written as
//! the dialect combines writes ([`Dialect::combine_writes`]): on SQLite each
//! is its own statement (in-process, a statement costs no round trip); on
//! PostgreSQL they go as one statement of data-modifying CTEs, together with
//! the write's audit row, so a payment costs BEGIN, the row-lock SELECT, this
//! statement and COMMIT: four round trips, and the hot account rows stay
//! locked for as little time as possible.

use settle_domain::account::Account;
use settle_domain::ids::LedgerEntryId;
use settle_domain::ledger::{Posting, balanced};
use settle_domain::payment::Payment;
use settle_domain::refund::Refund;

use super::db::{Query, Value};
use super::events::{INSERT_HEAD, NewEvent};
use super::list::FilterValue;
use super::{Dialect, Tx};
use crate::error::{StoreError, StoreResult};
use crate::ids::IdGenerator;

/// What happens to the payment row.
pub enum PaymentWrite<'a> {
    Insert(&'a Payment),
    UpdateState(&'a Payment),
}

pub struct Movement<'a> {
    /// Accounts whose balance or hold changed.
    pub accounts: Vec<&'a Account>,
    pub payment: PaymentWrite<'a>,
    pub refund: Option<&'a Refund>,
    pub postings: &'a [Posting],
    pub now_ms: u64,
    /// The events of this change, written in the same transaction.
    pub events: Vec<NewEvent>,
}

/// Collects bind values and hands out their placeholders.
struct Params {
    d: Dialect,
    values: Vec<FilterValue>,
}

impl Params {
    fn p(&mut self, v: FilterValue) -> String {
        self.values.push(v);
        self.d.placeholder(self.values.len())
    }
    fn bytes(&mut self, b: Vec<u8>) -> String {
        self.p(FilterValue::Bytes(b))
    }
    fn opt_bytes(&mut self, b: Option<Vec<u8>>) -> String {
        match b {
            Some(b) => self.bytes(b),
            None => "NULL".into(),
        }
    }
    fn int(&mut self, i: i64) -> String {
        self.p(FilterValue::Int(i))
    }
    fn text(&mut self, t: &str) -> String {
        self.p(FilterValue::Text(t.to_owned()))
    }
    fn opt_text(&mut self, t: Option<&str>) -> String {
        match t {
            Some(t) => self.text(t),
            None => "NULL".into(),
        }
    }
}

/// The statements of a movement, each with the range of `params` it binds.
fn build(m: &Movement<'_>, ids: &IdGenerator, params: &mut Params) -> Vec<(String, std::ops::Range<usize>)> {
    let mut parts = Vec::new();
    let mut mark = 0;
    let mut push = |sql: String, params: &Params, parts: &mut Vec<(String, std::ops::Range<usize>)>| {
        parts.push((sql, mark..params.values.len()));
        mark = params.values.len();
    };
    if !m.accounts.is_empty() {
        let rows: Vec<String> = m
            .accounts
            .iter()
            .map(|a| {
                format!(
                    "({}, {}, {})",
                    params.bytes(a.id.to_bytes()),
                    params.int(a.balance),
                    params.int(a.pending_out)
                )
            })
            .collect();
        let sql = format!(
            "UPDATE accounts SET balance = v.column2, pending_out = v.column3 FROM (VALUES {}) AS v WHERE accounts.id = v.column1",
            rows.join(", ")
        );
        push(sql, params, &mut parts);
    }
    let sql = match m.payment {
        PaymentWrite::Insert(p) => format!(
            "INSERT INTO payments (id, amount, currency, source_id, destination_id, customer_id, status, amount_captured, \
             amount_refunded, description, metadata, version, created) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            params.bytes(p.id.to_bytes()),
            params.int(p.amount),
            params.text(p.currency.code()),
            params.bytes(p.source.to_bytes()),
            params.bytes(p.destination.to_bytes()),
            params.opt_bytes(p.customer.map(|c| c.to_bytes())),
            params.text(p.status.as_str()),
            params.int(p.amount_captured),
            params.int(p.amount_refunded),
            params.opt_text(p.description.as_deref()),
            params.text(&p.metadata.to_json()),
            params.int(p.version),
            params.int(p.created),
        ),
        PaymentWrite::UpdateState(p) => format!(
            "UPDATE payments SET status = {}, amount_captured = {}, amount_refunded = {}, version = {} WHERE id = {}",
            params.text(p.status.as_str()),
            params.int(p.amount_captured),
            params.int(p.amount_refunded),
            params.int(p.version),
            params.bytes(p.id.to_bytes()),
        ),
    };
    push(sql, params, &mut parts);
    let payment_id = match m.payment {
        PaymentWrite::Insert(p) | PaymentWrite::UpdateState(p) => p.id,
    };
    if let Some(r) = m.refund {
        let sql = format!(
            "INSERT INTO refunds (id, payment_id, amount, currency, reason, status, created) VALUES ({}, {}, {}, {}, {}, {}, {})",
            params.bytes(r.id.to_bytes()),
            params.bytes(r.payment.to_bytes()),
            params.int(r.amount),
            params.text(r.currency.code()),
            params.opt_text(r.reason.map(|x| x.as_str())),
            params.text(r.status.as_str()),
            params.int(r.created),
        );
        push(sql, params, &mut parts);
    }
    if !m.postings.is_empty() {
        let created = (m.now_ms / 1000) as i64;
        let rows: Vec<String> = m
            .postings
            .iter()
            .map(|p| {
                format!(
                    "({}, {}, {}, {}, {}, {})",
                    params.bytes(LedgerEntryId::from_uuid(ids.next(m.now_ms)).to_bytes()),
                    params.bytes(p.account.to_bytes()),
                    params.int(p.amount),
                    params.bytes(payment_id.to_bytes()),
                    params.opt_bytes(m.refund.map(|r| r.id.to_bytes())),
                    params.int(created),
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO ledger_entries (id, account_id, amount, payment_id, refund_id, created) VALUES {}",
            rows.join(", ")
        );
        push(sql, params, &mut parts);
    }
    if !m.events.is_empty() {
        let rows: Vec<String> = m
            .events
            .iter()
            .map(|e| {
                format!(
                    "({}, {}, {}, {}, {}, {}, {}, {}, {})",
                    params.bytes(e.id.to_bytes()),
                    params.text(e.event_type),
                    params.text(e.object_type),
                    params.bytes(e.object_id.clone()),
                    params.int(e.sequence),
                    params.text(&e.data),
                    params.text(&e.request_id),
                    params.int(e.created),
                    params.opt_text(e.traceparent.as_deref()),
                )
            })
            .collect();
        push(format!("{INSERT_HEAD} {}", rows.join(", ")), params, &mut parts);
    }
    parts
}

/// Writes the movement inside the caller's transaction, as the dialect
/// combines its statements (see [`Dialect::combine_writes`]), together with
/// whatever else the transaction defers after it (its audit row).
pub async fn persist(tx: &mut Tx<'_>, m: Movement<'_>) -> StoreResult<()> {
    if !balanced(m.postings) {
        return Err(StoreError::Internal("postings do not sum to zero".into()));
    }
    for account in &m.accounts {
        tx.changed(account.id.uuid());
    }
    if let PaymentWrite::UpdateState(p) = m.payment {
        tx.changed(p.id.uuid());
    }
    let d = tx.dialect;
    let mut params = Params { d, values: Vec::new() };
    let parts: Vec<Query> = build(&m, tx.ids, &mut params)
        .into_iter()
        .map(|(sql, range)| Query {
            sql: sql.into(),
            args: params.values[range].iter().cloned().map(Value::from).collect(),
        })
        .collect();
    tx.defer(parts);
    Ok(())
}
