use std::sync::atomic::AtomicUsize;

use serde::Serialize;
use tokio::sync::oneshot;

use super::*;

#[derive(Debug, Clone, Serialize, PartialEq)]
struct Thing {
    balance: i64,
}

fn balance(read: &Cached) -> i64 {
    serde_json::from_slice::<serde_json::Value>(&read.json).unwrap()["balance"]
        .as_i64()
        .unwrap()
}

impl Cacheable for Thing {
    const KIND: &'static str = "thing";
    fn version(&self) -> Option<i64> {
        Some(1)
    }
}

fn cache(ttl_ms: u64) -> Arc<ObjectCache> {
    ObjectCache::new(CacheOptions {
        ttl: Duration::from_millis(ttl_ms),
        stale_for: Duration::from_secs(60),
        xfetch_beta: 0.0,
        ..CacheOptions::default()
    })
}

async fn read(cache: &ObjectCache, id: Uuid, balance: i64) -> Cached {
    cache
        .read(id, move || async move { Ok(Some(Thing { balance })) })
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_fill_after_the_invalidation_is_dropped() {
    let cache = cache(60_000);
    let id = Uuid::from_u128(7);
    // A slow reader reads the old balance, then is held back...
    let (release, held) = oneshot::channel::<()>();
    let slow = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            cache
                .read(id, move || async move {
                    let old = Thing { balance: 100 };
                    let _ = held.await;
                    Ok(Some(old))
                })
                .await
        })
    };
    while !cache.in_flight(id) {
        tokio::task::yield_now().await;
    }
    // ...while a writer commits a new balance and invalidates.
    cache.invalidate(&[id]).await;
    release.send(()).unwrap();
    let slow = slow.await.unwrap().unwrap().unwrap();
    assert_eq!(balance(&slow), 100, "the slow reader answers what it read");
    assert_eq!(cache.stats().fills_spoiled.load(Ordering::Relaxed), 1);
    // The next reader does not meet the old state.
    let next = read(&cache, id, 50).await;
    assert_eq!(balance(&next), 50);
    assert_eq!(next.status, CacheStatus::Miss);
    assert_eq!(read(&cache, id, 0).await.status, CacheStatus::Hit);
}

#[tokio::test]
async fn concurrent_misses_read_once() {
    let cache = cache(60_000);
    let id = Uuid::from_u128(8);
    let loads = Arc::new(AtomicUsize::new(0));
    let (release, held) = tokio::sync::watch::channel(false);
    let mut readers = Vec::new();
    for _ in 0..1000 {
        let (cache, loads, mut held) = (Arc::clone(&cache), Arc::clone(&loads), held.clone());
        readers.push(tokio::spawn(async move {
            cache
                .read(id, move || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    let _ = held.wait_for(|go| *go).await;
                    Ok(Some(Thing { balance: 1 }))
                })
                .await
        }));
    }
    while !cache.in_flight(id) {
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    release.send(true).unwrap();
    for reader in readers {
        assert_eq!(balance(&reader.await.unwrap().unwrap().unwrap()), 1);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn stale_is_served_only_when_the_database_cannot_answer() {
    let cache = cache(1);
    let id = Uuid::from_u128(9);
    read(&cache, id, 5).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let down = cache
        .read::<Thing, _, _>(id, || async {
            Err(ServiceError::Store(StoreError::Unavailable("down".into())))
        })
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(down.status, CacheStatus::Stale { .. }));
    assert_eq!(balance(&down), 5);
    // Any other error is the answer.
    let refused = cache
        .read::<Thing, _, _>(id, || async {
            Err(ServiceError::Store(StoreError::Internal("bug".into())))
        })
        .await;
    assert!(refused.is_err());
    // Invalidated entries are never served stale.
    cache.invalidate(&[id]).await;
    let gone = cache
        .read::<Thing, _, _>(id, || async {
            Err(ServiceError::Store(StoreError::Unavailable("down".into())))
        })
        .await;
    assert!(gone.is_err());
}

#[tokio::test]
async fn another_kind_under_the_id_is_not_found() {
    #[derive(Debug, Clone, Serialize)]
    struct Other;
    impl Cacheable for Other {
        const KIND: &'static str = "other";
        fn version(&self) -> Option<i64> {
            None
        }
    }
    let cache = cache(60_000);
    let id = Uuid::from_u128(10);
    read(&cache, id, 1).await;
    let other = cache.read(id, || async { Ok(Some(Other)) }).await.unwrap();
    assert!(other.is_none());
}

#[test]
fn etags_follow_the_representation() {
    assert_eq!(etag_of(Some(3), b"{}"), etag_of(Some(3), b"{}"));
    assert_ne!(
        etag_of(Some(3), b"{\"balance\":1}"),
        etag_of(Some(3), b"{\"balance\":2}")
    );
    assert!(etag_of(Some(3), b"{}").starts_with("\"3-"));
    assert!(!etag_of(None, b"{}").contains('-'));
}
