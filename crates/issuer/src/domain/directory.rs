//! A realm's directory held in memory: settings, clients, the role graph and group roles.
//! Loaded from the store at start and after every import, so token requests resolve roles
//! without walking the graph in SQL. It also caches users with their expanded grants, so
//! refreshes and code exchanges read no user rows, and a password login expands the grants of
//! the row it already read.
//!
//! Cache invalidation is the directory's own replacement; a new directory starts with an empty
//! cache, so nothing cached outlives the directory its grants were expanded with. Every admin
//! change to existing users, groups, roles or clients and every realm import bumps the realm's
//! revision in the store once complete; the admin API reloads its own directory at once; the
//! refresh grant's rotation returns the revision, and code exchange and userinfo read it (one
//! small query), reloading a stale directory first, so `realm import --sync` from the CLI and
//! writes on other replicas count at once. The periodic `Issuer::refresh` (every 30 s in the
//! gateway) still reloads every realm.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use std::sync::Arc;

use dashmap::DashMap;

use portcullis_store::{ClientRow, RealmSettings, RoleRef, Store, UserRow};

/// Users cached at most per directory; past this, lookups still work but are not cached.
const MAX_CACHED_USERS: usize = 100_000;

/// The username of a client's service-account user (Keycloak's naming).
pub fn service_account_name(client_id: &str) -> String {
    format!("service-account-{}", client_id.to_lowercase())
}

#[derive(Debug)]
pub struct Directory {
    pub realm: String,
    /// The realm's store revision when this was loaded (`Store::bump_realm_revision`).
    pub revision: i64,
    pub enabled: bool,
    pub settings: RealmSettings,
    pub clients: HashMap<String, ClientRow>,
    composites: HashMap<RoleRef, Vec<RoleRef>>,
    group_roles: HashMap<String, Vec<RoleRef>>,
    /// Service-account users with their expanded grants, by client id: `client_credentials`
    /// is the hot grant and then needs no query at all.
    pub service_accounts: HashMap<String, Arc<(UserRow, Grants)>>,
    /// Users by id with their grants, filled on demand (see the module comment).
    users: UserCache,
}

/// A cached user: the row without its password hash, and the expanded grants.
#[derive(Debug)]
pub struct CachedUser {
    pub user: UserRow,
    pub grants: Grants,
}

#[derive(Default)]
struct UserCache(DashMap<String, Arc<CachedUser>>);

impl std::fmt::Debug for UserCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserCache({} users)", self.0.len())
    }
}

/// A user's effective authorization data, as tokens carry it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grants {
    pub realm_roles: BTreeSet<String>,
    pub client_roles: BTreeMap<String, BTreeSet<String>>,
    /// The user's direct groups, full paths.
    pub groups: Vec<String>,
}

impl Directory {
    pub async fn load(store: &dyn Store, realm: &str) -> anyhow::Result<Option<Self>> {
        // Read first: a change completing during the load leaves a higher revision in the
        // store, so the next rotation reloads again rather than trusting a mixed snapshot.
        let revision = store.realm_revision(realm).await?;
        let Some(row) = store.get_realm(realm).await? else {
            return Ok(None);
        };
        let mut composites: HashMap<RoleRef, Vec<RoleRef>> = HashMap::new();
        for (parent, child) in store.list_composites(realm).await? {
            composites.entry(parent).or_default().push(child);
        }
        let mut group_roles: HashMap<String, Vec<RoleRef>> = HashMap::new();
        for (path, role) in store.list_group_roles(realm).await? {
            group_roles.entry(path).or_default().push(role);
        }
        let clients = store
            .list_clients(realm)
            .await?
            .into_iter()
            .map(|c| (c.client_id.clone(), c))
            .collect();
        let mut dir = Self {
            realm: row.name,
            revision,
            enabled: row.enabled,
            settings: row.settings,
            clients,
            composites,
            group_roles,
            service_accounts: HashMap::new(),
            users: UserCache::default(),
        };
        let sa_clients: Vec<String> = dir
            .clients
            .values()
            .filter(|c| c.config.service_accounts && !c.config.public_client)
            .map(|c| c.client_id.clone())
            .collect();
        for client_id in sa_clients {
            let name = service_account_name(&client_id);
            if let Some(user) = store.user_by_username(realm, &name).await? {
                let roles = store.user_roles(&user.id).await?;
                let groups = store.user_groups(&user.id).await?;
                let grants = dir.expand(&roles, &groups);
                dir.service_accounts
                    .insert(client_id, Arc::new((user, grants)));
            }
        }
        Ok(Some(dir))
    }

