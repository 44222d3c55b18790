//! The embedded OpenID Connect issuer (Keycloak-compatible URLs and realm files).
//!
//! `Issuer::start` opens the store, imports realm templates that don't exist yet, and loads
//! each realm's directory and keys into memory. `Issuer::router` serves Keycloak's paths under
//! `/auth/realms/{realm}/…`; the gateway mounts it at `/auth` and on the internal listener,
//! marking each request with a `Listener` extension.
//!
//! Two layers, and the arrow between them runs one way, `http` → `domain`:
//! - `http/` is the web side: axum handlers, one per endpoint, that parse what a request
//!   carries (form and query parameters, cookies, client credentials, the base URLs it sees,
//!   the realm it names, through the `http::realm::Realm` extractor), call domain functions,
//!   and render the answer (OAuth error JSON, login and error pages, CORS, redirects).
//! - `domain/` is the issuer itself: the shared `State`, realm directories and keys, grants
//!   (one file each under `domain/grants/`), token minting and verification, credentials and
//!   brute-force protection, sessions, codes, admin writes, realm import and export. It is the
//!   only code that touches the `Store`, and it imports nothing from `http`.
//!
//! `secrets` (hashing, random tokens, constant-time comparison) serves both. The parsers that
//! see hostile bytes are public at stable paths for the fuzz targets: `params::Params`,
//! `client_auth::basic_credentials`, `redirect`, `login::cookie`, `urls`, `realm_file` and
//! `realm_import::check_references`:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::http::HeaderMap;
//! use portcullis_issuer::{client_auth, login, params, realm_file, realm_import, redirect, urls};
//!
//! let p = params::Params::parse(b"grant_type=password&scope=")?;
//! assert_eq!(p.get("grant_type"), Some("password"));
//! assert_eq!(p.get("scope"), None, "empty is absent");
//! let twice = params::Params::parse(b"a=1&a=2").unwrap_err();
//! assert_eq!(twice.description(), "duplicate parameter: a");
//!
//! let headers = HeaderMap::new();
//! assert_eq!(client_auth::basic_credentials(&headers)?, None);
//! assert_eq!(login::cookie(&headers, "PORTCULLIS_SESSION"), None);
//! assert_eq!(urls::client_ip(None, &headers), None);
//! let b = urls::bases(None, &headers, urls::Listener::Public);
//! assert_eq!(b.frontend, "http://localhost/auth");
//!
//! let registered = ["https://app.example/cb".to_string()];
//! assert!(redirect::allowed(&registered, "https://app.example/cb"));
//! let to = redirect::with_params("https://app.example/cb", &[("state", "s")]);
//! assert_eq!(to.as_deref(), Some("https://app.example/cb?state=s"));
//!
//! let file = std::path::Path::new("realm.json");
//! let realm = realm_file::parse(file, r#"{"realm": "r"}"#, &|_| None)?;
//! realm_import::check_references(&realm)?;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod domain;
mod http;
pub mod secrets;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use axum::Router;

use domain::state::State;
use portcullis_core::clock::SharedClock;
use portcullis_core::config::IssuerSettings;

pub use domain::admin::management::BootstrapAdmin;
pub use domain::directory::{Directory, Grants};
pub use domain::offline::{keys_rotate, published_keys, realm_check, realm_export, realm_import};
pub use domain::{error, keys, realm_file, realm_import};
pub use http::urls::{Bases, ClientIp, Listener};
pub use http::{client_auth, login, params, redirect, urls};

/// The running issuer; cheap to clone.
#[derive(Clone)]
pub struct Issuer {
    state: Arc<State>,
}

impl Issuer {
    /// Opens and migrates the store, imports the configured templates whose realm does not exist
    /// yet (Keycloak's `--import-realm`), and loads every realm's directory and signing keys,
    /// creating a key for a realm that has none.
    ///
    /// With `PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD` (and `_USERNAME`, default `temp-admin`) set,
    /// makes the `master` realm and that admin when they do not exist yet (Keycloak's
    /// `KC_BOOTSTRAP_ADMIN_*`); an existing admin's password is never changed.
    pub async fn start(
        settings: &IssuerSettings,
        base_dir: &Path,
        clock: SharedClock,
    ) -> anyhow::Result<Issuer> {
        let admin = BootstrapAdmin::from_env(&|name| std::env::var(name).ok())?;
        Self::start_with(settings, base_dir, clock, admin.as_ref()).await
    }

