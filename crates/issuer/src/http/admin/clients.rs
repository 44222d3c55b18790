//! `clients` (named by id): list with `clientId` (and `search`), get, create (201 +
//! `Location`), update, delete, `client-secret` (GET without the value; POST makes a new one)
//! and `service-account-user`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{OriginalUri, Path, State as AxState};
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::Value;

use super::auth::{Admin, ManageClients, QueryClients, ViewClients, param};
use super::query::{AdminJson, AdminQuery};
use super::{AdminResult, answer, created, no_content, ok_json, refused};
use crate::domain::admin::access::Perm;
use crate::domain::admin::clients;
use crate::domain::realm_file::ClientRep;
use crate::domain::state::State;

type St = AxState<Arc<State>>;
type Params = Path<Vec<(String, String)>>;

pub fn routes(r: Router<Arc<State>>) -> Router<Arc<State>> {
    let c = "/admin/realms/{realm}/clients";
    r.route(c, get(list).post(create))
        .route(
            &format!("{c}/{{client}}"),
            get(one).put(update).delete(delete),
        )
        .route(
            &format!("{c}/{{client}}/client-secret"),
            get(secret).post(regenerate_secret),
        )
        .route(
            &format!("{c}/{{client}}/service-account-user"),
            get(service_account),
        )
}

async fn list(a: Admin<QueryClients>, q: AdminQuery) -> AdminResult {
    let client_id = q.str("clientId").filter(|c| !c.is_empty());
    let search = q.bool("search")?.unwrap_or(false);
    ok_json(clients::list(
        &a.dir,
        client_id.as_deref(),
        search,
        q.page()?,
    ))
}

async fn one(a: Admin<ViewClients>, Path(p): Params) -> AdminResult {
    ok_json(clients::get(&a.dir, &param(&p, "client")).map_err(refused)?)
}

async fn create(
    AxState(st): St,
    a: Admin<ManageClients>,
    uri: OriginalUri,
    headers: HeaderMap,
    AdminJson(rep): AdminJson<ClientRep>,
) -> AdminResult {
    let id = answer(clients::create(&st, &a.dir, rep).await)?;
    created(&uri, &headers, &id)
}

/// The body stays JSON: fields it leaves out keep their stored values.
async fn update(
    AxState(st): St,
    a: Admin<ManageClients>,
    Path(p): Params,
    AdminJson(body): AdminJson<Value>,
) -> AdminResult {
    answer(clients::update(&st, &a.dir, &param(&p, "client"), body).await)?;
    no_content()
}

async fn delete(AxState(st): St, a: Admin<ManageClients>, Path(p): Params) -> AdminResult {
    answer(clients::delete(&st, &a.dir, &param(&p, "client")).await)?;
    no_content()
}

async fn secret(a: Admin<ViewClients>, Path(p): Params) -> AdminResult {
    ok_json(clients::secret(&a.dir, &param(&p, "client")).map_err(refused)?)
}

async fn regenerate_secret(
    AxState(st): St,
    a: Admin<ManageClients>,
    Path(p): Params,
) -> AdminResult {
    ok_json(answer(
        clients::regenerate_secret(&st, &a.dir, &param(&p, "client")).await,
    )?)
}

async fn service_account(AxState(st): St, a: Admin<ViewClients>, Path(p): Params) -> AdminResult {
    let manage = a.may(Perm::ManageUsers);
    ok_json(answer(
        clients::service_account(&st, &a.dir, &param(&p, "client"), manage).await,
    )?)
}
