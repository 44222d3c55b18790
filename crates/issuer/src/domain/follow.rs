//! Following the other replicas on one PostgreSQL database: each change they announce
//! (`portcullis_store::replicas::Change`) reloads what this issuer holds of it, so a realm
//! sync, an admin write or a key rotation elsewhere counts here within moments. The periodic
//! `State::refresh` stays as the safety net, and a listener that reconnected (notifications
//! may have been lost meanwhile) asks for the same full re-read at once.

use portcullis_store::replicas::{Change, Changes};

use super::state::State;

impl State {
    /// The store's changes, when it announces them (PostgreSQL); subscribing starts the
    /// listener on the current runtime.
    pub fn changes(&self) -> Option<Changes> {
        self.store.changes()
    }

    /// Applies one change heard from the store.
    pub async fn follow(&self, change: Change) -> anyhow::Result<()> {
        match change {
            // Reloaded only when the store's revision is past the one held: this issuer's own
            // writes (already reloaded) cost one small query.
            Change::Realm(realm) => self.admin_dir(&realm).await.map(|_| ()),
            Change::Keys(realm) => self.reload_realm(&realm).await,
            Change::Resync => self.refresh().await,
            // The gateway's sessions are the gateway's to follow.
            Change::GatewaySession(_) | Change::GatewaySessionsOf(_) => Ok(()),
        }
    }
}
