//! Rate limits (DESIGN §12): a GCRA bucket per route and key, kept in this process (`local`)
//! or on Redis for every replica, with this process's buckets as the fallback when Redis fails.
//! A route's limiter lives as long as its limit is unchanged, across config generations.

pub mod local;
pub mod redis;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;

use portcullis_core::config::rate_limit::{RateLimit, RateLimits, RateStore};
use portcullis_core::route::Route;

use local::LocalLimiter;

/// The policy name of `[issuer] rate_limit` in headers and its Redis keys. Route names can't
/// hold '@', so it never meets a route's.
pub const ISSUER_POLICY: &str = "@issuer";

/// What a request is counted by.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// A `sub`, an `azp` or an OAuth client id.
    Text(&'a String),
    /// A client address (IPv6 by its /64: one host holds a whole /64).
    Ip(IpAddr),
    /// The route as a whole.
    Route,
}

/// The bucket every request without its key shares (a principal-keyed route whose caller has
/// none, a token without `azp`): limited together, never unlimited.
pub static NO_KEY: String = String::new();

/// One limit's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Until the bucket is whole again (allowed), or until the next request may pass (refused).
    pub reset: Duration,
}

/// The seconds of a `Retry-After` or `t=`: rounded up, so a client that waits that long passes.
pub fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// One limit (a route's, or the issuer's) and its buckets.
pub struct Limiter {
    pub spec: RateLimit,
    /// The policy's name in the IETF headers (the route's name, or [`ISSUER_POLICY`]).
    pub name: Arc<str>,
    pub local: LocalLimiter,
    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-11 §3): `"name";q=…;w=…`.
    pub policy: HeaderValue,
    /// `portcullis:rl:{name}:`, the prefix of this limit's Redis keys.
    redis_prefix: String,
}

impl Limiter {
    pub fn new(name: &str, spec: RateLimit) -> Limiter {
        Limiter {
            spec,
            name: Arc::from(name),
            local: LocalLimiter::new(&spec),
            policy: policy_header(name, &spec),
            redis_prefix: format!("portcullis:rl:{name}:"),
        }
    }

    /// The `RateLimit` field (draft-ietf-httpapi-ratelimit-headers-11 §4) for a decision:
    /// `"name";r=REMAINING;t=SECONDS`.
    pub fn header(&self, d: &Decision) -> HeaderValue {
        let mut s = String::with_capacity(self.name.len() + 24);
        s.push('"');
        s.push_str(&self.name);
        s.push_str("\";r=");
        push_u64(&mut s, u64::from(d.remaining));
        s.push_str(";t=");
        push_u64(&mut s, ceil_seconds(d.reset));
        HeaderValue::from_maybe_shared(Bytes::from(s))
            .unwrap_or_else(|_| HeaderValue::from_static("\"default\";r=0"))
    }

    /// The Redis key of one bucket: `portcullis:rl:{name}:{key}`.
    pub fn redis_key(&self, key: Key<'_>) -> String {
        let mut k = String::with_capacity(self.redis_prefix.len() + 40);
        k.push_str(&self.redis_prefix);
        match key {
            Key::Text(t) => k.push_str(t),
            Key::Ip(ip) => crate::proxy::forwarded::push_ip(&mut k, ip),
            Key::Route => k.push_str("route"),
        }
        k
    }
}

fn push_u64(s: &mut String, n: u64) {
    use std::fmt::Write as _;
    let _ = write!(s, "{n}");
}

/// `"name";q=REQUESTS;w=PER_SECONDS` plus the burst as a vendor parameter (§3.1 allows them):
/// the sustained rate is the quota, the burst what a quick run gets on top of it.
fn policy_header(name: &str, spec: &RateLimit) -> HeaderValue {
    let mut s = format!("\"{name}\";q={};w={}", spec.requests, spec.per_seconds);
    if spec.burst > 0 {
        s.push_str(&format!(";portcullis-burst={}", spec.burst));
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("\"default\";q=0"))
}

