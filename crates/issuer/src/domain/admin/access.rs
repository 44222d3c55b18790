//! Who calls the admin API and what they may do, as Keycloak decides it: a bearer access token
//! of the `master` realm (whose `admin` realm role may do everything in every realm) or of the
//! realm being managed (a user or service account holding that realm's `realm-management`
//! client roles). The token must verify and its user and client must still be enabled; the
//! roles are the user's roles now, not the token's.

use std::collections::BTreeSet;

use serde_json::Value;

use super::super::directory::Grants;
use super::super::state::State;
use super::super::verify;

/// The realm whose `admin` role administers every realm.
pub const MASTER: &str = "master";
/// The master realm's realm role that may do everything everywhere.
pub const MASTER_ADMIN_ROLE: &str = "admin";
/// Every realm's client holding its admin roles.
pub const REALM_MANAGEMENT: &str = "realm-management";
/// The `realm-management` role that holds every other (a composite).
pub const REALM_ADMIN: &str = "realm-admin";

/// An authenticated admin API caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The realm of the token: `master` or the realm being managed.
    pub realm: String,
    pub user_id: String,
    pub username: String,
    /// The token's `azp`.
    pub client_id: Option<String>,
    /// The user's roles and groups as the store has them now.
    pub grants: Grants,
}

/// What an admin endpoint needs, as Keycloak's `realm-management` roles grant it. `realm-admin`
/// and the master realm's `admin` grant everything; each `manage-*` includes its `view-*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// Any admin role of the realm (listing roles, which every admin needs to map them).
    Any,
    ViewRealm,
    ManageRealm,
    ViewUsers,
    ManageUsers,
    /// Listing groups: `query-groups` or a user role.
    QueryGroups,
    ViewClients,
    /// Listing clients: `query-clients` or a client role.
    QueryClients,
    ManageClients,
    ViewEvents,
}

impl Perm {
    /// The roles any one of which grants this.
    fn roles(self) -> &'static [&'static str] {
        match self {
            Perm::Any => &[],
            Perm::ViewRealm => &["view-realm", "manage-realm"],
            Perm::ManageRealm => &["manage-realm"],
            Perm::ViewUsers => &["view-users", "manage-users"],
            Perm::ManageUsers => &["manage-users"],
            Perm::QueryGroups => &["query-groups", "view-users", "manage-users"],
            Perm::ViewClients => &["view-clients", "manage-clients"],
            Perm::QueryClients => &["query-clients", "view-clients", "manage-clients"],
            Perm::ManageClients => &["manage-clients"],
            Perm::ViewEvents => &["view-events", "manage-events"],
        }
    }
}

impl Caller {
    /// The master realm's `admin`: everything, everywhere.
    pub fn is_super(&self) -> bool {
        self.realm == MASTER && self.grants.realm_roles.contains(MASTER_ADMIN_ROLE)
    }

    /// The caller's `realm-management` roles in `realm` (only a token of that realm has any).
    fn admin_roles_in(&self, realm: &str) -> Option<&BTreeSet<String>> {
        (self.realm == realm)
            .then(|| self.grants.client_roles.get(REALM_MANAGEMENT))
            .flatten()
    }

    /// Whether the caller may do what `p` names in `realm`.
    pub fn may(&self, realm: &str, p: Perm) -> bool {
        if self.is_super() {
            return true;
        }
        let Some(roles) = self.admin_roles_in(realm) else {
            return false;
        };
        if roles.contains(REALM_ADMIN) {
            return true;
        }
        match p {
            Perm::Any => !roles.is_empty(),
            _ => p.roles().iter().any(|r| roles.contains(*r)),
        }
    }

    /// Whether the caller may hand out `granted` (a role mapping's or a group's grants, already
    /// expanded over composites) in `realm`: admin roles only if the caller holds them (no
    /// one raises their own rights), and the master `admin` role only as the master `admin`.
    pub fn may_grant(&self, realm: &str, granted: &Grants) -> bool {
        if self.is_super() {
            return true;
        }
        if realm == MASTER && granted.realm_roles.contains(MASTER_ADMIN_ROLE) {
            return false;
        }
        let Some(wanted) = granted.client_roles.get(REALM_MANAGEMENT) else {
            return true;
        };
        self.admin_roles_in(realm)
            .is_some_and(|held| held.contains(REALM_ADMIN) || wanted.is_subset(held))
    }
}

/// The realms the caller administers (any admin role), as `RealmRepresentation`s.
pub async fn visible_realms(st: &State, caller: &Caller) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for realm in st.store.realm_names().await? {
        if caller.may(&realm, Perm::Any)
            && let Some(dir) = st.dir_including_disabled(&realm)
        {
            out.push(super::reps::realm(&dir));
        }
    }
    Ok(out)
}

/// The realm a token says it is from (its `iss`, unverified: only a hint of which keys to
/// verify it with).
fn claimed_realm(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    let iss = claims.get("iss")?.as_str()?;
    let (_, realm) = iss.rsplit_once("/realms/")?;
    (!realm.is_empty() && !realm.contains('/')).then(|| realm.to_string())
}

