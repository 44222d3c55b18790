//! Browser sign-in at the gateway (DESIGN §10): the gateway as an OpenID Connect relying party
//! (authorization code + PKCE S256 + `state` + `nonce`) for `session` and `session_or_jwt`
//! routes, and the gateway-owned paths under `/.portcullis/`.
//!
//! The parts, lowest first: `keys` (cookie keys, AEAD sealing), `opened` (cookies
//! already opened), `cookie` (cookies in HTTP),
//! `redirect` (same-origin return URLs), `state` (what cookies hold), `idtoken`, `provider`
//! (the embedded issuer or discovery), `cache` (live sessions, single-flight refresh), `db`
//! (`store = "database"`), `current` (a request's session, refreshed when due), `flow` (sign-in
//! and callback), `assertion` (`X-Portcullis-Assertion`), `endpoints` (the `/.portcullis/`
//! paths), `forward` (forward auth, which decides with the snapshot's routes and policies) and
//! `explain` (a cookie, for `portcullis explain --cookie`).
//! Nothing here knows Pingora: the request path's glue is `proxy::session`.
//!
//! Two lifetimes: a [`SessionConfig`] belongs to one snapshot (settings and cookie keys, re-read
//! on every reload), the [`Runtime`] to the process (the provider's cached discovery and keys,
//! the live sessions, the assertion key).

pub mod assertion;
pub mod cache;
pub mod cookie;
pub mod current;
pub mod db;
pub mod endpoints;
pub mod explain;
pub mod flow;
pub mod forward;
pub mod heard;
pub mod idtoken;
pub mod keys;
pub mod opened;
pub mod provider;
pub mod redirect;
pub mod state;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use dashmap::DashMap;
use http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::embed::EmbeddedIssuer;
use portcullis_core::clock::SharedClock;
use portcullis_core::config::{Config, Diagnostic, Diagnostics, SessionProvider, SessionSettings};
use portcullis_core::keys::EmbeddedKeys;
use portcullis_core::route::{RouteTable, Target};
use provider::Provider;
use redirect::Origin;

/// The gateway-owned path prefix: never routed upstream, on every host.
pub const PREFIX: &str = "/.portcullis/";

/// `[session]` of one snapshot: the settings and the cookie keys read with them.
#[derive(Debug)]
pub struct SessionConfig {
    pub settings: SessionSettings,
    pub keys: keys::Keys,
    /// `[issuer] frontend_url`: the embedded provider's browser-facing base, when fixed.
    pub frontend_url: Option<String>,
    /// `store = "database"`: the issuer's database, where sessions then live.
    pub database: Option<db::Location>,
    /// Session cookies these keys already opened (a reload starts afresh).
    pub opened: opened::Opened,
}

impl SessionConfig {
    /// `[session]` with its keys file read, or `None` (then every `session` route is an error,
    /// each reported at its place with `routes`).
    pub fn load(
        cfg: &Config,
        routes: Option<&RouteTable>,
        diags: &mut Diagnostics,
    ) -> Option<Arc<SessionConfig>> {
        let Some(settings) = &cfg.session else {
            for r in routes.iter().flat_map(|t| t.routes()) {
                if r.auth.takes_session() {
                    diags.push(
                        Diagnostic::file_error(
                            &cfg.path,
                            format!(
                                "route \"{}\" ({}) uses auth = \"{}\" but there is no [session] section",
                                r.name,
                                r.defined_at,
                                r.auth.as_str()
                            ),
                        )
                        .with_hint("add [session] with the provider to sign people in with"),
                    );
                }
            }
            return None;
        };
        if let (SessionProvider::Embedded { realm }, Some(routes)) = (&settings.provider, routes)
            && !routes
                .routes()
                .iter()
                .any(|r| matches!(r.target, Target::EmbeddedIssuer))
        {
            diags.push(
                Diagnostic::file_warning(
                    &cfg.path,
                    format!("session.provider = \"embedded:{realm}\" but no route serves the embedded issuer: browsers can't reach its login page"),
                )
                .with_hint("add a route with prefix = \"/auth\" and upstreams = [\"embedded:issuer\"]"),
            );
        }
        let keys = keys::Keys::load(&settings.cookie_keys, diags)?;
        Some(Arc::new(SessionConfig {
            settings: settings.clone(),
            keys,
            frontend_url: cfg.issuer.as_ref().and_then(|i| i.frontend_url.clone()),
            database: db::location(cfg),
            opened: opened::Opened::default(),
        }))
    }
}

/// What outlives reloads: the provider (its cached discovery and keys), the live sessions,
/// the `state`s already used, the assertion key.
pub struct Runtime {
    pub clock: SharedClock,
    issuer: Option<Arc<EmbeddedIssuer>>,
    embedded_keys: Option<Arc<dyn EmbeddedKeys>>,
    provider: ArcSwapOption<Provider>,
    provider_made: Mutex<()>,
    pub sessions: cache::Sessions,
    databases: db::Databases,
    /// SHA-256 of each `state` seen at the callback, until its sign-in would have expired.
    used_states: DashMap<[u8; 32], u64>,
    pub assertion: Option<assertion::Signer>,
}

