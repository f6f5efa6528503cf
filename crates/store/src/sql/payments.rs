//! Money movement transactions: create, capture, cancel, refund. Each locks
//! the payment first (if there is one) and then its accounts in id order,
//! lets the domain decide, and writes everything the decision produced in
//! the same transaction.

use settle_domain::account::Account;
use settle_domain::ids::{PaymentId, RefundId};
use settle_domain::ledger::Posting;
use settle_domain::money::Amount;
use settle_domain::payment::{self, NewPayment, Payment, PaymentStatus};
use settle_domain::rbac::{Action, Permission, Resource};
use settle_domain::refund::{Refund, RefundStatus};

use super::db::{Executor, query};
use super::events::NewEvent;
use super::movement::{self, Movement, PaymentWrite};
use super::rows::{self, PAYMENT_COLS, REFUND_COLS};
use super::{Dialect, Tx, accounts, events};
use crate::context::Resolved;
use crate::error::{StoreError, StoreResult};
use crate::queue::{ProcessedBy, ProcessorOutcome};
use crate::records::NewRefund;

pub async fn get<E: Executor + ?Sized>(ex: &mut E, id: PaymentId) -> StoreResult<Option<Payment>> {
    rows::by_id(ex, "payments", PAYMENT_COLS, id.to_bytes(), "", rows::payment).await
}

/// The newest `first` refunds of each payment, one window per payment.
pub async fn refunds_of<E: Executor + ?Sized>(
    ex: &mut E,
    dialect: super::Dialect,
    payments: &[PaymentId],
    first: u32,
) -> StoreResult<Vec<Refund>> {
    let ids = payments.iter().map(|id| id.to_bytes()).collect();
    rows::newest_per_parent(ex, dialect, rows::REFUNDS_OF_PAYMENTS, ids, first, rows::refund).await
}

pub async fn get_refund<E: Executor + ?Sized>(ex: &mut E, id: RefundId) -> StoreResult<Option<Refund>> {
    rows::by_id(ex, "refunds", REFUND_COLS, id.to_bytes(), "", rows::refund).await
}

async fn lock(
    conn: &mut (impl Executor + ?Sized),
    d: Dialect,
    id: PaymentId,
    param: Option<&'static str>,
) -> StoreResult<Payment> {
    let sql = format!("SELECT {PAYMENT_COLS} FROM payments WHERE id = $1{}", d.lock_rows());
    let row = query(sql).bind(id.to_bytes()).fetch_optional(conn).await?;
    match row {
        Some(row) => rows::payment(&row),
        None => Err(StoreError::NotFound { what: "payment", param }),
    }
}

/// The accounts of a movement whose balance or hold changed.
fn changed(after: [&Account; 2], before: [(i64, i64); 2]) -> Vec<&Account> {
    after
        .into_iter()
        .zip(before)
        .filter(|(a, (balance, pending))| a.balance != *balance || a.pending_out != *pending)
        .map(|(a, _)| a)
        .collect()
}

/// The attributes policies see for a movement of `amount` on payment `p`.
fn resolved(amount: i64, p: &Payment, payment: bool) -> Resolved {
    Resolved {
        amount,
        currency: p.currency.code().to_owned(),
        source: p.source.to_string(),
        destination: p.destination.to_string(),
        payment: if payment { p.id.to_string() } else { String::new() },
    }
}

const PAYMENTS_WRITE: Permission = Permission::new(Resource::Payments, Action::Write);
const REFUNDS_WRITE: Permission = Permission::new(Resource::Refunds, Action::Write);

fn snapshot(a: &Account, b: &Account) -> [(i64, i64); 2] {
    [(a.balance, a.pending_out), (b.balance, b.pending_out)]
}