    /// `start` with the bootstrap admin given rather than read from the environment.
    pub async fn start_with(
        settings: &IssuerSettings,
        base_dir: &Path,
        clock: SharedClock,
        admin: Option<&BootstrapAdmin>,
    ) -> anyhow::Result<Issuer> {
        let state = State::start(settings, base_dir, clock, admin).await?;
        Ok(Issuer {
            state: Arc::new(state),
        })
    }

    /// `start` on a store already open.
    #[cfg(test)]
    pub(crate) async fn start_on(
        store: portcullis_store::SharedStore,
        settings: &IssuerSettings,
        clock: SharedClock,
    ) -> anyhow::Result<Issuer> {
        let state = State::start_on(store, settings, clock, None).await?;
        Ok(Issuer {
            state: Arc::new(state),
        })
    }

    /// Every Keycloak path under `/auth/realms/{realm}/…`.
    pub fn router(&self) -> Router {
        http::router(self.state.clone())
    }

    /// The admin API (Keycloak's Admin REST API subset under `/admin/realms/…` and
    /// `/auth/admin/realms/…`, bearer tokens of the `master` realm or the realm itself) and the
    /// token endpoints admin tools get those tokens from (`/realms/{realm}/protocol/
    /// openid-connect/token`, also under `/auth`): for the management listener only, never
    /// the public one. The `master` realm answers nowhere else.
    pub fn admin_router(&self) -> Router {
        http::admin_router(self.state.clone())
    }

    /// In-process keys for the gateway's `jwks_uri = "embedded"` trust.
    pub fn embedded_keys(&self) -> Arc<dyn portcullis_core::keys::EmbeddedKeys> {
        Arc::new(EmbeddedKeySet {
            state: self.state.clone(),
        })
    }

    /// Makes a new active signing key for `realm` now; the old public key stays in the JWKS for
    /// `keys::RETIRED_KEY_GRACE_SECONDS`. Returns the new key id.
    pub async fn rotate_keys(&self, realm: &str) -> anyhow::Result<String> {
        self.state.rotate_keys(realm).await
    }

    /// Re-reads every realm's directory and keys from the store (picking up `realm import
    /// --sync`, `keys rotate` or another replica's changes, and dropping keys past their grace)
    /// and purges login events past the retention.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        self.state.refresh().await
    }

    /// Runs `refresh` every `every` until the returned task is aborted.
    pub fn spawn_refresh(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = this.refresh().await {
                    tracing::warn!(error = %format!("{e:#}"), "issuer refresh failed");
                }
            }
        })
    }

    /// Follows the changes other replicas announce through the store (PostgreSQL's
    /// `LISTEN`/`NOTIFY`: realm syncs, admin writes, key rotations), until the returned task is
    /// aborted; `None` for a store that announces nothing (SQLite, one node). Call it on the
    /// runtime the issuer's connections live on.
    pub fn spawn_follow(&self) -> Option<tokio::task::JoinHandle<()>> {
        let mut changes = self.state.changes()?;
        let this = self.clone();
        Some(tokio::spawn(async move {
            while let Some(change) = changes.next().await {
                let Err(e) = this.state.follow(change).await else {
                    continue;
                };
                tracing::warn!(error = %format!("{e:#}"), "issuer: following a change failed");
                // A change not applied is not dropped: a full re-read covers it (and whatever
                // else was missed meanwhile), retried with a growing pause until it succeeds,
                // rather than waiting for the periodic refresh. Typical cause: the database
                // just came back and a connection it cut was lent first.
                let mut pause = std::time::Duration::from_millis(200);
                loop {
                    tokio::time::sleep(pause).await;
                    match this
                        .state
                        .follow(portcullis_store::replicas::Change::Resync)
                        .await
                    {
                        Ok(()) => break,
                        Err(e) => tracing::warn!(
                            error = %format!("{e:#}"),
                            "issuer: re-reading after a failed change failed"
                        ),
                    }
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }))
    }

    /// The store answers.
    pub async fn ready(&self) -> bool {
        self.state.ready().await
    }

    #[cfg(test)]
    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }
}

/// The published keys of every realm, read live (a rotation is visible at once).
pub struct EmbeddedKeySet {
    state: Arc<State>,
}

impl portcullis_core::keys::EmbeddedKeys for EmbeddedKeySet {
    fn key_set(&self) -> Arc<jsonwebtoken::jwk::JwkSet> {
        self.state.keys.key_set()
    }

    fn version(&self) -> u64 {
        self.state.keys.version()
    }
}
