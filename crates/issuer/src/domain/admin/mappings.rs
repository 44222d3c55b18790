//! Role mappings of a user or a group (`…/role-mappings`, `…/role-mappings/realm`,
//! `…/role-mappings/clients/{client}`): the direct ones, the effective ones (through groups
//! and composites) and the ones still available, and adding or removing some. Roles are named
//! as Keycloak's clients send them, by name (and id, which must then match) or by id alone.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::super::directory::Directory;
use super::super::state::State;
use super::access::Caller;
use super::{Outcome, Refused, groups, reps};
use portcullis_store::{ClientRow, RoleRef, RoleRow};

/// Whose role mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User(String),
    /// A group, by path.
    Group(String),
}

/// A role as a mapping request names it (a `RoleRepresentation`; other fields are ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleIn {
    pub id: Option<String>,
    pub name: Option<String>,
}

/// Which mappings a `GET` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Direct,
    /// Through groups and composites too (`…/composite`).
    Effective,
    /// Roles of the container not yet in effect (`…/available`).
    Available,
}

/// The user `id` of the realm as a subject.
pub async fn user(st: &State, realm: &str, id: &str) -> Outcome<Subject> {
    Ok(match st.store.get_user(realm, id).await? {
        Some(u) => Ok(Subject::User(u.id)),
        None => Err(Refused::not_found("User not found")),
    })
}

/// The group `id` of the realm as a subject.
pub async fn group(st: &State, realm: &str, id: &str) -> Outcome<Subject> {
    let (g, _) = or_refuse!(groups::by_id(st, realm, id).await?);
    Ok(Ok(Subject::Group(g.path)))
}

/// The client with the admin API id `id`.
pub fn client<'d>(dir: &'d Directory, id: &str) -> Result<&'d ClientRow, Refused> {
    dir.clients
        .values()
        .find(|c| c.id == id)
        .ok_or_else(|| Refused::not_found("Could not find client"))
}

async fn direct(st: &State, realm: &str, s: &Subject) -> anyhow::Result<Vec<RoleRef>> {
    Ok(match s {
        Subject::User(id) => st.store.user_roles(id).await?,
        Subject::Group(path) => st
            .store
            .list_group_roles(realm)
            .await?
            .into_iter()
            .filter(|(p, _)| p == path)
            .map(|(_, r)| r)
            .collect(),
    })
}

async fn effective(
    st: &State,
    dir: &Directory,
    s: &Subject,
) -> anyhow::Result<super::super::directory::Grants> {
    Ok(match s {
        Subject::User(id) => {
            let roles = st.store.user_roles(id).await?;
            let groups = st.store.user_groups(id).await?;
            dir.expand(&roles, &groups)
        }
        Subject::Group(path) => dir.expand(&[], std::slice::from_ref(path)),
    })
}

fn container_id(dir: &Directory, r: &RoleRef) -> String {
    match &r.client {
        None => dir.realm.clone(),
        Some(c) => dir
            .clients
            .get(c)
            .map_or_else(String::new, |c| c.id.clone()),
    }
}

fn rep(dir: &Directory, row: &RoleRow) -> Value {
    let composite = !dir.composites_of(&row.role).is_empty();
    reps::role(&dir.realm, row, composite, &container_id(dir, &row.role))
}

/// `GET …/role-mappings`: every direct mapping, realm and client, in Keycloak's
/// `MappingsRepresentation`.
pub async fn all(st: &State, dir: &Directory, s: &Subject) -> anyhow::Result<Value> {
    let rows = st.store.list_role_rows(&dir.realm).await?;
    let mine = direct(st, &dir.realm, s).await?;
    let mut realm_maps = Vec::new();
    let mut client_maps: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for row in rows.iter().filter(|r| mine.contains(&r.role)) {
        match &row.role.client {
            None => realm_maps.push(rep(dir, row)),
            Some(c) => client_maps
                .entry(c.clone())
                .or_default()
                .push(rep(dir, row)),
        }
    }
    let mut out = Map::new();
    if !realm_maps.is_empty() {
        out.insert("realmMappings".into(), Value::Array(realm_maps));
    }
    if !client_maps.is_empty() {
        let clients: Map<String, Value> = client_maps
            .into_iter()
            .map(|(c, maps)| {
                let id = dir
                    .clients
                    .get(&c)
                    .map_or_else(String::new, |x| x.id.clone());
                (c.clone(), json!({"id": id, "client": c, "mappings": maps}))
            })
            .collect();
        out.insert("clientMappings".into(), Value::Object(clients));
    }
    Ok(Value::Object(out))
}

