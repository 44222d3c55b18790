//! Realm roles (`roles`, `roles/{name}`, `…/composites`, `…/users`, `roles-by-id/{id}`) and
//! client roles (the same under `clients/{client}/roles`). Any admin may list roles (they need
//! them to map them); changing realm roles needs `manage-realm`, client roles
//! `manage-clients`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{OriginalUri, Path, State as AxState};
use axum::http::HeaderMap;
use axum::routing::get;

use super::auth::{Admin, Any, ManageClients, ManageRealm, Needs, ViewUsers, param};
use super::query::{AdminJson, AdminQuery};
use super::{AdminError, AdminResult, answer, created, internal, no_content, ok_json, refused};
use crate::domain::admin::mappings::RoleIn;
use crate::domain::admin::roles::{self, Container};
use crate::domain::directory::Directory;
use crate::domain::realm_file::RoleRep;
use crate::domain::state::State;

type St = AxState<Arc<State>>;
type Params = Path<Vec<(String, String)>>;

pub fn routes(r: Router<Arc<State>>) -> Router<Arc<State>> {
    let realm = "/admin/realms/{realm}/roles";
    let client = "/admin/realms/{realm}/clients/{client}/roles";
    r.route(realm, get(list::<Any>).post(create::<ManageRealm>))
        .route(
            &format!("{realm}/{{name}}"),
            get(one::<Any>)
                .put(update::<ManageRealm>)
                .delete(delete::<ManageRealm>),
        )
        .route(
            &format!("{realm}/{{name}}/composites"),
            get(composites::<Any>)
                .post(add_composites::<ManageRealm>)
                .delete(remove_composites::<ManageRealm>),
        )
        .route(&format!("{realm}/{{name}}/users"), get(users))
        .route(client, get(list::<Any>).post(create::<ManageClients>))
        .route(
            &format!("{client}/{{name}}"),
            get(one::<Any>)
                .put(update::<ManageClients>)
                .delete(delete::<ManageClients>),
        )
        .route(
            &format!("{client}/{{name}}/composites"),
            get(composites::<Any>)
                .post(add_composites::<ManageClients>)
                .delete(remove_composites::<ManageClients>),
        )
        .route(&format!("{client}/{{name}}/users"), get(users))
        .route("/admin/realms/{realm}/roles-by-id/{id}", get(by_id))
}

/// The realm's roles, or those of the client the path names by id.
fn container(dir: &Directory, p: &[(String, String)]) -> Result<Container, AdminError> {
    let client = param(p, "client");
    if client.is_empty() {
        Ok(Container::realm(dir))
    } else {
        Container::client(dir, &client).map_err(refused)
    }
}

async fn list<P: Needs>(
    AxState(st): St,
    a: Admin<P>,
    Path(p): Params,
    q: AdminQuery,
) -> AdminResult {
    let c = container(&a.dir, &p)?;
    let search = q.str("search");
    let rows = roles::list(&st, &a.dir, &c, search.as_deref(), q.page()?)
        .await
        .map_err(internal)?;
    ok_json(rows)
}

async fn one<P: Needs>(AxState(st): St, a: Admin<P>, Path(p): Params) -> AdminResult {
    let c = container(&a.dir, &p)?;
    ok_json(answer(
        roles::get(&st, &a.dir, &c, &param(&p, "name")).await,
    )?)
}

async fn by_id(AxState(st): St, a: Admin<Any>, Path(p): Params) -> AdminResult {
    ok_json(answer(roles::by_id(&st, &a.dir, &param(&p, "id")).await)?)
}

async fn create<P: Needs>(
    AxState(st): St,
    a: Admin<P>,
    Path(p): Params,
    uri: OriginalUri,
    headers: HeaderMap,
    AdminJson(rep): AdminJson<RoleRep>,
) -> AdminResult {
    let c = container(&a.dir, &p)?;
    let name = rep.name.clone();
    answer(roles::create(&st, &a.dir, &a.caller, &c, rep).await)?;
    created(&uri, &headers, &name)
}

async fn update<P: Needs>(
    AxState(st): St,
    a: Admin<P>,
    Path(p): Params,
    AdminJson(rep): AdminJson<RoleRep>,
) -> AdminResult {
    let c = container(&a.dir, &p)?;
    let name = param(&p, "name");
    answer(roles::update(&st, &a.dir, &a.caller, &c, &name, rep).await)?;
    no_content()
}

async fn delete<P: Needs>(AxState(st): St, a: Admin<P>, Path(p): Params) -> AdminResult {
    let c = container(&a.dir, &p)?;
    answer(roles::delete(&st, &a.dir, &a.caller, &c, &param(&p, "name")).await)?;
    no_content()
}

async fn composites<P: Needs>(AxState(st): St, a: Admin<P>, Path(p): Params) -> AdminResult {
    let c = container(&a.dir, &p)?;
    ok_json(answer(
        roles::composites(&st, &a.dir, &c, &param(&p, "name")).await,
    )?)
}

async fn change<P: Needs>(
    st: &State,
    a: &Admin<P>,
    p: &[(String, String)],
    wanted: &[RoleIn],
    add: bool,
) -> AdminResult {
    let c = container(&a.dir, p)?;
    let name = param(p, "name");
    answer(roles::change_composites(st, &a.dir, &a.caller, &c, &name, wanted, add).await)?;
    no_content()
}

async fn add_composites<P: Needs>(
    AxState(st): St,
    a: Admin<P>,
    Path(p): Params,
    AdminJson(wanted): AdminJson<Vec<RoleIn>>,
) -> AdminResult {
    change(&st, &a, &p, &wanted, true).await
}

async fn remove_composites<P: Needs>(
    AxState(st): St,
    a: Admin<P>,
    Path(p): Params,
    AdminJson(wanted): AdminJson<Vec<RoleIn>>,
) -> AdminResult {
    change(&st, &a, &p, &wanted, false).await
}

async fn users(
    AxState(st): St,
    a: Admin<ViewUsers>,
    Path(p): Params,
    q: AdminQuery,
) -> AdminResult {
    let c = container(&a.dir, &p)?;
    let list = roles::users(
        &st,
        &a.dir,
        &c,
        &param(&p, "name"),
        q.page()?,
        q.brief(true)?,
    )
    .await;
    ok_json(answer(list)?)
}
