//! The read cache: single objects (accounts, customers, payments, refunds,
//! events, webhook endpoints) kept in process, bounded by bytes, as the JSON
//! and `ETag` a read answers with.
//!
//! What it promises:
//! - It serves reads only. Money decisions (funds checks, captures, refund
//!   limits) read inside their own write transactions and never come here,
//!   and what a write returns comes from its own transaction.
//! - A committed change drops the entry before the writer hears back
//!   ([`settle_store::commits::ChangeSink`]), here and, through the commit
//!   stream, in every other process; a listener that lost news flushes all.
//! - A reader that read before a change never fills after its invalidation
//!   (see [`guard`]).
//! - Concurrent misses of one id make one database read (single flight);
//!   hot entries are refreshed a little before they expire, at random
//!   (XFetch), so they never all expire at once.
//! - When the database cannot answer, an entry past its time but within
//!   the stale window is served, marked stale with its age.
//! - With a shared tier ([`shared`], Redis), a miss here looks there before
//!   the database, and one process's read fills it for all (a lease).
//!
//! Entries are JSON: what a read answers with, and all a shared tier can
//! hand back.

mod guard;
mod kinds;
pub mod shared;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use rand::Rng;
use serde::Serialize;
use settle_store::StoreError;
use settle_store::commits::ChangeSink;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::ServiceError;
use guard::FillGuard;

/// How the read cache behaves (`SETTLE_CACHE_*`).
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// Off: every read goes to the database (`SETTLE_CACHE=off`).
    pub enabled: bool,
    /// The bound on the JSON held, in bytes (`SETTLE_CACHE_BYTES`).
    pub max_bytes: u64,
    /// How long an entry is served without asking the database, should an
    /// invalidation ever be missed without a resync (`SETTLE_CACHE_TTL_MS`).
    pub ttl: Duration,
    /// How long past `ttl` an entry is kept to be served stale while the
    /// database cannot answer (`SETTLE_CACHE_STALE_MS`).
    pub stale_for: Duration,
    /// XFetch's beta: above 1 refreshes earlier, 0 never early
    /// (`SETTLE_CACHE_XFETCH_BETA`).
    pub xfetch_beta: f64,
    /// Tier 2, shared by every process (Redis with `REDIS_URL`).
    pub shared: Option<Arc<shared::Shared>>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: 64 * 1024 * 1024,
            ttl: Duration::from_secs(60),
            stale_for: Duration::from_secs(300),
            xfetch_beta: 1.0,
            shared: None,
        }
    }
}

/// An object the cache keeps: its JSON and its version make its `ETag`.
pub trait Cacheable: Serialize + Clone + Send + Sync + 'static {
    /// What the object is, stored with it: an id names one object, and a
    /// reader of another kind must not take it for one of its own.
    const KIND: &'static str;

    /// The version `If-Match` compares, for objects edited with it.
    fn version(&self) -> Option<i64>;
}

/// The `ETag` of a representation: `"version-digest"` (or `"digest"` for
/// objects without a version). The digest changes whenever the JSON does
/// (a balance, an expanded object); `If-Match` compares only the version.
pub fn etag_of(version: Option<i64>, json: &[u8]) -> String {
    let digest = Sha256::digest(json);
    let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    match version {
        Some(v) => format!("\"{v}-{short}\""),
        None => format!("\"{short}\""),
    }
}

/// Where a read's answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// From the cache, fresh.
    Hit,
    /// From the database, now cached.
    Miss,
    /// From the cache past its time, because the database could not answer.
    Stale { age: Duration },
    /// The cache is off.
    Off,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Stale { .. } => "stale",
            CacheStatus::Off => "off",
        }
    }
}

/// A read's answer: the object's JSON, its version and `ETag`, and where
/// it came from.
#[derive(Debug, Clone)]
pub struct Cached {
    pub json: Bytes,
    pub version: Option<i64>,
    pub etag: Arc<str>,
    pub status: CacheStatus,
}

struct Entry {
    /// What the object is (its Rust type's name): an id is one object's.
    kind: &'static str,
    json: Bytes,
    version: Option<i64>,
    etag: Arc<str>,
    filled: Instant,
    /// How long the read that filled it took: XFetch refreshes entries that
    /// are slow to rebuild earlier.
    cost: Duration,
}

