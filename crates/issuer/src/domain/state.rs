//! The issuer's shared state: the store, the clock, every realm's directory and keys, and the
//! refresh-rotation queue. Starting (store, template imports, first load), reloading a realm
//! and the periodic refresh live here; handlers reach it as axum state.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::admin::management::{self, BootstrapAdmin};
use super::directory::Directory;
use super::keys::{self, KeyRing};
use super::mail::queue::Mailer;
use super::realm_file;
use super::realm_import;
use super::rotations::Rotations;
use portcullis_core::clock::SharedClock;
use portcullis_core::config::IssuerSettings;
use portcullis_store::{self as store, SharedStore};

/// Shared state of the issuer's handlers. The store is private to `domain`: the HTTP layer
/// calls domain functions and never reaches it.
pub(crate) struct State {
    pub(in crate::domain) store: SharedStore,
    pub(in crate::domain) clock: SharedClock,
    /// `issuer.frontend_url`: the base URL every request's `iss` uses, when configured.
    pub frontend_url: Option<String>,
    pub keys: KeyRing,
    pub(in crate::domain) dirs: ArcSwap<HashMap<String, Arc<Directory>>>,
    pub(in crate::domain) retention_seconds: i64,
    /// Refresh-token rotations, committed in groups.
    pub(in crate::domain) rotations: Rotations,
    /// Serialises reloads for a newer revision, so concurrent refreshes reload a realm once.
    pub(in crate::domain) reload_lock: tokio::sync::Mutex<()>,
    /// The account mails' queue; its sending task runs while the issuer does.
    pub(in crate::domain) mailer: Mailer,
}

impl State {
    /// Opens and migrates the store, imports the configured templates whose realm does not exist
    /// yet (Keycloak's `--import-realm`), and loads every realm's directory and signing keys,
    /// creating a key for a realm that has none.
    /// `admin`: the bootstrap admin of the `master` realm (`management::bootstrap`).
    pub async fn start(
        settings: &IssuerSettings,
        base_dir: &Path,
        clock: SharedClock,
        admin: Option<&BootstrapAdmin>,
    ) -> anyhow::Result<State> {
        let store = store::open(&settings.database, base_dir).await?;
        Self::start_on(store, settings, clock, admin).await
    }

    /// `start` on a store already open (tests pass one that counts its calls).
    pub async fn start_on(
        store: SharedStore,
        settings: &IssuerSettings,
        clock: SharedClock,
        admin: Option<&BootstrapAdmin>,
    ) -> anyhow::Result<State> {
        let now = i64::try_from(clock.now_unix()).unwrap_or(i64::MAX);
        // Replicas starting together on one database import one after another: the second
        // finds the realms there and skips them.
        let one_at_a_time = store.startup_lock().await?;
        for file in &settings.import {
            let realm = realm_file::load(file).map_err(anyhow::Error::msg)?;
            let outcome = realm_import::apply_at(store.as_ref(), &realm, false, now).await?;
            tracing::info!(realm = %realm.realm, file = %file.display(), ?outcome, "realm import");
        }
        management::bootstrap(store.as_ref(), admin, now).await?;
        // Realms stored before the admin roles existed get them now.
        for realm in store.realm_names().await? {
            if management::ensure_realm_management(store.as_ref(), &realm).await? {
                store.bump_realm_revision(&realm).await?;
            }
        }
        drop(one_at_a_time);
        let retention = i64::from(settings.login_event_retention_days) * 86_400;
        store.purge(now.saturating_sub(retention), now).await?;
        let state = State {
            rotations: Rotations::start(Arc::clone(&store)),
            store,
            clock,
            frontend_url: settings.frontend_url.clone(),
            keys: KeyRing::default(),
            dirs: ArcSwap::default(),
            retention_seconds: retention,
            reload_lock: tokio::sync::Mutex::new(()),
            mailer: Mailer::start(),
        };
        for realm in state.store.realm_names().await? {
            state.reload_realm(&realm).await?;
        }
        Ok(state)
    }

    pub fn now(&self) -> i64 {
        i64::try_from(self.clock.now_unix()).unwrap_or(i64::MAX)
    }

    /// The directory of an enabled realm.
    pub fn dir(&self, realm: &str) -> Option<Arc<Directory>> {
        self.dirs.load().get(realm).cloned().filter(|d| d.enabled)
    }

    /// The directory of a realm, enabled or not (the admin API manages disabled realms too).
    pub fn dir_including_disabled(&self, realm: &str) -> Option<Arc<Directory>> {
        self.dirs.load().get(realm).cloned()
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

    /// The directory of a realm, enabled or not, as of the store's current revision (the admin
    /// API's view: another replica's or the CLI's change counts at once).
    pub async fn admin_dir(&self, realm: &str) -> anyhow::Result<Option<Arc<Directory>>> {
        let revision = self.store.realm_revision(realm).await?;
        if let Some(d) = self
            .dir_including_disabled(realm)
            .filter(|d| d.revision >= revision)
        {
            return Ok(Some(d));
        }
        let _one_at_a_time = self.reload_lock.lock().await;
        if self.store.get_realm(realm).await?.is_none() {
            return Ok(None);
        }
        self.reload_realm(realm).await?;
        Ok(self.dir_including_disabled(realm))
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

    /// Re-reads every realm's directory and keys from the store and purges login events past
    /// the retention.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        for realm in self.store.realm_names().await? {
            self.reload_realm(&realm).await?;
        }
        let now = self.now();
        self.store
            .purge(now.saturating_sub(self.retention_seconds), now)
            .await?;
        Ok(())
    }

    /// Makes a new active signing key for an enabled `realm` now and loads it; returns its id.
    pub async fn rotate_keys(&self, realm: &str) -> anyhow::Result<String> {
        let Some(dir) = self.dir(realm) else {
            anyhow::bail!("realm {realm} does not exist");
        };
        let alg = &dir.settings.default_signature_algorithm;
        let kid = keys::rotate(self.store.as_ref(), realm, alg, self.now()).await?;
        self.reload_realm(realm).await?;
        Ok(kid)
    }

    /// The store answers.
    pub async fn ready(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    /// The store itself, for tests that set up or inspect rows directly.
    #[cfg(test)]
    pub fn store(&self) -> &SharedStore {
        &self.store
    }
}
