//! Persistent state of the embedded issuer behind one trait: SQLite and PostgreSQL.
//!
//! Business code talks to `dyn Store` only. Both backends run the same SQL text (SQLite
//! accepts PostgreSQL's `$N` placeholders), generated once by `sql::impl_store!`, so the two
//! cannot drift; each backend file owns only its connection setup and migrations.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod decode;
mod held;
mod model;
pub mod observe;
pub mod postgres;
pub mod replicas;
mod rotation;
mod sql;
pub mod sqlite;
/// Fixtures for tests in this crate and the crates above it (feature `testing`).
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_accounts;
#[cfg(test)]
mod tests_admin;

use std::path::Path;
use std::sync::Arc;

pub use model::*;

/// Everything the issuer persists. Methods are small and do no policy: the issuer decides.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap reachability check for readiness.
    async fn ping(&self) -> anyhow::Result<()>;

    // Realms.
    async fn realm_names(&self) -> anyhow::Result<Vec<String>>;
    async fn get_realm(&self, name: &str) -> anyhow::Result<Option<RealmRow>>;
    /// Inserts the realm, or updates its settings when it exists.
    async fn put_realm(&self, realm: &RealmRow) -> anyhow::Result<()>;
    /// The realm's revision (0 for a realm never changed, or none).
    async fn realm_revision(&self, name: &str) -> anyhow::Result<i64>;
    /// Marks a change to the realm's users, groups, roles or clients, once it is complete:
    /// issuers holding an older directory reload it (see `rotate_live_families`).
    async fn bump_realm_revision(&self, name: &str) -> anyhow::Result<()>;

    // Users.
    async fn get_user(&self, realm: &str, id: &str) -> anyhow::Result<Option<UserRow>>;
    async fn user_by_username(
        &self,
        realm: &str,
        username: &str,
    ) -> anyhow::Result<Option<UserRow>>;
    async fn list_users(&self, realm: &str) -> anyhow::Result<Vec<UserRow>>;
    /// Inserts or updates (matched by realm + username). A `None` hash keeps the stored one.
    async fn put_user(&self, user: &UserRow) -> anyhow::Result<()>;
    async fn user_groups(&self, user_id: &str) -> anyhow::Result<Vec<String>>;
    async fn set_user_groups(&self, user_id: &str, paths: &[String]) -> anyhow::Result<()>;
    async fn user_roles(&self, user_id: &str) -> anyhow::Result<Vec<RoleRef>>;
    async fn set_user_roles(&self, user_id: &str, roles: &[RoleRef]) -> anyhow::Result<()>;

    // Groups and roles (the realm's directory; read whole, written during import).
    async fn list_groups(&self, realm: &str) -> anyhow::Result<Vec<GroupRow>>;
    async fn put_group(&self, group: &GroupRow) -> anyhow::Result<()>;
    async fn set_group_roles(
        &self,
        realm: &str,
        path: &str,
        roles: &[RoleRef],
    ) -> anyhow::Result<()>;
    async fn list_group_roles(&self, realm: &str) -> anyhow::Result<Vec<(String, RoleRef)>>;
    async fn list_roles(&self, realm: &str) -> anyhow::Result<Vec<RoleRef>>;
    async fn put_role(&self, realm: &str, role: &RoleRef) -> anyhow::Result<()>;
    async fn set_role_composites(
        &self,
        realm: &str,
        parent: &RoleRef,
        children: &[RoleRef],
    ) -> anyhow::Result<()>;
    /// Every (parent, child) composite edge of the realm.
    async fn list_composites(&self, realm: &str) -> anyhow::Result<Vec<(RoleRef, RoleRef)>>;

    // Clients.
    async fn list_clients(&self, realm: &str) -> anyhow::Result<Vec<ClientRow>>;
    /// Inserts or updates (matched by realm + clientId). A `None` secret hash keeps the stored one.
    async fn put_client(&self, client: &ClientRow) -> anyhow::Result<()>;

    // What the admin API changes beyond the directory's upserts (sql/admin.rs).
    /// Deletes the user of `realm` with their memberships, role mappings and brute-force
    /// counter, ending their sessions and revoking their refresh tokens. False when there was no
    /// such user.
    async fn delete_user(&self, realm: &str, id: &str) -> anyhow::Result<bool>;
    async fn add_user_group(&self, user_id: &str, path: &str) -> anyhow::Result<()>;
    async fn remove_user_group(&self, user_id: &str, path: &str) -> anyhow::Result<()>;
    async fn add_user_roles(&self, user_id: &str, roles: &[RoleRef]) -> anyhow::Result<()>;
    async fn remove_user_roles(&self, user_id: &str, roles: &[RoleRef]) -> anyhow::Result<()>;
    /// The users of `realm` in the group `path` (directly), by username.
    async fn group_members(&self, realm: &str, path: &str) -> anyhow::Result<Vec<UserRow>>;
    /// The users of `realm` holding `role` directly, by username.
    async fn role_members(&self, realm: &str, role: &RoleRef) -> anyhow::Result<Vec<UserRow>>;
    /// Moves the group at `from`, with its subgroups, memberships and role mappings, to
    /// `to.path` (a rename, a new parent or both) and sets its name and parent; its id stays.
    async fn move_group(&self, realm: &str, from: &str, to: &GroupRow) -> anyhow::Result<()>;
    /// Deletes the group `path` and its subgroups with their memberships and role mappings.
    async fn delete_group(&self, realm: &str, path: &str) -> anyhow::Result<()>;
    /// Every role of the realm with its description.
    async fn list_role_rows(&self, realm: &str) -> anyhow::Result<Vec<RoleRow>>;
    /// Inserts the role, or sets its description when it exists.
    async fn put_role_row(&self, realm: &str, role: &RoleRow) -> anyhow::Result<()>;
    /// Deletes the role, its composite edges (either side) and every user and group mapping.
    async fn delete_role(&self, realm: &str, role: &RoleRef) -> anyhow::Result<()>;
    /// Deletes the client with its roles (their composites and mappings) and its
    /// service-account user, and revokes its refresh tokens.
    async fn delete_client(&self, realm: &str, client_id: &str) -> anyhow::Result<()>;
    /// The user's sessions in `realm` that were not ended (the issuer judges liveness).
    async fn user_sessions(&self, realm: &str, user_id: &str) -> anyhow::Result<Vec<SessionRow>>;
    /// The clients holding unrevoked refresh tokens of a session.
    async fn session_clients(&self, session_id: &str) -> anyhow::Result<Vec<String>>;
    /// Ends every session of the user in `realm` and revokes all their refresh tokens.
    async fn end_user_sessions(&self, realm: &str, user_id: &str) -> anyhow::Result<()>;
    async fn add_admin_event(&self, event: &AdminEvent) -> anyhow::Result<()>;
    async fn list_admin_events(&self, realm: &str) -> anyhow::Result<Vec<AdminEvent>>;

    // Signing keys.
    async fn list_keys(&self, realm: &str) -> anyhow::Result<Vec<KeyRow>>;
    /// Stores `key` as the realm's only active key; the others are retired at `key.created_at`.
    async fn add_active_key(&self, key: &KeyRow) -> anyhow::Result<()>;
    /// `add_active_key` unless the realm has an active key of `key.alg` already, or (on
    /// PostgreSQL) another replica is adding one right now (advisory lock): replicas that all
    /// find a realm without a key make one between them. True when `key` was added.
    async fn ensure_active_key(&self, key: &KeyRow) -> anyhow::Result<bool> {
        if self
            .list_keys(&key.realm)
            .await?
            .iter()
            .any(|k| k.active && k.alg == key.alg)
        {
            return Ok(false);
        }
        self.add_active_key(key).await?;
        Ok(true)
    }

    // Replicas (replicas.rs).
    /// What other processes on the same database change, as they commit it: PostgreSQL's
    /// `LISTEN`/`NOTIFY`, heard on a connection of its own from the first call on (call it on
    /// the runtime that should run the listener). `None` for SQLite, the one-node store.
    fn changes(&self) -> Option<replicas::Changes> {
        None
    }
    /// Taken by a process for its start-up imports: replicas starting together on one
    /// PostgreSQL database import one after another (a session advisory lock); nothing to
    /// wait for on SQLite.
    async fn startup_lock(&self) -> anyhow::Result<replicas::StartupGuard> {
        Ok(replicas::StartupGuard::none())
    }

    // SSO sessions.
    async fn create_session(&self, session: &SessionRow) -> anyhow::Result<()>;
    async fn session_by_id(&self, id: &str) -> anyhow::Result<Option<SessionRow>>;
    async fn session_by_cookie(&self, cookie_hash: &str) -> anyhow::Result<Option<SessionRow>>;
    async fn touch_session(&self, id: &str, now: i64) -> anyhow::Result<()>;
    /// Ends the session and revokes every refresh-token family bound to it.
    async fn end_session(&self, id: &str) -> anyhow::Result<()>;

    // Accounts (issue 17).
    /// The user's pending required actions (Keycloak's names), in the order set.
    async fn user_required_actions(&self, user_id: &str) -> anyhow::Result<Vec<String>>;
    async fn set_user_required_actions(
        &self,
        user_id: &str,
        actions: &[String],
    ) -> anyhow::Result<()>;
    /// The user's credentials beyond the password, oldest first.
    async fn user_credentials(
        &self,
        realm: &str,
        user_id: &str,
    ) -> anyhow::Result<Vec<CredentialRow>>;
    /// Inserts, or updates the label, secret, data and counter of the credential `c.id`.
    async fn put_credential(&self, c: &CredentialRow) -> anyhow::Result<()>;
    /// False when the user has no such credential.
    async fn delete_credential(&self, realm: &str, user_id: &str, id: &str)
    -> anyhow::Result<bool>;
    /// Sets the credential's counter to `counter` only if it is below: true for exactly one
    /// caller of a given value, on every replica (TOTP replay refusal).
    async fn advance_credential_counter(&self, id: &str, counter: i64) -> anyhow::Result<bool>;
    /// Raises a live session's factors (a step-up).
    async fn set_session_amr(&self, id: &str, amr: &[String]) -> anyhow::Result<()>;

    // Authorization codes.
    async fn put_code(&self, code: &CodeRow) -> anyhow::Result<()>;
    /// Marks the code used. `Fresh` only for the first caller; later callers get `Reused`.
    async fn consume_code(&self, code_hash: &str, now: i64) -> anyhow::Result<CodeUse>;

    // Refresh-token families.
    async fn create_family(&self, family: &FamilyRow) -> anyhow::Result<()>;
    async fn get_family(&self, id: &str) -> anyhow::Result<Option<FamilyRow>>;
    /// The refresh grant's check-and-rotate, for many rotations at once (the issuer's group
    /// commit): each `r` rotates `r.family_id` to `r.new_hash` only if `r.old_hash` is its
    /// current token, it is not revoked, belongs to `r.realm` and `r.client_id`, is within its
    /// idle and max lifespan, and its session (if it has one) is live by the same bounds. A
    /// rotation also advances its session's `last_seen` (a trigger, migration 0002). Answers in
    /// the order asked: the rotated family with the realm's current revision, or `None` when
    /// any condition failed. One statement per round; a family named twice is rotated in order,
    /// by one more statement per repeat, so the second sees the first's result.
    async fn rotate_live_families(
        &self,
        rs: &[Rotation<'_>],
    ) -> anyhow::Result<Vec<Option<Rotated>>>;
    /// How many writes may usefully run at once: SQLite admits one writer (a second would wait
    /// in its sleeping busy handler); PostgreSQL locks rows, and a round trip leaves the
    /// issuer idle unless another write is in flight.
    fn concurrent_writes(&self) -> usize;
    async fn revoke_family(&self, id: &str) -> anyhow::Result<()>;
    /// Revokes what a (reused) authorization code issued.
    async fn revoke_families_from_code(&self, code_hash: &str) -> anyhow::Result<()>;

    // Revoked access tokens (RFC 7009), kept until they would have expired anyway.
    async fn revoke_jti(&self, jti: &str, expires_at: i64) -> anyhow::Result<()>;
    async fn is_jti_revoked(&self, jti: &str) -> anyhow::Result<bool>;

    // Brute-force counters, keyed `user:{id}` or `ip:{addr}`.
    async fn get_failures(&self, realm: &str, key: &str) -> anyhow::Result<Option<Failures>>;
    /// The stored counters among `keys`, with their keys (a login checks user and IP at once).
    async fn failures_of(
        &self,
        realm: &str,
        keys: &[String],
    ) -> anyhow::Result<Vec<(String, Failures)>>;
    async fn put_failures(&self, realm: &str, key: &str, f: &Failures) -> anyhow::Result<()>;
    async fn clear_failures(&self, realm: &str, key: &str) -> anyhow::Result<()>;

    // Login events.
    async fn add_event(&self, event: &LoginEvent) -> anyhow::Result<()>;
    async fn list_events(&self, realm: &str) -> anyhow::Result<Vec<LoginEvent>>;
    /// Drops login and admin events, sessions, refresh families and brute-force counters
    /// untouched since `before`, and codes and revocations expired at `now`.
    // The gateway's browser sessions (`[session] store = "database"`). The defaults refuse, so
    // a store written for the issuer alone (a test double) need not know them.
    /// Stores a new session.
    async fn create_gateway_session(&self, _s: &GatewaySessionRow) -> anyhow::Result<()> {
        anyhow::bail!("this store keeps no gateway sessions")
    }
    /// The session with this id, unless it has expired at `now` or was ended.
    async fn gateway_session(
        &self,
        _id: &str,
        _now: i64,
    ) -> anyhow::Result<Option<GatewaySessionRow>> {
        anyhow::bail!("this store keeps no gateway sessions")
    }
    /// A refresh or a new last-seen time; `false` when the session was ended (it stays ended)
    /// or already has a later revision.
    async fn update_gateway_session(
        &self,
        _id: &str,
        _rev: i64,
        _data: &str,
        _last_seen: i64,
    ) -> anyhow::Result<bool> {
        anyhow::bail!("this store keeps no gateway sessions")
    }
    /// Ends one session (sign-out); `false` when there was none.
    async fn end_gateway_session(&self, _id: &str) -> anyhow::Result<bool> {
        anyhow::bail!("this store keeps no gateway sessions")
    }
    /// Ends every session of a subject (an admin's action); how many there were.
    async fn end_gateway_sessions_of(&self, _sub: &str) -> anyhow::Result<u64> {
        anyhow::bail!("this store keeps no gateway sessions")
    }
    /// Drops sessions expired at `now`.
    async fn purge_gateway_sessions(&self, _now: i64) -> anyhow::Result<u64> {
        anyhow::bail!("this store keeps no gateway sessions")
    }

    // Action tokens (mailed links) and addresses.
    /// Marks the action token `jti` used; `true` only for the first caller (on any replica).
    /// The mark is kept until `expires_at`, when the token is refused anyway.
    async fn use_action_token(
        &self,
        realm: &str,
        jti: &str,
        expires_at: i64,
    ) -> anyhow::Result<bool>;
    /// The users of `realm` with this address (case-insensitive), at most two, by username:
    /// more than one means the address does not name one user.
    async fn users_by_email(&self, realm: &str, email: &str) -> anyhow::Result<Vec<UserRow>>;

    // WebAuthn credentials and ceremonies (sql/webauthn.rs). The defaults refuse, so a store
    // written for the rest of the issuer (a test double) need not know them.
    /// Stores a new credential; `false` (nothing stored) when its credential id is registered
    /// already, to anyone.
    async fn add_webauthn_credential(&self, _c: &WebauthnCredentialRow) -> anyhow::Result<bool> {
        anyhow::bail!("this store keeps no WebAuthn credentials")
    }
    /// The user's credentials, oldest first.
    async fn webauthn_credentials_of(
        &self,
        _realm: &str,
        _user_id: &str,
    ) -> anyhow::Result<Vec<WebauthnCredentialRow>> {
        anyhow::bail!("this store keeps no WebAuthn credentials")
    }
    /// The credential of `realm` with the authenticator's credential id.
    async fn webauthn_credential_by_credential_id(
        &self,
        _realm: &str,
        _credential_id: &str,
    ) -> anyhow::Result<Option<WebauthnCredentialRow>> {
        anyhow::bail!("this store keeps no WebAuthn credentials")
    }
    /// After a sign-in with credential `id`: its updated passkey (counter) and the time.
    async fn webauthn_credential_used(
        &self,
        _id: &str,
        _passkey: &str,
        _now: i64,
    ) -> anyhow::Result<()> {
        anyhow::bail!("this store keeps no WebAuthn credentials")
    }
    /// Removes credential `id` if it is `user_id`'s; `false` when it is not (or gone).
    async fn delete_webauthn_credential(
        &self,
        _realm: &str,
        _user_id: &str,
        _id: &str,
    ) -> anyhow::Result<bool> {
        anyhow::bail!("this store keeps no WebAuthn credentials")
    }
    /// Stores a ceremony's state until its other half takes it.
    async fn put_webauthn_challenge(&self, _c: &WebauthnChallengeRow) -> anyhow::Result<()> {
        anyhow::bail!("this store keeps no WebAuthn challenges")
    }
    /// Takes (deletes and returns) the ceremony `id` unless it expired at `now`: only one
    /// caller ever gets it.
    async fn take_webauthn_challenge(
        &self,
        _id: &str,
        _now: i64,
    ) -> anyhow::Result<Option<WebauthnChallengeRow>> {
        anyhow::bail!("this store keeps no WebAuthn challenges")
    }

    /// Drops login events, sessions, refresh families and brute-force counters untouched since
    /// `before`, and codes, revocations, used action tokens and WebAuthn challenges expired at `now`.
    async fn purge(&self, before: i64, now: i64) -> anyhow::Result<u64>;
}