/// The mappings of one container (`client` = `None`: realm roles) that `which` selects.
pub async fn list(
    st: &State,
    dir: &Directory,
    s: &Subject,
    client: Option<&str>,
    which: Which,
) -> anyhow::Result<Vec<Value>> {
    let rows = st.store.list_role_rows(&dir.realm).await?;
    let in_container = |r: &RoleRef| r.client.as_deref() == client;
    let keep: Box<dyn Fn(&RoleRef) -> bool> = match which {
        Which::Direct => {
            let mine = direct(st, &dir.realm, s).await?;
            Box::new(move |r| mine.contains(r))
        }
        Which::Effective | Which::Available => {
            let g = effective(st, dir, s).await?;
            let has = move |r: &RoleRef| match &r.client {
                None => g.realm_roles.contains(&r.name),
                Some(c) => g
                    .client_roles
                    .get(c)
                    .is_some_and(|set| set.contains(&r.name)),
            };
            if which == Which::Effective {
                Box::new(has)
            } else {
                Box::new(move |r| !has(r))
            }
        }
    };
    Ok(rows
        .iter()
        .filter(|r| in_container(&r.role) && keep(&r.role))
        .map(|r| rep(dir, r))
        .collect())
}

/// The roles `wanted` names among the container's roles; `Role not found` for any other.
pub fn resolve(
    realm: &str,
    rows: &[RoleRow],
    client: Option<&str>,
    wanted: &[RoleIn],
) -> Result<Vec<RoleRef>, Refused> {
    let mut out = Vec::new();
    for w in wanted {
        let found = rows.iter().map(|r| &r.role).find(|r| {
            r.client.as_deref() == client
                && match (&w.name, &w.id) {
                    (Some(n), id) => {
                        r.name == *n && id.as_ref().is_none_or(|i| *i == reps::role_id(realm, r))
                    }
                    (None, Some(i)) => *i == reps::role_id(realm, r),
                    (None, None) => false,
                }
        });
        match found {
            Some(r) => out.push(r.clone()),
            None => return Err(Refused::not_found("Role not found")),
        }
    }
    Ok(out)
}

/// Adds (`add`) or removes the mappings `wanted` of one container. Either needs the caller to
/// hold whatever admin roles they carry.
pub async fn change(
    st: &State,
    dir: &Directory,
    caller: &Caller,
    s: &Subject,
    client: Option<&str>,
    wanted: &[RoleIn],
    add: bool,
) -> Outcome<()> {
    let realm = dir.realm.as_str();
    let rows = st.store.list_role_rows(realm).await?;
    let roles = or_refuse!(resolve(realm, &rows, client, wanted));
    if !caller.may_grant(realm, &dir.expand(&roles, &[])) {
        return Ok(Err(Refused::Forbidden(
            "cannot map admin roles the caller does not hold".into(),
        )));
    }
    match s {
        Subject::User(id) if add => st.store.add_user_roles(id, &roles).await?,
        Subject::User(id) => st.store.remove_user_roles(id, &roles).await?,
        Subject::Group(path) => {
            let mut now = direct(st, realm, s).await?;
            if add {
                now.extend(
                    roles
                        .iter()
                        .filter(|r| !now.contains(r))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            } else {
                now.retain(|r| !roles.contains(r));
            }
            st.store.set_group_roles(realm, path, &now).await?;
        }
    }
    st.realm_changed(realm).await?;
    Ok(Ok(()))
}
