//! `users`: list, count, get, create (201 + `Location`), update, delete, reset a password,
//! group memberships (`users/{id}/groups[/{groupId}]`, `…/groups/count`), and the mails
//! `execute-actions-email` and `send-verify-email`.

use std::sync::Arc;

use axum::extract::{OriginalUri, Path, State as AxState};
use axum::http::HeaderMap;
use axum::routing::{get, put};
use axum::{Extension, Router};
use serde_json::json;

use super::auth::{Admin, ManageUsers, QueryGroups, ViewUsers, param};
use super::query::{AdminJson, AdminQuery};
use super::{AdminResult, answer, created, internal, no_content, ok_json};
use crate::domain::admin::access::Perm;
use crate::domain::admin::mails;
use crate::domain::admin::users::{self, UserQuery};
use crate::domain::realm_file::{CredentialRep, UserRep};
use crate::domain::state::State;
use crate::http::urls::{Listener, bases, listener};

type St = AxState<Arc<State>>;
type Params = Path<Vec<(String, String)>>;

pub fn routes(r: Router<Arc<State>>) -> Router<Arc<State>> {
    let u = "/admin/realms/{realm}/users";
    r.route(u, get(list).post(create))
        .route(&format!("{u}/count"), get(count))
        .route(&format!("{u}/{{id}}"), get(one).put(update).delete(delete))
        .route(&format!("{u}/{{id}}/reset-password"), put(reset_password))
        .route(
            &format!("{u}/{{id}}/execute-actions-email"),
            put(execute_actions_email),
        )
        .route(
            &format!("{u}/{{id}}/send-verify-email"),
            put(send_verify_email),
        )
        .route(&format!("{u}/{{id}}/groups"), get(groups))
        .route(&format!("{u}/{{id}}/groups/count"), get(groups_count))
        .route(
            &format!("{u}/{{id}}/groups/{{gid}}"),
            put(join).delete(leave),
        )
}

fn user_query(q: &AdminQuery) -> Result<UserQuery, super::AdminError> {
    Ok(UserQuery {
        search: q.str("search"),
        username: q.str("username"),
        email: q.str("email"),
        first_name: q.str("firstName"),
        last_name: q.str("lastName"),
        exact: q.bool("exact")?.unwrap_or(false),
        enabled: q.bool("enabled")?,
        email_verified: q.bool("emailVerified")?,
        page: q.page()?,
        brief: q.brief(false)?,
    })
}

async fn list(AxState(st): St, a: Admin<ViewUsers>, q: AdminQuery) -> AdminResult {
    let uq = user_query(&q)?;
    let manage = a.may(Perm::ManageUsers);
    ok_json(
        users::list(&st, a.realm(), &uq, manage)
            .await
            .map_err(internal)?,
    )
}

/// `GET users/count`: a bare number, as Keycloak answers.
async fn count(AxState(st): St, a: Admin<ViewUsers>, q: AdminQuery) -> AdminResult {
    let uq = user_query(&q)?;
    ok_json(users::count(&st, a.realm(), &uq).await.map_err(internal)?)
}

async fn one(AxState(st): St, a: Admin<ViewUsers>, Path(p): Params) -> AdminResult {
    let manage = a.may(Perm::ManageUsers);
    let u = users::get(&st, a.realm(), &param(&p, "id"), manage)
        .await
        .map_err(internal)?;
    match u {
        Some(u) => ok_json(u),
        None => Err(super::refused(crate::domain::admin::Refused::not_found(
            "User not found",
        ))),
    }
}

async fn create(
    AxState(st): St,
    a: Admin<ManageUsers>,
    uri: OriginalUri,
    headers: HeaderMap,
    AdminJson(rep): AdminJson<UserRep>,
) -> AdminResult {
    let id = answer(users::create(&st, &a.dir, &a.caller, rep).await)?;
    created(&uri, &headers, &id)
}

async fn update(
    AxState(st): St,
    a: Admin<ManageUsers>,
    Path(p): Params,
    AdminJson(rep): AdminJson<UserRep>,
) -> AdminResult {
    answer(users::update(&st, &a.dir, &a.caller, &param(&p, "id"), rep).await)?;
    no_content()
}

async fn delete(AxState(st): St, a: Admin<ManageUsers>, Path(p): Params) -> AdminResult {
    answer(users::delete(&st, a.realm(), &param(&p, "id")).await)?;
    no_content()
}

async fn reset_password(
    AxState(st): St,
    a: Admin<ManageUsers>,
    Path(p): Params,
    AdminJson(cred): AdminJson<CredentialRep>,
) -> AdminResult {
    answer(users::reset_password(&st, a.realm(), &param(&p, "id"), cred).await)?;
    no_content()
}

async fn groups(
    AxState(st): St,
    a: Admin<ViewUsers>,
    Path(p): Params,
    q: AdminQuery,
) -> AdminResult {
    let search = q.str("search");
    let list = users::groups_of(
        &st,
        a.realm(),
        &param(&p, "id"),
        search.as_deref(),
        q.page()?,
        q.brief(true)?,
    )
    .await;
    ok_json(answer(list)?)
}

async fn groups_count(
    AxState(st): St,
    a: Admin<QueryGroups>,
    Path(p): Params,
    q: AdminQuery,
) -> AdminResult {
    let search = q.str("search");
    let list = users::groups_of(
        &st,
        a.realm(),
        &param(&p, "id"),
        search.as_deref(),
        Default::default(),
        true,
    )
    .await;
    ok_json(json!({ "count": answer(list)?.len() }))
}

async fn join(AxState(st): St, a: Admin<ManageUsers>, Path(p): Params) -> AdminResult {
    let (id, gid) = (param(&p, "id"), param(&p, "gid"));
    answer(users::join(&st, &a.dir, &a.caller, &id, &gid).await)?;
    no_content()
}

async fn leave(AxState(st): St, a: Admin<ManageUsers>, Path(p): Params) -> AdminResult {
    let (id, gid) = (param(&p, "id"), param(&p, "gid"));
    answer(users::leave(&st, a.realm(), &id, &gid).await)?;
    no_content()
}

/// The realm's URL a mailed link starts with: the frontend URL when configured (set it: the
/// admin API is on the management listener, whose host users cannot reach).
fn realm_base(
    st: &State,
    headers: &HeaderMap,
    ext: Option<Extension<Listener>>,
    realm: &str,
) -> String {
    bases(st.frontend_url.as_deref(), headers, listener(ext)).realm(realm)
}

/// `PUT users/{id}/execute-actions-email?lifespan=…`, the body a list of required actions.
async fn execute_actions_email(
    AxState(st): St,
    a: Admin<ManageUsers>,
    Path(p): Params,
    q: AdminQuery,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    AdminJson(actions): AdminJson<Vec<String>>,
) -> AdminResult {
    let base = realm_base(&st, &headers, ext, a.realm());
    let lifespan = q.int("lifespan")?;
    let id = param(&p, "id");
    answer(mails::execute_actions_email(&st, &a.dir, &id, &actions, lifespan, &base).await)?;
    no_content()
}

/// `PUT users/{id}/send-verify-email?lifespan=…`.
async fn send_verify_email(
    AxState(st): St,
    a: Admin<ManageUsers>,
    Path(p): Params,
    q: AdminQuery,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
) -> AdminResult {
    let base = realm_base(&st, &headers, ext, a.realm());
    let lifespan = q.int("lifespan")?;
    let id = param(&p, "id");
    answer(mails::send_verify_email(&st, &a.dir, &id, lifespan, &base).await)?;
    no_content()
}