impl Entry {
    fn new(kind: &'static str, json: Bytes, version: Option<i64>, cost: Duration) -> Arc<Self> {
        let etag = etag_of(version, &json).into();
        Arc::new(Entry {
            kind,
            json,
            version,
            etag,
            filled: Instant::now(),
            cost,
        })
    }

    fn of<T: Cacheable>(object: &T, cost: Duration) -> Arc<Self> {
        let json = Bytes::from(serde_json::to_vec(object).unwrap_or_default());
        Entry::new(T::KIND, json, object.version(), cost)
    }
}

type Loaded = Result<Option<Arc<Entry>>, ServiceError>;
type Flight = Shared<BoxFuture<'static, Loaded>>;

/// Counters shown at `/metrics` (tier `local`).
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub fills: AtomicU64,
    /// Fills dropped because the object changed while it was read.
    pub fills_spoiled: AtomicU64,
    pub evictions: AtomicU64,
    /// Reads that waited for another read of the same id.
    pub coalesced: AtomicU64,
    pub stale_served: AtomicU64,
    pub early_refreshes: AtomicU64,
    pub invalidations: AtomicU64,
    pub flushes: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The cache; one per process, shared by every face.
pub struct ObjectCache {
    options: CacheOptions,
    entries: moka::sync::Cache<Uuid, Arc<Entry>>,
    flights: Arc<Mutex<HashMap<Uuid, (u64, Flight)>>>,
    next_flight: AtomicU64,
    guard: Arc<FillGuard>,
    stats: Arc<CacheStats>,
    shared: Option<Arc<shared::Shared>>,
}

/// What a flight needs to file its result, whoever polls it to the end
/// (the reader that started it may have gone: its client hung up).
#[derive(Clone)]
struct Landing {
    entries: moka::sync::Cache<Uuid, Arc<Entry>>,
    flights: Arc<Mutex<HashMap<Uuid, (u64, Flight)>>>,
    guard: Arc<FillGuard>,
    stats: Arc<CacheStats>,
}

impl std::fmt::Debug for ObjectCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectCache").field("options", &self.options).finish()
    }
}

