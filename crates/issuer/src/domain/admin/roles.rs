//! Realm roles (`roles/{name}`) and client roles (`clients/{id}/roles/{name}`) through the
//! admin API: list, get, create, update the description, delete, their composites, their
//! direct holders, and a role by its id (`roles-by-id/{id}`). Roles are stored by name, so a
//! rename is refused. The `realm-management` roles change only for a holder of all of them.

use serde_json::Value;

use super::super::directory::{Directory, Grants};
use super::super::realm_file::RoleRep;
use super::super::state::State;
use super::access::{Caller, REALM_MANAGEMENT};
use super::mappings::{RoleIn, client};
use super::{Outcome, Page, Pattern, Refused, management, reps};
use portcullis_store::{RoleRef, RoleRow};

/// The realm's roles (`client` = `None`) or a client's, by its client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub client: Option<String>,
    /// What `containerId` says: the realm's name or the client's id.
    pub id: String,
}

impl Container {
    pub fn realm(dir: &Directory) -> Self {
        Self {
            client: None,
            id: dir.realm.clone(),
        }
    }

    /// The roles of the client with the admin API id `id`.
    pub fn client(dir: &Directory, id: &str) -> Result<Self, Refused> {
        let c = client(dir, id)?;
        Ok(Self {
            client: Some(c.client_id.clone()),
            id: c.id.clone(),
        })
    }

    fn role(&self, name: &str) -> RoleRef {
        RoleRef {
            client: self.client.clone(),
            name: name.to_string(),
        }
    }
}

fn rep(dir: &Directory, c: &Container, row: &RoleRow) -> Value {
    let composite = !dir.composites_of(&row.role).is_empty();
    reps::role(&dir.realm, row, composite, &c.id)
}

/// A role as a composite lists it (any container of the realm).
fn any_rep(dir: &Directory, row: &RoleRow) -> Value {
    let id = match &row.role.client {
        None => dir.realm.clone(),
        Some(c) => dir
            .clients
            .get(c)
            .map_or_else(String::new, |x| x.id.clone()),
    };
    let composite = !dir.composites_of(&row.role).is_empty();
    reps::role(&dir.realm, row, composite, &id)
}

async fn row(st: &State, realm: &str, role: &RoleRef) -> anyhow::Result<Option<RoleRow>> {
    Ok(st
        .store
        .list_role_rows(realm)
        .await?
        .into_iter()
        .find(|r| r.role == *role))
}

/// Changing the `realm-management` roles is for holders of every one of them.
fn may_change(caller: &Caller, realm: &str, c: &Container) -> bool {
    if c.client.as_deref() != Some(REALM_MANAGEMENT) {
        return true;
    }
    let all = Grants {
        client_roles: [(
            REALM_MANAGEMENT.to_string(),
            management::MANAGEMENT_ROLES
                .iter()
                .map(|r| r.to_string())
                .collect(),
        )]
        .into(),
        ..Grants::default()
    };
    caller.may_grant(realm, &all)
}

fn forbidden() -> Refused {
    Refused::Forbidden("only a holder of every realm-management role may change them".into())
}

fn check_name(name: &str) -> Result<(), Refused> {
    if name.trim().is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(Refused::bad("a role name is required"));
    }
    Ok(())
}

/// The container's roles whose name `search` matches (anywhere), a page of them.
pub async fn list(
    st: &State,
    dir: &Directory,
    c: &Container,
    search: Option<&str>,
    page: Page,
) -> anyhow::Result<Vec<Value>> {
    let p = search.map(|s| Pattern::filter(s, false));
    let rows: Vec<Value> = st
        .store
        .list_role_rows(&dir.realm)
        .await?
        .iter()
        .filter(|r| r.role.client == c.client)
        .filter(|r| p.as_ref().is_none_or(|p| p.matches(&r.role.name)))
        .map(|r| rep(dir, c, r))
        .collect();
    Ok(page.apply(rows))
}

pub async fn get(st: &State, dir: &Directory, c: &Container, name: &str) -> Outcome<Value> {
    Ok(match row(st, &dir.realm, &c.role(name)).await? {
        Some(r) => Ok(rep(dir, c, &r)),
        None => Err(Refused::not_found("Could not find role")),
    })
}

/// `GET roles-by-id/{id}`: a realm or client role by its id.
pub async fn by_id(st: &State, dir: &Directory, id: &str) -> Outcome<Value> {
    let rows = st.store.list_role_rows(&dir.realm).await?;
    Ok(
        match rows
            .iter()
            .find(|r| reps::role_id(&dir.realm, &r.role) == id)
        {
            Some(r) => Ok(any_rep(dir, r)),
            None => Err(Refused::not_found("Could not find role with id")),
        },
    )
}

