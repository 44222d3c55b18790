//! The admin roles every realm has and the `master` realm that administers them all, made as
//! Keycloak makes them: each realm's bearer-only `realm-management` client with its
//! fine-grained roles (`realm-admin` holding the rest), and, from
//! `PORTCULLIS_BOOTSTRAP_ADMIN_USERNAME` / `_PASSWORD` (Keycloak's `KC_BOOTSTRAP_ADMIN_*`),
//! a `master` realm with an `admin` user and the public `admin-cli` client. Without them and
//! without a master realm, nobody can get an admin token: the admin API refuses everything.

use std::collections::BTreeSet;

use super::access::{MASTER, MASTER_ADMIN_ROLE, REALM_ADMIN, REALM_MANAGEMENT};
use crate::secrets;
use portcullis_store::{
    ClientConfig, ClientRow, RealmRow, RealmSettings, RoleRef, RoleRow, Secret, Store, UserRow,
};

/// The environment variables of the bootstrap admin.
pub const USERNAME_VAR: &str = "PORTCULLIS_BOOTSTRAP_ADMIN_USERNAME";
pub const PASSWORD_VAR: &str = "PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD";
/// Keycloak's default bootstrap username.
const DEFAULT_USERNAME: &str = "temp-admin";
/// The master realm's public client for admin tools (password grant).
pub const ADMIN_CLI: &str = "admin-cli";

/// `realm-management`'s roles (Keycloak's `AdminRoles`), `realm-admin` last.
pub const MANAGEMENT_ROLES: [&str; 19] = [
    "view-realm",
    "view-users",
    "view-clients",
    "view-events",
    "view-identity-providers",
    "view-authorization",
    "manage-realm",
    "manage-users",
    "manage-clients",
    "manage-events",
    "manage-identity-providers",
    "manage-authorization",
    "query-users",
    "query-groups",
    "query-clients",
    "query-realms",
    "create-client",
    "impersonation",
    REALM_ADMIN,
];

/// The built-in roles a realm file may name without defining them.
pub fn builtin_roles() -> impl Iterator<Item = RoleRef> {
    MANAGEMENT_ROLES
        .iter()
        .map(|r| RoleRef::client(REALM_MANAGEMENT, *r))
}

/// The bootstrap admin named by the environment. Its `Debug` hides the password.
#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub username: String,
    pub password: Secret<String>,
}

impl BootstrapAdmin {
    /// From `PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD` (and `_USERNAME`, default `temp-admin`);
    /// `None` without a password; an error for a username without a password.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let username = var(USERNAME_VAR).filter(|u| !u.trim().is_empty());
        let password = var(PASSWORD_VAR).filter(|p| !p.is_empty());
        match (username, password) {
            (None, None) => Ok(None),
            (Some(_), None) => {
                anyhow::bail!("{USERNAME_VAR} is set but {PASSWORD_VAR} is not: set both")
            }
            (u, Some(p)) => Ok(Some(Self {
                username: u.unwrap_or_else(|| DEFAULT_USERNAME.into()),
                password: Secret(p),
            })),
        }
    }
}

/// Makes the realm's `realm-management` client and roles where they are missing (a realm
/// imported before they existed, or a file without them); roles that exist keep their
/// composites. True when anything was written.
pub async fn ensure_realm_management(store: &dyn Store, realm: &str) -> anyhow::Result<bool> {
    let mut changed = false;
    if !store
        .list_clients(realm)
        .await?
        .iter()
        .any(|c| c.client_id == REALM_MANAGEMENT)
    {
        store
            .put_client(&ClientRow {
                id: secrets::uuid()?,
                realm: realm.to_string(),
                client_id: REALM_MANAGEMENT.into(),
                secret_hash: None,
                config: ClientConfig {
                    enabled: true,
                    bearer_only: true,
                    name: Some("${client_realm-management}".into()),
                    ..ClientConfig::default()
                },
            })
            .await?;
        changed = true;
    }
    let have: BTreeSet<RoleRef> = store.list_roles(realm).await?.into_iter().collect();
    let role = |name: &str| RoleRef::client(REALM_MANAGEMENT, name);
    for name in MANAGEMENT_ROLES {
        let r = role(name);
        if have.contains(&r) {
            continue;
        }
        store
            .put_role_row(
                realm,
                &RoleRow {
                    role: r.clone(),
                    description: Some(format!("${{role_{name}}}")),
                },
            )
            .await?;
        // Keycloak's composites, set only on the role's creation.
        let children: Vec<RoleRef> = match name {
            REALM_ADMIN => MANAGEMENT_ROLES[..MANAGEMENT_ROLES.len() - 1]
                .iter()
                .map(|n| role(n))
                .collect(),
            "view-users" => vec![role("query-users"), role("query-groups")],
            "view-clients" => vec![role("query-clients")],
            _ => Vec::new(),
        };
        if !children.is_empty() {
            store.set_role_composites(realm, &r, &children).await?;
        }
        changed = true;
    }
    Ok(changed)
}

