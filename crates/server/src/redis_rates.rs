//! Rate limits shared by every process through Redis (`REDIS_URL`): one
//! Lua script per check, timed by Redis's own `TIME` so that the
//! processes' clocks never disagree about a bucket, and a sorted set of
//! process heartbeats that tells each process how many share the limits
//! (its fallback when Redis fails is its share of each limit).
//!
//! Keys: `settle:rate:<key id>:<class>` (the bucket's theoretical arrival
//! time in microseconds, expiring when the bucket is full again) and
//! `settle:processes`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use settle_core::admission::{Rate, RateVerdict, SharedRates};
use settle_core::cache::shared::TierError;

use crate::redis_cache::RedisLink;

const PREFIX: &str = "settle:rate:";
const PROCESSES: &str = "settle:processes";

/// GCRA, the same arithmetic as `settle_core::admission::gcra`.
/// ARGV: interval and window in microseconds. Returns allowed (1/0),
/// remaining, reset and retry-after in microseconds.
const CHECK: &str = r"
local interval, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next = tat + interval
if next - now > window then
  return {0, 0, tat - now, next - window - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1)
return {1, math.floor((window - (next - now)) / interval), next - now, 0}
";

/// ARGV: the process's id and how long its beat lasts (ms). Returns how
/// many processes beat within their time. The set itself outlives every
/// beat (10 minutes), whatever interval each process uses. Writing after
/// `TIME` needs Redis 5 or later (effects replication).
const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], 600000)
return redis.call('ZCARD', KEYS[1])
";

/// The Redis store of rate-limit buckets.
pub struct RedisRates {
    link: RedisLink,
    check: redis::Script,
    heartbeat: redis::Script,
}

impl RedisRates {
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            link: RedisLink::new(url, timeout, &settle_core::redis_calls::RATE_LIMITS)?,
            check: redis::Script::new(CHECK),
            heartbeat: redis::Script::new(HEARTBEAT),
        })
    }
}

impl std::fmt::Debug for RedisRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRates")
            .field("in_flight", &self.link.in_flight())
            .finish()
    }
}

fn from_micros(n: i64) -> Duration {
    Duration::from_micros(u64::try_from(n).unwrap_or(0))
}

#[async_trait]
impl SharedRates for RedisRates {
    async fn check(&self, bucket: &str, rate: Rate) -> Result<RateVerdict, TierError> {
        let (interval, window) = rate.spacing_micros();
        let mut call = self.check.prepare_invoke();
        call.key(format!("{PREFIX}{bucket}")).arg(interval).arg(window);
        let (allowed, remaining, reset, retry_after): (i64, i64, i64, i64) = self.link.run(call).await?;
        Ok(RateVerdict {
            allowed: allowed == 1,
            limit: rate.count,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset: from_micros(reset),
            retry_after: from_micros(retry_after),
        })
    }

    async fn heartbeat(&self, process: &str, ttl: Duration) -> Result<u32, TierError> {
        let mut call = self.heartbeat.prepare_invoke();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        call.key(PROCESSES).arg(process).arg(ttl_ms);
        let live: i64 = self.link.run(call).await?;
        Ok(u32::try_from(live).unwrap_or(1))
    }
}

/// The admission options with the shared buckets the configuration asks
/// for.
pub fn admission_options(config: &crate::config::Config) -> anyhow::Result<settle_core::admission::AdmissionOptions> {
    let mut options = config.admission.clone();
    if let Some(url) = &config.redis_url {
        options.rate.shared = Some(Arc::new(RedisRates::new(url, config.redis.timeout)?));
        options.rate.shared_timeout = config.redis.timeout;
        options.rate.shared_cooldown = config.redis.breaker_cooldown;
    }
    Ok(options)
}
