//! The step handlers: a GET renders the current step's page (or redirects to the step that is
//! current), a POST does the step (`posted` checks it first) and `advance`s.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{Flow, advance, current, internal, load, posted, with_cookie};
use crate::domain::credentials::{self, SetPasswordError};
use crate::domain::flow::{self, AuthSession, RequiredAction, SecondFactor, Step, hooks};
use crate::domain::otp;
use crate::http::pages::{self, actions, display_name};
use crate::http::params::Params;
use crate::http::passkeys;
use crate::http::realm::{self, Realm};
use crate::http::urls::{Listener, bases, listener};

/// The request's `Flow`.
fn flow<'a>(
    st: &'a Arc<crate::domain::state::State>,
    realm: &'a Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: &'a HeaderMap,
) -> Flow<'a> {
    let iss = bases(st.frontend_url.as_deref(), headers, listener(ext)).realm(&realm.name);
    Flow::new(st, &realm.dir, headers, iss)
}

/// The `execution` a GET names.
fn execution(query: Option<&str>) -> String {
    Params::parse(query.unwrap_or_default().as_bytes())
        .ok()
        .and_then(|p| p.get("execution").map(str::to_string))
        .unwrap_or_default()
}

/// The current step and the sign-in, for a GET of `at?execution=…`; any other step (or none
/// left) is answered by going on from where the sign-in is.
async fn get_step(
    f: &Flow<'_>,
    at: &str,
    query: Option<&str>,
) -> Result<(AuthSession, Step), Box<Response>> {
    let auth = load(f)?;
    let step = current(f, &auth).await?;
    if step.page() == Some((at, execution(query).as_str())) {
        Ok((auth, step))
    } else {
        Err(Box::new(advance(f, auth, None).await))
    }
}

pub async fn authenticate_get(
    AxState(st): AxState<Arc<crate::domain::state::State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let f = flow(&st, &realm, ext, &headers);
    let (auth, step) = match get_step(&f, "authenticate", query.as_deref()).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match step {
        Step::SecondFactor(SecondFactor::Otp) => {
            pages::otp::login(&f.dir.realm, display_name(f.dir), &auth.csrf, None)
        }
        Step::SecondFactor(SecondFactor::Webauthn) => {
            passkeys::second_factor_page(f.dir, &auth.csrf, None)
        }
        _ => internal(),
    }
}

pub async fn authenticate_post(
    AxState(st): AxState<Arc<crate::domain::state::State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let f = flow(&st, &realm, ext, &headers);
    let (mut auth, form, step) = match posted(&f, "authenticate", query.as_deref(), &body).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match step {
        Step::SecondFactor(SecondFactor::Otp) => {
            let code = form.get("otp").unwrap_or_default();
            let client = auth.client_id().to_string();
            let ip = auth.ip.clone();
            match otp::verify(f.st, f.dir, &auth.user_id, code, ip.as_deref(), &client).await {
                Ok(otp::Check::Valid) => {
                    auth.add_factor(SecondFactor::Otp.amr());
                    advance(&f, auth, None).await
                }
                Ok(_) => pages::otp::login(
                    &f.dir.realm,
                    display_name(f.dir),
                    &auth.csrf,
                    Some("Invalid authenticator code."),
                ),
                Err(_) => internal(),
            }
        }
        Step::SecondFactor(SecondFactor::Webauthn) => {
            match passkeys::second_factor(&f, &auth, &form).await {
                Ok(Ok(())) => {
                    auth.add_factor(SecondFactor::Webauthn.amr());
                    advance(&f, auth, None).await
                }
                Ok(Err(message)) => passkeys::second_factor_page(f.dir, &auth.csrf, Some(message)),
                Err(_) => internal(),
            }
        }
        _ => internal(),
    }
}

pub async fn required_action_get(
    AxState(st): AxState<Arc<crate::domain::state::State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let f = flow(&st, &realm, ext, &headers);
    let (mut auth, step) = match get_step(&f, "required-action", query.as_deref()).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (realm, display) = (f.dir.realm.as_str(), display_name(f.dir));
    match step {
        Step::RequiredAction(RequiredAction::ConfigureTotp) => enroll_page(&f, auth, None).await,
        Step::RequiredAction(RequiredAction::UpdatePassword) => {
            actions::update_password(realm, display, &auth.csrf, None)
        }
        Step::RequiredAction(RequiredAction::VerifyEmail) => {
            // The mail goes once per sign-in on its own; again only when asked.
            let first = auth
                .ext
                .insert("verify_email_sent".into(), "1".into())
                .is_none();
            let Ok(Some(user)) = flow::user(f.st, f.dir, &auth).await else {
                return internal();
            };
            if first
                && hooks::send_verify_email(f.st, f.dir, &user, &auth, &f.iss)
                    .await
                    .is_err()
            {
                tracing::warn!(realm = %realm, "verify-email hook failed");
            }
            let page =
                actions::verify_email(realm, display, &auth.csrf, user.email.as_deref(), None);
            with_cookie(&f, &auth, page)
        }
        _ => internal(),
    }
}

