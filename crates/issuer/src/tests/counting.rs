//! A `Store` that records the name of every method called on it before passing the call on:
//! tests count what one request costs the store (the login path reads each row once).

use std::sync::{Arc, Mutex};

use portcullis_store::{
    AdminEvent, ClientRow, CodeRow, CodeUse, CredentialRow, Failures, FamilyRow, GroupRow, KeyRow,
    LoginEvent, RealmRow, RoleRef, RoleRow, Rotated, Rotation, SessionRow, SharedStore, Store,
    UserRow, WebauthnChallengeRow, WebauthnCredentialRow,
};

/// Wraps a store; `take` returns (and forgets) the calls made so far, in order.
pub struct Counting {
    inner: SharedStore,
    calls: Mutex<Vec<&'static str>>,
}

impl Counting {
    pub fn new(inner: SharedStore) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: Mutex::new(Vec::new()),
        })
    }

    pub fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn note(&self, name: &'static str) {
        self.calls.lock().unwrap().push(name);
    }
}

/// Every async `Store` method, passed on after its name is noted.
macro_rules! counted {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        #[async_trait::async_trait]
        impl Store for Counting {
            fn concurrent_writes(&self) -> usize {
                self.inner.concurrent_writes()
            }
            $(
                async fn $name(&self, $($arg: $ty),*) -> anyhow::Result<$ret> {
                    self.note(stringify!($name));
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

counted! {
    ping() -> ();
    realm_names() -> Vec<String>;
    get_realm(name: &str) -> Option<RealmRow>;
    put_realm(realm: &RealmRow) -> ();
    realm_revision(name: &str) -> i64;
    bump_realm_revision(name: &str) -> ();
    get_user(realm: &str, id: &str) -> Option<UserRow>;
    user_by_username(realm: &str, username: &str) -> Option<UserRow>;
    list_users(realm: &str) -> Vec<UserRow>;
    put_user(user: &UserRow) -> ();
    user_groups(user_id: &str) -> Vec<String>;
    set_user_groups(user_id: &str, paths: &[String]) -> ();
    user_roles(user_id: &str) -> Vec<RoleRef>;
    set_user_roles(user_id: &str, roles: &[RoleRef]) -> ();
    list_groups(realm: &str) -> Vec<GroupRow>;
    put_group(group: &GroupRow) -> ();
    set_group_roles(realm: &str, path: &str, roles: &[RoleRef]) -> ();
    list_group_roles(realm: &str) -> Vec<(String, RoleRef)>;
    list_roles(realm: &str) -> Vec<RoleRef>;
    put_role(realm: &str, role: &RoleRef) -> ();
    set_role_composites(realm: &str, parent: &RoleRef, children: &[RoleRef]) -> ();
    list_composites(realm: &str) -> Vec<(RoleRef, RoleRef)>;
    list_clients(realm: &str) -> Vec<ClientRow>;
    put_client(client: &ClientRow) -> ();
    delete_user(realm: &str, id: &str) -> bool;
    add_user_group(user_id: &str, path: &str) -> ();
    remove_user_group(user_id: &str, path: &str) -> ();
    add_user_roles(user_id: &str, roles: &[RoleRef]) -> ();
    remove_user_roles(user_id: &str, roles: &[RoleRef]) -> ();
    group_members(realm: &str, path: &str) -> Vec<UserRow>;
    role_members(realm: &str, role: &RoleRef) -> Vec<UserRow>;
    move_group(realm: &str, from: &str, to: &GroupRow) -> ();
    delete_group(realm: &str, path: &str) -> ();
    list_role_rows(realm: &str) -> Vec<RoleRow>;
    put_role_row(realm: &str, role: &RoleRow) -> ();
    delete_role(realm: &str, role: &RoleRef) -> ();
    delete_client(realm: &str, client_id: &str) -> ();
    user_sessions(realm: &str, user_id: &str) -> Vec<SessionRow>;
    session_clients(session_id: &str) -> Vec<String>;
    end_user_sessions(realm: &str, user_id: &str) -> ();
    add_admin_event(event: &AdminEvent) -> ();
    list_admin_events(realm: &str) -> Vec<AdminEvent>;
    list_keys(realm: &str) -> Vec<KeyRow>;
    add_active_key(key: &KeyRow) -> ();
    ensure_active_key(key: &KeyRow) -> bool;
    startup_lock() -> portcullis_store::replicas::StartupGuard;
    create_session(session: &SessionRow) -> ();
    session_by_id(id: &str) -> Option<SessionRow>;
    session_by_cookie(cookie_hash: &str) -> Option<SessionRow>;
    touch_session(id: &str, now: i64) -> ();
    end_session(id: &str) -> ();
    user_required_actions(user_id: &str) -> Vec<String>;
    set_user_required_actions(user_id: &str, actions: &[String]) -> ();
    user_credentials(realm: &str, user_id: &str) -> Vec<CredentialRow>;
    put_credential(c: &CredentialRow) -> ();
    delete_credential(realm: &str, user_id: &str, id: &str) -> bool;
    advance_credential_counter(id: &str, counter: i64) -> bool;
    set_session_amr(id: &str, amr: &[String]) -> ();
    put_code(code: &CodeRow) -> ();
    consume_code(code_hash: &str, now: i64) -> CodeUse;
    create_family(family: &FamilyRow) -> ();
    get_family(id: &str) -> Option<FamilyRow>;
    rotate_live_families(rs: &[Rotation<'_>]) -> Vec<Option<Rotated>>;
    revoke_family(id: &str) -> ();
    revoke_families_from_code(code_hash: &str) -> ();
    revoke_jti(jti: &str, expires_at: i64) -> ();
    is_jti_revoked(jti: &str) -> bool;
    get_failures(realm: &str, key: &str) -> Option<Failures>;
    failures_of(realm: &str, keys: &[String]) -> Vec<(String, Failures)>;
    put_failures(realm: &str, key: &str, f: &Failures) -> ();
    clear_failures(realm: &str, key: &str) -> ();
    add_event(event: &LoginEvent) -> ();
    list_events(realm: &str) -> Vec<LoginEvent>;
    use_action_token(realm: &str, jti: &str, expires_at: i64) -> bool;
    users_by_email(realm: &str, email: &str) -> Vec<UserRow>;
    purge(before: i64, now: i64) -> u64;
    add_webauthn_credential(c: &WebauthnCredentialRow) -> bool;
    webauthn_credentials_of(realm: &str, user_id: &str) -> Vec<WebauthnCredentialRow>;
    webauthn_credential_by_credential_id(realm: &str, credential_id: &str) -> Option<WebauthnCredentialRow>;
    webauthn_credential_used(id: &str, passkey: &str, now: i64) -> ();
    delete_webauthn_credential(realm: &str, user_id: &str, id: &str) -> bool;
    put_webauthn_challenge(c: &WebauthnChallengeRow) -> ();
    take_webauthn_challenge(id: &str, now: i64) -> Option<WebauthnChallengeRow>;
}
