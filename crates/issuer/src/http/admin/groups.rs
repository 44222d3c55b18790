//! `groups`: the tree, count, one group (by id or by path), create (201 + `Location`, or 204
//! when an existing group is moved), rename, delete, children and members.

use std::sync::Arc;

use axum::Router;
use axum::extract::{OriginalUri, Path, State as AxState};
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::json;

use super::auth::{Admin, ManageUsers, QueryGroups, ViewUsers, param};
use super::query::{AdminJson, AdminQuery};
use super::{AdminError, AdminResult, answer, created, internal, no_content, ok_json};
use crate::domain::admin::access::Perm;
use crate::domain::admin::groups::{self, Created, GroupQuery};
use crate::domain::realm_file::GroupRep;
use crate::domain::state::State;

type St = AxState<Arc<State>>;
type Params = Path<Vec<(String, String)>>;

pub fn routes(r: Router<Arc<State>>) -> Router<Arc<State>> {
    let g = "/admin/realms/{realm}/groups";
    r.route(g, get(list).post(create_top))
        .route(&format!("{g}/count"), get(count))
        .route(&format!("{g}/{{id}}"), get(one).put(update).delete(delete))
        .route(
            &format!("{g}/{{id}}/children"),
            get(children).post(create_child),
        )
        .route(&format!("{g}/{{id}}/members"), get(members))
        .route("/admin/realms/{realm}/group-by-path/{*path}", get(by_path))
}

fn group_query(q: &AdminQuery) -> Result<GroupQuery, AdminError> {
    Ok(GroupQuery {
        search: q.str("search").or(q.str("q")).filter(|s| !s.is_empty()),
        exact: q.bool("exact")?.unwrap_or(false),
        page: q.page()?,
        brief: q.brief(true)?,
    })
}

async fn list(AxState(st): St, a: Admin<QueryGroups>, q: AdminQuery) -> AdminResult {
    let gq = group_query(&q)?;
    ok_json(groups::list(&st, a.realm(), &gq).await.map_err(internal)?)
}

async fn count(AxState(st): St, a: Admin<QueryGroups>, q: AdminQuery) -> AdminResult {
    let search = q.str("search");
    let top = q.bool("top")?.unwrap_or(false);
    let n = groups::count(&st, a.realm(), search.as_deref(), top)
        .await
        .map_err(internal)?;
    ok_json(json!({ "count": n }))
}

async fn one(AxState(st): St, a: Admin<QueryGroups>, Path(p): Params) -> AdminResult {
    ok_json(answer(groups::get(&st, a.realm(), &param(&p, "id")).await)?)
}

async fn by_path(AxState(st): St, a: Admin<QueryGroups>, Path(p): Params) -> AdminResult {
    ok_json(answer(
        groups::by_path(&st, a.realm(), &param(&p, "path")).await,
    )?)
}

/// 201 with the new group's `Location`, or 204 when an existing group moved.
fn made(c: Created, uri: &OriginalUri, headers: &HeaderMap) -> AdminResult {
    match c {
        Created::New(id) => created(uri, headers, &id),
        Created::Moved => no_content(),
    }
}

async fn create_top(
    AxState(st): St,
    a: Admin<ManageUsers>,
    uri: OriginalUri,
    headers: HeaderMap,
    AdminJson(rep): AdminJson<GroupRep>,
) -> AdminResult {
    let c = answer(groups::create(&st, &a.dir, &a.caller, None, rep).await)?;
    made(c, &uri, &headers)
}

async fn create_child(
    AxState(st): St,
    a: Admin<ManageUsers>,
    Path(p): Params,
    uri: OriginalUri,
    headers: HeaderMap,
    AdminJson(rep): AdminJson<GroupRep>,
) -> AdminResult {
    let parent = param(&p, "id");
    let c = answer(groups::create(&st, &a.dir, &a.caller, Some(&parent), rep).await)?;
    made(c, &uri, &headers)
}

async fn update(
    AxState(st): St,
    a: Admin<ManageUsers>,
    Path(p): Params,
    AdminJson(rep): AdminJson<GroupRep>,
) -> AdminResult {
    answer(groups::update(&st, a.realm(), &param(&p, "id"), rep).await)?;
    no_content()
}

async fn delete(AxState(st): St, a: Admin<ManageUsers>, Path(p): Params) -> AdminResult {
    answer(groups::delete(&st, a.realm(), &param(&p, "id")).await)?;
    no_content()
}

async fn children(
    AxState(st): St,
    a: Admin<QueryGroups>,
    Path(p): Params,
    q: AdminQuery,
) -> AdminResult {
    let gq = group_query(&q)?;
    ok_json(answer(
        groups::children(&st, a.realm(), &param(&p, "id"), &gq).await,
    )?)
}

async fn members(
    AxState(st): St,
    a: Admin<ViewUsers>,
    Path(p): Params,
    q: AdminQuery,
) -> AdminResult {
    let manage = a.may(Perm::ManageUsers);
    let list = groups::members(
        &st,
        a.realm(),
        &param(&p, "id"),
        q.page()?,
        q.brief(false)?,
        manage,
    )
    .await;
    ok_json(answer(list)?)
}