pub type SharedStore = Arc<dyn Store>;

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Created and migrated as needed: the gateway, `realm import`, `keys rotate`.
    ReadWrite,
    /// An existing database as it is, for reading only (`explain`): nothing is created,
    /// migrated or written.
    ReadOnly,
}

/// Opens the store named by `url` (`sqlite://…` relative to `base_dir`, or `postgres://…`),
/// creating the SQLite file and running migrations as needed.
pub async fn open(url: &str, base_dir: &Path) -> anyhow::Result<SharedStore> {
    open_with(url, base_dir, Access::ReadWrite).await
}

/// [`open`], or with [`Access::ReadOnly`] an existing database without touching it.
pub async fn open_with(url: &str, base_dir: &Path, access: Access) -> anyhow::Result<SharedStore> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(observed(
            postgres::PostgresStore::connect(url, access).await?,
            access,
        ))
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or(url.strip_prefix("sqlite:"))
    {
        let path = Path::new(path);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            base_dir.join(path)
        };
        Ok(observed(
            sqlite::SqliteStore::open(&path, access).await?,
            access,
        ))
    } else {
        anyhow::bail!("issuer.database: expected sqlite://PATH or postgres://URL")
    }
}

/// The store, registered for the gateway's metrics ([`observe::opened`]) when read-write.
fn observed<S: Store + observe::Observed>(store: S, access: Access) -> SharedStore {
    let store = Arc::new(store);
    if access == Access::ReadWrite {
        let weak: std::sync::Weak<dyn observe::Observed> = Arc::downgrade(&store) as _;
        observe::register(weak);
    }
    store
}
