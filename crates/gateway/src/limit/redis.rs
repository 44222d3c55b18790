//! Buckets on Redis, shared by every replica: the GCRA in one Lua script, run atomically in
//! one round trip (`EVALSHA`) on Redis' own clock. A Redis that fails or is slow turns the
//! request over to this process's buckets (DESIGN §12: never a 5xx, never unlimited); the
//! upkeep loop notices when it answers again. Each change of state is logged once.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use anyhow::Context;

use super::{Decision, Key, Limiter};
use portcullis_core::config::rate_limit::RedisUrl;
use portcullis_core::metrics::metrics;

/// How long a request waits for Redis before it is counted here instead: a round trip on a
/// healthy network is far below a millisecond.
pub const TIMEOUT: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// GCRA (ITU-T I.371's virtual scheduling) on `KEYS[1]`, which holds the bucket's theoretical
/// arrival time (TAT) in microseconds of Redis' clock. `ARGV[1]`: the emission interval T in
/// µs; `ARGV[2]`: the capacity (requests + burst). A request passes when `now >= TAT - τ`,
/// τ = T·(capacity−1); it then moves the TAT one T on, and the key expires when the bucket is
/// whole again. Returns {allowed, remaining, µs until reset (allowed: bucket whole; refused:
/// next pass)}. Numbers stay below 2^53 (µs since 1970 is about 2^51), exact in Lua's doubles.
pub const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local tau = interval * (capacity - 1)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if now < tat - tau then
  return {0, 0, tat - tau - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now + tau - tat) / interval), new_tat - now}
";

/// The Redis store: its connection (made by the upkeep loop, kept and re-made by the
/// connection manager), and whether it answered last time.
pub struct RedisStore {
    url: RedisUrl,
    client: ::redis::Client,
    conn: OnceLock<ConnectionManager>,
    up: AtomicBool,
    /// Whether the store's first unreachability was logged.
    warned: AtomicBool,
    script: ::redis::Script,
}

impl RedisStore {
    pub fn new(url: &RedisUrl) -> anyhow::Result<RedisStore> {
        let client = ::redis::Client::open(url.expose())
            .with_context(|| format!("rate_limit.store {url}"))?;
        metrics().rate_limit_store_up.set(0);
        Ok(RedisStore {
            url: url.clone(),
            client,
            conn: OnceLock::new(),
            up: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            script: ::redis::Script::new(GCRA_LUA),
        })
    }

    /// Counts a request on Redis; `None` when Redis can't answer now (the caller counts it
    /// in this process).
    pub async fn check(&self, l: &Limiter, key: Key<'_>) -> Option<Decision> {
        if !self.up.load(Ordering::Relaxed) {
            return None;
        }
        let mut conn = self.conn.get()?.clone();
        let interval = u64::try_from(l.spec.emission_interval().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut call = self.script.key(l.redis_key(key));
        call.arg(interval).arg(l.spec.capacity());
        let answer = tokio::time::timeout(TIMEOUT, call.invoke_async::<(i64, i64, i64)>(&mut conn));
        match answer.await {
            Ok(Ok((allowed, remaining, micros))) => Some(Decision {
                allowed: allowed == 1,
                remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                reset: Duration::from_micros(u64::try_from(micros.max(0)).unwrap_or(0)),
            }),
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed("no answer in time");
                None
            }
        }
    }

    fn failed(&self, why: &str) {
        metrics().rate_limit_store_errors.inc();
        if self.up.swap(false, Ordering::AcqRel) {
            metrics().rate_limit_store_up.set(0);
            tracing::warn!(store = %self.url, error = why, "rate-limit store failed: counting in this process until it answers again");
        }
    }

    /// Upkeep: connects (once), and while Redis is down asks it for a `PING` until it answers.
    pub async fn tend(&self) {
        if self.up.load(Ordering::Relaxed) {
            return;
        }
        let mut conn = match self.conn.get() {
            Some(c) => c.clone(),
            None => match self.connect() {
                Ok(c) => self.conn.get_or_init(|| c).clone(),
                Err(e) => {
                    self.still_down(&e.to_string());
                    return;
                }
            },
        };
        let ping = ::redis::cmd("PING");
        match tokio::time::timeout(TIMEOUT, ping.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => {
                if !self.up.swap(true, Ordering::AcqRel) {
                    self.warned.store(true, Ordering::Relaxed);
                    metrics().rate_limit_store_up.set(1);
                    tracing::info!(store = %self.url, "rate-limit store answers: limits are shared again");
                }
            }
            Ok(Err(e)) => self.still_down(&e.to_string()),
            Err(_) => self.still_down("no answer in time"),
        }
    }

    /// The connection manager, which connects on first use (the `PING` of [`Self::tend`]) and
    /// reconnects by itself after that, each attempt bounded by [`CONNECT_TIMEOUT`]. Made in
    /// the upkeep's runtime, which outlives every request.
    fn connect(&self) -> ::redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        ConnectionManager::new_lazy_with_config(self.client.clone(), config)
    }

    /// A failed probe while down: counted; logged once, before the store was ever up (each
    /// fall from up is logged by [`Self::failed`]).
    fn still_down(&self, why: &str) {
        metrics().rate_limit_store_errors.inc();
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(store = %self.url, error = why, "rate-limit store unreachable: counting in this process until it answers");
        }
    }
}
