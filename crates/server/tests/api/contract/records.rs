//! Stored records in the storage contract: accounts, customers and API keys round-trip, references must exist, edits check the version, and a customer in use cannot be deleted.

use std::collections::BTreeMap;

use settle_domain::account::{AccountPatch, NewAccount};
use settle_domain::customer::{CustomerPatch, NewCustomer};
use settle_domain::ids::{AccountId, ApiKeyId, CustomerId};
use settle_domain::metadata::Metadata;
use settle_domain::money::Currency;
use settle_store::records::{AccountFilter, ApiKey};
use settle_store::{ListQuery, StoreError};

use super::{ctx, customer, new_payment, open, reload, unknown_uuid, usd};
use crate::support::{TestApp, both};

fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::parse(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()).unwrap()
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