/// The process's limits: the store, the issuer's limit, and every route limiter made so far.
pub struct Limits {
    redis: Option<redis::RedisStore>,
    issuer: Option<Limiter>,
    /// A route's limiter by route name, reused by the next generation when its limit is the
    /// same (its buckets survive a reload), replaced when it changed.
    routes: Mutex<HashMap<Arc<str>, Arc<Limiter>>>,
}

impl Limits {
    pub fn new(settings: &RateLimits) -> anyhow::Result<Limits> {
        let redis = match &settings.store {
            RateStore::Local => None,
            RateStore::Redis(url) => Some(redis::RedisStore::new(url)?),
        };
        metrics_store_up(redis.is_none());
        Ok(Limits {
            redis,
            issuer: settings.issuer.map(|s| Limiter::new(ISSUER_POLICY, s)),
            routes: Mutex::new(HashMap::new()),
        })
    }

    /// The limiter of a route with a `rate_limit` (`None` without one).
    pub fn route<'r>(&self, route: &'r Route) -> Option<&'r Limiter> {
        let spec = route.rate_limit?;
        route
            .limiter
            .get_or_init(|| self.shared_limiter(&route.name, spec))
    }

    fn shared_limiter(&self, name: &Arc<str>, spec: RateLimit) -> Arc<Limiter> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        match routes.get(name) {
            Some(l) if l.spec == spec => Arc::clone(l),
            _ => {
                let l = Arc::new(Limiter::new(name, spec));
                routes.insert(Arc::clone(name), Arc::clone(&l));
                l
            }
        }
    }

    pub fn issuer(&self) -> Option<&Limiter> {
        self.issuer.as_ref()
    }

    /// Counts one request: on Redis when it is configured and answers, else in this process.
    pub async fn check(&self, l: &Limiter, key: Key<'_>) -> Decision {
        if let Some(redis) = &self.redis
            && let Some(d) = redis.check(l, key).await
        {
            // Charged here too when Redis lets it pass, so a fallback starts from this
            // replica's own share instead of a full bucket.
            if d.allowed {
                let _ = l.local.check(key);
            }
            return d;
        }
        l.local.check(key)
    }

    /// Upkeep of the store: connects Redis, and finds out when it answers again.
    pub async fn tend_store(&self) {
        if let Some(redis) = &self.redis {
            redis.tend().await;
        }
    }

    /// Upkeep of the buckets: forgets those that are full again (the memory bound), and
    /// drops the limiters of routes that are gone or changed (`in_use` says which are not).
    pub fn sweep(&self, in_use: impl Fn(&str, &RateLimit) -> bool) {
        let limiters: Vec<Arc<Limiter>> = {
            let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
            routes.retain(|name, l| in_use(name, &l.spec));
            routes.values().cloned().collect()
        };
        for l in limiters.iter().map(|l| &**l).chain(self.issuer.as_ref()) {
            l.local.sweep();
        }
    }
}

/// Upkeep runs every [`TICK`]; buckets are swept every this many ticks.
pub const SWEEP_EVERY_TICKS: u64 = 10;
pub const TICK: Duration = Duration::from_secs(1);

/// The upkeep of [`Limits::tend`] as a Pingora background service, every [`TICK`].
pub struct Upkeep {
    pub limits: Arc<Limits>,
    pub live: Arc<crate::reload::Live>,
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Upkeep {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let mut tick = 0u64;
        loop {
            self.limits.tend_store().await;
            if tick % SWEEP_EVERY_TICKS == SWEEP_EVERY_TICKS - 1 {
                let snap = self.live.snapshot();
                self.limits.sweep(|name, spec| {
                    snap.routes
                        .get(name)
                        .is_some_and(|r| r.rate_limit.as_ref() == Some(spec))
                });
            }
            tick = tick.wrapping_add(1);
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn metrics_store_up(local: bool) {
    if local {
        portcullis_core::metrics::metrics()
            .rate_limit_store_up
            .set(1);
    }
}

#[cfg(test)]
mod tests;
