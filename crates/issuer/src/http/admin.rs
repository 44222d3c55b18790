//! The admin API (`/admin/realms/{realm}/users|groups|clients`): JSON in Keycloak's
//! representations, create/read/update/disable, over `domain::admin`. Served on the management
//! listener only; the gateway never routes `/auth/admin` or `/admin` publicly. Never returns
//! hashes or secrets.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::realm::{Missing, Realm};
use crate::domain::admin::{self, Refused};
use crate::domain::realm_file::{ClientRep, GroupRep, UserRep};
use crate::domain::state::State;

/// An admin API failure: a status and a fixed message (causes go to the log only).
#[derive(Debug)]
pub struct AdminError(StatusCode, &'static str);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type AdminResult = Result<Response, AdminError>;

fn internal(e: anyhow::Error) -> AdminError {
    tracing::error!(error = %format!("{e:#}"), "admin API error");
    AdminError(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

fn refused(r: Refused) -> AdminError {
    match r {
        Refused::BadRequest(m) => AdminError(StatusCode::BAD_REQUEST, m),
        Refused::NotFound(m) => AdminError(StatusCode::NOT_FOUND, m),
        Refused::Conflict(m) => AdminError(StatusCode::CONFLICT, m),
    }
}

/// An admin outcome as the API answers it.
fn answer<T>(outcome: admin::Outcome<T>) -> Result<T, AdminError> {
    outcome.map_err(internal)?.map_err(refused)
}

/// The admin API's realms: disabled ones too, and `404 {"error": "Realm not found."}`.
pub struct Admin;

impl Missing for Admin {
    const DISABLED_TOO: bool = true;

    fn response() -> Response {
        AdminError(StatusCode::NOT_FOUND, "Realm not found.").into_response()
    }
}

type AdminRealm = Realm<Admin>;

pub async fn list_users(AxState(st): AxState<Arc<State>>, realm: AdminRealm) -> AdminResult {
    let users = admin::list_users(&st, &realm.name)
        .await
        .map_err(internal)?;
    Ok(Json(users).into_response())
}

pub async fn get_user(
    AxState(st): AxState<Arc<State>>,
    realm: AdminRealm,
    Path((_, id)): Path<(String, String)>,
) -> AdminResult {
    let u = admin::get_user(&st, &realm.name, &id)
        .await
        .map_err(internal)?;
    let u = u.ok_or(AdminError(StatusCode::NOT_FOUND, "User not found"))?;
    Ok(Json(u).into_response())
}

pub async fn create_user(
    AxState(st): AxState<Arc<State>>,
    realm: AdminRealm,
    Json(rep): Json<UserRep>,
) -> AdminResult {
    let id = answer(admin::create_user(&st, &realm.name, rep).await)?;
    let loc = format!("/admin/realms/{}/users/{id}", realm.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, loc)],
        Json(json!({"id": id})),
    )
        .into_response())
}

/// Updates the given fields; `"enabled": false` disables the user (their logins then fail).
pub async fn update_user(
    AxState(st): AxState<Arc<State>>,
    realm: AdminRealm,
    Path((_, id)): Path<(String, String)>,
    Json(rep): Json<UserRep>,
) -> AdminResult {
    answer(admin::update_user(&st, &realm.name, &id, rep).await)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_groups(AxState(st): AxState<Arc<State>>, realm: AdminRealm) -> AdminResult {
    let groups = admin::list_groups(&st, &realm.name)
        .await
        .map_err(internal)?;
    Ok(Json(groups).into_response())
}

/// Creates a group; `path` may name a parent (`/staff/new`), which must exist.
pub async fn create_group(
    AxState(st): AxState<Arc<State>>,
    realm: AdminRealm,
    Json(rep): Json<GroupRep>,
) -> AdminResult {
    let path = answer(admin::create_group(&st, &realm.name, rep).await)?;
    Ok((StatusCode::CREATED, Json(json!({ "path": path }))).into_response())
}

pub async fn list_clients(AxState(st): AxState<Arc<State>>, realm: AdminRealm) -> AdminResult {
    let clients = admin::list_clients(&st, &realm.name)
        .await
        .map_err(internal)?;
    Ok(Json(clients).into_response())
}

pub async fn create_client(
    AxState(st): AxState<Arc<State>>,
    realm: AdminRealm,
    Json(rep): Json<ClientRep>,
) -> AdminResult {
    answer(admin::create_client(&st, &realm.dir, rep).await)?;
    Ok(StatusCode::CREATED.into_response())
}

/// Replaces a client's settings; a missing `secret` keeps the stored one.
pub async fn update_client(
    AxState(st): AxState<Arc<State>>,
    realm: AdminRealm,
    Path((_, client_id)): Path<(String, String)>,
    Json(rep): Json<ClientRep>,
) -> AdminResult {
    answer(admin::update_client(&st, &realm.dir, client_id, rep).await)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
