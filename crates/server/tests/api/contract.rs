//! The storage contract: every `settle_store::Store` backend (SQLite and
//! PostgreSQL) keeps the same rules when called directly, without HTTP.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;

use settle_domain::DomainError;
use settle_domain::account::{Account, AccountPatch, NewAccount};
use settle_domain::customer::{Customer, CustomerPatch, NewCustomer};
use settle_domain::ids::{AccountId, ApiKeyId, CustomerId, PaymentId, uuid_v7};
use settle_domain::ledger::LedgerEntry;
use settle_domain::metadata::Metadata;
use settle_domain::money::{Amount, Currency};
use settle_domain::payment::{NewPayment, Payment, PaymentStatus};
use settle_domain::refund::{RefundReason, RefundStatus};
use settle_store::records::{AccountFilter, ApiKey, EntryFilter, NewRefund, PaymentFilter, RefundFilter};
use settle_store::{CreatedRange, Cursor, ListQuery, Page, Store, StoreError, WriteContext};
use uuid::Uuid;

use crate::support::{TestApp, both};

fn ctx(app: &TestApp) -> WriteContext {
    app.settle.context("test", None)
}

fn usd() -> Currency {
    Currency::parse("usd").unwrap()
}

fn amount(value: i64) -> Amount {
    Amount::parse("amount", value).unwrap()
}

fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::parse(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()).unwrap()
}

/// A random UUIDv7 from now: well formed, names nothing.
fn unknown_uuid() -> Uuid {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    uuid_v7(now_ms, rand::random::<u128>())
}

async fn open(store: &dyn Store, ctx: &WriteContext, name: &str, currency: Currency, allow_negative: bool) -> Account {
    let new = NewAccount::new(name.into(), currency, allow_negative, None, Metadata::default()).unwrap();
    store.create_account(ctx, new).await.unwrap()
}

async fn customer(store: &dyn Store, ctx: &WriteContext, name: &str) -> Customer {
    let new = NewCustomer::new(
        Some(name.into()),
        Some(format!("{name}@example.com")),
        Metadata::default(),
    )
    .unwrap();
    store.create_customer(ctx, new).await.unwrap()
}

fn new_payment(source: AccountId, destination: AccountId, value: i64, capture: bool) -> NewPayment {
    NewPayment::new(
        amount(value),
        usd(),
        source,
        destination,
        None,
        capture,
        None,
        Metadata::default(),
    )
    .unwrap()
}

async fn pay(
    store: &dyn Store,
    ctx: &WriteContext,
    source: AccountId,
    destination: AccountId,
    value: i64,
    capture: bool,
) -> Result<Payment, StoreError> {
    store
        .create_payment(ctx, new_payment(source, destination, value, capture))
        .await
}

/// A usd account holding `value`, funded from a fresh bank that may go negative.
async fn funded(store: &dyn Store, ctx: &WriteContext, name: &str, value: i64) -> Account {
    let bank = open(store, ctx, "bank", usd(), true).await;
    let account = open(store, ctx, name, usd(), false).await;
    pay(store, ctx, bank.id, account.id, value, true).await.unwrap();
    reload(store, account.id).await
}

async fn reload(store: &dyn Store, id: AccountId) -> Account {
    store.account(id).await.unwrap().expect("account exists")
}

/// Balance, pending_out and available of an account as stored now.
async fn money(store: &dyn Store, id: AccountId) -> (i64, i64, i64) {
    let a = reload(store, id).await;
    (a.balance, a.pending_out, a.available())
}

/// The ledger invariant: an account's entries sum to its balance.
async fn assert_ledger(store: &dyn Store, ids: &[AccountId]) {
    for &id in ids {
        let account = reload(store, id).await;
        assert_eq!(
            store.entries_sum(id).await.unwrap(),
            account.balance,
            "entries of {id} must sum to its balance"
        );
    }
}

fn entry_query(account: AccountId) -> ListQuery<EntryFilter> {
    ListQuery {
        filter: Some(EntryFilter::Account(account)),
        ..ListQuery::first(100)
    }
}

/// Every entry the payment wrote, on either of its accounts, refunds excluded.
async fn payment_entries(store: &dyn Store, p: &Payment) -> Vec<LedgerEntry> {
    let mut out = Vec::new();
    for account in [p.source, p.destination] {
        let page = store.list_entries(&entry_query(account)).await.unwrap();
        out.extend(
            page.data
                .into_iter()
                .filter(|e| e.payment == Some(p.id) && e.refund.is_none()),
        );
    }
    out
}

fn payment_query(filter: Option<PaymentFilter>) -> ListQuery<PaymentFilter> {
    ListQuery {
        filter,
        ..ListQuery::first(100)
    }
}

fn ids(page: &Page<Payment>) -> Vec<PaymentId> {
    page.data.iter().map(|p| p.id).collect()
}

fn assert_domain(result: Result<impl std::fmt::Debug, StoreError>, check: impl Fn(&DomainError) -> bool, what: &str) {
    match result {
        Err(StoreError::Domain(e)) if check(&e) => {}
        other => panic!("expected {what}, got {other:?}"),
    }
}

