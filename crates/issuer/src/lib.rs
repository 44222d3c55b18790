//! The embedded OpenID Connect issuer (Keycloak-compatible URLs and realm files).
//!
//! `Issuer::start` opens the store, imports realm templates that don't exist yet, and loads
//! each realm's directory and keys into memory. `Issuer::router` serves Keycloak's paths under
//! `/auth/realms/{realm}/…`; the gateway mounts it at `/auth` and on the internal listener,
//! marking each request with a `Listener` extension.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod admin;
mod authorize;
mod bruteforce;
pub(crate) mod client_auth;
mod cors;
mod credentials;
mod directory;
mod discovery;
pub mod error;
mod grants;
mod introspect;
pub mod keys;
pub(crate) mod login;
mod logout;
pub(crate) mod params;
pub mod realm_file;
pub mod realm_import;
pub(crate) mod redirect;
mod revoke;
mod rotations;
pub mod secrets;
mod sessions;
mod signing;
#[cfg(test)]
mod tests;
mod token;
mod tokens;
pub(crate) mod urls;
mod userinfo;
mod verify;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::{get, post};

pub use directory::{Directory, Grants};
pub use urls::{Bases, Listener};

use portcullis_core::clock::SharedClock;
use portcullis_core::config::IssuerSettings;
use portcullis_store::{self as store, SharedStore};

/// The client address, when the gateway knows it (request extension). Without it the issuer
/// uses the last `X-Forwarded-For` hop, which the gateway itself appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Shared state of the issuer's handlers.
pub(crate) struct State {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub frontend_url: Option<String>,
    pub keys: keys::KeyRing,
    pub dirs: ArcSwap<HashMap<String, Arc<Directory>>>,
    pub retention_seconds: i64,
    /// Refresh-token rotations, committed in groups.
    pub rotations: rotations::Rotations,
    /// Serialises reloads for a newer revision, so concurrent refreshes reload a realm once.
    pub reload_lock: tokio::sync::Mutex<()>,
}

impl State {
    pub fn now(&self) -> i64 {
        i64::try_from(self.clock.now_unix()).unwrap_or(i64::MAX)
    }

    pub fn dir(&self, realm: &str) -> Option<Arc<Directory>> {
        self.dirs.load().get(realm).cloned().filter(|d| d.enabled)
    }

    /// The realm's directory at `revision` or later, reloading it when the one held is older.
    pub async fn dir_at(
        &self,
        realm: &str,
        revision: i64,
    ) -> anyhow::Result<Option<Arc<Directory>>> {
        if let Some(d) = self.dir(realm).filter(|d| d.revision >= revision) {
            return Ok(Some(d));
        }
        let _one_at_a_time = self.reload_lock.lock().await;
        if let Some(d) = self.dir(realm).filter(|d| d.revision >= revision) {
            return Ok(Some(d));
        }
        self.reload_realm(realm).await?;
        Ok(self.dir(realm))
    }

    /// The realm's directory as of the store's current revision (one small query): for grants
    /// that read users from the cache without a statement of their own to carry the revision.
    pub async fn fresh_dir(&self, realm: &str) -> anyhow::Result<Option<Arc<Directory>>> {
        let revision = self.store.realm_revision(realm).await?;
        self.dir_at(realm, revision).await
    }

    /// After a change to a realm's users, groups, roles or clients: bumps its revision for
    /// other issuers and reloads it here.
    pub async fn realm_changed(&self, realm: &str) -> anyhow::Result<()> {
        self.store.bump_realm_revision(realm).await?;
        self.reload_realm(realm).await
    }

    /// Reloads one realm's directory and keys from the store (after import, sync or rotation).
    pub async fn reload_realm(&self, realm: &str) -> anyhow::Result<()> {
        let Some(dir) = Directory::load(self.store.as_ref(), realm).await? else {
            anyhow::bail!("realm {realm} does not exist");
        };
        self.keys
            .load_realm(
                self.store.as_ref(),
                realm,
                &dir.settings.default_signature_algorithm,
                self.now(),
            )
            .await?;
        let mut map = HashMap::clone(&self.dirs.load());
        map.insert(realm.to_string(), Arc::new(dir));
        self.dirs.store(Arc::new(map));
        Ok(())
    }
}

/// The running issuer; cheap to clone.
#[derive(Clone)]
pub struct Issuer {
    state: Arc<State>,
}

impl Issuer {
    /// Opens and migrates the store, imports the configured templates whose realm does not exist
    /// yet (Keycloak's `--import-realm`), and loads every realm's directory and signing keys,
    /// creating a key for a realm that has none.
    pub async fn start(
        settings: &IssuerSettings,
        base_dir: &Path,
        clock: SharedClock,
    ) -> anyhow::Result<Issuer> {
        let store = store::open(&settings.database, base_dir).await?;
        for file in &settings.import {
            let realm = realm_file::load(file).map_err(anyhow::Error::msg)?;
            let outcome = realm_import::apply(store.as_ref(), &realm, false).await?;
            tracing::info!(realm = %realm.realm, file = %file.display(), ?outcome, "realm import");
        }
        let retention = i64::from(settings.login_event_retention_days) * 86_400;
        let now = i64::try_from(clock.now_unix()).unwrap_or(i64::MAX);
        store.purge(now.saturating_sub(retention), now).await?;
        let issuer = Issuer {
            state: Arc::new(State {
                rotations: rotations::Rotations::start(Arc::clone(&store)),
                store,
                clock,
                frontend_url: settings.frontend_url.clone(),
                keys: keys::KeyRing::default(),
                dirs: ArcSwap::default(),
                retention_seconds: retention,
                reload_lock: tokio::sync::Mutex::new(()),
            }),
        };
        for realm in issuer.state.store.realm_names().await? {
            issuer.state.reload_realm(&realm).await?;
        }
        Ok(issuer)
    }

