//! Remote JWKS: fetched with reqwest, parsed once per fetch, cached per URI across reloads.
//!
//! Freshness follows `Cache-Control: max-age` clamped to [60 s, 24 h] (5 min when absent).
//! An unknown `kid` refetches at most once per 10 s per URI, so a flood of made-up `kid`s
//! costs the issuer one request per 10 s. When the issuer is unreachable the last good keys
//! are served for up to 24 h past their freshness; a failed fetch never drops them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Mutex;

use super::error::AuthnError;
use super::keys::{KeySet, next_generation};
use portcullis_core::clock::SharedClock;
use portcullis_core::metrics::metrics;

/// Shortest honoured `max-age` in seconds (also what `no-cache` and `no-store` get).
pub const MIN_MAX_AGE: u64 = 60;
/// Longest honoured `max-age` in seconds.
pub const MAX_MAX_AGE: u64 = 24 * 3600;
/// The `max-age` used when the issuer sends none.
const DEFAULT_MAX_AGE: u64 = 300;
/// How long the last good keys are served past their freshness while the issuer is down.
const STALE_FOR: u64 = 24 * 3600;
/// At most one fetch per URI in this many seconds (unknown `kid`s, failures, staleness).
const MIN_REFETCH_INTERVAL: u64 = 10;
/// One fetch, connect to last byte.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of `prefetch_all`: startup must not wait on an issuer that is down.
const PREFETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Larger JWKS bodies are refused (real ones are a few KiB).
const MAX_BODY_BYTES: usize = 512 * 1024;

/// Remote key caches by JWKS URI. One per process; every config generation reuses it.
pub struct JwksRegistry {
    clock: SharedClock,
    client: Option<reqwest::Client>,
    sources: DashMap<String, Arc<RemoteJwks>>,
}

impl std::fmt::Debug for JwksRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let uris: Vec<String> = self.sources.iter().map(|e| e.key().clone()).collect();
        f.debug_struct("JwksRegistry").field("uris", &uris).finish()
    }
}

impl JwksRegistry {
    pub fn new(clock: SharedClock) -> Arc<Self> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            // A redirect could leave https or the configured host; JWKS endpoints don't redirect.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build();
        let client = match client {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the JWKS HTTP client; remote keys will be unavailable");
                None
            }
        };
        Arc::new(Self {
            clock,
            client,
            sources: DashMap::new(),
        })
    }

    /// The cache for `uri`, created on first use; `issuer` labels its metrics.
    pub(crate) fn source(&self, uri: &str, issuer: &str) -> Arc<RemoteJwks> {
        if let Some(s) = self.sources.get(uri) {
            s.issuer.store(Arc::new(issuer.to_string()));
            return s.clone();
        }
        self.sources
            .entry(uri.to_string())
            .or_insert_with(|| {
                Arc::new(RemoteJwks {
                    uri: uri.to_string(),
                    issuer: ArcSwap::from_pointee(issuer.to_string()),
                    client: self.client.clone(),
                    clock: self.clock.clone(),
                    state: ArcSwap::from_pointee(RemoteState::never()),
                    next_attempt_at: AtomicU64::new(0),
                    fetch_lock: Mutex::new(()),
                })
            })
            .clone()
    }

    /// Fetches every registered URI that has no keys yet, for at most 5 s; best effort.
    pub async fn prefetch_all(&self) {
        self.prefetch_all_within(PREFETCH_TIMEOUT).await;
    }

    /// `prefetch_all` with an explicit bound.
    pub async fn prefetch_all_within(&self, timeout: Duration) {
        let sources: Vec<Arc<RemoteJwks>> =
            self.sources.iter().map(|e| e.value().clone()).collect();
        prefetch(sources, timeout).await;
    }
}

/// Fetches the sources that never succeeded, concurrently, within `timeout`.
pub(crate) async fn prefetch(sources: Vec<Arc<RemoteJwks>>, timeout: Duration) {
    let mut tasks = tokio::task::JoinSet::new();
    for s in sources {
        if s.state.load().ever_fetched() {
            continue;
        }
        tasks.spawn(async move {
            let _guard = s.fetch_lock.lock().await;
            if !s.state.load().ever_fetched() && s.claim_attempt(s.clock.now_unix()) {
                s.fetch().await;
            }
        });
    }
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(timeout, all).await.is_err() {
        tracing::warn!("JWKS prefetch did not finish in time; keys will be fetched on demand");
    }
}

struct RemoteState {
    set: Arc<KeySet>,
    /// Keys are fresh before this instant, then served stale until `stale_until`.
    fresh_until: u64,
    /// 0 until the first successful fetch.
    stale_until: u64,
}

impl RemoteState {
    fn never() -> Self {
        Self {
            set: Arc::new(KeySet::empty()),
            fresh_until: 0,
            stale_until: 0,
        }
    }

    fn ever_fetched(&self) -> bool {
        self.stale_until > 0
    }

    fn fresh(&self, now: u64) -> bool {
        now < self.fresh_until
    }

    fn usable(&self, now: u64) -> bool {
        now < self.stale_until
    }
}

/// The key cache of one JWKS URI.
pub(crate) struct RemoteJwks {
    uri: String,
    issuer: ArcSwap<String>,
    client: Option<reqwest::Client>,
    clock: SharedClock,
    state: ArcSwap<RemoteState>,
    /// No fetch starts before this instant (the per-URI rate limit).
    next_attempt_at: AtomicU64,
    /// Held for the length of a fetch, so waiters see its result instead of fetching again.
    fetch_lock: Mutex<()>,
}