both!(account_round_trip, account_round_trip_case);
async fn account_round_trip_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let meta = metadata(&[("team", "ops"), ("region", "eu")]);
    let new = NewAccount::new(
        "Operating".into(),
        Currency::parse("jpy").unwrap(),
        false,
        None,
        meta.clone(),
    )
    .unwrap();
    let created = store.create_account(&ctx, new).await.unwrap();
    assert_eq!(created.name, "Operating");
    assert_eq!(created.currency.code(), "jpy");
    assert_eq!((created.balance, created.pending_out, created.version), (0, 0, 1));
    assert!(!created.allow_negative);
    assert_eq!(created.metadata, meta);
    assert_eq!(created.created, ctx.now_secs());
    assert_eq!(store.account(created.id).await.unwrap(), Some(created.clone()));

    let bank = open(store, &ctx, "bank", usd(), true).await;
    assert!(reload(store, bank.id).await.allow_negative);

    assert_eq!(store.account(AccountId::from_uuid(unknown_uuid())).await.unwrap(), None);
    // An id of another type is just bytes to storage: it names no account either.
    let c = customer(store, &ctx, "ada").await;
    assert_eq!(store.account(AccountId::from_uuid(c.id.uuid())).await.unwrap(), None);

    let page = store.list_accounts(&ListQuery::first(10)).await.unwrap();
    assert_eq!(
        page.data.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![bank.id, created.id]
    );
    assert!(!page.has_more);
}

both!(customer_round_trip, customer_round_trip_case);
async fn customer_round_trip_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let new = NewCustomer::new(
        Some("Ada".into()),
        Some("ada@example.com".into()),
        metadata(&[("tier", "gold")]),
    )
    .unwrap();
    let created = store.create_customer(&ctx, new).await.unwrap();
    assert_eq!(created.name.as_deref(), Some("Ada"));
    assert_eq!(created.email.as_deref(), Some("ada@example.com"));
    assert_eq!(created.version, 1);
    assert_eq!(store.customer(created.id).await.unwrap(), Some(created.clone()));

    let anonymous = store
        .create_customer(&ctx, NewCustomer::new(None, None, Metadata::default()).unwrap())
        .await
        .unwrap();
    let stored = store.customer(anonymous.id).await.unwrap().unwrap();
    assert_eq!((stored.name, stored.email), (None, None));
    assert_eq!(
        store.customer(CustomerId::from_uuid(unknown_uuid())).await.unwrap(),
        None
    );

    let owned = NewAccount::new(
        "Ada's wallet".into(),
        usd(),
        false,
        Some(created.id),
        Metadata::default(),
    )
    .unwrap();
    let owned = store.create_account(&ctx, owned).await.unwrap();
    assert_eq!(reload(store, owned.id).await.customer, Some(created.id));
    let q = ListQuery {
        filter: Some(AccountFilter::Customer(created.id)),
        ..ListQuery::first(10)
    };
    assert_eq!(store.list_accounts(&q).await.unwrap().data, vec![owned]);
}

both!(
    account_needs_an_existing_customer,
    account_needs_an_existing_customer_case
);
async fn account_needs_an_existing_customer_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let missing = CustomerId::from_uuid(unknown_uuid());
    let new = NewAccount::new("orphan".into(), usd(), false, Some(missing), Metadata::default()).unwrap();
    match store.create_account(&ctx, new).await {
        Err(StoreError::NotFound {
            param: Some("customer"),
            ..
        }) => {}
        other => panic!("expected NotFound(customer), got {other:?}"),
    }
    assert!(
        store
            .list_accounts(&ListQuery::first(10))
            .await
            .unwrap()
            .data
            .is_empty(),
        "nothing may be written"
    );
}

both!(captured_payment_moves_money, captured_payment_moves_money_case);
async fn captured_payment_moves_money_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let alice = funded(store, &ctx, "alice", 1_000).await;
    let bob = open(store, &ctx, "bob", usd(), false).await;

    let p = pay(store, &ctx, alice.id, bob.id, 300, true).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Succeeded);
    assert_eq!((p.amount, p.amount_captured, p.amount_refunded), (300, 300, 0));
    assert_eq!((p.source, p.destination, p.currency), (alice.id, bob.id, usd()));
    assert_eq!(store.payment(p.id).await.unwrap(), Some(p.clone()));

    assert_eq!(money(store, alice.id).await, (700, 0, 700));
    assert_eq!(money(store, bob.id).await, (300, 0, 300));

    let entries = payment_entries(store, &p).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries.iter().map(|e| e.amount).sum::<i64>(), 0);
    assert!(entries.iter().any(|e| e.account == alice.id && e.amount == -300));
    assert!(entries.iter().any(|e| e.account == bob.id && e.amount == 300));
    assert_ledger(store, &[alice.id, bob.id]).await;

    // Entries are listed newest first: the payment's entry after the funding one.
    let alice_entries = store.list_entries(&entry_query(alice.id)).await.unwrap().data;
    assert_eq!(
        alice_entries.iter().map(|e| e.amount).collect::<Vec<_>>(),
        vec![-300, 1_000]
    );
    assert!(alice_entries[0].id > alice_entries[1].id);
}

