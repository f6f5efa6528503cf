//! The read cache's shared tier on Redis (`REDIS_URL`): one entry per
//! object for every process, a short lease so that one process's read fills
//! it for all, and a generation per object so that a fill that read the
//! database before an invalidation is refused.
//!
//! Keys (`settle:cache:` first): `epoch`; `gen:<id>` (invalidations of the
//! object, kept a while after the last); `<epoch>:obj:<id>` (the entry);
//! `<epoch>:lease:<id>`. Each operation is one Lua script, so one round
//! trip and atomic; the scripts build key names, which a single Redis
//! server allows (not Redis Cluster). One multiplexed connection, which
//! reconnects by itself; it is opened on first use, so Settle starts (and
//! serves, from the database) while Redis is down.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use settle_core::cache::shared::{Lookup, SharedTier, TierError};
use uuid::Uuid;

const PREFIX: &str = "settle:cache:";

/// How long an object's invalidation count outlives its last invalidation:
/// longer than any read could take between reading the count and filling.
const GENERATION_TTL: Duration = Duration::from_secs(600);

const LOOKUP: &str = r"
local p, id = ARGV[1], ARGV[2]
local e = redis.call('GET', p .. 'epoch') or '0'
local v = redis.call('GET', p .. e .. ':obj:' .. id)
if v then return {1, v, 0} end
local g = redis.call('GET', p .. 'gen:' .. id) or '0'
local l = redis.call('SET', p .. e .. ':lease:' .. id, '1', 'NX', 'PX', ARGV[3])
if l then return {0, e .. ':' .. g, 1} end
return {0, e .. ':' .. g, 0}
";

const FILL: &str = r"
local p, id = ARGV[1], ARGV[2]
local e = redis.call('GET', p .. 'epoch') or '0'
local g = redis.call('GET', p .. 'gen:' .. id) or '0'
redis.call('DEL', p .. e .. ':lease:' .. id)
if (e .. ':' .. g) ~= ARGV[3] then return 0 end
redis.call('SET', p .. e .. ':obj:' .. id, ARGV[4], 'PX', ARGV[5])
return 1
";

const INVALIDATE: &str = r"
local p = ARGV[1]
local e = redis.call('GET', p .. 'epoch') or '0'
for i = 3, #ARGV do
  local id = ARGV[i]
  redis.call('INCR', p .. 'gen:' .. id)
  redis.call('PEXPIRE', p .. 'gen:' .. id, ARGV[2])
  redis.call('DEL', p .. e .. ':obj:' .. id)
end
return 1
";

/// One multiplexed connection to Redis, opened on first use and
/// reconnecting by itself, with a count of the calls waiting on it. The
/// cache tier and the rate limits each hold one.
pub(crate) struct RedisLink {
    client: redis::Client,
    connect_timeout: Duration,
    connection: Mutex<Option<ConnectionManager>>,
    /// Calls waiting for Redis now (`/metrics`).
    in_flight: AtomicI64,
    /// The process-wide counters of this link's kind (`/metrics`).
    calls: &'static settle_core::redis_calls::RedisCalls,
}

impl RedisLink {
    /// A link to `url`; nothing is connected until the first call.
    pub(crate) fn new(
        url: &str,
        timeout: Duration,
        calls: &'static settle_core::redis_calls::RedisCalls,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            connect_timeout: timeout.max(Duration::from_millis(100)),
            connection: Mutex::new(None),
            in_flight: AtomicI64::new(0),
            calls,
        })
    }

    /// The connection, opened now if it never was.
    async fn connection(&self) -> Result<ConnectionManager, TierError> {
        if let Some(conn) = self.connection.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(conn);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_number_of_retries(1)
            .set_max_delay(1_000);
        let conn = self
            .client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| TierError(e.to_string()))?;
        self.calls.connection_opened();
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    /// Runs one script call.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, TierError> {
        let _waiting = Waiting::on(&self.in_flight);
        let call = self.calls.start();
        let answer = match self.connection().await {
            Ok(mut conn) => invocation
                .invoke_async::<T>(&mut conn)
                .await
                .map_err(|e| TierError(e.to_string())),
            Err(e) => Err(e),
        };
        call.finish(answer.is_ok());
        answer
    }

    /// Runs one plain command.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, TierError> {
        let _waiting = Waiting::on(&self.in_flight);
        let call = self.calls.start();
        let answer = match self.connection().await {
            Ok(mut conn) => cmd
                .query_async::<T>(&mut conn)
                .await
                .map_err(|e| TierError(e.to_string())),
            Err(e) => Err(e),
        };
        call.finish(answer.is_ok());
        answer
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed).max(0) as u64
    }
}

