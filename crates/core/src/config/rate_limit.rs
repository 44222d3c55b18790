//! Rate-limit settings (DESIGN §12): a route's or the issuer's `rate_limit = { requests,
//! per_seconds, burst, key }`, the `[rate_limit] store`, their validation with `file:line:col`
//! errors, and the slot where the gateway keeps a route's limiter.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use toml::Spanned;

use crate::config::file::RateLimitFile;
use crate::config::{Diagnostics, SourceFile};

/// Largest `requests` and `burst`: far above any per-key limit that means something, low
/// enough that `requests + burst` and the emission interval never overflow.
pub const MAX_REQUESTS: i64 = 1_000_000;
/// Largest `per_seconds`: a day.
pub const MAX_PER_SECONDS: i64 = 86_400;

/// What a limit counts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateKey {
    /// The token's (or session's) `sub`.
    Principal,
    /// The token's `azp` (route limits) or the OAuth client of the request (issuer limits).
    Client,
    /// The client address of DESIGN §6 (an IPv6 client by its /64).
    Ip,
    /// One bucket for the whole route.
    Route,
}

impl RateKey {
    pub fn as_str(self) -> &'static str {
        match self {
            RateKey::Principal => "principal",
            RateKey::Client => "client",
            RateKey::Ip => "ip",
            RateKey::Route => "route",
        }
    }

    fn parse(s: &str) -> Option<RateKey> {
        match s {
            "principal" => Some(RateKey::Principal),
            "client" => Some(RateKey::Client),
            "ip" => Some(RateKey::Ip),
            "route" => Some(RateKey::Route),
            _ => None,
        }
    }
}

/// A validated limit: a GCRA bucket of `requests + burst` that refills at
/// `requests / per_seconds`, one per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RateLimit {
    pub requests: u32,
    pub per_seconds: u32,
    pub burst: u32,
    pub key: RateKey,
}

impl RateLimit {
    /// Answers a quick run gets: `requests + burst`.
    pub fn capacity(&self) -> u32 {
        self.requests.saturating_add(self.burst).max(1)
    }

    /// Time one request's worth of the bucket takes to refill: `per_seconds / requests`.
    pub fn emission_interval(&self) -> Duration {
        let nanos = u64::from(self.per_seconds) * 1_000_000_000 / u64::from(self.requests.max(1));
        Duration::from_nanos(nanos.max(1))
    }
}

/// Where the buckets live.
#[derive(Clone, PartialEq, Eq)]
pub enum RateStore {
    /// In this process: each replica counts for itself.
    Local,
    /// Shared by every replica on one Redis.
    Redis(RedisUrl),
}

/// A `redis://` URL. It may carry a password, so `Debug` and `Display` show only the host,
/// port and database.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    url: String,
    shown: String,
}

impl RedisUrl {
    /// The full URL, for the Redis client only.
    pub fn expose(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.shown)
    }
}

impl fmt::Debug for RateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateStore::Local => f.write_str("Local"),
            RateStore::Redis(u) => write!(f, "Redis({u})"),
        }
    }
}

/// The process-wide rate-limit settings of `portcullis.toml` (they need a restart to change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub store: RateStore,
    /// `[issuer] rate_limit`: POSTs to the token endpoint and the login form.
    pub issuer: Option<RateLimit>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            store: RateStore::Local,
            issuer: None,
        }
    }
}

/// Checks one `rate_limit = { … }` table. `what` names it in messages ("route \"orders\"",
/// "[issuer]"); `refuse` says why a key can't be used there (`None`: it can).
pub fn check(
    src: &SourceFile,
    f: &Spanned<RateLimitFile>,
    what: &str,
    refuse: impl Fn(RateKey) -> Option<(String, String)>,
    diags: &mut Diagnostics,
) -> Option<RateLimit> {
    let errors_before = diags.errors().count();
    let t = f.get_ref();
    let at = Place {
        src,
        table: f,
        what,
    };
    let requests = at.number(&t.requests, "requests", 1, MAX_REQUESTS, diags);
    let per_seconds = at.number(&t.per_seconds, "per_seconds", 1, MAX_PER_SECONDS, diags);
    let burst = match &t.burst {
        None => Some(0),
        Some(_) => at.number(&t.burst, "burst", 0, MAX_REQUESTS, diags),
    };
    let key = at.key(&refuse, diags);
    if diags.errors().count() > errors_before {
        return None;
    }
    Some(RateLimit {
        requests: requests?,
        per_seconds: per_seconds?,
        burst: burst?,
        key: key?,
    })
}

/// The table being checked, for messages.
struct Place<'a> {
    src: &'a SourceFile,
    table: &'a Spanned<RateLimitFile>,
    what: &'a str,
}

