//! A provider found by discovery: `{issuer}/.well-known/openid-configuration` fetched with
//! reqwest over rustls (system roots plus `provider_ca`), kept for an hour and served stale
//! while the provider is down; its JWKS fetched the same way, refetched for an unknown `kid`
//! at most once per 10 s. No redirect is followed (an endpoint that moves is an error).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

use super::Failure;

const TIMEOUT: Duration = Duration::from_secs(10);
/// Larger answers are refused (discovery documents and key sets are a few KiB).
const MAX_BODY: usize = 1024 * 1024;
/// Discovery is fetched again after this long.
const DISCOVERY_TTL: u64 = 3600;
/// At most one fetch of each document in this many seconds.
const MIN_REFETCH: u64 = 10;

/// What discovery says (OpenID Connect Discovery §3; RFC 8414 for revocation).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Discovered {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

struct Fetched<T> {
    value: Arc<T>,
    at: u64,
}

pub(super) struct Remote {
    issuer: String,
    http: Option<reqwest::Client>,
    doc: ArcSwapOption<Fetched<Discovered>>,
    jwks: ArcSwapOption<Fetched<JwkSet>>,
    /// One fetch at a time; waiters see its result.
    lock: tokio::sync::Mutex<()>,
    doc_next_try: AtomicU64,
    jwks_next_try: AtomicU64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Remote {
    pub(super) fn new(issuer: &str, ca: Option<&Path>) -> Remote {
        Remote {
            issuer: issuer.to_string(),
            http: client(ca),
            doc: ArcSwapOption::empty(),
            jwks: ArcSwapOption::empty(),
            lock: tokio::sync::Mutex::new(()),
            doc_next_try: AtomicU64::new(0),
            jwks_next_try: AtomicU64::new(0),
        }
    }

    /// The discovery document: cached, refetched when an hour old (the old one serves while
    /// the provider is down).
    pub(super) async fn discovered(&self) -> Result<Arc<Discovered>, Failure> {
        if let Some(d) = self.doc.load_full()
            && now() < d.at + DISCOVERY_TTL
        {
            return Ok(Arc::clone(&d.value));
        }
        let _one = self.lock.lock().await;
        let cached = self.doc.load_full();
        if let Some(d) = &cached
            && now() < d.at + DISCOVERY_TTL
        {
            return Ok(Arc::clone(&d.value));
        }
        if claim(&self.doc_next_try) {
            match self.fetch_discovery().await {
                Ok(d) => {
                    let d = Arc::new(d);
                    self.doc.store(Some(Arc::new(Fetched {
                        value: Arc::clone(&d),
                        at: now(),
                    })));
                    return Ok(d);
                }
                Err(e) => {
                    tracing::warn!(session.provider = %self.issuer, error = ?e, "OpenID discovery failed");
                }
            }
        }
        cached
            .map(|d| Arc::clone(&d.value))
            .ok_or(Failure::Unreachable)
    }

    async fn fetch_discovery(&self) -> Result<Discovered, Failure> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await?;
        let d: Discovered = serde_json::from_slice(&body).map_err(|_| Failure::Malformed)?;
        // OpenID Connect Discovery §4.3: the document is for exactly this issuer.
        if d.issuer != self.issuer {
            tracing::warn!(session.provider = %self.issuer, discovered = %d.issuer, "discovery names another issuer");
            return Err(Failure::Malformed);
        }
        for u in [&d.authorization_endpoint, &d.token_endpoint, &d.jwks_uri]
            .into_iter()
            .chain(d.end_session_endpoint.as_ref())
            .chain(d.revocation_endpoint.as_ref())
        {
            if !url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "https" | "http")) {
                return Err(Failure::Malformed);
            }
        }
        Ok(d)
    }

    /// The provider's keys; `refetch` asks for a fresh copy (an unknown `kid`), at most once
    /// per 10 s.
    pub(super) async fn keys(&self, refetch: bool) -> Result<Arc<JwkSet>, Failure> {
        let cached = self.jwks.load_full();
        if let Some(k) = &cached
            && !refetch
        {
            return Ok(Arc::clone(&k.value));
        }
        let d = self.discovered().await?;
        let _one = self.lock.lock().await;
        let latest = self.jwks.load_full();
        if let (Some(l), Some(c)) = (&latest, &cached)
            && l.at != c.at
        {
            return Ok(Arc::clone(&l.value));
        }
        if claim(&self.jwks_next_try) {
            let fetched = self
                .get(&d.jwks_uri)
                .await
                .and_then(|b| serde_json::from_slice::<JwkSet>(&b).map_err(|_| Failure::Malformed));
            match fetched {
                Ok(set) => {
                    let set = Arc::new(set);
                    self.jwks.store(Some(Arc::new(Fetched {
                        value: Arc::clone(&set),
                        at: now(),
                    })));
                    return Ok(set);
                }
                Err(e) => {
                    tracing::warn!(session.provider = %self.issuer, error = ?e, "provider JWKS fetch failed");
                }
            }
        }
        latest
            .map(|k| Arc::clone(&k.value))
            .ok_or(Failure::Unreachable)
    }

    async fn get(&self, url: &str) -> Result<Bytes, Failure> {
        let http = self.http.as_ref().ok_or(Failure::Unreachable)?;
        let resp = http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|_| Failure::Unreachable)?;
        match resp.status().as_u16() {
            200 => read(resp).await,
            s if s >= 500 => Err(Failure::Unreachable),
            _ => Err(Failure::Malformed),
        }
    }

    pub(super) async fn post(
        &self,
        url: &str,
        body: String,
        basic: Option<String>,
    ) -> Result<(u16, Bytes), Failure> {
        let http = self.http.as_ref().ok_or(Failure::Unreachable)?;
        let mut req = http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        if let Some(b) = basic {
            req = req.header(reqwest::header::AUTHORIZATION, b);
        }
        let resp = req.send().await.map_err(|_| Failure::Unreachable)?;
        let status = resp.status().as_u16();
        Ok((status, read(resp).await?))
    }
}

/// Takes the once-per-10-s fetch slot when it is free.
fn claim(next_try: &AtomicU64) -> bool {
    let t = now();
    let next = next_try.load(Ordering::Acquire);
    t >= next
        && next_try
            .compare_exchange(next, t + MIN_REFETCH, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
}

async fn read(mut resp: reqwest::Response) -> Result<Bytes, Failure> {
    if resp.content_length().is_some_and(|l| l > MAX_BODY as u64) {
        return Err(Failure::Malformed);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| Failure::Unreachable)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failure::Malformed);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// The HTTP client for one provider: system roots plus `ca`, no redirects.
fn client(ca: Option<&Path>) -> Option<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca {
        let certs = std::fs::read(path)
            .ok()
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).ok());
        match certs {
            Some(c) => b = b.tls_certs_merge(c),
            None => {
                tracing::error!(session.provider_ca = %path.display(), "cannot read the provider CA; only the system roots are trusted");
            }
        }
    }
    match b.build() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the session provider's HTTP client");
            None
        }
    }
}
