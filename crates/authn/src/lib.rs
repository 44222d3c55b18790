//! Authentication: bearer JWTs checked against the `[[trust]]` issuers, yielding a `Principal`.
//!
//! The request path is `Authenticator::authenticate`: a verified-token cache hit costs a hash
//! and a map lookup; a miss parses the token, picks the trust block by its (unverified) `iss`,
//! finds the key by `kid` in that issuer's key set, verifies the signature, then the claims.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// The files import one way only (`tools/arch.py` checks it), lowest first: `error`; `trace`,
// `jwt`; `keys`; `jwks`; `source`; `claims`; `cache`; `trust`; then `explain`, which reads the
// `Authenticator` itself.
mod cache;
mod claims;
mod error;
mod explain;
pub mod jwks;
pub mod jwt;
pub mod keys;
mod source;
mod trace;
mod trust;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use error::AuthnError;
pub use explain::{ExplainedPrincipal, TokenExplanation};
pub use jwks::JwksRegistry;
pub use portcullis_core::identity::Principal;
pub use portcullis_core::keys::EmbeddedKeys;
pub use trace::CheckOutcome;

use portcullis_core::clock::SharedClock;
use portcullis_core::config::file::TrustFile;
use portcullis_core::config::{Diagnostics, SourceFile};

use cache::TokenCache;
use trace::Trace;
use trust::Trust;

/// What an `Authenticator` is built with, shared by every generation of the config.
#[derive(Clone)]
pub struct AuthnEnv {
    pub clock: SharedClock,
    /// Remote key caches by JWKS URI; it outlives reloads so keys are not refetched on each.
    pub jwks: Arc<JwksRegistry>,
    /// The embedded issuer's keys, when it runs in this process (`jwks_uri = "embedded"`).
    pub embedded: Option<Arc<dyn EmbeddedKeys>>,
}

/// Default lifetime of a verified-token cache entry (never beyond the token's own `exp`).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// Default bound of the verified-token cache.
pub const DEFAULT_CACHE_ENTRIES: usize = 100_000;

/// Validates bearer tokens against the trust blocks of one config generation.
pub struct Authenticator {
    trusts: Vec<Trust>,
    /// The largest `max_token_bytes` of any trust block: checked before anything is decoded.
    max_token_bytes: usize,
    clock: SharedClock,
    cache: TokenCache,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("trusts", &self.trusts)
            .field("max_token_bytes", &self.max_token_bytes)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Validates every `[[trust]]` block (errors at their `file:line:col` in `diags`) and builds
    /// the authenticator, or `None` when any block is wrong. Remote key sources are registered
    /// in `env.jwks` (reused when already known); nothing is fetched here.
    pub fn build(
        src: &SourceFile,
        trust: &[TrustFile],
        env: &AuthnEnv,
        diags: &mut Diagnostics,
    ) -> Option<Authenticator> {
        let trusts = trust::build_all(src, trust, &env.jwks, env.embedded.as_ref(), diags)?;
        let max_token_bytes = trusts
            .iter()
            .map(|t| t.max_token_bytes)
            .max()
            .unwrap_or(trust::DEFAULT_MAX_TOKEN_BYTES);
        Some(Authenticator {
            trusts,
            max_token_bytes,
            clock: env.clock.clone(),
            cache: TokenCache::new(DEFAULT_CACHE_TTL, DEFAULT_CACHE_ENTRIES),
        })
    }

    /// Replaces the verified-token cache; `max_entries = 0` disables it (benches, debugging).
    pub fn with_cache(mut self, ttl: Duration, max_entries: usize) -> Self {
        self.cache = TokenCache::new(ttl, max_entries);
        self
    }

    /// The issuers this authenticator trusts, in config order.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.trusts.iter().map(|t| &*t.rules.issuer)
    }

    /// Fetches the keys of this generation's remote issuers that have none yet, bounded by
    /// `timeout`; best effort (a failure is logged and counted, and retried on demand).
    pub async fn prefetch(&self, timeout: Duration) {
        let sources = self.trusts.iter().filter_map(|t| t.keys.remote().cloned());
        jwks::prefetch(sources.collect(), timeout).await;
    }

    /// Checks the `Authorization` header value and returns who the bearer token stands for.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<Arc<Principal>, AuthnError> {
        let token = jwt::bearer_token(authorization, self.max_token_bytes)?;
        let now = self.clock.now_unix();
        let cache_key = self.cache.key(token);
        if let Some(key) = &cache_key
            && let Some(hit) = self.cache.get(key, now)
        {
            // Only while the issuer's keys are those that verified it (a rotation revokes).
            let fresh = self
                .trusts
                .get(hit.trust)
                .is_some_and(|t| t.generation_ok(hit.generation));
            if fresh {
                return Ok(hit.principal);
            }
            self.cache.remove(key);
        }
        // A token not in the cache: parse, verify and perhaps fetch the issuer's keys. That
        // future (with the key fetch's HTTP request in it) is boxed: inline, it made the
        // future of every request's authentication, a cache hit included, as large, and the
        // proxy moved it on each call (issue 21).
        Box::pin(self.verify_uncached(token, now, cache_key)).await
    }

    /// The cache miss of [`Self::authenticate`]: verify `token`, then cache who it stands for.
    async fn verify_uncached(
        &self,
        token: &str,
        now: u64,
        cache_key: Option<cache::CacheKey>,
    ) -> Result<Arc<Principal>, AuthnError> {
        jwt::check_charset(token)?;
        let parsed = jwt::parse(token)?;
        let (index, trust) = self.trust_for(&parsed)?;
        trust.precheck(token, &parsed)?;
        let key = trust
            .keys
            .resolve(&parsed.header, trust.hs.as_ref())
            .await?;
        let verified = trust.verify(&parsed, &key, now, &mut Trace::off())?;
        let principal = Arc::new(verified.principal);
        if let Some(key_hash) = cache_key {
            self.cache.insert(
                key_hash,
                &principal,
                index,
                key.generation(),
                &verified.window,
                now,
            );
        }
        Ok(principal)
    }

    fn trust_for(&self, parsed: &jwt::Parsed<'_>) -> Result<(usize, &Trust), AuthnError> {
        let iss = parsed.issuer().ok_or(AuthnError::WRONG_ISSUER)?;
        self.trusts
            .iter()
            .enumerate()
            .find(|(_, t)| *t.rules.issuer == *iss)
            .ok_or(AuthnError::WRONG_ISSUER)
    }

    /// Every check of `token`, step by step, for `portcullis explain` and `/admin/explain`.
    /// Uses the keys already loaded (nothing is fetched); the token itself is never echoed.
    pub fn explain_token(&self, token: &str) -> TokenExplanation {
        explain::explain(self, token.trim())
    }
}