    /// The user `id` of this realm with their grants: from the cache, else read from the store
    /// (three queries) and cached. `None` when there is no such user.
    pub async fn user(
        &self,
        store: &dyn Store,
        id: &str,
    ) -> anyhow::Result<Option<Arc<CachedUser>>> {
        if let Some(hit) = self.users.0.get(id) {
            return Ok(Some(hit.clone()));
        }
        let Some(user) = store.get_user(&self.realm, id).await? else {
            return Ok(None);
        };
        Ok(Some(self.expand_and_cache(store, user).await?))
    }

    /// `user`'s entry, for a row the caller has just read (a password login): from the cache,
    /// else its grants expanded (two queries) and cached, without reading the user again.
    pub async fn grants_of(
        &self,
        store: &dyn Store,
        user: &UserRow,
    ) -> anyhow::Result<Arc<CachedUser>> {
        if let Some(hit) = self.users.0.get(&user.id) {
            return Ok(hit.clone());
        }
        self.expand_and_cache(store, user.clone()).await
    }

    async fn expand_and_cache(
        &self,
        store: &dyn Store,
        mut user: UserRow,
    ) -> anyhow::Result<Arc<CachedUser>> {
        // Token minting never needs the hash; logins read it fresh.
        user.password_hash = None;
        let roles = store.user_roles(&user.id).await?;
        let groups = store.user_groups(&user.id).await?;
        let entry = Arc::new(CachedUser {
            grants: self.expand(&roles, &groups),
            user,
        });
        if self.users.0.len() < MAX_CACHED_USERS {
            self.users.0.insert(entry.user.id.clone(), entry.clone());
        }
        Ok(entry)
    }

    /// Direct roles plus the roles of every group the user is in (and of those groups'
    /// ancestors, as Keycloak inherits), closed over composites.
    pub fn expand(&self, direct: &[RoleRef], groups: &[String]) -> Grants {
        let mut seen: BTreeSet<RoleRef> = BTreeSet::new();
        let mut todo: Vec<RoleRef> = direct.to_vec();
        for g in groups {
            for ancestor in ancestors(g) {
                todo.extend(
                    self.group_roles
                        .get(ancestor)
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            }
        }
        // Bounded by the number of distinct roles: each is expanded once, so cycles end.
        while let Some(r) = todo.pop() {
            if let Some(children) = self.composites.get(&r) {
                todo.extend(children.iter().filter(|c| !seen.contains(c)).cloned());
            }
            seen.insert(r);
        }
        let mut grants = Grants {
            groups: groups.to_vec(),
            ..Grants::default()
        };
        for r in seen {
            match r.client {
                None => {
                    grants.realm_roles.insert(r.name);
                }
                Some(c) => {
                    grants.client_roles.entry(c).or_default().insert(r.name);
                }
            }
        }
        grants
    }

    /// The chain of composites below `role`, for export.
    pub fn composites_of(&self, role: &RoleRef) -> &[RoleRef] {
        self.composites.get(role).map_or(&[], Vec::as_slice)
    }
}

/// `/a/b/c` → `/a/b/c`, `/a/b`, `/a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = cur.rfind('/').filter(|&i| i > 0).map(|i| &cur[..i]);
        Some(cur)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Directory {
        let mut composites = HashMap::new();
        composites.insert(RoleRef::realm("admin"), vec![RoleRef::realm("editor")]);
        composites.insert(
            RoleRef::realm("editor"),
            vec![RoleRef::realm("viewer"), RoleRef::client("app", "write")],
        );
        // A cycle must not hang the expansion.
        composites.insert(RoleRef::realm("viewer"), vec![RoleRef::realm("editor")]);
        let mut group_roles = HashMap::new();
        group_roles.insert("/staff".to_string(), vec![RoleRef::realm("editor")]);
        Directory {
            realm: "r".into(),
            revision: 0,
            enabled: true,
            settings: RealmSettings::default(),
            clients: HashMap::new(),
            composites,
            group_roles,
            service_accounts: HashMap::new(),
            users: UserCache::default(),
        }
    }

    #[test]
    fn expands_composites_groups_and_ancestors() {
        let g = dir().expand(&[], &["/staff/support".into()]);
        assert_eq!(
            g.realm_roles.iter().collect::<Vec<_>>(),
            vec!["editor", "viewer"]
        );
        assert!(g.client_roles["app"].contains("write"));
        assert_eq!(g.groups, vec!["/staff/support".to_string()]);
        let g = dir().expand(&[RoleRef::realm("admin")], &[]);
        assert_eq!(g.realm_roles.len(), 3);
        assert_eq!(ancestors("/a/b").collect::<Vec<_>>(), vec!["/a/b", "/a"]);
    }
}