impl Runtime {
    pub fn new(
        clock: SharedClock,
        issuer: Option<Arc<EmbeddedIssuer>>,
        embedded_keys: Option<Arc<dyn EmbeddedKeys>>,
    ) -> Arc<Runtime> {
        Arc::new(Runtime {
            clock,
            issuer,
            embedded_keys,
            provider: ArcSwapOption::empty(),
            provider_made: Mutex::new(()),
            sessions: cache::Sessions::default(),
            databases: db::Databases::default(),
            used_states: DashMap::new(),
            assertion: assertion::Signer::new(),
        })
    }

    pub fn now(&self) -> u64 {
        self.clock.now_unix()
    }

    /// The provider of `cfg`, made on first use and again when the settings name another.
    pub fn provider(&self, cfg: &SessionConfig) -> Arc<Provider> {
        let want = provider::made_from(&cfg.settings);
        if let Some(p) = self.provider.load_full()
            && p.made_from == want
        {
            return p;
        }
        let _one = self.provider_made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = self.provider.load_full()
            && p.made_from == want
        {
            return p;
        }
        let p = Arc::new(Provider::new(
            &cfg.settings,
            cfg.frontend_url.clone(),
            self.issuer.clone(),
            self.embedded_keys.clone(),
        ));
        self.provider.store(Some(Arc::clone(&p)));
        p
    }

    /// The database `cfg` keeps sessions in (`store = "database"`), `None` for cookies.
    pub fn db(&self, cfg: &SessionConfig) -> Option<Result<Arc<db::SessionDb>, db::Unavailable>> {
        cfg.database
            .as_ref()
            .map(|at| self.databases.get(at, &self.clock))
    }

    /// Records `state` as used; `false` when it already was (a replayed callback).
    pub fn first_use_of_state(&self, state: &str, until: u64) -> bool {
        let now = self.now();
        if self.used_states.len() > 10_000 {
            self.used_states.retain(|_, exp| *exp > now);
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, state.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        match self.used_states.entry(key) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(v) => {
                v.insert(until);
                true
            }
        }
    }
}

/// One request to a `/.portcullis/` path or a session route, as the session code sees it.
pub struct Req<'a> {
    pub method: &'a http::Method,
    /// The normalized path.
    pub path: &'a str,
    /// The path and query as the client sent them.
    pub target: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub origin: Origin<'a>,
    pub client_ip: Option<IpAddr>,
    /// The peer is one of `forwarded.trusted_proxies`.
    pub trusted_peer: bool,
}

impl Req<'_> {
    /// A browser navigation: GET or HEAD whose `Accept` has `text/html`.
    pub fn is_navigation(&self) -> bool {
        is_navigation(self.method, self.headers)
    }

    pub fn call(&self) -> provider::Call<'_> {
        provider::Call {
            origin: self.origin,
            client_ip: self.client_ip,
        }
    }
}

/// GET or HEAD whose `Accept` has `text/html`.
pub fn is_navigation(method: &http::Method, headers: &HeaderMap) -> bool {
    (method == http::Method::GET || method == http::Method::HEAD)
        && headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

/// A response the session code gives itself.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// For the audit line.
    pub reason: &'static str,
}

impl Reply {
    pub fn new(status: u16, reason: &'static str) -> Reply {
        Reply {
            status,
            headers: vec![(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            body: Bytes::new(),
            reason,
        }
    }

    /// A 302 to `location`.
    pub fn redirect(location: &str, reason: &'static str) -> Reply {
        let mut r = Reply::new(302, reason);
        if let Ok(v) = HeaderValue::from_str(location) {
            r.headers.push((header::LOCATION, v));
        }
        r
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Reply {
        self.headers.push((name, value));
        self
    }

    pub fn cookies(mut self, set: impl IntoIterator<Item = HeaderValue>) -> Reply {
        self.headers
            .extend(set.into_iter().map(|v| (header::SET_COOKIE, v)));
        self
    }

    pub fn json(mut self, body: &serde_json::Value) -> Reply {
        self.body = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        self.headers.push((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
        self
    }

    pub fn html(mut self, body: String) -> Reply {
        self.body = Bytes::from(body);
        self.headers.push((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ));
        // Pages of the gateway are never framed and run no script.
        self.headers.push((
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
        ));
        self
    }

    /// An error in words: an HTML page for a browser navigation, else JSON like every other
    /// refusal of the gateway.
    pub fn error(
        status: u16,
        error: &'static str,
        description: &str,
        reason: &'static str,
        html: bool,
    ) -> Reply {
        let r = Reply::new(status, reason);
        if html {
            r.html(endpoints::page(
                "Sign-in failed",
                &format!(
                    "<p>{}</p><p><a href=\"/\">Start again</a></p>",
                    endpoints::escape(description)
                ),
            ))
        } else {
            r.json(&serde_json::json!({"error": error, "error_description": description}))
        }
    }
}
