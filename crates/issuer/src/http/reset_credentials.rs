//! `…/login-actions/reset-credentials` (Keycloak's "Forgot password?", when the realm has
//! `resetPasswordAllowed`): a form asking for the username or address, and one answer for
//! every submission, whether or not it names an account (the domain reads and signs the same
//! either way and only queues the mail).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::login::{self, CSRF_COOKIE};
use super::mail_pages::{self as pages, Field, Form, Page};
use super::params::Params;
use super::realm::{self, Realm};
use super::urls::{Listener, bases, listener};
use crate::domain::accounts;
use crate::domain::directory::Directory;
use crate::domain::state::State;
use crate::secrets;

/// Keycloak's words after a reset was asked for, whoever it named.
pub const SENT: &str = "You should receive an email shortly with further instructions.";

fn not_allowed() -> Response {
    login::error_page(
        StatusCode::BAD_REQUEST,
        "Resetting the password is not allowed in this realm.",
    )
}

/// A double-submit CSRF token: the form's hidden field and a cookie, compared on POST.
pub(crate) fn csrf_ok(p: &Params, headers: &HeaderMap) -> bool {
    match (p.get("csrf"), login::cookie(headers, CSRF_COOKIE)) {
        (Some(a), Some(b)) => secrets::ct_eq(a, b),
        _ => false,
    }
}

/// What a reset or registration form whose CSRF token does not check out answers.
pub(crate) const FORM_EXPIRED: &str = "Invalid or expired form. Go back and try again.";

/// A form's POST (reset, registration, the login form): the form, once it parses and its
/// double-submit CSRF token checks out; else the error page, `expired` for a bad token.
pub(crate) fn posted_form(
    body: &[u8],
    headers: &HeaderMap,
    expired: &str,
) -> Result<Params, Box<Response>> {
    let p = Params::parse(body)
        .map_err(|e| Box::new(login::error_page(StatusCode::BAD_REQUEST, e.description())))?;
    if !csrf_ok(&p, headers) {
        return Err(Box::new(login::error_page(
            StatusCode::BAD_REQUEST,
            expired,
        )));
    }
    Ok(p)
}

/// A form page's GET (reset and registration): the carried query parsed, a fresh CSRF token
/// made, and `form` drawn with both.
pub(crate) fn fresh_form(
    query: Option<String>,
    form: impl FnOnce(&Params, &str) -> Response,
) -> Response {
    let p = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return login::error_page(StatusCode::BAD_REQUEST, e.description()),
    };
    match secrets::random_token() {
        Ok(csrf) => form(&p, &csrf),
        Err(_) => login::internal(),
    }
}

/// Adds the CSRF cookie for `csrf` to a page.
pub(crate) fn with_csrf_cookie(mut resp: Response, realm: &str, csrf: &str) -> Response {
    if let Some(c) = login::set_cookie(CSRF_COOKIE, csrf, realm, None) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

fn form(dir: &Directory, p: &Params, csrf: &str, notice: Option<&str>) -> Response {
    let action = format!("/auth/realms/{}/login-actions/reset-credentials", dir.realm);
    let carried = pages::carried(p);
    let mut hidden = carried.clone();
    hidden.push(("csrf", csrf));
    let page = Page {
        realm: accounts::display_name(dir),
        title: "Forgot your password?",
        error: None,
        notice: Some(notice.unwrap_or(
            "Enter your username or email address and we will send you instructions on how to \
             create a new password.",
        )),
        form: Some(Form {
            action: &action,
            hidden,
            fields: vec![Field {
                name: "username",
                label: "Username or email",
                kind: "text",
                value: "",
                autocomplete: "username",
                required: true,
            }],
            submit: "Submit",
        }),
        links: pages::back_to_login(&dir.realm, &carried)
            .map(|l| (l, "« Back to Login"))
            .into_iter()
            .collect(),
    };
    with_csrf_cookie(pages::render(StatusCode::OK, &page), &dir.realm, csrf)
}

pub async fn get(realm: Realm<realm::Page>, RawQuery(query): RawQuery) -> Response {
    let dir = &realm.dir;
    if !dir.settings.reset_password_allowed {
        return not_allowed();
    }
    fresh_form(query, |p, csrf| form(dir, p, csrf, None))
}

pub async fn post(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let dir = &realm.dir;
    if !dir.settings.reset_password_allowed {
        return not_allowed();
    }
    let p = match posted_form(&body, &headers, FORM_EXPIRED) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let csrf = p.get("csrf").unwrap_or_default();
    let Some(login_name) = p.get("username") else {
        return form(dir, &p, csrf, Some("Please specify username or email."));
    };
    let base = bases(st.frontend_url.as_deref(), &headers, listener(ext)).realm(&realm.name);
    if let Err(e) = accounts::forgot_password(&st, dir, login_name, &base).await {
        // Logged, and answered as every other request is.
        tracing::error!(error = %format!("{e:#}"), "reset credentials");
    }
    form(dir, &p, csrf, Some(SENT))
}