/// The caller a bearer `token` names when it is a valid access token of `master` or of
/// `target` (the realm in the request's path; any realm when the path names none) whose user
/// and client are enabled; else `None`.
pub async fn authenticate(
    st: &State,
    target: Option<&str>,
    token: &str,
) -> anyhow::Result<Option<Caller>> {
    let Some(realm) = claimed_realm(token) else {
        return Ok(None);
    };
    if realm != MASTER && target.is_some_and(|t| t != realm) {
        return Ok(None);
    }
    // The realm's directory as the store has it now: a user disabled or a role taken away
    // on another replica counts at once.
    let Some(dir) = st.admin_dir(&realm).await?.filter(|d| d.enabled) else {
        return Ok(None);
    };
    let Some(claims) = verify::claims(st, &dir, token, "Bearer", false).await? else {
        return Ok(None);
    };
    let client_id = claims.get("azp").and_then(Value::as_str);
    let client_ok = client_id
        .and_then(|c| dir.clients.get(c))
        .is_some_and(|c| c.config.enabled);
    let Some(sub) = claims.get("sub").and_then(Value::as_str) else {
        return Ok(None);
    };
    let Some(user) = dir
        .user(st.store.as_ref(), sub)
        .await?
        .filter(|u| u.user.enabled && client_ok)
    else {
        return Ok(None);
    };
    Ok(Some(Caller {
        realm,
        user_id: user.user.id.clone(),
        username: user.user.username.clone(),
        client_id: client_id.map(str::to_string),
        grants: user.grants.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(realm: &str, realm_roles: &[&str], admin_roles: &[&str]) -> Caller {
        let mut grants = Grants {
            realm_roles: realm_roles.iter().map(|r| r.to_string()).collect(),
            ..Grants::default()
        };
        if !admin_roles.is_empty() {
            grants.client_roles.insert(
                REALM_MANAGEMENT.into(),
                admin_roles.iter().map(|r| r.to_string()).collect(),
            );
        }
        Caller {
            realm: realm.into(),
            user_id: "u".into(),
            username: "u".into(),
            client_id: None,
            grants,
        }
    }

    #[test]
    fn the_claimed_realm_is_the_last_segment_of_iss() {
        use base64::Engine;
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let t = |iss: &str| format!("h.{}.s", enc(&format!("{{\"iss\":\"{iss}\"}}")));
        assert_eq!(
            claimed_realm(&t("https://x/auth/realms/master")).as_deref(),
            Some("master")
        );
        assert_eq!(claimed_realm(&t("https://x/realms/a/b")), None);
        assert_eq!(claimed_realm(&t("https://x/other")), None);
        assert_eq!(claimed_realm("not-a-jwt"), None);
        assert_eq!(claimed_realm(&format!("h.{}.s", enc("[1]"))), None);
    }

    #[test]
    fn permissions_follow_keycloaks_roles() {
        let root = caller(MASTER, &["admin"], &[]);
        assert!(root.may("any", Perm::ManageRealm) && root.may(MASTER, Perm::ManageUsers));
        let viewer = caller("r", &[], &["view-users"]);
        assert!(viewer.may("r", Perm::ViewUsers) && viewer.may("r", Perm::QueryGroups));
        assert!(!viewer.may("r", Perm::ManageUsers));
        assert!(!viewer.may("other", Perm::ViewUsers), "only its own realm");
        let manager = caller("r", &[], &["manage-users"]);
        assert!(manager.may("r", Perm::ViewUsers) && !manager.may("r", Perm::ViewClients));
        let ra = caller("r", &[], &[REALM_ADMIN]);
        assert!(ra.may("r", Perm::ManageClients) && !ra.may(MASTER, Perm::ViewUsers));
        let nobody = caller("r", &["admin"], &[]);
        assert!(
            !nobody.may("r", Perm::Any),
            "a realm role named admin is no admin role"
        );
        let master_user = caller(MASTER, &[], &["view-users"]);
        assert!(master_user.may(MASTER, Perm::ViewUsers) && !master_user.may("r", Perm::ViewUsers));
    }

    #[test]
    fn admin_roles_are_handed_out_only_by_their_holders() {
        let mut wanted = Grants::default();
        wanted
            .client_roles
            .insert(REALM_MANAGEMENT.into(), ["manage-users".to_string()].into());
        let manager = caller("r", &[], &["manage-users", "view-users"]);
        assert!(manager.may_grant("r", &wanted));
        wanted.client_roles.insert(
            REALM_MANAGEMENT.into(),
            ["manage-clients".to_string()].into(),
        );
        assert!(!manager.may_grant("r", &wanted));
        assert!(caller("r", &[], &[REALM_ADMIN]).may_grant("r", &wanted));
        assert!(manager.may_grant("r", &Grants::default()));
        let mut root_role = Grants::default();
        root_role.realm_roles.insert(MASTER_ADMIN_ROLE.into());
        let master_manager = caller(MASTER, &[], &[REALM_ADMIN]);
        assert!(!master_manager.may_grant(MASTER, &root_role));
        assert!(caller(MASTER, &["admin"], &[]).may_grant(MASTER, &root_role));
    }
}