/// `POST roles`: a new role (its `composites`, if given, are set too).
pub async fn create(
    st: &State,
    dir: &Directory,
    caller: &Caller,
    c: &Container,
    rep: RoleRep,
) -> Outcome<()> {
    or_refuse!(check_name(&rep.name));
    if !may_change(caller, &dir.realm, c) {
        return Ok(Err(forbidden()));
    }
    let role = c.role(&rep.name);
    if row(st, &dir.realm, &role).await?.is_some() {
        return Ok(Err(Refused::conflict(format!(
            "Role with name {} already exists",
            rep.name
        ))));
    }
    st.store
        .put_role_row(
            &dir.realm,
            &RoleRow {
                role,
                description: rep.description,
            },
        )
        .await?;
    st.realm_changed(&dir.realm).await?;
    Ok(Ok(()))
}

/// `PUT roles/{name}`: sets the description (a role keeps its name).
pub async fn update(
    st: &State,
    dir: &Directory,
    caller: &Caller,
    c: &Container,
    name: &str,
    rep: RoleRep,
) -> Outcome<()> {
    if !may_change(caller, &dir.realm, c) {
        return Ok(Err(forbidden()));
    }
    let Some(mut r) = row(st, &dir.realm, &c.role(name)).await? else {
        return Ok(Err(Refused::not_found("Could not find role")));
    };
    if !rep.name.is_empty() && rep.name != name {
        return Ok(Err(Refused::bad("renaming a role is not supported")));
    }
    r.description = rep.description;
    st.store.put_role_row(&dir.realm, &r).await?;
    Ok(Ok(()))
}

/// `DELETE roles/{name}`: the role, its composite edges and every mapping of it.
pub async fn delete(
    st: &State,
    dir: &Directory,
    caller: &Caller,
    c: &Container,
    name: &str,
) -> Outcome<()> {
    if !may_change(caller, &dir.realm, c) {
        return Ok(Err(forbidden()));
    }
    let role = c.role(name);
    if row(st, &dir.realm, &role).await?.is_none() {
        return Ok(Err(Refused::not_found("Could not find role")));
    }
    st.store.delete_role(&dir.realm, &role).await?;
    st.realm_changed(&dir.realm).await?;
    Ok(Ok(()))
}

/// `GET roles/{name}/composites`: the role's direct children, from any container.
pub async fn composites(
    st: &State,
    dir: &Directory,
    c: &Container,
    name: &str,
) -> Outcome<Vec<Value>> {
    let role = c.role(name);
    let rows = st.store.list_role_rows(&dir.realm).await?;
    if !rows.iter().any(|r| r.role == role) {
        return Ok(Err(Refused::not_found("Could not find role")));
    }
    let children = dir.composites_of(&role);
    Ok(Ok(rows
        .iter()
        .filter(|r| children.contains(&r.role))
        .map(|r| any_rep(dir, r))
        .collect()))
}

/// The roles of the realm `wanted` names: by id, else by name among the realm's roles.
fn resolve_any(realm: &str, rows: &[RoleRow], wanted: &[RoleIn]) -> Result<Vec<RoleRef>, Refused> {
    let mut out = Vec::new();
    for w in wanted {
        let found = rows
            .iter()
            .map(|r| &r.role)
            .find(|r| match (&w.id, &w.name) {
                (Some(id), _) => *id == reps::role_id(realm, r),
                (None, Some(n)) => r.client.is_none() && r.name == *n,
                (None, None) => false,
            });
        match found {
            Some(r) => out.push(r.clone()),
            None => return Err(Refused::not_found("Could not find composite role")),
        }
    }
    Ok(out)
}

/// `POST` (`add`) or `DELETE roles/{name}/composites`: adds or removes children.
pub async fn change_composites(
    st: &State,
    dir: &Directory,
    caller: &Caller,
    c: &Container,
    name: &str,
    wanted: &[RoleIn],
    add: bool,
) -> Outcome<()> {
    let realm = dir.realm.as_str();
    let role = c.role(name);
    let rows = st.store.list_role_rows(realm).await?;
    if !rows.iter().any(|r| r.role == role) {
        return Ok(Err(Refused::not_found("Could not find role")));
    }
    let given = or_refuse!(resolve_any(realm, &rows, wanted));
    // Holders of the role gain its children: they must be the caller's to give.
    if !may_change(caller, realm, c) || !caller.may_grant(realm, &dir.expand(&given, &[])) {
        return Ok(Err(forbidden()));
    }
    let mut children = dir.composites_of(&role).to_vec();
    if add {
        for g in given {
            if g != role && !children.contains(&g) {
                children.push(g);
            }
        }
    } else {
        children.retain(|r| !given.contains(r));
    }
    st.store
        .set_role_composites(realm, &role, &children)
        .await?;
    st.realm_changed(realm).await?;
    Ok(Ok(()))
}

/// `GET roles/{name}/users`: the users holding the role directly, a page of them.
pub async fn users(
    st: &State,
    dir: &Directory,
    c: &Container,
    name: &str,
    page: Page,
    brief: bool,
) -> Outcome<Vec<Value>> {
    let role = c.role(name);
    if row(st, &dir.realm, &role).await?.is_none() {
        return Ok(Err(Refused::not_found("Could not find role")));
    }
    let users = page
        .or_max(100)
        .apply(st.store.role_members(&dir.realm, &role).await?);
    Ok(Ok(users
        .iter()
        .map(|u| reps::user(u, brief, false))
        .collect()))
}