impl Place<'_> {
    /// One whole-number field within `min..=max`; a missing one is reported at the table.
    fn number(
        &self,
        v: &Option<Spanned<i64>>,
        name: &str,
        min: i64,
        max: i64,
        diags: &mut Diagnostics,
    ) -> Option<u32> {
        let what = self.what;
        let Some(v) = v else {
            diags.push(
                self.src
                    .error(self.table.span(), format!("{what}: rate_limit has no {name}"))
                    .with_hint(
                        "write e.g. rate_limit = { requests = 100, per_seconds = 60, burst = 20, key = \"ip\" }",
                    ),
            );
            return None;
        };
        let n = *v.get_ref();
        if n < min || n > max {
            let rule = if min == 0 {
                format!("0 or more, at most {max}")
            } else {
                format!("at least {min} and at most {max}")
            };
            diags.push(self.src.error(
                v.span(),
                format!("{what}: rate_limit.{name} = {n} is out of range: it must be {rule}"),
            ));
            return None;
        }
        u32::try_from(n).ok()
    }

    fn key(
        &self,
        refuse: &impl Fn(RateKey) -> Option<(String, String)>,
        diags: &mut Diagnostics,
    ) -> Option<RateKey> {
        let what = self.what;
        let Some(k) = &self.table.get_ref().key else {
            diags.push(
                self.src
                    .error(self.table.span(), format!("{what}: rate_limit has no key"))
                    .with_hint("key = \"principal\", \"client\", \"ip\" or \"route\""),
            );
            return None;
        };
        let Some(key) = RateKey::parse(k.get_ref()) else {
            diags.push(
                self.src
                    .error(
                        k.span(),
                        format!("{what}: unknown rate_limit key \"{}\"", k.get_ref()),
                    )
                    .with_hint("use \"principal\", \"client\", \"ip\" or \"route\""),
            );
            return None;
        };
        if let Some((why, hint)) = refuse(key) {
            diags.push(
                self.src
                    .error(
                        k.span(),
                        format!("{what}: rate_limit key = \"{}\" {why}", key.as_str()),
                    )
                    .with_hint(hint),
            );
            return None;
        }
        Some(key)
    }
}

/// `[rate_limit] store`: "local", or a `redis://host[:port][/db]` URL.
pub fn check_store(
    src: &SourceFile,
    store: Option<&Spanned<String>>,
    diags: &mut Diagnostics,
) -> RateStore {
    let Some(s) = store else {
        return RateStore::Local;
    };
    let raw = s.get_ref().trim();
    if raw == "local" {
        return RateStore::Local;
    }
    match redis_url(raw) {
        Ok(url) => RateStore::Redis(url),
        Err(why) => {
            diags.push(
                src.error(s.span(), format!("rate_limit.store: {why}"))
                    .with_hint("write \"local\", or \"redis://HOST:PORT\" (optionally /DB, a database number)"),
            );
            RateStore::Local
        }
    }
}

fn redis_url(raw: &str) -> Result<RedisUrl, String> {
    let shown_raw = || {
        // Never echo a password back: cut what precedes '@'.
        match raw.rsplit_once('@') {
            Some((_, host)) => format!("redis://…@{host}"),
            None => raw.to_string(),
        }
    };
    let url = url::Url::parse(raw)
        .map_err(|e| format!("\"{}\" is neither \"local\" nor a URL ({e})", shown_raw()))?;
    match url.scheme() {
        "redis" => {}
        "rediss" => {
            return Err(format!(
                "\"{}\": TLS to Redis (rediss://) is not supported",
                shown_raw()
            ));
        }
        other => {
            return Err(format!(
                "\"{}\": scheme \"{other}\" is not redis://",
                shown_raw()
            ));
        }
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(format!("\"{}\" has no host", shown_raw()));
    };
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u16>().is_err() {
        return Err(format!(
            "\"{}\": the path must be a database number, not \"/{db}\"",
            shown_raw()
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "\"{}\" has a query or fragment; write redis://HOST:PORT[/DB]",
            shown_raw()
        ));
    }
    let port = url.port().unwrap_or(6379);
    let shown = if db.is_empty() {
        format!("redis://{host}:{port}")
    } else {
        format!("redis://{host}:{port}/{db}")
    };
    Ok(RedisUrl {
        url: raw.to_string(),
        shown,
    })
}

/// Where the gateway keeps a route's limiter: set on the first request of each config
/// generation, read without a lock or a reference count after that. `core` knows no limiter
/// type; the gateway names it.
#[derive(Default)]
pub struct LimiterSlot(OnceLock<Arc<dyn Any + Send + Sync>>);

impl LimiterSlot {
    /// The limiter, made by `init` on first use; `None` only if a limiter of another type
    /// was stored (a programming error).
    pub fn get_or_init<T: Any + Send + Sync>(&self, init: impl FnOnce() -> Arc<T>) -> Option<&T> {
        self.0
            .get_or_init(|| init() as Arc<dyn Any + Send + Sync>)
            .downcast_ref::<T>()
    }
}

impl fmt::Debug for LimiterSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LimiterSlot")
    }
}

#[cfg(test)]
mod tests;
