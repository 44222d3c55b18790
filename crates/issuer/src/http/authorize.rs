//! `P/auth`: validates the authorization request, reuses a live SSO session or shows the login
//! form, hands a checked password to the sign-in flow (`login_actions`: second factor, required
//! actions; a step-up when a live session has fewer factors than the request demands), and
//! redirects back with a single-use code (plus `state`, `session_state` and RFC 9207
//! `iss`) in the query or, with `response_mode=fragment` (keycloak-js's default), the
//! fragment. Requests that cannot be trusted to redirect get an error page instead. Credentials,
//! sessions and codes are `domain`'s; validation and pages are here.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::auth_request::{Request, issue_code, validate};
use super::login::{self, CARRIED, CSRF_COOKIE, Page, SESSION_COOKIE};
use super::login_actions::{self, Flow};
use super::mail_pages as pages;
use super::params::Params;
use super::realm::{self, Realm};
use super::reset_credentials::posted_form;
use super::urls::{ClientIp, Listener, bases, client_ip, listener};
use crate::domain::credentials;
use crate::domain::directory::Directory;
use crate::domain::flow::{self, AuthSession, Need};
use crate::domain::passkeys;
use crate::domain::sessions;
use crate::domain::state::State;
use crate::secrets;
use portcullis_store::SessionRow;

use super::login::internal;

fn fresh_enough(req: &Request<'_>, s: &SessionRow, now: i64) -> bool {
    req.max_age.is_none_or(|m| now - s.created_at <= m)
}

/// The login form; `passkeys`: offer passwordless sign-in too (the host can be a relying party).
fn form_page(
    dir: &Directory,
    p: &Params,
    csrf: &str,
    error: Option<&str>,
    passkeys: bool,
) -> Response {
    let options = passkeys.then(|| super::passkeys::login_options_path(&dir.realm));
    let action = format!("/auth/realms/{}/protocol/openid-connect/auth", dir.realm);
    let hidden = CARRIED
        .iter()
        .filter_map(|k| p.get(k).map(|v| (*k, v)))
        .collect();
    let mut resp = login::render(&Page {
        realm: super::pages::display_name(dir),
        action: &action,
        hidden,
        csrf,
        username: p.get("username").or(p.get("login_hint")).unwrap_or(""),
        error,
        forgot: dir.settings.reset_password_allowed.then(|| {
            pages::with_query(
                &format!("/auth/realms/{}/login-actions/reset-credentials", dir.realm),
                &pages::carried(p),
            )
        }),
        register: dir.settings.registration_allowed.then(|| {
            pages::with_query(
                &format!(
                    "/auth/realms/{}/protocol/openid-connect/registrations",
                    dir.realm
                ),
                &pages::carried(p),
            )
        }),
        passkey_options: options.as_deref(),
        passkey_failed: error.is_some() && p.get("webauthn_credential").is_some(),
    });
    if let Some(c) = login::set_cookie(CSRF_COOKIE, csrf, &dir.realm, None) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

pub async fn get(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let dir = &realm.dir;
    let p = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return login::error_page(StatusCode::BAD_REQUEST, e.description()),
    };
    let b = bases(st.frontend_url.as_deref(), &headers, listener(ext));
    let offer_passkeys = passkeys::relying_party(&b.frontend, &realm.name).is_some();
    let req = match validate(dir, &p, b.realm(&realm.name)) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let now = st.now();
    let session = match login::cookie(&headers, SESSION_COOKIE) {
        Some(c) => match sessions::live_by_cookie(&st, dir, c).await {
            Ok(s) => s,
            Err(_) => return internal(),
        },
        None => None,
    };
    let prompt = req.prompt.as_deref().unwrap_or("");
    let reusable = session.filter(|s| fresh_enough(&req, s, now) && prompt != "login");
    match (reusable, prompt) {
        // A session with fewer factors than demanded: a step-up, never a silent code.
        (Some(s), "none") if req.acr_level >= 2 && s.amr.len() < 2 => req.error(
            "interaction_required",
            "The requested authentication level needs a second factor",
        ),
        (Some(s), _) if req.acr_level >= 2 && s.amr.len() < 2 => {
            let f = Flow::new(&st, dir, &headers, req.iss.clone());
            step_up(&f, &p, s, now).await
        }
        (Some(s), _) => issue_code(&st, dir, &req, &s)
            .await
            .unwrap_or_else(|_| internal()),
        (None, "none") => req.error("login_required", "No active session"),
        (None, _) => match secrets::random_token() {
            Ok(csrf) => form_page(dir, &p, &csrf, None, offer_passkeys),
            Err(_) => internal(),
        },
    }
}

pub async fn post(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let dir = &realm.dir;
    let expired = "Invalid or expired form. Go back and sign in again.";
    let p = match posted_form(&body, &headers, expired) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let b = bases(st.frontend_url.as_deref(), &headers, listener(ext));
    let rp = passkeys::relying_party(&b.frontend, &realm.name);
    // Hidden fields come back from the browser: validate them all over again.
    let req = match validate(dir, &p, b.realm(&realm.name)) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let csrf = p.get("csrf").unwrap_or_default();
    let ip = client_ip(ip.map(|e| e.0), &headers);
    let (checked, factors) = if p.get("webauthn_credential").is_some() {
        // Passwordless: a passkey (user verification required) is two factors on its own.
        let client = &req.client.client_id;
        let user = super::passkeys::sign_in(&st, dir, rp.as_ref(), &p, ip.as_deref(), client);
        (user.await, passkeys::PASSWORDLESS_AMR)
    } else {
        let user = credentials::check(
            &st,
            dir,
            p.get("username").unwrap_or_default(),
            p.get("password").unwrap_or_default(),
            ip.as_deref(),
            &req.client.client_id,
        )
        .await
        .map(|r| r.map_err(|f| f.user_message()));
        (user, &["pwd"][..])
    };
    let user = match checked {
        Ok(Ok(u)) => u,
        Ok(Err(message)) => return form_page(dir, &p, csrf, Some(message), rp.is_some()),
        Err(_) => return internal(),
    };
    // The first step's factors are done; the flow asks for what else is owed, then issues the
    // code.
    let need = match flow::need_of(&st, dir, &user, req.acr_level).await {
        Ok(n) => n,
        Err(_) => return internal(),
    };
    let Ok(mut auth) = AuthSession::new(
        dir,
        st.now(),
        &user.id,
        carried(&p),
        factors.iter().map(|f| f.to_string()).collect(),
        need,
    ) else {
        return internal();
    };
    auth.ip = ip;
    let f = Flow::new(&st, dir, &headers, req.iss.clone());
    login_actions::advance(&f, auth, Some(&user)).await
}

/// The authorization request's parameters the flow carries (also for a sign-in that starts
/// without the password form, e.g. a passwordless passkey).
pub(crate) fn carried(p: &Params) -> Vec<(String, String)> {
    CARRIED
        .iter()
        .filter_map(|k| p.get(k).map(|v| (k.to_string(), v.to_string())))
        .collect()
}

/// A live session asked for more factors than it has: the flow runs its second factor and
/// raises the session in place.
async fn step_up(f: &Flow<'_>, p: &Params, s: SessionRow, now: i64) -> Response {
    let Ok(mut auth) = AuthSession::new(
        f.dir,
        now,
        &s.user_id,
        carried(p),
        s.amr.clone(),
        Need::Required,
    ) else {
        return internal();
    };
    auth.upgrade_session = Some(s.id);
    login_actions::advance(f, auth, None).await
}