impl ObjectCache {
    pub fn new(options: CacheOptions) -> Arc<Self> {
        let shared = options.shared.clone();
        let stats = Arc::new(CacheStats::default());
        let evicted = Arc::clone(&stats);
        let entries = moka::sync::Cache::builder()
            .max_capacity(options.max_bytes)
            // What an entry holds beyond its JSON: its bookkeeping, and the
            // map's.
            .weigher(|_id: &Uuid, entry: &Arc<Entry>| u32::try_from(entry.json.len() + 256).unwrap_or(u32::MAX))
            .time_to_live(options.ttl + options.stale_for)
            .eviction_listener(move |_id, _entry, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    bump(&evicted.evictions);
                }
            })
            .build();
        Arc::new(Self {
            options,
            entries,
            flights: Arc::default(),
            next_flight: AtomicU64::new(0),
            guard: Arc::default(),
            stats,
            shared,
        })
    }

    pub fn options(&self) -> &CacheOptions {
        &self.options
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The shared tier, when there is one.
    pub fn shared(&self) -> Option<&shared::Shared> {
        self.shared.as_deref()
    }

    /// Entries held and their weight in bytes (approximate: moka counts
    /// lazily).
    pub fn size(&self) -> (u64, u64) {
        self.entries.run_pending_tasks();
        (self.entries.entry_count(), self.entries.weighted_size())
    }

    /// The object `id` as `load` reads it from the database, through the
    /// cache. `Ok(None)`: there is no such object (never cached).
    pub async fn read<T, F, Fut>(&self, id: Uuid, load: F) -> Result<Option<Cached>, ServiceError>
    where
        T: Cacheable,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, ServiceError>> + Send + 'static,
    {
        let kind = T::KIND;
        if !self.options.enabled {
            return Ok(load()
                .await?
                .map(|object| answer(&Entry::of(&object, Duration::ZERO), CacheStatus::Off)));
        }
        let held = self.entries.get(&id);
        if only_cached_now() {
            return match held {
                Some(entry) => Ok(self.held_answer(&entry, kind)),
                None => Err(ServiceError::NotCached),
            };
        }
        if let Some(entry) = &held {
            let age = entry.filled.elapsed();
            if age < self.options.ttl {
                if !self.refresh_early(age, entry.cost) {
                    bump(&self.stats.hits);
                    return Ok(of_kind(entry, kind, CacheStatus::Hit));
                }
                bump(&self.stats.early_refreshes);
            }
        }
        bump(&self.stats.misses);
        match self.flight(id, load).await {
            Ok(Some(entry)) => Ok(of_kind(&entry, kind, CacheStatus::Miss)),
            Ok(None) => Ok(None),
            // Refreshing early may have failed while what is held is
            // still fresh; otherwise it is served stale.
            Err(e) => match held {
                Some(entry) if unavailable(&e) => Ok(self.held_answer(&entry, kind)),
                _ => Err(e),
            },
        }
    }

    /// What is held, without the database: fresh, or stale with its age.
    fn held_answer(&self, entry: &Arc<Entry>, kind: &'static str) -> Option<Cached> {
        let age = entry.filled.elapsed();
        if age < self.options.ttl {
            bump(&self.stats.hits);
            return of_kind(entry, kind, CacheStatus::Hit);
        }
        bump(&self.stats.stale_served);
        of_kind(entry, kind, CacheStatus::Stale { age })
    }

    /// XFetch: refresh now, before the entry expires, with a probability
    /// that grows as expiry nears and with the cost of the refresh.
    fn refresh_early(&self, age: Duration, cost: Duration) -> bool {
        if self.options.xfetch_beta <= 0.0 {
            return false;
        }
        let draw: f64 = rand::rng().random_range(f64::MIN_POSITIVE..1.0);
        let ahead = cost.as_secs_f64() * self.options.xfetch_beta * -draw.ln();
        age.as_secs_f64() + ahead >= self.options.ttl.as_secs_f64()
    }

    /// Joins the read of `id` in flight, or starts one.
    async fn flight<T, F, Fut>(&self, id: Uuid, load: F) -> Loaded
    where
        T: Cacheable,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, ServiceError>> + Send + 'static,
    {
        // Decided under the lock, awaited outside it.
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, flight)) = flights.get(&id) {
                bump(&self.stats.coalesced);
                flight.clone()
            } else {
                let number = self.next_flight.fetch_add(1, Ordering::Relaxed);
                // Taken before the read begins: an invalidation after this
                // point spoils the fill.
                let ticket = self.guard.ticket();
                let read = load();
                let landing = Landing {
                    entries: self.entries.clone(),
                    flights: Arc::clone(&self.flights),
                    guard: Arc::clone(&self.guard),
                    stats: Arc::clone(&self.stats),
                };
                let shared = self.shared.clone();
                let ttl = self.options.ttl;
                let flight = async move {
                    let loaded = match shared {
                        Some(shared) => through_shared(&shared, id, ttl, read).await,
                        None => database(read).await,
                    };
                    landing.land(id, number, ticket, &loaded);
                    loaded
                }
                .boxed()
                .shared();
                flights.insert(id, (number, flight.clone()));
                flight
            }
        };
        flight.await
    }

    /// Drops `ids` here: they changed.
    fn drop_local(&self, ids: &[Uuid]) {
        for id in ids {
            self.guard.invalidate(*id);
            self.entries.invalidate(id);
            // A read in flight may have begun before the change: later
            // readers start their own.
            self.flights.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
            bump(&self.stats.invalidations);
        }
    }

    /// Drops `ids` here and in the shared tier: they changed.
    pub async fn invalidate(&self, ids: &[Uuid]) {
        self.drop_local(ids);
        if let Some(shared) = &self.shared {
            shared.invalidate(ids).await;
        }
    }

    /// Drops everything held in this process (changes may have gone
    /// unheard here).
    pub fn flush_all(&self) {
        self.guard.flush();
        self.entries.invalidate_all();
        self.flights.lock().unwrap_or_else(|e| e.into_inner()).clear();
        bump(&self.stats.flushes);
    }

    /// Whether a read of `id` is in flight: lets a test hold a read back
    /// while a write goes by.
    pub fn in_flight(&self, id: Uuid) -> bool {
        self.flights.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&id)
    }
}

/// The database's answer as an entry.
async fn database<T: Cacheable>(read: impl Future<Output = Result<Option<T>, ServiceError>>) -> Loaded {
    let started = Instant::now();
    let object = read.await?;
    Ok(object.map(|object| Entry::of(&object, started.elapsed())))
}

