//! Registration (`registrationAllowed`): Keycloak's `…/protocol/openid-connect/registrations`
//! and `…/login-actions/registration` show the form (first and last name, email, username,
//! password twice); its POST creates the user. With `verifyEmail` the answer is "check your
//! mail" (the verification link is queued); without, the browser goes back to the login form
//! with the new username filled in.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::login;
use super::mail_pages::{self as pages, Field, Form, Page};
use super::params::Params;
use super::realm::{self, Realm};
use super::reset_credentials::{FORM_EXPIRED, fresh_form, posted_form, with_csrf_cookie};
use super::urls::{Listener, bases, listener};
use crate::domain::accounts;
use crate::domain::directory::Directory;
use crate::domain::registration::{self, Form as Fields};
use crate::domain::state::State;

fn not_allowed() -> Response {
    login::error_page(
        StatusCode::BAD_REQUEST,
        "Registration is not allowed in this realm.",
    )
}

fn field<'a>(
    name: &'a str,
    label: &'a str,
    kind: &'a str,
    p: &'a Params,
    ac: &'a str,
) -> Field<'a> {
    Field {
        name,
        label,
        kind,
        value: p.get(name).unwrap_or_default(),
        autocomplete: ac,
        required: !matches!(name, "firstName" | "lastName"),
    }
}

fn form(dir: &Directory, p: &Params, csrf: &str, error: Option<&str>) -> Response {
    let action = format!("/auth/realms/{}/login-actions/registration", dir.realm);
    let carried = pages::carried(p);
    let mut hidden = carried.clone();
    hidden.push(("csrf", csrf));
    let page = Page {
        realm: accounts::display_name(dir),
        title: "Register",
        error,
        notice: None,
        form: Some(Form {
            action: &action,
            hidden,
            fields: vec![
                field("firstName", "First name", "text", p, "given-name"),
                field("lastName", "Last name", "text", p, "family-name"),
                field("email", "Email", "email", p, "email"),
                field("username", "Username", "text", p, "username"),
                field("password", "Password", "password", p, "new-password"),
                field(
                    "password-confirm",
                    "Confirm password",
                    "password",
                    p,
                    "new-password",
                ),
            ],
            submit: "Register",
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
    if !dir.settings.registration_allowed {
        return not_allowed();
    }
    fresh_form(query, |p, csrf| form(dir, p, csrf, None))
}

/// After a registration without verification: the login form again, the username filled in.
fn to_login(dir: &Directory, p: &Params, username: &str) -> Response {
    let mut pairs = pages::carried(p);
    pairs.retain(|(k, _)| *k != "login_hint");
    pairs.push(("login_hint", username));
    match pages::back_to_login(&dir.realm, &pairs) {
        Some(to) => {
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            login::secure_headers(r.headers_mut());
            r
        }
        None => pages::render(
            StatusCode::OK,
            &Page {
                realm: accounts::display_name(dir),
                title: "Account created",
                error: None,
                notice: Some("Your account has been created. You can sign in now."),
                form: None,
                links: Vec::new(),
            },
        ),
    }
}

pub async fn post(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let dir = &realm.dir;
    if !dir.settings.registration_allowed {
        return not_allowed();
    }
    let p = match posted_form(&body, &headers, FORM_EXPIRED) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let csrf = p.get("csrf").unwrap_or_default();
    let g = |k| p.get(k).unwrap_or_default();
    let fields = Fields {
        username: g("username"),
        email: g("email"),
        first_name: g("firstName"),
        last_name: g("lastName"),
        password: g("password"),
        confirm: g("password-confirm"),
    };
    let base = bases(st.frontend_url.as_deref(), &headers, listener(ext)).realm(&realm.name);
    match registration::register(&st, dir, &fields, &base).await {
        Ok(Ok(_)) if dir.settings.verify_email => pages::render(
            StatusCode::OK,
            &Page {
                realm: accounts::display_name(dir),
                title: "Email verification",
                error: None,
                notice: Some(
                    "You need to verify your email address to activate your account. An \
                         email with instructions to verify your email address has been sent to \
                         you.",
                ),
                form: None,
                links: Vec::new(),
            },
        ),
        Ok(Ok(user)) => to_login(dir, &p, &user.username),
        Ok(Err(why)) => form(dir, &p, csrf, Some(&why)),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "registration");
            login::internal()
        }
    }
}
