//! `P/logout`. In the browser (RP-initiated logout): ends the SSO session (from the cookie or
//! the `id_token_hint`'s `sid`), revoking its refresh tokens, then redirects to a registered
//! `post_logout_redirect_uri` with `state`, or shows a signed-out page. A `POST` with a
//! `refresh_token` is Keycloak's logout by a client instead: client-authenticated, `204` or an
//! OAuth error as JSON.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::client_auth;
use super::login::{self, SESSION_COOKIE};
use super::params::Params;
use super::realm::{self, Realm};
use super::redirect;
use crate::domain::directory::Directory;
use crate::domain::error::OAuthResult;
use crate::domain::sessions;
use crate::domain::state::State;
use crate::domain::verify;

pub async fn logout(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    match run(&st, &realm.dir, &method, &headers, query, &body).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "logout failed");
            login::internal()
        }
    }
}

/// A logout request that checked out.
struct Checked<'p> {
    /// From the `id_token_hint`, else the `client_id` parameter.
    client_id: Option<String>,
    /// The `sid` of the `id_token_hint`.
    hint_sid: Option<String>,
    /// The registered `post_logout_redirect_uri` asked for.
    target: Option<&'p str>,
}

async fn run(
    st: &State,
    dir: &Directory,
    method: &Method,
    headers: &HeaderMap,
    query: Option<String>,
    body: &[u8],
) -> anyhow::Result<Response> {
    let raw = if method == Method::POST {
        body.to_vec()
    } else {
        query.unwrap_or_default().into_bytes()
    };
    let Ok(p) = Params::parse(&raw) else {
        return Ok(bad("Invalid request"));
    };
    if method == Method::POST
        && let Some(token) = p.get("refresh_token")
    {
        return Ok(match by_client(st, dir, headers, &p, token).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => e.into_response(),
        });
    }
    let checked = match check(st, dir, &p).await? {
        Ok(c) => c,
        Err(why) => return Ok(bad(why)),
    };
    sessions::logout(
        st,
        dir,
        login::cookie(headers, SESSION_COOKIE),
        checked.hint_sid.as_deref(),
        checked.client_id.as_deref(),
    )
    .await?;
    signed_out(&dir.realm, checked.target, p.get("state"))
}

/// Keycloak's logout with a refresh token: the client authenticates as at the token endpoint.
async fn by_client(
    st: &State,
    dir: &Directory,
    headers: &HeaderMap,
    p: &Params,
    token: &str,
) -> OAuthResult<()> {
    let client = client_auth::authenticate(dir, headers, p)?;
    sessions::logout_with_refresh_token(st, dir, &client.client_id, token).await
}

fn bad(message: &str) -> Response {
    login::error_page(StatusCode::BAD_REQUEST, message)
}

/// The hint (signature and realm checked; it may have expired), the client it names and the
/// redirect target, or why the request is refused.
async fn check<'p>(
    st: &State,
    dir: &Directory,
    p: &'p Params,
) -> anyhow::Result<Result<Checked<'p>, &'static str>> {
    let hint = match p.get("id_token_hint") {
        Some(t) => match verify::claims(st, dir, t, "ID", true).await? {
            Some(c) => Some(c),
            None => return Ok(Err("Invalid id_token_hint")),
        },
        None => None,
    };
    let claim = |name: &str| {
        hint.as_ref()
            .and_then(|c| c.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let client_id = match (claim("azp"), p.get("client_id")) {
        (Some(a), Some(b)) if a != b => {
            return Ok(Err("Parameter client_id does not match id_token_hint"));
        }
        (a, b) => a.or(b.map(str::to_string)),
    };
    let target = match p.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client_id
                .as_deref()
                .and_then(|c| dir.clients.get(c))
                .map(|c| c.config.post_logout_redirect_uris.as_slice())
                .unwrap_or_default();
            if !redirect::allowed(registered, uri) {
                return Ok(Err("Invalid redirect uri"));
            }
            Some(uri)
        }
    };
    Ok(Ok(Checked {
        client_id,
        hint_sid: claim("sid"),
        target,
    }))
}

/// The redirect to `target` with `state`, or the signed-out page; the session cookie cleared.
fn signed_out(realm: &str, target: Option<&str>, state: Option<&str>) -> anyhow::Result<Response> {
    let mut resp = match target {
        Some(uri) => {
            let state: Vec<(&str, &str)> = state.map(|s| ("state", s)).into_iter().collect();
            let loc = redirect::with_params(uri, &state).unwrap_or_else(|| uri.to_string());
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&loc)?);
            r
        }
        None => Html("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed out</title></head><body><h1>You are signed out</h1></body></html>\n").into_response(),
    };
    login::secure_headers(resp.headers_mut());
    if let Some(c) = login::set_cookie(SESSION_COOKIE, "", realm, Some(0)) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    if let Some(c) = login::session_state_cookie(realm, None) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}