/// One call counted as waiting on Redis until it ends, however it ends:
/// callers give up on Redis by timeout, and the count must not drift.
struct Waiting<'a>(&'a AtomicI64);

impl<'a> Waiting<'a> {
    fn on(count: &'a AtomicI64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The Redis tier.
pub struct RedisTier {
    link: RedisLink,
    lookup: redis::Script,
    fill: redis::Script,
    invalidate: redis::Script,
}

impl RedisTier {
    /// A tier on `url`; nothing is connected until the first call.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            link: RedisLink::new(url, timeout, &settle_core::redis_calls::CACHE)?,
            lookup: redis::Script::new(LOOKUP),
            fill: redis::Script::new(FILL),
            invalidate: redis::Script::new(INVALIDATE),
        })
    }

    async fn run<T: redis::FromRedisValue>(&self, invocation: redis::ScriptInvocation<'_>) -> Result<T, TierError> {
        self.link.run(invocation).await
    }
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTier")
            .field("in_flight", &self.link.in_flight())
            .finish()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl SharedTier for RedisTier {
    async fn lookup(&self, id: Uuid, lease: Duration) -> Result<Lookup, TierError> {
        let mut call = self.lookup.prepare_invoke();
        call.arg(PREFIX).arg(id.simple().to_string()).arg(millis(lease));
        let (found, value, leased): (i64, Vec<u8>, i64) = self.run(call).await?;
        if found == 1 {
            return Ok(Lookup::Found(Bytes::from(value)));
        }
        Ok(Lookup::Missing {
            generation: String::from_utf8_lossy(&value).into_owned(),
            leased: leased == 1,
        })
    }

    async fn fill(&self, id: Uuid, generation: &str, value: Bytes, ttl: Duration) -> Result<bool, TierError> {
        let mut call = self.fill.prepare_invoke();
        call.arg(PREFIX)
            .arg(id.simple().to_string())
            .arg(generation)
            .arg(value.as_ref())
            .arg(millis(ttl));
        let stored: i64 = self.run(call).await?;
        Ok(stored == 1)
    }

    async fn invalidate(&self, ids: &[Uuid]) -> Result<(), TierError> {
        let mut call = self.invalidate.prepare_invoke();
        call.arg(PREFIX).arg(millis(GENERATION_TTL));
        for id in ids {
            call.arg(id.simple().to_string());
        }
        let _: i64 = self.run(call).await?;
        Ok(())
    }

    fn in_flight(&self) -> u64 {
        self.link.in_flight()
    }

    async fn new_epoch(&self) -> Result<(), TierError> {
        let mut incr = redis::cmd("INCR");
        incr.arg(format!("{PREFIX}epoch"));
        self.link.query::<i64>(&incr).await.map(|_| ())
    }
}

/// The read cache's options with the shared tier the configuration asks for.
pub fn cache_options(config: &crate::config::Config) -> anyhow::Result<settle_core::cache::CacheOptions> {
    let mut options = config.cache.clone();
    if let Some(url) = &config.redis_url {
        let tier = RedisTier::new(url, config.redis.timeout)?;
        options.shared = Some(std::sync::Arc::new(settle_core::cache::shared::Shared::new(
            Box::new(tier),
            config.redis.clone(),
        )));
    }
    Ok(options)
}