/// The enrollment page, with a new secret kept in the sign-in unless one is pending.
async fn enroll_page(f: &Flow<'_>, mut auth: AuthSession, error: Option<&str>) -> Response {
    let secret = match auth.pending_totp.clone() {
        Some(s) => s,
        None => match otp::new_secret() {
            Ok(s) => s,
            Err(_) => return internal(),
        },
    };
    auth.pending_totp = Some(secret.clone());
    let Ok(Some(user)) = flow::user(f.st, f.dir, &auth).await else {
        return internal();
    };
    let s = &f.dir.settings.accounts;
    let display = display_name(f.dir);
    let Ok(e) = otp::enrollment(s, display, &user.username, &secret) else {
        return internal();
    };
    let policy = (
        s.otp_policy_algorithm.as_str(),
        s.otp_policy_digits,
        s.otp_policy_period,
    );
    let page = pages::otp::enroll(&f.dir.realm, display, &auth.csrf, &e, policy, error);
    with_cookie(f, &auth, page)
}

pub async fn required_action_post(
    AxState(st): AxState<Arc<crate::domain::state::State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let f = flow(&st, &realm, ext, &headers);
    let (auth, form, step) = match posted(&f, "required-action", query.as_deref(), &body).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match step {
        Step::RequiredAction(RequiredAction::ConfigureTotp) => enroll_post(&f, auth, &form).await,
        Step::RequiredAction(RequiredAction::UpdatePassword) => {
            update_password_post(&f, auth, &form).await
        }
        Step::RequiredAction(RequiredAction::VerifyEmail) => {
            verify_email_post(&f, auth, &form).await
        }
        _ => internal(),
    }
}

async fn enroll_post(f: &Flow<'_>, mut auth: AuthSession, form: &Params) -> Response {
    let Some(secret) = auth.pending_totp.clone() else {
        return enroll_page(f, auth, Some("The setup expired. Scan the new code.")).await;
    };
    let code = form.get("totp").unwrap_or_default();
    let label = form
        .get("userLabel")
        .map(|l| l.chars().take(100).collect::<String>());
    match otp::enroll(f.st, f.dir, &auth.user_id, &secret, code, label.as_deref()).await {
        Ok(true) => {}
        Ok(false) => return enroll_page(f, auth, Some("Invalid authenticator code.")).await,
        Err(_) => return internal(),
    }
    auth.pending_totp = None;
    auth.add_factor(SecondFactor::Otp.amr());
    if flow::action_done(f.st, &auth.user_id, RequiredAction::ConfigureTotp)
        .await
        .is_err()
    {
        return internal();
    }
    advance(f, auth, None).await
}

async fn update_password_post(f: &Flow<'_>, auth: AuthSession, form: &Params) -> Response {
    let (realm, display) = (f.dir.realm.as_str(), display_name(f.dir));
    let again = |m: &str| actions::update_password(realm, display, &auth.csrf, Some(m));
    let new = form.get("password-new").unwrap_or_default();
    if new.is_empty() {
        return again("Please specify password.");
    }
    if form.get("password-confirm") != Some(new) {
        return again("Passwords don't match.");
    }
    let Ok(Some(user)) = flow::user(f.st, f.dir, &auth).await else {
        return internal();
    };
    match credentials::set_password(f.st, f.dir, &user, new).await {
        Ok(()) => {}
        Err(SetPasswordError::Policy(m)) => return again(&m),
        Err(SetPasswordError::Internal(_)) => return internal(),
    }
    if flow::action_done(f.st, &auth.user_id, RequiredAction::UpdatePassword)
        .await
        .is_err()
    {
        return internal();
    }
    advance(f, auth, None).await
}

async fn verify_email_post(f: &Flow<'_>, mut auth: AuthSession, form: &Params) -> Response {
    if form.get("action") != Some("resend") {
        // Continue: on to the next step, or back to this page while the address is unverified.
        return advance(f, auth, None).await;
    }
    let Ok(Some(user)) = flow::user(f.st, f.dir, &auth).await else {
        return internal();
    };
    auth.ext.insert("verify_email_sent".into(), "1".into());
    if hooks::send_verify_email(f.st, f.dir, &user, &auth, &f.iss)
        .await
        .is_err()
    {
        tracing::warn!(realm = %f.dir.realm, "verify-email hook failed");
    }
    let page = actions::verify_email(
        &f.dir.realm,
        display_name(f.dir),
        &auth.csrf,
        user.email.as_deref(),
        Some("We sent the email again."),
    );
    with_cookie(f, &auth, page)
}