impl RemoteJwks {
    pub(crate) fn uri(&self) -> &str {
        &self.uri
    }

    /// The keys now held (maybe empty or stale), without any I/O.
    pub(crate) fn current(&self) -> Arc<KeySet> {
        self.state.load().set.clone()
    }

    /// Takes the rate-limit slot if it is free at `now`.
    fn claim_attempt(&self, now: u64) -> bool {
        let mut next = self.next_attempt_at.load(Ordering::Acquire);
        loop {
            if now < next {
                return false;
            }
            match self.next_attempt_at.compare_exchange(
                next,
                now.saturating_add(MIN_REFETCH_INTERVAL),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(seen) => next = seen,
            }
        }
    }

    /// Keys fit to verify with now: fresh ones, or stale ones while a refresh runs behind.
    pub(crate) async fn usable_set(self: &Arc<Self>) -> Result<Arc<KeySet>, AuthnError> {
        let now = self.clock.now_unix();
        let st = self.state.load_full();
        if st.fresh(now) {
            return Ok(st.set.clone());
        }
        if st.usable(now) {
            // Stale: one background refresh, and this request goes on with what we have.
            if self.claim_attempt(now) {
                let me = Arc::clone(self);
                match tokio::runtime::Handle::try_current() {
                    Ok(h) => {
                        h.spawn(async move {
                            let _guard = me.fetch_lock.lock().await;
                            me.fetch().await;
                        });
                    }
                    Err(_) => {
                        let _guard = me.fetch_lock.lock().await;
                        me.fetch().await;
                    }
                }
            }
            return Ok(self.current());
        }
        // Nothing usable: wait for one fetch (ours or one in flight).
        let _guard = self.fetch_lock.lock().await;
        if !self.state.load().usable(self.clock.now_unix())
            && self.claim_attempt(self.clock.now_unix())
        {
            self.fetch().await;
        }
        let st = self.state.load_full();
        if st.usable(self.clock.now_unix()) {
            Ok(st.set.clone())
        } else {
            Err(AuthnError::JWKS_UNAVAILABLE)
        }
    }

    /// A token names a `kid` we don't have: refetch, unless one ran in the last 10 s.
    pub(crate) async fn refetch_for_unknown_kid(&self) -> Result<Arc<KeySet>, AuthnError> {
        let _guard = self.fetch_lock.lock().await;
        if self.claim_attempt(self.clock.now_unix()) {
            self.fetch().await;
        }
        let st = self.state.load_full();
        if st.usable(self.clock.now_unix()) {
            Ok(st.set.clone())
        } else {
            Err(AuthnError::JWKS_UNAVAILABLE)
        }
    }

    /// One fetch; on success the new keys replace the old, on failure the old stay.
    async fn fetch(&self) -> bool {
        let issuer = self.issuer.load_full();
        let outcome = match &self.client {
            Some(client) => fetch_jwks(client, &self.uri).await,
            None => Err("no HTTP client".to_string()),
        };
        let now = self.clock.now_unix();
        let result = outcome.and_then(|(raw, max_age)| {
            let old = self.state.load_full();
            let generation = if raw == *old.set.raw {
                old.set.generation
            } else {
                next_generation()
            };
            let set = KeySet::parse(Arc::new(raw), generation, 0);
            if set.is_empty() {
                // An empty set would revoke every token; more likely a broken endpoint.
                return Err("no usable signing key in the JWKS".to_string());
            }
            let fresh_until = now.saturating_add(max_age);
            self.state.store(Arc::new(RemoteState {
                set: Arc::new(set),
                fresh_until,
                stale_until: fresh_until.saturating_add(STALE_FOR),
            }));
            Ok(())
        });
        match result {
            Ok(()) => {
                metrics()
                    .jwks_refreshes
                    .with_label_values(&[issuer.as_str(), "success"])
                    .inc();
                tracing::debug!(jwks.uri = %self.uri, issuer = %issuer, "JWKS fetched");
                true
            }
            Err(error) => {
                metrics()
                    .jwks_refreshes
                    .with_label_values(&[issuer.as_str(), "failure"])
                    .inc();
                tracing::warn!(jwks.uri = %self.uri, issuer = %issuer, %error, "JWKS fetch failed; keeping the last good keys");
                false
            }
        }
    }
}

/// GETs and parses one JWKS, with its `max-age` in seconds.
async fn fetch_jwks(client: &reqwest::Client, uri: &str) -> Result<(JwkSet, u64), String> {
    let mut resp = client
        .get(uri)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP status {}", resp.status().as_u16()));
    }
    let max_age = resp
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map_or(DEFAULT_MAX_AGE, cache_max_age);
    if resp
        .content_length()
        .is_some_and(|l| l > MAX_BODY_BYTES as u64)
    {
        return Err("JWKS body too large".to_string());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err("JWKS body too large".to_string());
        }
        body.extend_from_slice(&chunk);
    }
    let set: JwkSet =
        serde_json::from_slice(&body).map_err(|e| format!("JWKS is not a JWK set: {e}"))?;
    Ok((set, max_age))
}

/// Seconds a `Cache-Control` value lets us keep the keys, clamped to
/// [`MIN_MAX_AGE`, `MAX_MAX_AGE`] (60 s to 24 h; 5 min when it names no `max-age`).
pub fn cache_max_age(value: &str) -> u64 {
    let mut age = None;
    for directive in value.split(',') {
        let d = directive.trim();
        let lower = d.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return MIN_MAX_AGE;
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            age = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    age.unwrap_or(DEFAULT_MAX_AGE)
        .clamp(MIN_MAX_AGE, MAX_MAX_AGE)
}