/// At start: makes the `master` realm (with its `admin` role and `admin-cli` client) when it is
/// absent and a bootstrap admin is given, and that admin when no user of that name exists (an
/// existing admin's password is never changed). Logs how to open the admin API when there is
/// no master realm and no bootstrap admin.
pub async fn bootstrap(
    store: &dyn Store,
    admin: Option<&BootstrapAdmin>,
    now: i64,
) -> anyhow::Result<()> {
    let exists = store.get_realm(MASTER).await?.is_some();
    let Some(admin) = admin else {
        if !exists {
            tracing::warn!(
                "admin API closed: there is no `{MASTER}` realm, so no admin token can be \
                 issued and every admin request answers 401. Set {USERNAME_VAR} and \
                 {PASSWORD_VAR} to create it with an admin user at the next start"
            );
        }
        return Ok(());
    };
    if !exists {
        create_master(store).await?;
        tracing::info!(realm = MASTER, "created the master realm for the admin API");
    }
    ensure_realm_management(store, MASTER).await?;
    if store
        .user_by_username(MASTER, &admin.username)
        .await?
        .is_some()
    {
        tracing::info!(
            user = %admin.username,
            "bootstrap admin exists; its password is left as it is"
        );
        return Ok(());
    }
    let pw = admin.password.expose().clone();
    let hash = secrets::on_hashing_thread(move || secrets::hash_password(&pw)).await??;
    let user = UserRow {
        id: secrets::uuid()?,
        realm: MASTER.into(),
        username: admin.username.clone(),
        email: None,
        first_name: None,
        last_name: None,
        email_verified: false,
        enabled: true,
        created_at: now,
        password_hash: Some(Secret(hash)),
        service_account_client: None,
    };
    store.put_user(&user).await?;
    let Some(stored) = store.user_by_username(MASTER, &admin.username).await? else {
        anyhow::bail!("bootstrap admin {} vanished", admin.username);
    };
    store
        .set_user_roles(&stored.id, &[RoleRef::realm(MASTER_ADMIN_ROLE)])
        .await?;
    store.bump_realm_revision(MASTER).await?;
    tracing::info!(user = %admin.username, realm = MASTER, "created the bootstrap admin");
    Ok(())
}

async fn create_master(store: &dyn Store) -> anyhow::Result<()> {
    store
        .put_realm(&RealmRow {
            name: MASTER.into(),
            enabled: true,
            settings: RealmSettings {
                // Keycloak's master realm: admin tokens live a minute.
                access_token_lifespan: 60,
                ..RealmSettings::default()
            },
        })
        .await?;
    store
        .put_role_row(
            MASTER,
            &RoleRow {
                role: RoleRef::realm(MASTER_ADMIN_ROLE),
                description: Some("${role_admin}".into()),
            },
        )
        .await?;
    store
        .put_client(&ClientRow {
            id: secrets::uuid()?,
            realm: MASTER.into(),
            client_id: ADMIN_CLI.into(),
            secret_hash: None,
            config: ClientConfig {
                enabled: true,
                public_client: true,
                direct_access_grants: true,
                name: Some("${client_admin-cli}".into()),
                ..ClientConfig::default()
            },
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_admin_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(BootstrapAdmin::from_env(&env(&[])).unwrap().is_none());
        let a = BootstrapAdmin::from_env(&env(&[(PASSWORD_VAR, "pw")]))
            .unwrap()
            .unwrap();
        assert_eq!(a.username, "temp-admin");
        assert!(!format!("{a:?}").contains("pw\""));
        let a = BootstrapAdmin::from_env(&env(&[(USERNAME_VAR, "root"), (PASSWORD_VAR, "pw")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.username.as_str(), a.password.expose().as_str()),
            ("root", "pw")
        );
        let err = BootstrapAdmin::from_env(&env(&[(USERNAME_VAR, "root")])).unwrap_err();
        assert!(err.to_string().contains(PASSWORD_VAR));
    }
}
