//! Role mappings of users and groups: `{users|groups}/{id}/role-mappings`, `…/realm`,
//! `…/clients/{client}` (the client's id), each with `/composite` (effective) and
//! `/available`; `POST` adds and `DELETE` removes the roles in the body.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::Uri;
use axum::routing::get;

use super::auth::{Admin, ManageUsers, ViewUsers, param};
use super::query::AdminJson;
use super::{AdminResult, answer, internal, no_content, ok_json, refused};
use crate::domain::admin::mappings::{self, RoleIn, Subject, Which};
use crate::domain::admin::{Outcome, roles::Container};
use crate::domain::directory::Directory;
use crate::domain::state::State;

type St = AxState<Arc<State>>;
type Params = Path<Vec<(String, String)>>;

pub fn routes(mut r: Router<Arc<State>>) -> Router<Arc<State>> {
    for who in ["users", "groups"] {
        let m = format!("/admin/realms/{{realm}}/{who}/{{id}}/role-mappings");
        r = r
            .route(&m, get(all))
            .route(&format!("{m}/realm"), get(list).post(add).delete(remove))
            .route(&format!("{m}/realm/composite"), get(list))
            .route(&format!("{m}/realm/available"), get(list))
            .route(
                &format!("{m}/clients/{{client}}"),
                get(list).post(add).delete(remove),
            )
            .route(&format!("{m}/clients/{{client}}/composite"), get(list))
            .route(&format!("{m}/clients/{{client}}/available"), get(list));
    }
    r
}

/// The user or group the path names (`/admin/realms/{realm}/{users|groups}/{id}/…`).
async fn subject(st: &State, realm: &str, uri: &Uri, p: &[(String, String)]) -> Outcome<Subject> {
    let id = param(p, "id");
    match uri.path().split('/').nth(4) {
        Some("groups") => mappings::group(st, realm, &id).await,
        _ => mappings::user(st, realm, &id).await,
    }
}

/// The client whose roles the path names, by client id (`None`: realm roles).
fn container(dir: &Directory, p: &[(String, String)]) -> Result<Option<String>, super::AdminError> {
    let client = param(p, "client");
    if client.is_empty() {
        return Ok(None);
    }
    Container::client(dir, &client)
        .map(|c| c.client)
        .map_err(refused)
}

async fn all(AxState(st): St, a: Admin<ViewUsers>, uri: Uri, Path(p): Params) -> AdminResult {
    let s = answer(subject(&st, a.realm(), &uri, &p).await)?;
    ok_json(mappings::all(&st, &a.dir, &s).await.map_err(internal)?)
}

async fn list(AxState(st): St, a: Admin<ViewUsers>, uri: Uri, Path(p): Params) -> AdminResult {
    let s = answer(subject(&st, a.realm(), &uri, &p).await)?;
    let client = container(&a.dir, &p)?;
    let which = match uri.path().rsplit('/').next() {
        Some("composite") => Which::Effective,
        Some("available") => Which::Available,
        _ => Which::Direct,
    };
    let roles = mappings::list(&st, &a.dir, &s, client.as_deref(), which)
        .await
        .map_err(internal)?;
    ok_json(roles)
}

async fn change(
    st: &State,
    a: &Admin<ManageUsers>,
    uri: &Uri,
    p: &[(String, String)],
    roles: &[RoleIn],
    add: bool,
) -> AdminResult {
    let s = answer(subject(st, a.realm(), uri, p).await)?;
    let client = container(&a.dir, p)?;
    answer(mappings::change(st, &a.dir, &a.caller, &s, client.as_deref(), roles, add).await)?;
    no_content()
}

async fn add(
    AxState(st): St,
    a: Admin<ManageUsers>,
    uri: Uri,
    Path(p): Params,
    AdminJson(roles): AdminJson<Vec<RoleIn>>,
) -> AdminResult {
    change(&st, &a, &uri, &p, &roles, true).await
}

async fn remove(
    AxState(st): St,
    a: Admin<ManageUsers>,
    uri: Uri,
    Path(p): Params,
    AdminJson(roles): AdminJson<Vec<RoleIn>>,
) -> AdminResult {
    change(&st, &a, &uri, &p, &roles, false).await
}