both!(hold_then_partial_capture, hold_then_partial_capture_case);
async fn hold_then_partial_capture_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let alice = funded(store, &ctx, "alice", 1_000).await;
    let bob = open(store, &ctx, "bob", usd(), false).await;

    let p = pay(store, &ctx, alice.id, bob.id, 600, false).await.unwrap();
    assert_eq!(p.status, PaymentStatus::RequiresCapture);
    assert_eq!(p.amount_captured, 0);
    assert_eq!(money(store, alice.id).await, (1_000, 600, 400));
    assert_eq!(money(store, bob.id).await, (0, 0, 0));
    assert!(payment_entries(store, &p).await.is_empty(), "a hold writes no entry");

    // Funds are checked against `available`, which the hold reduced.
    assert_domain(
        pay(store, &ctx, alice.id, bob.id, 401, true).await,
        |e| matches!(e, DomainError::InsufficientFunds { .. }),
        "insufficient funds",
    );
    assert_domain(
        pay(store, &ctx, alice.id, bob.id, 401, false).await,
        |e| matches!(e, DomainError::InsufficientFunds { .. }),
        "insufficient funds",
    );
    // Capturing more than was authorized is refused and changes nothing.
    assert_domain(
        store.capture_payment(&ctx, p.id, Some(amount(601))).await,
        |e| matches!(e, DomainError::AmountTooLarge(_)),
        "amount too large",
    );
    assert_eq!(
        store.payment(p.id).await.unwrap().unwrap().status,
        PaymentStatus::RequiresCapture
    );
    assert_eq!(money(store, alice.id).await, (1_000, 600, 400));

    let captured = store.capture_payment(&ctx, p.id, Some(amount(250))).await.unwrap();
    assert_eq!(captured.status, PaymentStatus::Succeeded);
    assert_eq!((captured.amount, captured.amount_captured), (600, 250));
    assert_eq!(captured.version, p.version + 1);
    assert_eq!(store.payment(p.id).await.unwrap(), Some(captured.clone()));
    assert_eq!(
        money(store, alice.id).await,
        (750, 0, 750),
        "the rest of the hold is released"
    );
    assert_eq!(money(store, bob.id).await, (250, 0, 250));
    let entries = payment_entries(store, &p).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries.iter().map(|e| e.amount).sum::<i64>(), 0);
    assert!(entries.iter().any(|e| e.account == alice.id && e.amount == -250));
    assert!(entries.iter().any(|e| e.account == bob.id && e.amount == 250));
    assert_ledger(store, &[alice.id, bob.id]).await;

    assert_domain(
        store.capture_payment(&ctx, p.id, None).await,
        |e| matches!(e, DomainError::InvalidState(_)),
        "invalid state",
    );
    assert_domain(
        store.cancel_payment(&ctx, p.id).await,
        |e| matches!(e, DomainError::InvalidState(_)),
        "invalid state",
    );
    assert_eq!(store.payment(p.id).await.unwrap(), Some(captured));
    assert_eq!(money(store, alice.id).await, (750, 0, 750));

    // A full capture (no amount) takes the whole authorization.
    let q = pay(store, &ctx, alice.id, bob.id, 100, false).await.unwrap();
    let q = store.capture_payment(&ctx, q.id, None).await.unwrap();
    assert_eq!(q.amount_captured, 100);
    assert_eq!(money(store, alice.id).await, (650, 0, 650));
    assert_ledger(store, &[alice.id, bob.id]).await;
}

both!(cancel_releases_the_hold, cancel_releases_the_hold_case);
async fn cancel_releases_the_hold_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let alice = funded(store, &ctx, "alice", 500).await;
    let bob = open(store, &ctx, "bob", usd(), false).await;

    let p = pay(store, &ctx, alice.id, bob.id, 400, false).await.unwrap();
    assert_eq!(money(store, alice.id).await, (500, 400, 100));
    let canceled = store.cancel_payment(&ctx, p.id).await.unwrap();
    assert_eq!(canceled.status, PaymentStatus::Canceled);
    assert_eq!(canceled.amount_captured, 0);
    assert_eq!(store.payment(p.id).await.unwrap(), Some(canceled.clone()));
    assert_eq!(money(store, alice.id).await, (500, 0, 500));
    assert_eq!(money(store, bob.id).await, (0, 0, 0));
    assert!(payment_entries(store, &p).await.is_empty());

    assert_domain(
        store.cancel_payment(&ctx, p.id).await,
        |e| matches!(e, DomainError::InvalidState(_)),
        "invalid state",
    );
    assert_domain(
        store.capture_payment(&ctx, p.id, None).await,
        |e| matches!(e, DomainError::InvalidState(_)),
        "invalid state",
    );
    let refund = NewRefund {
        payment: p.id,
        amount: None,
        reason: None,
    };
    assert_domain(
        store.create_refund(&ctx, refund).await,
        |e| matches!(e, DomainError::InvalidState(_)),
        "invalid state",
    );
    assert_eq!(money(store, alice.id).await, (500, 0, 500));
    assert_ledger(store, &[alice.id, bob.id]).await;
}

