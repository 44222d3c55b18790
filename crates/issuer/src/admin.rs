//! The admin API (`/admin/realms/{realm}/users|groups|clients`): JSON in Keycloak's
//! representations, create/read/update/disable. Served on the management listener only; the
//! gateway never routes `/auth/admin` or `/admin` publicly. Never returns hashes or secrets.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::realm_file::{ClientRep, GroupRep, UserRep};
use super::realm_import::{
    client_row, export_client, export_groups, refs, service_account_name, service_account_user,
    split,
};
use super::{State, secrets};
use portcullis_store::{GroupRow, Secret, UserRow};

/// An admin API failure: a status and a fixed message (causes go to the log only).
#[derive(Debug)]
pub struct AdminError(StatusCode, &'static str);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type AdminResult = Result<Response, AdminError>;

fn err(status: StatusCode, msg: &'static str) -> AdminError {
    AdminError(status, msg)
}

fn internal(e: anyhow::Error) -> AdminError {
    tracing::error!(error = %format!("{e:#}"), "admin API error");
    err(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

fn realm_exists(st: &State, realm: &str) -> Result<(), AdminError> {
    match st.dirs.load().contains_key(realm) {
        true => Ok(()),
        false => Err(err(StatusCode::NOT_FOUND, "Realm not found.")),
    }
}

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

pub async fn list_users(
    AxState(st): AxState<Arc<State>>,
    Path(realm): Path<String>,
) -> AdminResult {
    realm_exists(&st, &realm)?;
    let mut out = Vec::new();
    for u in st.store.list_users(&realm).await.map_err(internal)? {
        out.push(user_json(&st, &u).await.map_err(internal)?);
    }
    Ok(Json(out).into_response())
}

pub async fn get_user(
    AxState(st): AxState<Arc<State>>,
    Path((realm, id)): Path<(String, String)>,
) -> AdminResult {
    realm_exists(&st, &realm)?;
    let u = st.store.get_user(&realm, &id).await.map_err(internal)?;
    let u = u.ok_or_else(|| err(StatusCode::NOT_FOUND, "User not found"))?;
    Ok(Json(user_json(&st, &u).await.map_err(internal)?).into_response())
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

pub async fn create_user(
    AxState(st): AxState<Arc<State>>,
    Path(realm): Path<String>,
    Json(rep): Json<UserRep>,
) -> AdminResult {
    realm_exists(&st, &realm)?;
    if rep.username.trim().is_empty() {
        return Err(err(StatusCode::BAD_REQUEST, "username is required"));
    }
    if st
        .store
        .user_by_username(&realm, &rep.username)
        .await
        .map_err(internal)?
        .is_some()
    {
        return Err(err(StatusCode::CONFLICT, "User exists with same username"));
    }
    let row = write_user(&st, &realm, None, rep).await.map_err(internal)?;
    let loc = format!("/admin/realms/{realm}/users/{}", row.id);
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, loc)],
        Json(json!({"id": row.id})),
    )
        .into_response())
}