/// The events of a change to one object, numbered after `after`, with the
/// transaction's ids, time and request.
fn events_of<T: serde::Serialize>(
    tx: &Tx<'_>,
    object_type: &'static str,
    object_id: Vec<u8>,
    after: i64,
    types: &[&'static str],
    object: &T,
) -> StoreResult<Vec<NewEvent>> {
    events::build(tx.ids, tx.ctx, object_type, object_id, after, types, object)
}

/// Opens a payment between two accounts (locked in id order; its customer,
/// if any, held against deletion), moves or holds the money as the domain
/// decides, and writes `payment.created` and the state it reached.
pub async fn create(tx: &mut Tx<'_>, new: NewPayment) -> StoreResult<Payment> {
    let d = tx.dialect;
    let (mut source, mut destination) = accounts::lock_pair(&mut *tx, d, new.source, new.destination).await?;
    if let Some(customer) = new.customer
        && !accounts::customer_exists(&mut *tx, d, customer).await?
    {
        return Err(StoreError::NotFound {
            what: "customer",
            param: Some("customer"),
        });
    }
    let before = snapshot(&source, &destination);
    let opened = payment::open(&new, &mut source, &mut destination)?;
    let p = Payment {
        id: PaymentId::from_uuid(tx.next_id()),
        amount: new.amount.get(),
        currency: new.currency,
        source: new.source,
        destination: new.destination,
        customer: new.customer,
        status: opened.status,
        amount_captured: opened.amount_captured,
        amount_refunded: 0,
        description: new.description,
        metadata: new.metadata,
        version: 1,
        created: tx.ctx.now_secs(),
    };
    tx.ctx.check_policy(PAYMENTS_WRITE, &resolved(p.amount, &p, false))?;
    let reached = match p.status {
        PaymentStatus::Succeeded => "payment.succeeded",
        PaymentStatus::Processing => "payment.processing",
        _ => "payment.requires_capture",
    };
    let movement = Movement {
        accounts: changed([&source, &destination], before),
        payment: PaymentWrite::Insert(&p),
        refund: None,
        postings: &opened.postings,
        now_ms: tx.ctx.now_ms,
        events: events_of(tx, "payment", p.id.to_bytes(), 0, &["payment.created", reached], &p)?,
    };
    movement::persist(tx, movement).await?;
    Ok(p)
}

/// Captures `amount` (all of it when `None`) of a payment that awaits
/// capture, and writes `payment.succeeded`.
pub async fn capture(tx: &mut Tx<'_>, id: PaymentId, amount: Option<Amount>) -> StoreResult<Payment> {
    let d = tx.dialect;
    let mut p = lock(&mut *tx, d, id, None).await?;
    let (mut source, mut destination) = accounts::lock_pair(&mut *tx, d, p.source, p.destination).await?;
    let before = snapshot(&source, &destination);
    let postings = payment::capture(&mut p, amount, &mut source, &mut destination)?;
    tx.ctx
        .check_policy(PAYMENTS_WRITE, &resolved(p.amount_captured, &p, true))?;
    let moved = StateChange {
        accounts: changed([&source, &destination], before),
        postings: &postings,
        event: "payment.succeeded",
    };
    persist_state_change(tx, &p, moved).await?;
    Ok(p)
}

/// A payment's move to a new state: the accounts it changed, its postings,
/// and the event that reports it.
struct StateChange<'a> {
    accounts: Vec<&'a Account>,
    postings: &'a [Posting],
    event: &'static str,
}

async fn persist_state_change(tx: &mut Tx<'_>, p: &Payment, change: StateChange<'_>) -> StoreResult<()> {
    let after = events::last_sequence(&mut *tx, &p.id.to_bytes()).await?;
    let movement = Movement {
        accounts: change.accounts,
        payment: PaymentWrite::UpdateState(p),
        refund: None,
        postings: change.postings,
        now_ms: tx.ctx.now_ms,
        events: events_of(tx, "payment", p.id.to_bytes(), after, &[change.event], p)?,
    };
    movement::persist(tx, movement).await
}