both!(refunds_partial_then_rest, refunds_partial_then_rest_case);
async fn refunds_partial_then_rest_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let alice = funded(store, &ctx, "alice", 500).await;
    let bob = open(store, &ctx, "bob", usd(), false).await;
    let p = pay(store, &ctx, alice.id, bob.id, 500, true).await.unwrap();

    let first = NewRefund {
        payment: p.id,
        amount: Some(amount(200)),
        reason: Some(RefundReason::RequestedByCustomer),
    };
    let r1 = store.create_refund(&ctx, first).await.unwrap();
    assert_eq!((r1.payment, r1.amount, r1.currency), (p.id, 200, usd()));
    assert_eq!(
        (r1.reason, r1.status),
        (Some(RefundReason::RequestedByCustomer), RefundStatus::Succeeded)
    );
    assert_eq!(store.refund(r1.id).await.unwrap(), Some(r1.clone()));
    assert_eq!(store.payment(p.id).await.unwrap().unwrap().amount_refunded, 200);
    assert_eq!(money(store, alice.id).await, (200, 0, 200));
    assert_eq!(money(store, bob.id).await, (300, 0, 300));
    assert_ledger(store, &[alice.id, bob.id]).await;

    // More than is left is refused and changes nothing.
    let too_much = NewRefund {
        payment: p.id,
        amount: Some(amount(301)),
        reason: None,
    };
    assert_domain(
        store.create_refund(&ctx, too_much).await,
        |e| matches!(e, DomainError::AmountTooLarge(_)),
        "amount too large",
    );
    assert_eq!(store.payment(p.id).await.unwrap().unwrap().amount_refunded, 200);
    assert_eq!(money(store, bob.id).await, (300, 0, 300));

    let r2 = store
        .create_refund(
            &ctx,
            NewRefund {
                payment: p.id,
                amount: None,
                reason: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((r2.amount, r2.reason), (300, None));
    let after = store.payment(p.id).await.unwrap().unwrap();
    assert_eq!((after.amount_captured, after.amount_refunded), (500, 500));
    assert_eq!(money(store, alice.id).await, (500, 0, 500));
    assert_eq!(money(store, bob.id).await, (0, 0, 0));

    let again = NewRefund {
        payment: p.id,
        amount: Some(amount(1)),
        reason: None,
    };
    assert_domain(
        store.create_refund(&ctx, again).await,
        |e| matches!(e, DomainError::AmountTooLarge(_)),
        "amount too large",
    );
    let rest = NewRefund {
        payment: p.id,
        amount: None,
        reason: None,
    };
    assert_domain(
        store.create_refund(&ctx, rest).await,
        |e| matches!(e, DomainError::AmountTooLarge(_)),
        "amount too large",
    );

    // Each refund wrote two entries summing to zero, tagged with the refund.
    for r in [&r1, &r2] {
        let mut tagged = Vec::new();
        for account in [alice.id, bob.id] {
            let page = store.list_entries(&entry_query(account)).await.unwrap();
            tagged.extend(page.data.into_iter().filter(|e| e.refund == Some(r.id)));
        }
        assert_eq!(tagged.len(), 2, "{tagged:?}");
        assert_eq!(tagged.iter().map(|e| e.amount).sum::<i64>(), 0);
        assert!(tagged.iter().all(|e| e.payment == Some(p.id)));
        assert!(tagged.iter().any(|e| e.account == bob.id && e.amount == -r.amount));
    }
    let q = ListQuery {
        filter: Some(RefundFilter::Payment(p.id)),
        ..ListQuery::first(10)
    };
    let listed = store.list_refunds(&q).await.unwrap();
    assert_eq!(listed.data.iter().map(|r| r.id).collect::<Vec<_>>(), vec![r2.id, r1.id]);
    assert_ledger(store, &[alice.id, bob.id]).await;
}

both!(refund_needs_destination_funds, refund_needs_destination_funds_case);
async fn refund_needs_destination_funds_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let alice = funded(store, &ctx, "alice", 500).await;
    let bob = open(store, &ctx, "bob", usd(), false).await;
    let carol = open(store, &ctx, "carol", usd(), false).await;
    let p = pay(store, &ctx, alice.id, bob.id, 500, true).await.unwrap();
    pay(store, &ctx, bob.id, carol.id, 450, true).await.unwrap();

    let before = (reload(store, alice.id).await, reload(store, bob.id).await);
    let refund = NewRefund {
        payment: p.id,
        amount: None,
        reason: None,
    };
    match store.create_refund(&ctx, refund).await {
        Err(StoreError::Domain(DomainError::InsufficientFunds {
            available: 50,
            requested: 500,
        })) => {}
        other => panic!("expected insufficient funds (50 available), got {other:?}"),
    }
    assert_eq!(
        (reload(store, alice.id).await, reload(store, bob.id).await),
        before,
        "nothing may change"
    );
    assert_eq!(store.payment(p.id).await.unwrap().unwrap().amount_refunded, 0);
    let q = ListQuery {
        filter: Some(RefundFilter::Payment(p.id)),
        ..ListQuery::first(10)
    };
    assert!(store.list_refunds(&q).await.unwrap().data.is_empty());

    // A hold on the destination counts too: only `available` can be refunded.
    let held = pay(store, &ctx, bob.id, carol.id, 30, false).await.unwrap();
    let twenty_one = NewRefund {
        payment: p.id,
        amount: Some(amount(21)),
        reason: None,
    };
    assert_domain(
        store.create_refund(&ctx, twenty_one).await,
        |e| matches!(e, DomainError::InsufficientFunds { .. }),
        "insufficient funds",
    );
    store.cancel_payment(&ctx, held.id).await.unwrap();

    let partial = NewRefund {
        payment: p.id,
        amount: Some(amount(50)),
        reason: None,
    };
    store.create_refund(&ctx, partial).await.unwrap();
    assert_eq!(money(store, bob.id).await, (0, 0, 0));
    assert_eq!(money(store, alice.id).await, (50, 0, 50));
    assert_ledger(store, &[alice.id, bob.id, carol.id]).await;
}

