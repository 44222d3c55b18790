//! `GET /admin/realms` (the realms the caller administers) and `GET /admin/realms/{realm}`
//! (the realm's settings, for `view-realm`).

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::State as AxState;
use axum::routing::get;

use super::auth::{Admin, ViewRealm};
use super::{AdminResult, internal, ok_json};
use crate::domain::admin::access::{self, Caller};
use crate::domain::admin::reps;
use crate::domain::state::State;

pub fn routes(r: Router<Arc<State>>) -> Router<Arc<State>> {
    r.route("/admin/realms", get(list))
        .route("/admin/realms/{realm}", get(one))
}

async fn list(
    AxState(st): AxState<Arc<State>>,
    Extension(caller): Extension<Caller>,
) -> AdminResult {
    ok_json(
        access::visible_realms(&st, &caller)
            .await
            .map_err(internal)?,
    )
}

async fn one(a: Admin<ViewRealm>) -> AdminResult {
    ok_json(reps::realm(&a.dir))
}
