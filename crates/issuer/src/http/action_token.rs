//! `…/login-actions/action-token?key=…` (Keycloak's path for mailed links): opening a
//! verification link verifies the address; a reset or "update password" link shows the form
//! for a new password (twice), whose POST sets it, uses the link and ends the user's sessions.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;

use super::login;
use super::mail_pages::{self as pages, Field, Form, Page};
use super::params::Params;
use super::realm::{self, Realm};
use crate::domain::accounts::{self, NotSet, Opened, Refusal};
use crate::domain::directory::Directory;
use crate::domain::state::State;

use super::login::internal;

fn refused(dir: &Directory, r: Refusal) -> Response {
    pages::render(
        StatusCode::BAD_REQUEST,
        &Page {
            realm: accounts::display_name(dir),
            title: "Link not valid",
            error: Some(r.message()),
            notice: None,
            form: None,
            links: Vec::new(),
        },
    )
}

fn done(dir: &Directory, title: &str, notice: &str) -> Response {
    pages::render(
        StatusCode::OK,
        &Page {
            realm: accounts::display_name(dir),
            title,
            error: None,
            notice: Some(notice),
            form: None,
            links: Vec::new(),
        },
    )
}

/// The form for a new password, posting back with the link's key.
fn password_form(dir: &Directory, key: &str, error: Option<&str>) -> Response {
    let action = format!("/auth/realms/{}/login-actions/action-token", dir.realm);
    pages::render(
        StatusCode::OK,
        &Page {
            realm: accounts::display_name(dir),
            title: "Update password",
            error,
            notice: Some("You need to change your password."),
            form: Some(Form {
                action: &action,
                hidden: vec![("key", key)],
                fields: vec![
                    Field {
                        name: "password-new",
                        label: "New password",
                        kind: "password",
                        value: "",
                        autocomplete: "new-password",
                        required: true,
                    },
                    Field {
                        name: "password-confirm",
                        label: "Confirm password",
                        kind: "password",
                        value: "",
                        autocomplete: "new-password",
                        required: true,
                    },
                ],
                submit: "Submit",
            }),
            links: Vec::new(),
        },
    )
}

pub async fn get(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    RawQuery(query): RawQuery,
) -> Response {
    let dir = &realm.dir;
    let p = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return login::error_page(StatusCode::BAD_REQUEST, e.description()),
    };
    let Some(key) = p.get("key") else {
        return refused(dir, Refusal::Invalid);
    };
    match accounts::open(&st, dir, key).await {
        Ok(Opened::EmailVerified) => done(
            dir,
            "Email verified",
            "Your email address has been verified.",
        ),
        Ok(Opened::ChoosePassword) => password_form(dir, key, None),
        Ok(Opened::Refused(r)) => refused(dir, r),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "action token");
            internal()
        }
    }
}

pub async fn post(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    body: Bytes,
) -> Response {
    let dir = &realm.dir;
    let p = match Params::parse(&body) {
        Ok(p) => p,
        Err(e) => return login::error_page(StatusCode::BAD_REQUEST, e.description()),
    };
    let Some(key) = p.get("key") else {
        return refused(dir, Refusal::Invalid);
    };
    let new = p.get("password-new").unwrap_or_default();
    let confirm = p.get("password-confirm").unwrap_or_default();
    match accounts::set_password(&st, dir, key, new, confirm).await {
        Ok(Ok(())) => done(
            dir,
            "Password updated",
            "Your password has been updated. Sign in with the new password.",
        ),
        Ok(Err(NotSet::Form(why))) => password_form(dir, key, Some(&why)),
        Ok(Err(NotSet::Link(r))) => refused(dir, r),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "set password through a link");
            internal()
        }
    }
}