/// Cancels a payment that awaits capture, releasing the hold on its
/// source, and writes `payment.canceled`.
pub async fn cancel(tx: &mut Tx<'_>, id: PaymentId) -> StoreResult<Payment> {
    let d = tx.dialect;
    let mut p = lock(&mut *tx, d, id, None).await?;
    let mut locked = accounts::lock(&mut *tx, d, &[p.source]).await?;
    let source = locked
        .first_mut()
        .ok_or_else(|| StoreError::Internal("payment source is missing".into()))?;
    payment::cancel(&mut p, source)?;
    tx.ctx.check_policy(PAYMENTS_WRITE, &resolved(p.amount, &p, true))?;
    let after = events::last_sequence(&mut *tx, &p.id.to_bytes()).await?;
    let events = events_of(tx, "payment", p.id.to_bytes(), after, &["payment.canceled"], &p)?;
    let movement = Movement {
        accounts: vec![source],
        payment: PaymentWrite::UpdateState(&p),
        refund: None,
        postings: &[],
        now_ms: tx.ctx.now_ms,
        events,
    };
    movement::persist(tx, movement).await?;
    Ok(p)
}

/// Refunds part or all of a payment's captured amount, and writes
/// `refund.created`, `refund.succeeded` and `payment.updated`.
pub async fn refund(tx: &mut Tx<'_>, new: NewRefund) -> StoreResult<Refund> {
    let d = tx.dialect;
    let mut p = lock(&mut *tx, d, new.payment, Some("payment")).await?;
    let (mut source, mut destination) = accounts::lock_pair(&mut *tx, d, p.source, p.destination).await?;
    let before = snapshot(&source, &destination);
    let (amount, postings) = payment::refund(&mut p, new.amount, &mut source, &mut destination)?;
    tx.ctx.check_policy(REFUNDS_WRITE, &resolved(amount, &p, true))?;
    let r = Refund {
        id: RefundId::from_uuid(tx.next_id()),
        payment: p.id,
        amount,
        currency: p.currency,
        reason: new.reason,
        status: RefundStatus::Succeeded,
        created: tx.ctx.now_secs(),
    };
    let after = events::last_sequence(&mut *tx, &p.id.to_bytes()).await?;
    let mut all = events_of(
        tx,
        "refund",
        r.id.to_bytes(),
        0,
        &["refund.created", "refund.succeeded"],
        &r,
    )?;
    all.extend(events_of(
        tx,
        "payment",
        p.id.to_bytes(),
        after,
        &["payment.updated"],
        &p,
    )?);
    let movement = Movement {
        accounts: changed([&source, &destination], before),
        payment: PaymentWrite::UpdateState(&p),
        refund: Some(&r),
        postings: &postings,
        now_ms: tx.ctx.now_ms,
        events: all,
    };
    movement::persist(tx, movement).await?;
    Ok(r)
}

/// Applies the external processor's answer to a `processing` payment, once:
/// the consumer's processed-message record is written in the same
/// transaction, so a redelivered job changes nothing (`None`).
pub async fn conclude(
    tx: &mut Tx<'_>,
    done: ProcessedBy,
    id: PaymentId,
    outcome: ProcessorOutcome,
) -> StoreResult<Option<Payment>> {
    let (d, now_ms) = (tx.dialect, tx.ctx.now_ms);
    let first_time = super::queue::mark_all_processed(
        &mut *tx,
        d,
        &done.consumer,
        std::slice::from_ref(&done.message_id),
        now_ms,
    )
    .await?;
    if first_time.is_empty() {
        return Ok(None);
    }
    let mut p = lock(&mut *tx, d, id, None).await?;
    if p.status != PaymentStatus::Processing {
        return Ok(None);
    }
    let (mut source, mut destination) = accounts::lock_pair(&mut *tx, d, p.source, p.destination).await?;
    let before = snapshot(&source, &destination);
    let (postings, reached) = match outcome {
        ProcessorOutcome::Succeeded => (
            payment::settle(&mut p, &mut source, &mut destination)?,
            "payment.succeeded",
        ),
        ProcessorOutcome::Declined => {
            payment::fail(&mut p)?;
            (Vec::new(), "payment.failed")
        }
    };
    let moved = StateChange {
        accounts: changed([&source, &destination], before),
        postings: &postings,
        event: reached,
    };
    persist_state_change(tx, &p, moved).await?;
    Ok(Some(p))
}
