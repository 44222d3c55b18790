//! Sessions and events: a user's sessions, signing a user out, ending one session; the login
//! events (`events`) and admin events (`admin-events`) with Keycloak's filters.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::routing::{delete, get, post};

use super::auth::{Admin, ManageUsers, ViewEvents, ViewUsers, param};
use super::query::AdminQuery;
use super::{AdminResult, answer, internal, no_content, ok_json};
use crate::domain::admin::events::{self, AdminEventQuery, EventQuery};
use crate::domain::admin::sessions;
use crate::domain::state::State;

type St = AxState<Arc<State>>;
type Params = Path<Vec<(String, String)>>;

pub fn routes(r: Router<Arc<State>>) -> Router<Arc<State>> {
    let r0 = "/admin/realms/{realm}";
    r.route(&format!("{r0}/users/{{id}}/sessions"), get(of_user))
        .route(&format!("{r0}/users/{{id}}/logout"), post(logout_user))
        .route(&format!("{r0}/sessions/{{session}}"), delete(end))
        .route(&format!("{r0}/events"), get(login_events))
        .route(&format!("{r0}/admin-events"), get(admin_events))
}

async fn of_user(AxState(st): St, a: Admin<ViewUsers>, Path(p): Params) -> AdminResult {
    ok_json(answer(
        sessions::of_user(&st, &a.dir, &param(&p, "id")).await,
    )?)
}

async fn logout_user(AxState(st): St, a: Admin<ManageUsers>, Path(p): Params) -> AdminResult {
    answer(sessions::logout_user(&st, a.realm(), &param(&p, "id")).await)?;
    no_content()
}

async fn end(AxState(st): St, a: Admin<ManageUsers>, Path(p): Params) -> AdminResult {
    answer(sessions::delete(&st, a.realm(), &param(&p, "session")).await)?;
    no_content()
}

async fn login_events(AxState(st): St, a: Admin<ViewEvents>, q: AdminQuery) -> AdminResult {
    let eq = EventQuery {
        types: q.all("type"),
        client: q.str("client"),
        user: q.str("user"),
        ip: q.str("ipAddress"),
        from: q.date("dateFrom", false)?,
        to: q.date("dateTo", true)?,
        page: q.page()?,
    };
    ok_json(events::login(&st, a.realm(), &eq).await.map_err(internal)?)
}

async fn admin_events(AxState(st): St, a: Admin<ViewEvents>, q: AdminQuery) -> AdminResult {
    let eq = AdminEventQuery {
        operations: q.all("operationTypes"),
        resource_types: q.all("resourceTypes"),
        resource_path: q.str("resourcePath"),
        auth_user: q.str("authUser"),
        from: q.date("dateFrom", false)?,
        to: q.date("dateTo", true)?,
        page: q.page()?,
    };
    ok_json(events::admin(&st, a.realm(), &eq).await.map_err(internal)?)
}