both!(
    insufficient_funds_change_nothing,
    insufficient_funds_change_nothing_case
);
async fn insufficient_funds_change_nothing_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let alice = funded(store, &ctx, "alice", 100).await;
    let bob = open(store, &ctx, "bob", usd(), false).await;
    let before = (reload(store, alice.id).await, reload(store, bob.id).await);
    let all_before = ids(&store.list_payments(&payment_query(None)).await.unwrap());

    for capture in [true, false] {
        match pay(store, &ctx, alice.id, bob.id, 101, capture).await {
            Err(StoreError::Domain(DomainError::InsufficientFunds {
                available: 100,
                requested: 101,
            })) => {}
            other => panic!("expected insufficient funds, got {other:?}"),
        }
    }
    assert_eq!((reload(store, alice.id).await, reload(store, bob.id).await), before);
    assert_eq!(
        ids(&store.list_payments(&payment_query(None)).await.unwrap()),
        all_before
    );
    let from_alice = store
        .list_payments(&payment_query(Some(PaymentFilter::Source(alice.id))))
        .await
        .unwrap();
    assert!(
        from_alice.data.is_empty(),
        "no payment may be stored: {:?}",
        from_alice.data
    );
    assert!(store.list_entries(&entry_query(bob.id)).await.unwrap().data.is_empty());
    assert_ledger(store, &[alice.id, bob.id]).await;

    // Exactly the balance is fine; a funding source may go below zero.
    pay(store, &ctx, alice.id, bob.id, 100, true).await.unwrap();
    assert_eq!(money(store, alice.id).await, (0, 0, 0));
    let bank = open(store, &ctx, "bank", usd(), true).await;
    pay(store, &ctx, bank.id, bob.id, 5_000, true).await.unwrap();
    assert_eq!(money(store, bank.id).await, (-5_000, 0, -5_000));
    assert_ledger(store, &[alice.id, bob.id, bank.id]).await;
}

both!(currency_mismatch_is_refused, currency_mismatch_is_refused_case);
async fn currency_mismatch_is_refused_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let eur = Currency::parse("eur").unwrap();
    let alice = funded(store, &ctx, "alice", 1_000).await;
    let euro = open(store, &ctx, "euro", eur, false).await;
    let bob = open(store, &ctx, "bob", usd(), false).await;
    let all_before = ids(&store.list_payments(&payment_query(None)).await.unwrap());

    let mismatch = |e: &DomainError| matches!(e, DomainError::CurrencyMismatch { .. });
    assert_domain(
        pay(store, &ctx, alice.id, euro.id, 10, true).await,
        mismatch,
        "currency mismatch",
    );
    assert_domain(
        pay(store, &ctx, euro.id, alice.id, 10, true).await,
        mismatch,
        "currency mismatch",
    );
    // Both accounts in usd, but the payment in eur.
    let in_eur = NewPayment::new(amount(10), eur, alice.id, bob.id, None, true, None, Metadata::default()).unwrap();
    assert_domain(store.create_payment(&ctx, in_eur).await, mismatch, "currency mismatch");

    assert_eq!(money(store, alice.id).await, (1_000, 0, 1_000));
    assert_eq!(money(store, euro.id).await, (0, 0, 0));
    assert_eq!(money(store, bob.id).await, (0, 0, 0));
    assert_eq!(
        ids(&store.list_payments(&payment_query(None)).await.unwrap()),
        all_before
    );
}

both!(missing_references_are_named, missing_references_are_named_case);
async fn missing_references_are_named_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let alice = funded(store, &ctx, "alice", 1_000).await;
    let ghost = AccountId::from_uuid(unknown_uuid());
    let expect = |result: Result<Payment, StoreError>, want: Option<&str>| match result {
        Err(StoreError::NotFound { param, .. }) if param == want => {}
        other => panic!("expected NotFound({want:?}), got {other:?}"),
    };
    expect(pay(store, &ctx, ghost, alice.id, 10, true).await, Some("source"));
    expect(pay(store, &ctx, alice.id, ghost, 10, true).await, Some("destination"));
    let bob = open(store, &ctx, "bob", usd(), false).await;
    let mut with_customer = new_payment(alice.id, bob.id, 10, true);
    with_customer.customer = Some(CustomerId::from_uuid(unknown_uuid()));
    expect(store.create_payment(&ctx, with_customer).await, Some("customer"));
    assert_eq!(money(store, alice.id).await, (1_000, 0, 1_000));
    assert_eq!(money(store, bob.id).await, (0, 0, 0));

    // An unknown payment is the object of capture and cancel (404), a parameter of a refund.
    let nobody = PaymentId::from_uuid(unknown_uuid());
    expect(store.capture_payment(&ctx, nobody, None).await, None);
    expect(store.cancel_payment(&ctx, nobody).await, None);
    match store
        .create_refund(
            &ctx,
            NewRefund {
                payment: nobody,
                amount: None,
                reason: None,
            },
        )
        .await
    {
        Err(StoreError::NotFound {
            param: Some("payment"), ..
        }) => {}
        other => panic!("expected NotFound(payment), got {other:?}"),
    }
    assert_eq!(store.payment(nobody).await.unwrap(), None);
}