    /// Every Keycloak path under `/auth/realms/{realm}/…`.
    pub fn router(&self) -> Router {
        let p = "/auth/realms/{realm}/protocol/openid-connect";
        Router::new()
            .route(
                "/auth/realms/{realm}/.well-known/openid-configuration",
                get(discovery::openid_configuration),
            )
            .route(&format!("{p}/certs"), get(discovery::certs))
            .route(&format!("{p}/token"), post(token::token))
            .route(
                &format!("{p}/auth"),
                get(authorize::get).post(authorize::post),
            )
            .route(
                &format!("{p}/userinfo"),
                get(userinfo::userinfo).post(userinfo::userinfo),
            )
            .route(
                &format!("{p}/token/introspect"),
                post(introspect::introspect),
            )
            .route(&format!("{p}/revoke"), post(revoke::revoke))
            .route(
                &format!("{p}/logout"),
                get(logout::logout).post(logout::logout),
            )
            // Preflights for unrouted methods never reach a handler: the layer answers them.
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                cors::layer,
            ))
            .with_state(self.state.clone())
    }

    /// The admin API, `/admin/realms/{realm}/users|groups|clients`: for the management
    /// listener only, never the public one.
    pub fn admin_router(&self) -> Router {
        let r = "/admin/realms/{realm}";
        Router::new()
            .route(
                &format!("{r}/users"),
                get(admin::list_users).post(admin::create_user),
            )
            .route(
                &format!("{r}/users/{{id}}"),
                get(admin::get_user).put(admin::update_user),
            )
            .route(
                &format!("{r}/groups"),
                get(admin::list_groups).post(admin::create_group),
            )
            .route(
                &format!("{r}/clients"),
                get(admin::list_clients).post(admin::create_client),
            )
            .route(
                &format!("{r}/clients/{{client_id}}"),
                axum::routing::put(admin::update_client),
            )
            .with_state(self.state.clone())
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
        let Some(dir) = self.state.dir(realm) else {
            anyhow::bail!("realm {realm} does not exist");
        };
        let alg = &dir.settings.default_signature_algorithm;
        let kid = keys::rotate(self.state.store.as_ref(), realm, alg, self.state.now()).await?;
        self.state.reload_realm(realm).await?;
        Ok(kid)
    }

    /// Re-reads every realm's directory and keys from the store (picking up `realm import
    /// --sync`, `keys rotate` or another replica's changes, and dropping keys past their grace)
    /// and purges login events past the retention.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        for realm in self.state.store.realm_names().await? {
            self.state.reload_realm(&realm).await?;
        }
        let now = self.state.now();
        self.state
            .store
            .purge(now.saturating_sub(self.state.retention_seconds), now)
            .await?;
        Ok(())
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

    /// The store answers.
    pub async fn ready(&self) -> bool {
        self.state.store.ping().await.is_ok()
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

/// For `portcullis check`: parses a realm template and checks its references without a
/// database. The error is `file:line:col: message` for JSON errors, else names the realm.
pub fn realm_check(file: &Path) -> Result<realm_file::RealmFile, String> {
    let realm = realm_file::load(file)?;
    realm_import::check_references(&realm).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(realm)
}

/// For `portcullis explain`: every realm's published keys, read from the existing store
/// without creating, migrating, importing or generating anything.
pub async fn published_keys(
    settings: &IssuerSettings,
    base_dir: &Path,
    now: i64,
) -> anyhow::Result<jsonwebtoken::jwk::JwkSet> {
    let store = store::open_with(&settings.database, base_dir, store::Access::ReadOnly).await?;
    keys::read_published(store.as_ref(), now).await
}

/// `portcullis realm import --file F [--sync]`.
pub async fn realm_import(
    settings: &IssuerSettings,
    base_dir: &Path,
    file: &Path,
    sync: bool,
) -> anyhow::Result<realm_import::Outcome> {
    let realm = realm_file::load(file).map_err(anyhow::Error::msg)?;
    let store = store::open(&settings.database, base_dir).await?;
    realm_import::apply(store.as_ref(), &realm, sync).await
}

/// `portcullis realm export --realm R`: a template without password hashes or secrets.
pub async fn realm_export(
    settings: &IssuerSettings,
    base_dir: &Path,
    realm: &str,
) -> anyhow::Result<serde_json::Value> {
    let store = store::open(&settings.database, base_dir).await?;
    Ok(serde_json::to_value(
        realm_import::export(store.as_ref(), realm).await?,
    )?)
}

/// `portcullis keys rotate --realm R`: returns the new key id. A running gateway picks the new
/// key up when it reloads the realm's keys.
pub async fn keys_rotate(
    settings: &IssuerSettings,
    base_dir: &Path,
    realm: &str,
) -> anyhow::Result<String> {
    let now = i64::try_from(portcullis_core::clock::system().now_unix()).unwrap_or(i64::MAX);
    keys_rotate_at(settings, base_dir, realm, now).await
}

/// `keys_rotate` at a given time (tests run on a manual clock).
pub(crate) async fn keys_rotate_at(
    settings: &IssuerSettings,
    base_dir: &Path,
    realm: &str,
    now: i64,
) -> anyhow::Result<String> {
    let store = store::open(&settings.database, base_dir).await?;
    let Some(row) = store.get_realm(realm).await? else {
        anyhow::bail!("realm {realm} does not exist");
    };
    keys::rotate(
        store.as_ref(),
        realm,
        &row.settings.default_signature_algorithm,
        now,
    )
    .await
}
