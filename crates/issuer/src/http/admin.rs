//! The admin API: Keycloak's Admin REST API subset under `/admin/realms/{realm}/…` (and the
//! same under `/auth/admin/…`), in Keycloak's JSON representations, over `domain::admin`;
//! and the token endpoints admin tools get their bearer tokens from. Served on the management
//! listener only; the gateway never routes `/auth/admin` or `/admin` publicly. Never returns
//! hashes or secrets (except a client secret made by `POST client-secret`, once).
//!
//! Every request needs a bearer token (`auth`); each endpoint names the admin role it needs;
//! every write is recorded as an admin event. Paths are normalised before routing: the `/auth`
//! prefix of Keycloak's older layout, and a trailing slash, are accepted.

pub mod auth;
pub mod clients;
pub mod groups;
pub mod mappings;
pub mod query;
pub mod realms;
pub mod roles;
pub mod sessions;
pub mod users;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::realm::AdminPlane;
use super::token;
use crate::domain::admin::{Outcome, Refused};
use crate::domain::state::State;

/// An admin API failure: a status and a message (causes go to the log only).
#[derive(Debug)]
pub struct AdminError(pub StatusCode, pub String);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        // Keycloak answers `error` for most failures and `errorMessage` for conflicts; both
        // are given so either kind of client finds its field.
        let body = json!({ "error": self.1, "errorMessage": self.1 });
        let mut r = (self.0, Json(body)).into_response();
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"portcullis\""),
            );
        }
        r
    }
}

pub type AdminResult = Result<Response, AdminError>;

pub fn internal(e: anyhow::Error) -> AdminError {
    tracing::error!(error = %format!("{e:#}"), "admin API error");
    AdminError(StatusCode::INTERNAL_SERVER_ERROR, "unknown_error".into())
}

pub fn refused(r: Refused) -> AdminError {
    match r {
        Refused::BadRequest(m) => AdminError(StatusCode::BAD_REQUEST, m),
        Refused::NotFound(m) => AdminError(StatusCode::NOT_FOUND, m),
        Refused::Conflict(m) => AdminError(StatusCode::CONFLICT, m),
        Refused::Forbidden(m) => AdminError(StatusCode::FORBIDDEN, m),
    }
}

/// An admin outcome as the API answers it.
pub fn answer<T>(outcome: Outcome<T>) -> Result<T, AdminError> {
    outcome.map_err(internal)?.map_err(refused)
}

/// `200` with a JSON body.
pub fn ok_json<T: serde::Serialize>(v: T) -> AdminResult {
    Ok(Json(v).into_response())
}

pub fn no_content() -> AdminResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `201 Created` with `Location`: the request's own URL (as the client sent it) plus `segment`,
/// absolute when the `Host` is well-formed. Clients take the new id from its last segment.
pub fn created(uri: &OriginalUri, headers: &HeaderMap, segment: &str) -> AdminResult {
    let base = uri.0.path().trim_end_matches('/');
    let mut u = url::Url::parse("http://localhost/").map_err(|e| internal(e.into()))?;
    u.set_path(base);
    if let Ok(mut segs) = u.path_segments_mut() {
        segs.push(segment);
    }
    let path = u.path().to_string();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    let location = match host {
        Some(h) => format!("http://{h}{path}"),
        None => path,
    };
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

/// Rewrites `/auth/admin/…` to `/admin/…` and `/realms/…` to `/auth/realms/…`, and drops a
/// trailing slash, so one set of routes serves both of Keycloak's layouts.
fn normalise(mut req: Request) -> Request {
    if req.extensions().get::<OriginalUri>().is_none() {
        let original = OriginalUri(req.uri().clone());
        req.extensions_mut().insert(original);
    }
    let path = req.uri().path();
    let mut p = if path.starts_with("/auth/admin/") || path == "/auth/admin" {
        path["/auth".len()..].to_string()
    } else if path.starts_with("/realms/") {
        format!("/auth{path}")
    } else {
        path.to_string()
    };
    while p.len() > 1 && p.ends_with('/') {
        p.pop();
    }
    if p != req.uri().path() {
        let pq = match req.uri().query() {
            Some(q) => format!("{p}?{q}"),
            None => p,
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// The admin API and the token endpoints, for the management listener.
pub(crate) fn router(st: Arc<State>) -> Router {
    let api = users::routes(Router::new())
        .merge(groups::routes(Router::new()))
        .merge(mappings::routes(Router::new()))
        .merge(roles::routes(Router::new()))
        .merge(clients::routes(Router::new()))
        .merge(sessions::routes(Router::new()))
        .merge(realms::routes(Router::new()))
        .fallback(auth::not_found)
        // Everything above needs an admin token; the token endpoint below does not.
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            auth::authenticate,
        ))
        .route(
            "/auth/realms/{realm}/protocol/openid-connect/token",
            post(token::token),
        )
        // Marks requests as the admin plane's: the `master` realm answers only here.
        .layer(axum::Extension(AdminPlane))
        .with_state(st);
    let svc = tower::ServiceBuilder::new()
        .map_request(normalise)
        .service(api);
    Router::new().fallback_service(svc)
}