/// Updates the given fields; `"enabled": false` disables the user (their logins then fail).
pub async fn update_user(
    AxState(st): AxState<Arc<State>>,
    Path((realm, id)): Path<(String, String)>,
    Json(rep): Json<UserRep>,
) -> AdminResult {
    realm_exists(&st, &realm)?;
    let u = st.store.get_user(&realm, &id).await.map_err(internal)?;
    let u = u.ok_or_else(|| err(StatusCode::NOT_FOUND, "User not found"))?;
    write_user(&st, &realm, Some(u), rep)
        .await
        .map_err(internal)?;
    // Service-account users are cached with the directory.
    st.realm_changed(&realm).await.map_err(internal)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_groups(
    AxState(st): AxState<Arc<State>>,
    Path(realm): Path<String>,
) -> AdminResult {
    realm_exists(&st, &realm)?;
    let rows = st.store.list_groups(&realm).await.map_err(internal)?;
    let roles = st.store.list_group_roles(&realm).await.map_err(internal)?;
    Ok(Json(export_groups(&rows, None, &roles)).into_response())
}

/// Creates a group; `path` may name a parent (`/staff/new`), which must exist.
pub async fn create_group(
    AxState(st): AxState<Arc<State>>,
    Path(realm): Path<String>,
    Json(rep): Json<GroupRep>,
) -> AdminResult {
    realm_exists(&st, &realm)?;
    if rep.name.is_empty() || rep.name.contains('/') {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "a group name is required and has no '/'",
        ));
    }
    let parent = rep
        .path
        .as_deref()
        .and_then(|p| p.rsplit_once('/'))
        .map(|(parent, _)| parent.to_string())
        .filter(|p| !p.is_empty());
    let path = format!("{}/{}", parent.as_deref().unwrap_or(""), rep.name);
    let existing = st.store.list_groups(&realm).await.map_err(internal)?;
    if existing.iter().any(|g| g.path == path) {
        return Err(err(
            StatusCode::CONFLICT,
            "Top level group named already exists.",
        ));
    }
    if let Some(p) = &parent
        && !existing.iter().any(|g| &g.path == p)
    {
        return Err(err(StatusCode::BAD_REQUEST, "parent group does not exist"));
    }
    let row = GroupRow {
        realm: realm.clone(),
        path: path.clone(),
        name: rep.name.clone(),
        parent,
    };
    st.store.put_group(&row).await.map_err(internal)?;
    st.store
        .set_group_roles(&realm, &path, &refs(&rep.realm_roles, &rep.client_roles))
        .await
        .map_err(internal)?;
    st.realm_changed(&realm).await.map_err(internal)?;
    Ok((StatusCode::CREATED, Json(json!({ "path": path }))).into_response())
}

pub async fn list_clients(
    AxState(st): AxState<Arc<State>>,
    Path(realm): Path<String>,
) -> AdminResult {
    realm_exists(&st, &realm)?;
    let mut out: Vec<ClientRep> = st
        .store
        .list_clients(&realm)
        .await
        .map_err(internal)?
        .iter()
        .map(export_client)
        .collect();
    out.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    Ok(Json(out).into_response())
}

async fn write_client(st: &State, realm: &str, rep: &ClientRep) -> Result<(), AdminError> {
    let row = client_row(realm, rep).map_err(internal)?;
    st.store.put_client(&row).await.map_err(internal)?;
    if row.config.service_accounts {
        let name = service_account_name(&row.client_id);
        if st
            .store
            .user_by_username(realm, &name)
            .await
            .map_err(internal)?
            .is_none()
        {
            let user = service_account_user(realm, &row.client_id).map_err(internal)?;
            st.store.put_user(&user).await.map_err(internal)?;
        }
    }
    st.realm_changed(realm).await.map_err(internal)
}

pub async fn create_client(
    AxState(st): AxState<Arc<State>>,
    Path(realm): Path<String>,
    Json(rep): Json<ClientRep>,
) -> AdminResult {
    realm_exists(&st, &realm)?;
    if rep.client_id.is_empty() {
        return Err(err(StatusCode::BAD_REQUEST, "clientId is required"));
    }
    if st
        .dirs
        .load()
        .get(&realm)
        .is_some_and(|d| d.clients.contains_key(&rep.client_id))
    {
        return Err(err(StatusCode::CONFLICT, "Client already exists"));
    }
    write_client(&st, &realm, &rep).await?;
    Ok(StatusCode::CREATED.into_response())
}

/// Replaces a client's settings; a missing `secret` keeps the stored one.
pub async fn update_client(
    AxState(st): AxState<Arc<State>>,
    Path((realm, client_id)): Path<(String, String)>,
    Json(mut rep): Json<ClientRep>,
) -> AdminResult {
    realm_exists(&st, &realm)?;
    if !st
        .dirs
        .load()
        .get(&realm)
        .is_some_and(|d| d.clients.contains_key(&client_id))
    {
        return Err(err(StatusCode::NOT_FOUND, "Client not found"));
    }
    rep.client_id = client_id;
    write_client(&st, &realm, &rep).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