/// A miss here: the shared tier first; on a miss there, the database,
/// read by the one process holding the lease while the others wait a
/// little for its fill. Whatever the shared tier does, the database
/// answers when it cannot.
async fn through_shared<T: Cacheable>(
    shared: &shared::Shared,
    id: Uuid,
    ttl: Duration,
    read: impl Future<Output = Result<Option<T>, ServiceError>>,
) -> Loaded {
    let started = Instant::now();
    let give_up = started + shared.options.lease;
    let mut waited = false;
    let generation = loop {
        match shared.lookup(id).await {
            Some(shared::Lookup::Found(value)) => {
                if let Some((kind, version, json)) = shared::decode(&value)
                    && let Some(kind) = known_kind(&kind)
                {
                    bump(&shared.stats.hits);
                    return Ok(Some(Entry::new(kind, json, version, started.elapsed())));
                }
                break None;
            }
            Some(shared::Lookup::Missing { generation, leased }) => {
                if leased || Instant::now() >= give_up {
                    bump(&shared.stats.misses);
                    break Some(generation);
                }
                if !waited {
                    waited = true;
                    bump(&shared.stats.lease_waits);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            None => break None,
        }
    };
    let loaded = database(read).await?;
    if let (Some(generation), Some(entry)) = (generation, &loaded) {
        let value = shared::encode(entry.kind, entry.version, &entry.json);
        shared.fill(id, &generation, value, ttl).await;
    }
    Ok(loaded)
}

/// The kinds the cache keeps, by their names in the shared tier (a name
/// from elsewhere is not trusted to be one of ours).
fn known_kind(name: &str) -> Option<&'static str> {
    kinds::NAMES.iter().copied().find(|k| *k == name)
}

impl Landing {
    /// Files what a flight read, unless the object changed meanwhile, and
    /// retires the flight.
    fn land(&self, id: Uuid, number: u64, ticket: u64, loaded: &Loaded) {
        // Filed before the flight retires: a reader arriving in between
        // finds one or the other, never neither (which would read again).
        if let Ok(Some(entry)) = loaded {
            self.entries.insert(id, Arc::clone(entry));
            bump(&self.stats.fills);
            if self.guard.spoiled(id, ticket) {
                self.entries.invalidate(&id);
                bump(&self.stats.fills_spoiled);
            }
        }
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights.get(&id).is_some_and(|(n, _)| *n == number) {
            flights.remove(&id);
        }
    }
}

#[async_trait::async_trait]
impl ChangeSink for ObjectCache {
    async fn changed(&self, ids: &[Uuid]) {
        self.invalidate(ids).await;
    }

    fn flush(&self) {
        self.flush_all();
        if let Some(shared) = &self.shared {
            shared.flush();
        }
    }

    fn missed(&self) {
        self.flush_all();
    }
}

/// The entry as an answer.
fn answer(entry: &Entry, status: CacheStatus) -> Cached {
    Cached {
        json: entry.json.clone(),
        version: entry.version,
        etag: Arc::clone(&entry.etag),
        status,
    }
}

/// The entry as an answer for a reader of `kind`. An id is generated once,
/// for one object of one kind, so an entry of another kind under it (a
/// client that put a payment's id behind a customer's prefix) proves there
/// is no object of `kind` with this id: `None`, the database's answer too.
fn of_kind(entry: &Entry, kind: &str, status: CacheStatus) -> Option<Cached> {
    (entry.kind == kind).then(|| answer(entry, status))
}

tokio::task_local! {
    static ONLY_CACHED: ();
}

/// Runs `work` with reads answered from the cache alone, fresh or stale,
/// and refused ([`ServiceError::NotCached`]) when nothing is held: what a
/// single read gets under overload instead of a place in the database's
/// queue.
pub async fn only_cached<F: Future>(work: F) -> F::Output {
    ONLY_CACHED.scope((), work).await
}

/// Whether the running request may only read the cache.
pub fn only_cached_now() -> bool {
    ONLY_CACHED.try_with(|()| ()).is_ok()
}

/// Errors worth serving a stale entry for: the database cannot answer now.
fn unavailable(e: &ServiceError) -> bool {
    matches!(e, ServiceError::Store(StoreError::Unavailable(_)))
}

#[cfg(test)]
mod tests;
