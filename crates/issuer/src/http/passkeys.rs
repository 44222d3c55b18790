//! The HTTP side of passkeys on the login page: the endpoint that starts a passwordless
//! ceremony (`POST B/login-actions/webauthn-options`, JSON), the ceremony script both the login
//! page and the account console run (`/auth/resources/portcullis/webauthn.js`), and the check
//! of the browser's answer when the login form comes back with one.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use webauthn_rs::prelude::Webauthn;

use super::login::{self, CSRF_COOKIE};
use super::params::Params;
use super::realm::{self, Realm};
use super::urls::{Listener, bases, listener};
use crate::domain::directory::Directory;
use crate::domain::passkeys::{self, Failure, Started};
use crate::domain::state::State;
use crate::secrets;
use portcullis_store::UserRow;

/// The ceremony script: no inline code, so pages keep a strict CSP.
const SCRIPT: &str = include_str!("webauthn.js");

/// The URL of the passwordless ceremony's first half for `realm`.
pub(crate) fn login_options_path(realm: &str) -> String {
    format!("/auth/realms/{realm}/login-actions/webauthn-options")
}

/// The relying party of this request (the frontend URL's host), if it can have one.
pub(crate) fn relying_party(
    st: &State,
    headers: &HeaderMap,
    ext: Option<Extension<Listener>>,
    realm: &str,
) -> Option<Webauthn> {
    let b = bases(st.frontend_url.as_deref(), headers, listener(ext));
    passkeys::relying_party(&b.frontend, realm)
}

/// `GET /auth/resources/portcullis/webauthn.js`.
pub async fn script() -> Response {
    let mut r = SCRIPT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// A JSON answer, never cached.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A JSON error in words.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({"error": message}))
}

/// A started ceremony as the script takes it.
pub(crate) fn started(s: &Started) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"handle": s.handle, "options": s.options}),
    )
}

/// Whether a form's `csrf` field is the `expected` token.
pub(crate) fn csrf_ok_value(given: Option<&str>, expected: &str) -> bool {
    given.is_some_and(|g| secrets::ct_eq(g, expected))
}

/// Whether the form's `csrf` field matches the CSRF cookie (double submit).
pub(crate) fn csrf_ok(p: &Params, headers: &HeaderMap, cookie: &str) -> bool {
    match (p.get("csrf"), login::cookie(headers, cookie)) {
        (Some(a), Some(b)) => secrets::ct_eq(a, b),
        _ => false,
    }
}

/// `POST B/login-actions/webauthn-options`: starts a passwordless sign-in for the login form
/// whose CSRF token the request carries.
pub async fn login_options(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(p) = Params::parse(&body) else {
        return json_error(StatusCode::BAD_REQUEST, "Malformed request.");
    };
    if !csrf_ok(&p, &headers, CSRF_COOKIE) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "Invalid or expired form. Reload the page.",
        );
    }
    let Some(rp) = relying_party(&st, &headers, ext, &realm.name) else {
        return json_error(StatusCode::BAD_REQUEST, Failure::Unavailable.user_message());
    };
    match passkeys::start_login(&st, &realm.dir, &rp).await {
        Ok(s) => started(&s),
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred.",
        ),
    }
}

/// The login form came back with a passkey's answer (`webauthn_handle`,
/// `webauthn_credential`): the user it proves, or the message for the form.
pub(crate) async fn sign_in(
    st: &State,
    dir: &Directory,
    rp: Option<&Webauthn>,
    p: &Params,
    ip: Option<&str>,
    client_id: &str,
) -> anyhow::Result<Result<UserRow, &'static str>> {
    let Some(rp) = rp else {
        return Ok(Err(Failure::Unavailable.user_message()));
    };
    let handle = p.get("webauthn_handle").unwrap_or_default();
    let credential = p.get("webauthn_credential").unwrap_or_default();
    Ok(
        passkeys::finish_login(st, dir, rp, handle, credential, ip, client_id)
            .await?
            .map_err(Failure::user_message),
    )
}