both!(updates_check_the_version, updates_check_the_version_case);
async fn updates_check_the_version_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let new = NewAccount::new(
        "before".into(),
        usd(),
        false,
        None,
        metadata(&[("keep", "1"), ("drop", "2")]),
    )
    .unwrap();
    let account = store.create_account(&ctx, new).await.unwrap();

    let mut patch = BTreeMap::new();
    patch.insert("drop".to_owned(), None);
    patch.insert("add".to_owned(), Some("3".to_owned()));
    let edit = AccountPatch::new(Some("after".into()), Some(patch)).unwrap();
    let updated = store.update_account(&ctx, account.id, edit, Some(1)).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.name, "after");
    assert_eq!(updated.metadata, metadata(&[("keep", "1"), ("add", "3")]));
    assert_eq!(store.account(account.id).await.unwrap(), Some(updated.clone()));

    let stale = AccountPatch::new(Some("stale".into()), None).unwrap();
    match store.update_account(&ctx, account.id, stale, Some(1)).await {
        Err(StoreError::VersionConflict {
            expected: 1,
            current: 2,
        }) => {}
        other => panic!("expected a version conflict, got {other:?}"),
    }
    assert_eq!(
        store.account(account.id).await.unwrap(),
        Some(updated.clone()),
        "a stale edit changes nothing"
    );

    // Without If-Match the edit applies to whatever is current.
    let blind = store
        .update_account(
            &ctx,
            account.id,
            AccountPatch::new(Some("blind".into()), None).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!((blind.version, blind.name.as_str()), (3, "blind"));
    assert_eq!((blind.balance, blind.created), (account.balance, account.created));

    let ghost = AccountId::from_uuid(unknown_uuid());
    match store.update_account(&ctx, ghost, AccountPatch::default(), None).await {
        Err(StoreError::NotFound { param: None, .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }

    // Customers follow the same rule.
    let c = customer(store, &ctx, "ada").await;
    let clear_email = CustomerPatch::new(None, Some(None), None).unwrap();
    let c2 = store.update_customer(&ctx, c.id, clear_email, Some(1)).await.unwrap();
    assert_eq!(
        (c2.version, c2.email.as_deref(), c2.name.as_deref()),
        (2, None, Some("ada"))
    );
    match store
        .update_customer(&ctx, c.id, CustomerPatch::default(), Some(1))
        .await
    {
        Err(StoreError::VersionConflict {
            expected: 1,
            current: 2,
        }) => {}
        other => panic!("expected a version conflict, got {other:?}"),
    }
    assert_eq!(store.customer(c.id).await.unwrap(), Some(c2));
}

both!(delete_customer_rules, delete_customer_rules_case);
async fn delete_customer_rules_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let owner = customer(store, &ctx, "owner").await;
    let payer = customer(store, &ctx, "payer").await;
    let unused = customer(store, &ctx, "unused").await;

    let new = NewAccount::new("owned".into(), usd(), false, Some(owner.id), Metadata::default()).unwrap();
    let owned = store.create_account(&ctx, new).await.unwrap();
    let bank = open(store, &ctx, "bank", usd(), true).await;
    let mut p = new_payment(bank.id, owned.id, 10, true);
    p.customer = Some(payer.id);
    store.create_payment(&ctx, p).await.unwrap();

    for (c, why) in [(&owner, "an account"), (&payer, "a payment")] {
        match store.delete_customer(&ctx, c.id).await {
            Err(StoreError::InUse(_)) => {}
            other => panic!("a customer referred to by {why} must be in use, got {other:?}"),
        }
        assert_eq!(store.customer(c.id).await.unwrap().as_ref(), Some(c));
    }

    store.delete_customer(&ctx, unused.id).await.unwrap();
    assert_eq!(store.customer(unused.id).await.unwrap(), None);
    for gone in [unused.id, CustomerId::from_uuid(unknown_uuid())] {
        match store.delete_customer(&ctx, gone).await {
            Err(StoreError::NotFound { param: None, .. }) => {}
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
}

/// Which payments a filter should keep.
type Keep = Box<dyn Fn(&Payment) -> bool>;

both!(list_payments_filters, list_payments_filters_case);
async fn list_payments_filters_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let (c1, c2) = (customer(store, &ctx, "one").await, customer(store, &ctx, "two").await);
    let bank = open(store, &ctx, "bank", usd(), true).await;
    let a = open(store, &ctx, "a", usd(), false).await;
    let b = open(store, &ctx, "b", usd(), false).await;
    let c = open(store, &ctx, "c", usd(), false).await;

    let mut all: Vec<Payment> = Vec::new();
    let plan = [
        (bank.id, a.id, Some(c1.id), 100, true),
        (bank.id, b.id, Some(c2.id), 100, true),
        (a.id, b.id, None, 10, true),
        (a.id, c.id, Some(c1.id), 10, false),
        (b.id, c.id, Some(c2.id), 10, false),
        (bank.id, c.id, None, 10, true),
        (b.id, a.id, Some(c1.id), 10, false),
    ];
    for (source, destination, customer, value, capture) in plan {
        let mut new = new_payment(source, destination, value, capture);
        new.customer = customer;
        all.push(store.create_payment(&ctx, new).await.unwrap());
    }
    let canceled = store.cancel_payment(&ctx, all[4].id).await.unwrap();
    all[4] = canceled;

    let expected = |keep: &dyn Fn(&Payment) -> bool| {
        let mut want: Vec<PaymentId> = all.iter().filter(|p| keep(p)).map(|p| p.id).collect();
        want.sort_by(|x, y| y.cmp(x));
        want
    };
    let everything = store.list_payments(&payment_query(None)).await.unwrap();
    assert_eq!(ids(&everything), expected(&|_| true), "newest first");
    assert_eq!(everything.data.iter().find(|p| p.id == all[4].id), Some(&all[4]));

    let cases: Vec<(PaymentFilter, Keep)> = vec![
        (
            PaymentFilter::Status(PaymentStatus::Succeeded),
            Box::new(|p| p.status == PaymentStatus::Succeeded),
        ),
        (
            PaymentFilter::Status(PaymentStatus::RequiresCapture),
            Box::new(|p| p.status == PaymentStatus::RequiresCapture),
        ),
        (
            PaymentFilter::Status(PaymentStatus::Canceled),
            Box::new(|p| p.status == PaymentStatus::Canceled),
        ),
        (
            PaymentFilter::Status(PaymentStatus::Failed),
            Box::new(|p| p.status == PaymentStatus::Failed),
        ),
        (
            PaymentFilter::Customer(c1.id),
            Box::new(move |p| p.customer == Some(c1.id)),
        ),
        (
            PaymentFilter::Customer(c2.id),
            Box::new(move |p| p.customer == Some(c2.id)),
        ),
        (PaymentFilter::Source(bank.id), Box::new(move |p| p.source == bank.id)),
        (PaymentFilter::Source(a.id), Box::new(move |p| p.source == a.id)),
        (PaymentFilter::Source(c.id), Box::new(move |p| p.source == c.id)),
        (
            PaymentFilter::Destination(b.id),
            Box::new(move |p| p.destination == b.id),
        ),
        (
            PaymentFilter::Destination(c.id),
            Box::new(move |p| p.destination == c.id),
        ),
    ];
    for (filter, keep) in cases {
        let page = store.list_payments(&payment_query(Some(filter.clone()))).await.unwrap();
        assert_eq!(ids(&page), expected(&*keep), "filter {filter:?}");
        assert!(!page.has_more);
    }
    assert_eq!(
        expected(&|p| p.status == PaymentStatus::Canceled).len(),
        1,
        "the plan has one canceled payment"
    );

    // A filter with a limit pages newest first too.
    let q = ListQuery {
        filter: Some(PaymentFilter::Destination(c.id)),
        ..ListQuery::first(2)
    };
    let page = store.list_payments(&q).await.unwrap();
    assert_eq!(ids(&page), expected(&|p| p.destination == c.id)[..2].to_vec());
    assert!(page.has_more);
}

both!(list_payments_cursors, list_payments_cursors_case);
async fn list_payments_cursors_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let bank = open(store, &ctx, "bank", usd(), true).await;
    let shop = open(store, &ctx, "shop", usd(), false).await;
    let mut p = Vec::new();
    for value in 1..=5 {
        p.push(pay(store, &ctx, bank.id, shop.id, value, true).await.unwrap().id);
    }
    let page = move |limit: u32, cursor: Option<Cursor>| {
        let q: ListQuery<PaymentFilter> = ListQuery {
            cursor,
            ..ListQuery::first(limit)
        };
        async move { store.list_payments(&q).await }
    };
    let uuid = |id: PaymentId| id.uuid();

    let first = page(2, None).await.unwrap();
    assert_eq!((ids(&first), first.has_more), (vec![p[4], p[3]], true));
    let second = page(2, Some(Cursor::StartingAfter(uuid(p[3])))).await.unwrap();
    assert_eq!((ids(&second), second.has_more), (vec![p[2], p[1]], true));
    let last = page(2, Some(Cursor::StartingAfter(uuid(p[1])))).await.unwrap();
    assert_eq!((ids(&last), last.has_more), (vec![p[0]], false));
    let beyond = page(2, Some(Cursor::StartingAfter(uuid(p[0])))).await.unwrap();
    assert_eq!((ids(&beyond), beyond.has_more), (vec![], false));

    // `ending_before`: the items just newer than the cursor, still newest first.
    let back = page(2, Some(Cursor::EndingBefore(uuid(p[1])))).await.unwrap();
    assert_eq!((ids(&back), back.has_more), (vec![p[3], p[2]], true));
    let top = page(2, Some(Cursor::EndingBefore(uuid(p[3])))).await.unwrap();
    assert_eq!((ids(&top), top.has_more), (vec![p[4]], false));
    let none_newer = page(2, Some(Cursor::EndingBefore(uuid(p[4])))).await.unwrap();
    assert_eq!((ids(&none_newer), none_newer.has_more), (vec![], false));

    // A cursor must name an object of the listed kind.
    for (cursor, param) in [
        (Cursor::StartingAfter(unknown_uuid()), "starting_after"),
        (Cursor::EndingBefore(unknown_uuid()), "ending_before"),
        (Cursor::StartingAfter(shop.id.uuid()), "starting_after"),
    ] {
        match page(2, Some(cursor)).await {
            Err(StoreError::NotFound { param: Some(got), .. }) if got == param => {}
            other => panic!(
                "expected NotFound({param}) for {cursor:?}, got {:?}",
                other.map(|p| ids(&p))
            ),
        }
    }
}

both!(list_payments_created_range, list_payments_created_range_case);
async fn list_payments_created_range_case(app: &TestApp) {
    let store = app.store().as_ref();
    // Writes at chosen times: the clock is the caller's, carried by the context.
    let t0: u64 = 1_700_000_000_000;
    let at = |ms: u64| WriteContext {
        request_id: "test".into(),
        actor: None,
        now_ms: ms,
        idempotency: None,
        audit: None,
        policy: None,
    };
    let bank = open(store, &at(t0), "bank", usd(), true).await;
    let shop = open(store, &at(t0), "shop", usd(), false).await;
    let mut p = Vec::new();
    for step in 1..=3u64 {
        let made = pay(store, &at(t0 + step * 10_000), bank.id, shop.id, 10, true)
            .await
            .unwrap();
        assert_eq!(made.created, ((t0 + step * 10_000) / 1000) as i64);
        p.push(made.id);
    }
    let secs = |step: i64| (t0 / 1000) as i64 + step * 10;
    let range = move |created: CreatedRange| {
        let q: ListQuery<PaymentFilter> = ListQuery {
            created,
            ..ListQuery::first(100)
        };
        async move { ids(&store.list_payments(&q).await.unwrap()) }
    };
    let r = CreatedRange::default;
    assert_eq!(range(r()).await, vec![p[2], p[1], p[0]]);
    assert_eq!(
        range(CreatedRange {
            gte: Some(secs(2)),
            ..r()
        })
        .await,
        vec![p[2], p[1]]
    );
    assert_eq!(
        range(CreatedRange {
            gt: Some(secs(2)),
            ..r()
        })
        .await,
        vec![p[2]]
    );
    assert_eq!(
        range(CreatedRange {
            lte: Some(secs(2)),
            ..r()
        })
        .await,
        vec![p[1], p[0]]
    );
    assert_eq!(
        range(CreatedRange {
            lt: Some(secs(2)),
            ..r()
        })
        .await,
        vec![p[0]]
    );
    assert_eq!(
        range(CreatedRange {
            gte: Some(secs(2)),
            lte: Some(secs(2)),
            ..r()
        })
        .await,
        vec![p[1]]
    );
    assert_eq!(
        range(CreatedRange {
            gt: Some(secs(1)),
            lt: Some(secs(3)),
            ..r()
        })
        .await,
        vec![p[1]]
    );
    assert_eq!(
        range(CreatedRange {
            gt: Some(secs(3)),
            ..r()
        })
        .await,
        vec![]
    );
    assert_eq!(
        range(CreatedRange {
            lt: Some(secs(1)),
            ..r()
        })
        .await,
        vec![]
    );
    assert_eq!(
        range(CreatedRange {
            gt: Some(secs(2)),
            lt: Some(secs(2)),
            ..r()
        })
        .await,
        vec![]
    );

    // Combined with a filter and a cursor.
    let q = ListQuery {
        filter: Some(PaymentFilter::Destination(shop.id)),
        cursor: Some(Cursor::StartingAfter(p[2].uuid())),
        created: CreatedRange {
            gte: Some(secs(1)),
            ..r()
        },
        limit: 1,
    };
    let page = store.list_payments(&q).await.unwrap();
    assert_eq!((ids(&page), page.has_more), (vec![p[1]], true));
}

both!(api_key_round_trip, api_key_round_trip_case);
async fn api_key_round_trip_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let id = ApiKeyId::from_uuid(unknown_uuid());
    let key = ApiKey {
        id,
        name: "deploy bot".into(),
        prefix: "sk_0123456789".into(),
        role: "developer".into(),
        secret_hash: (0u8..32).collect(),
        created: ctx.now_secs(),
        last_used: Some(ctx.now_secs() - 5),
        expires_at: Some(ctx.now_secs() + 3_600),
        revoked_at: None,
    };
    store.create_api_key(&ctx, key.clone()).await.unwrap();
    let stored = store.api_key(id).await.unwrap().expect("stored key");
    assert_eq!(stored.id, key.id);
    assert_eq!(
        (stored.name.as_str(), stored.prefix.as_str(), stored.role.as_str()),
        ("deploy bot", "sk_0123456789", "developer")
    );
    assert_eq!(stored.secret_hash, key.secret_hash);
    assert_eq!(
        (stored.created, stored.last_used, stored.expires_at),
        (key.created, key.last_used, key.expires_at)
    );
    assert!(!stored.is_expired(ctx.now_secs()));

    let bare = ApiKey {
        id: ApiKeyId::from_uuid(unknown_uuid()),
        last_used: None,
        revoked_at: None,
        expires_at: None,
        ..key
    };
    store.create_api_key(&ctx, bare.clone()).await.unwrap();
    let stored = store.api_key(bare.id).await.unwrap().expect("stored key");
    assert_eq!((stored.last_used, stored.expires_at), (None, None));

    assert!(
        store
            .api_key(ApiKeyId::from_uuid(unknown_uuid()))
            .await
            .unwrap()
            .is_none()
    );
}
