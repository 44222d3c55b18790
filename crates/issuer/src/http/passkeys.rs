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
use super::login_actions::{self, Flow};
use super::pages::{self, step_path};
use super::params::Params;
use super::realm::{self, Realm};
use super::urls::{Listener, bases, listener};
use crate::domain::directory::Directory;
use crate::domain::flow::{AuthSession, SecondFactor, Step};
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

/// The second-factor ceremony's first half for the sign-in flow's `webauthn` step.
pub(crate) fn second_factor_options_path(realm: &str) -> String {
    format!("/auth/realms/{realm}/login-actions/webauthn-second-factor-options")
}

/// The sign-in flow's passkey step (`P/login-actions/authenticate?execution=webauthn`): a
/// button that runs the ceremony (the only script), whose answer the form posts.
pub(crate) fn second_factor_page(dir: &Directory, csrf: &str, error: Option<&str>) -> Response {
    let action = step_path(
        &dir.realm,
        "authenticate",
        SecondFactor::Webauthn.execution(),
    );
    let body = format!(
        "<p>Confirm the sign-in with your passkey.</p>\n\
         <form method=\"post\" action=\"{action}\" data-webauthn=\"verify\" data-options=\"{options}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"webauthn_handle\" value=\"\">\
         <input type=\"hidden\" name=\"webauthn_credential\" value=\"\">\n\
         <p class=\"error\" role=\"alert\" id=\"webauthn-error\" hidden></p>\
         <button type=\"button\" id=\"passkey-button\" hidden>Use your passkey</button>\n</form>\n\
         <noscript><p>A passkey needs JavaScript.</p></noscript>\n\
         <script src=\"{script}\" defer></script>\n",
        action = login::escape(&action),
        options = login::escape(&second_factor_options_path(&dir.realm)),
        csrf = login::escape(csrf),
        script = login::WEBAUTHN_JS_PATH,
    );
    let mut resp = pages::render(
        &pages::Layout {
            heading: "Use your passkey",
            realm: pages::display_name(dir),
            error,
            info: None,
        },
        &body,
    );
    login::secure_headers_with_script(resp.headers_mut());
    resp
}

/// The sign-in of the request's flow cookie, if its current step is the passkey.
async fn at_passkey_step(f: &Flow<'_>) -> Option<AuthSession> {
    let auth = login_actions::load(f).ok()?;
    let step = login_actions::current(f, &auth).await.ok()?;
    (step == Step::SecondFactor(SecondFactor::Webauthn)).then_some(auth)
}

/// `POST B/login-actions/webauthn-second-factor-options`: starts the passkey check of the
/// sign-in whose flow cookie and CSRF token the request carries, at its passkey step only.
pub async fn second_factor_options(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let iss = bases(st.frontend_url.as_deref(), &headers, listener(ext)).realm(&realm.name);
    let f = Flow::new(&st, &realm.dir, &headers, iss);
    let (Ok(p), Some(auth)) = (Params::parse(&body), at_passkey_step(&f).await) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "Your sign-in has timed out. Go back and sign in again.",
        );
    };
    if !csrf_ok_value(p.get("csrf"), &auth.csrf) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "Invalid or expired form. Reload the page.",
        );
    }
    let Some(rp) = relying_party(&st, &headers, ext, &realm.name) else {
        return json_error(StatusCode::BAD_REQUEST, Failure::Unavailable.user_message());
    };
    match passkeys::start_second_factor(&st, &realm.dir, &rp, &auth.user_id).await {
        Ok(Some(s)) => started(&s),
        Ok(None) => json_error(StatusCode::BAD_REQUEST, "You have no passkey."),
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred.",
        ),
    }
}

/// The passkey step's form came back: the answer checked against the sign-in's user.
pub(crate) async fn second_factor(
    f: &Flow<'_>,
    auth: &AuthSession,
    form: &Params,
) -> anyhow::Result<Result<(), &'static str>> {
    let Some(rp) = passkeys::relying_party(&f.iss, &f.dir.realm) else {
        return Ok(Err(Failure::Unavailable.user_message()));
    };
    let handle = form.get("webauthn_handle").unwrap_or_default();
    let credential = form.get("webauthn_credential").unwrap_or_default();
    let ip = auth.ip.as_deref();
    Ok(
        passkeys::finish_second_factor(f.st, f.dir, &rp, &auth.user_id, handle, credential, ip)
            .await?
            .map_err(Failure::user_message),
    )
}
