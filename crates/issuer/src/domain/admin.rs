//! What the admin API reads and writes: users, groups and clients in Keycloak's
//! representations (never a hash or a secret), each change announced to the realm's directory.
//! The admin API's handlers serve it.

use serde_json::{Value, json};

use super::directory::{Directory, service_account_name};
use super::realm_file::{ClientRep, GroupRep, UserRep};
use super::realm_import::{
    client_row, export_client, export_groups, refs, service_account_user, split,
};
use super::state::State;
use crate::secrets;
use portcullis_store::{GroupRow, Secret, UserRow};

/// Why an admin request is refused: a status class and its fixed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    BadRequest(&'static str),
    NotFound(&'static str),
    Conflict(&'static str),
}

/// An admin operation's result: a failure of the store, or the answer (or the refusal).
pub type Outcome<T> = anyhow::Result<Result<T, Refused>>;

async fn user_json(st: &State, u: &UserRow) -> anyhow::Result<Value> {
    let (realm_roles, client_roles) = split(st.store.user_roles(&u.id).await?);
    Ok(json!({
        "id": u.id, "username": u.username, "email": u.email, "firstName": u.first_name,
        "lastName": u.last_name, "enabled": u.enabled,
        "groups": st.store.user_groups(&u.id).await?,
        "realmRoles": realm_roles, "clientRoles": client_roles,
        "serviceAccountClientId": u.service_account_client,
    }))
}

/// Every user of the realm.
pub async fn list_users(st: &State, realm: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for u in st.store.list_users(realm).await? {
        out.push(user_json(st, &u).await?);
    }
    Ok(out)
}

/// The user `id`, or `None`.
pub async fn get_user(st: &State, realm: &str, id: &str) -> anyhow::Result<Option<Value>> {
    match st.store.get_user(realm, id).await? {
        Some(u) => Ok(Some(user_json(st, &u).await?)),
        None => Ok(None),
    }
}

async fn password_hash(rep: &UserRep) -> anyhow::Result<Option<Secret<String>>> {
    let Some(pw) = rep
        .credentials
        .iter()
        .find(|c| c.kind == "password")
        .and_then(|c| c.value.clone())
    else {
        return Ok(None);
    };
    Ok(Some(Secret(
        tokio::task::spawn_blocking(move || secrets::hash_password(&pw)).await??,
    )))
}

async fn write_user(
    st: &State,
    realm: &str,
    existing: Option<UserRow>,
    rep: UserRep,
) -> anyhow::Result<UserRow> {
    let hash = password_hash(&rep).await?;
    let row = match existing {
        Some(u) => UserRow {
            email: rep.email.or(u.email),
            first_name: rep.first_name.or(u.first_name),
            last_name: rep.last_name.or(u.last_name),
            enabled: rep.enabled.unwrap_or(u.enabled),
            password_hash: hash,
            ..u
        },
        None => UserRow {
            id: secrets::uuid()?,
            realm: realm.to_string(),
            username: rep.username.clone(),
            email: rep.email,
            first_name: rep.first_name,
            last_name: rep.last_name,
            enabled: rep.enabled.unwrap_or(true),
            password_hash: hash,
            service_account_client: None,
        },
    };
    st.store.put_user(&row).await?;
    if !rep.groups.is_empty() {
        st.store.set_user_groups(&row.id, &rep.groups).await?;
    }
    if !rep.realm_roles.is_empty() || !rep.client_roles.is_empty() {
        st.store
            .set_user_roles(&row.id, &refs(&rep.realm_roles, &rep.client_roles))
            .await?;
    }
    Ok(row)
}

/// Creates a user; returns their id.
pub async fn create_user(st: &State, realm: &str, rep: UserRep) -> Outcome<String> {
    if rep.username.trim().is_empty() {
        return Ok(Err(Refused::BadRequest("username is required")));
    }
    if st
        .store
        .user_by_username(realm, &rep.username)
        .await?
        .is_some()
    {
        return Ok(Err(Refused::Conflict("User exists with same username")));
    }
    let row = write_user(st, realm, None, rep).await?;
    Ok(Ok(row.id))
}

/// Updates the given fields; `"enabled": false` disables the user (their logins then fail).
pub async fn update_user(st: &State, realm: &str, id: &str, rep: UserRep) -> Outcome<()> {
    let Some(u) = st.store.get_user(realm, id).await? else {
        return Ok(Err(Refused::NotFound("User not found")));
    };
    write_user(st, realm, Some(u), rep).await?;
    // Service-account users are cached with the directory.
    st.realm_changed(realm).await?;
    Ok(Ok(()))
}

/// The realm's groups as a tree.
pub async fn list_groups(st: &State, realm: &str) -> anyhow::Result<Vec<GroupRep>> {
    let rows = st.store.list_groups(realm).await?;
    let roles = st.store.list_group_roles(realm).await?;
    Ok(export_groups(&rows, None, &roles))
}

/// Creates a group; `path` may name a parent (`/staff/new`), which must exist. Returns the
/// new group's path.
pub async fn create_group(st: &State, realm: &str, rep: GroupRep) -> Outcome<String> {
    if rep.name.is_empty() || rep.name.contains('/') {
        return Ok(Err(Refused::BadRequest(
            "a group name is required and has no '/'",
        )));
    }
    let parent = rep
        .path
        .as_deref()
        .and_then(|p| p.rsplit_once('/'))
        .map(|(parent, _)| parent.to_string())
        .filter(|p| !p.is_empty());
    let path = format!("{}/{}", parent.as_deref().unwrap_or(""), rep.name);
    let existing = st.store.list_groups(realm).await?;
    if existing.iter().any(|g| g.path == path) {
        return Ok(Err(Refused::Conflict(
            "Top level group named already exists.",
        )));
    }
    if let Some(p) = &parent
        && !existing.iter().any(|g| &g.path == p)
    {
        return Ok(Err(Refused::BadRequest("parent group does not exist")));
    }
    let row = GroupRow {
        realm: realm.to_string(),
        path: path.clone(),
        name: rep.name.clone(),
        parent,
    };
    st.store.put_group(&row).await?;
    st.store
        .set_group_roles(realm, &path, &refs(&rep.realm_roles, &rep.client_roles))
        .await?;
    st.realm_changed(realm).await?;
    Ok(Ok(path))
}

/// The realm's clients, by client id.
pub async fn list_clients(st: &State, realm: &str) -> anyhow::Result<Vec<ClientRep>> {
    let mut out: Vec<ClientRep> = st
        .store
        .list_clients(realm)
        .await?
        .iter()
        .map(export_client)
        .collect();
    out.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    Ok(out)
}

async fn write_client(st: &State, realm: &str, rep: &ClientRep) -> anyhow::Result<()> {
    let row = client_row(realm, rep)?;
    st.store.put_client(&row).await?;
    if row.config.service_accounts {
        let name = service_account_name(&row.client_id);
        if st.store.user_by_username(realm, &name).await?.is_none() {
            let user = service_account_user(realm, &row.client_id)?;
            st.store.put_user(&user).await?;
        }
    }
    st.realm_changed(realm).await
}

/// Creates a client (and its service-account user when it has service accounts).
pub async fn create_client(st: &State, dir: &Directory, rep: ClientRep) -> Outcome<()> {
    if rep.client_id.is_empty() {
        return Ok(Err(Refused::BadRequest("clientId is required")));
    }
    if dir.clients.contains_key(&rep.client_id) {
        return Ok(Err(Refused::Conflict("Client already exists")));
    }
    write_client(st, &dir.realm, &rep).await?;
    Ok(Ok(()))
}

/// Replaces a client's settings; a missing `secret` keeps the stored one.
pub async fn update_client(
    st: &State,
    dir: &Directory,
    client_id: String,
    mut rep: ClientRep,
) -> Outcome<()> {
    if !dir.clients.contains_key(&client_id) {
        return Ok(Err(Refused::NotFound("Client not found")));
    }
    rep.client_id = client_id;
    write_client(st, &dir.realm, &rep).await?;
    Ok(Ok(()))
}
