//! Listing in the storage contract: payment filters, `starting_after`/`ending_before` cursors and `created` ranges select and order the same rows on every backend, and so do the newest children of many parents at once (GraphQL's nested lists).

use settle_domain::ids::PaymentId;
use settle_domain::payment::{Payment, PaymentStatus};
use settle_store::records::{EntryFilter, NewRefund, PaymentFilter};
use settle_store::{CreatedRange, Cursor, ListQuery, StoreError, WriteContext};

use super::{amount, ctx, customer, ids, new_payment, open, pay, payment_query, unknown_uuid, usd};
use crate::support::{TestApp, both};

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
        success_status: None,
        policy: None,
        deadline: None,
        trace: None,
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

both!(newest_children_of_many_parents, newest_children_of_many_parents_case);
/// Each parent's newest `first` children in one call, newest first, as its
/// own list gives them; a parent without any has none.
async fn newest_children_of_many_parents_case(app: &TestApp) {
    let (store, ctx) = (app.store().as_ref(), ctx(app));
    let bank = open(store, &ctx, "bank", usd(), true).await;
    let a = open(store, &ctx, "a", usd(), false).await;
    let b = open(store, &ctx, "b", usd(), false).await;
    let idle = open(store, &ctx, "idle", usd(), false).await;
    let mut payments = Vec::new();
    for value in [3, 4, 5] {
        payments.push(pay(store, &ctx, bank.id, a.id, value, true).await.unwrap().id);
    }
    payments.push(pay(store, &ctx, bank.id, b.id, 9, true).await.unwrap().id);
    let accounts = [a.id, b.id, idle.id, bank.id];
    let got = store.entries_of_accounts(&accounts, 2).await.unwrap();
    for account in accounts {
        let q = ListQuery {
            filter: Some(EntryFilter::Account(account)),
            ..ListQuery::first(2)
        };
        let listed: Vec<_> = store
            .list_entries(&q)
            .await
            .unwrap()
            .data
            .iter()
            .map(|e| e.id)
            .collect();
        let window: Vec<_> = got.iter().filter(|e| e.account == account).map(|e| e.id).collect();
        assert_eq!(window, listed, "{account}");
    }
    assert_eq!(got.len(), 2 + 1 + 2, "at most two each");
    assert!(store.entries_of_accounts(&[], 2).await.unwrap().is_empty());

    for _ in 0..3 {
        let new = NewRefund {
            payment: payments[0],
            amount: Some(amount(1)),
            reason: None,
        };
        store.create_refund(&ctx, new).await.unwrap();
    }
    let refunds = store.refunds_of_payments(&payments, 2).await.unwrap();
    let q = ListQuery {
        filter: Some(settle_store::records::RefundFilter::Payment(payments[0])),
        ..ListQuery::first(2)
    };
    let listed: Vec<_> = store
        .list_refunds(&q)
        .await
        .unwrap()
        .data
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(refunds.iter().map(|r| r.id).collect::<Vec<_>>(), listed);
}
