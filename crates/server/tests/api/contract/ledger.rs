//! Money rules of the storage contract: payments, holds, captures, cancels and refunds move balances exactly as the ledger says, and a refused move (funds, currency, missing reference) changes nothing.

use settle_domain::DomainError;
use settle_domain::account::Account;
use settle_domain::ids::{AccountId, CustomerId, PaymentId};
use settle_domain::ledger::LedgerEntry;
use settle_domain::metadata::Metadata;
use settle_domain::money::Currency;
use settle_domain::payment::{NewPayment, Payment, PaymentStatus};
use settle_domain::refund::{RefundReason, RefundStatus};
use settle_store::records::{EntryFilter, NewRefund, PaymentFilter, RefundFilter};
use settle_store::{ListQuery, Store, StoreError, WriteContext};

use super::{amount, ctx, ids, new_payment, open, pay, payment_query, reload, unknown_uuid, usd};
use crate::support::{TestApp, both};

/// A usd account holding `value`, funded from a fresh bank that may go negative.
async fn funded(store: &dyn Store, ctx: &WriteContext, name: &str, value: i64) -> Account {
    let bank = open(store, ctx, "bank", usd(), true).await;
    let account = open(store, ctx, name, usd(), false).await;
    pay(store, ctx, bank.id, account.id, value, true).await.unwrap();
    reload(store, account.id).await
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

fn assert_domain(result: Result<impl std::fmt::Debug, StoreError>, check: impl Fn(&DomainError) -> bool, what: &str) {
    match result {
        Err(StoreError::Domain(e)) if check(&e) => {}
        other => panic!("expected {what}, got {other:?}"),
    }
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
