//! `P/logout` (RP-initiated logout): ends the SSO session (from the cookie or the
//! `id_token_hint`'s `sid`), revoking its refresh tokens, then redirects to a registered
//! `post_logout_redirect_uri` with `state`, or shows a signed-out page.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::login;
use super::params::Params;
use super::{State, redirect, sessions, verify};
use portcullis_store::LoginEvent;

pub async fn logout(
    AxState(st): AxState<Arc<State>>,
    Path(realm): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    match run(&st, &realm, &method, &headers, query, &body).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "logout failed");
            login::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An internal error occurred.",
            )
        }
    }
}

async fn run(
    st: &State,
    realm: &str,
    method: &Method,
    headers: &HeaderMap,
    query: Option<String>,
    body: &[u8],
) -> anyhow::Result<Response> {
    let bad = |m: &str| Ok(login::error_page(StatusCode::BAD_REQUEST, m));
    let Some(dir) = st.dir(realm) else {
        return Ok(login::error_page(
            StatusCode::NOT_FOUND,
            "Realm does not exist.",
        ));
    };
    let raw = if method == Method::POST {
        body.to_vec()
    } else {
        query.unwrap_or_default().into_bytes()
    };
    let Ok(p) = Params::parse(&raw) else {
        return bad("Invalid request");
    };
    let hint = match p.get("id_token_hint") {
        Some(t) => match verify::claims(st, &dir, t, "ID", true).await? {
            Some(c) => Some(c),
            None => return bad("Invalid id_token_hint"),
        },
        None => None,
    };
    let hint_client = hint
        .as_ref()
        .and_then(|c| c.get("azp"))
        .and_then(Value::as_str);
    let client_id = match (hint_client, p.get("client_id")) {
        (Some(a), Some(b)) if a != b => {
            return bad("Parameter client_id does not match id_token_hint");
        }
        (a, b) => a.or(b),
    };
    let target = match p.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client_id
                .and_then(|c| dir.clients.get(c))
                .map(|c| c.config.post_logout_redirect_uris.as_slice())
                .unwrap_or_default();
            if !redirect::allowed(registered, uri) {
                return bad("Invalid redirect uri");
            }
            Some(uri)
        }
    };

    let mut session = None;
    if let Some(c) = login::cookie(headers, sessions::COOKIE) {
        session = sessions::live_by_cookie(st, &dir, c).await?;
    }
    if session.is_none()
        && let Some(sid) = hint
            .as_ref()
            .and_then(|c| c.get("sid"))
            .and_then(Value::as_str)
    {
        session = st
            .store
            .session_by_id(sid)
            .await?
            .filter(|s| s.realm == realm);
    }
    if let Some(s) = &session {
        st.store.end_session(&s.id).await?;
        st.store
            .add_event(&LoginEvent {
                realm: realm.to_string(),
                time: st.now(),
                kind: "LOGOUT".into(),
                user_id: Some(s.user_id.clone()),
                client_id: client_id.map(str::to_string),
                ip: None,
                error: None,
            })
            .await?;
        tracing::info!(target: "audit", event = "LOGOUT", realm = %realm, user.id = %s.user_id, "login event");
    }

    let mut resp = match target {
        Some(uri) => {
            let state: Vec<(&str, &str)> = p.get("state").map(|s| ("state", s)).into_iter().collect();
            let loc = redirect::with_params(uri, &state).unwrap_or_else(|| uri.to_string());
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&loc)?);
            r
        }
        None => Html("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed out</title></head><body><h1>You are signed out</h1></body></html>\n").into_response(),
    };
    login::secure_headers(resp.headers_mut());
    if let Some(c) = login::set_cookie(sessions::COOKIE, "", realm, Some(0)) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}
