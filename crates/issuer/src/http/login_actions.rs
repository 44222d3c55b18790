//! `P/login-actions/authenticate` and `P/login-actions/required-action` (Keycloak's paths): the
//! steps of a sign-in after the password, one page each, carried by the sealed
//! `PORTCULLIS_AUTH_SESSION` cookie (`domain::flow` explains the flow and its state).
//!
//! # API for the steps (and for other parts that continue a sign-in)
//! - [`Flow`]: what every step handler has (state, realm, headers, the request's issuer);
//!   build it with [`Flow::new`].
//! - [`load`]: the sign-in of the request's cookie, or the error page to answer with.
//! - [`posted`]: for a step's POST: loads the sign-in, parses the form, checks its CSRF token
//!   and that the step posted to is the current one; anything else is refused (400), state
//!   untouched.
//! - [`advance`]: after a step is done (or to start): redirects to the next step's page with
//!   the updated cookie, or, when nothing is owed, creates (or raises) the SSO session,
//!   records the `LOGIN` event with the factors, and redirects to the client with the code.
//! - [`with_cookie`]: a page response that also stores the updated sign-in (a step that keeps
//!   state between its page and its form).
//! - Starting a sign-in elsewhere (a passwordless passkey on the login page): validate the
//!   request (`auth_request::validate`), build `AuthSession::new(dir, now, user_id,
//!   authorize::carried(&params), vec![first_factor_amr], need)` with `flow::need_of`, set
//!   `auth.ip`, and call [`advance`] with a [`Flow`].
//! - `domain::credentials::set_password(st, dir, user, new)` is the one way to set a password
//!   (policy, history, `UPDATE_PASSWORD` cleared); `Err(SetPasswordError::Policy(message))`
//!   carries the words to show.
//!
//! The step pages themselves are in `steps`; their HTML in `http::pages`.

mod steps;

pub use steps::{authenticate_get, authenticate_post, required_action_get, required_action_post};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::auth_request;
use super::login::{self, CSRF_COOKIE, SESSION_COOKIE};
use super::pages::step_path;
use super::params::Params;
use crate::domain::credentials;
use crate::domain::directory::Directory;
use crate::domain::flow::{self, AuthSession, Step};
use crate::domain::sessions;
use crate::domain::state::State;
use crate::secrets;
use portcullis_store::SessionRow;

/// The sign-in's cookie: the sealed [`AuthSession`].
pub(crate) const AUTH_COOKIE: &str = "PORTCULLIS_AUTH_SESSION";

/// What every step handler has.
pub struct Flow<'a> {
    pub st: &'a State,
    pub dir: &'a Directory,
    pub headers: &'a HeaderMap,
    /// The issuer (`iss`) as this request sees it, for the code's redirect.
    pub iss: String,
}

impl<'a> Flow<'a> {
    pub fn new(st: &'a State, dir: &'a Directory, headers: &'a HeaderMap, iss: String) -> Self {
        Flow {
            st,
            dir,
            headers,
            iss,
        }
    }
}

pub(crate) use super::login::internal;

/// The page for a request without a usable sign-in (none, expired, another realm's, forged).
fn expired() -> Response {
    login::error_page(
        StatusCode::BAD_REQUEST,
        "Your sign-in has timed out or was not started here. Go back to the application and \
         sign in again.",
    )
}

/// The page for a sign-in whose user is gone or disabled.
fn disabled() -> Response {
    login::error_page(
        StatusCode::BAD_REQUEST,
        "Account is disabled, contact your administrator.",
    )
}

/// The sign-in the request's cookie holds. (Rejections are whole responses, boxed to keep
/// `Result` small.)
pub fn load(f: &Flow<'_>) -> Result<AuthSession, Box<Response>> {
    login::cookie(f.headers, AUTH_COOKIE)
        .and_then(|c| AuthSession::open(f.st, f.dir, c))
        .ok_or_else(|| Box::new(expired()))
}

/// A step's POST, checked: the sign-in, the form, and the step it is (the current one). `at`
/// is the endpoint posted to and `query` its query string (naming the `execution`).
pub async fn posted(
    f: &Flow<'_>,
    at: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<(AuthSession, Params, Step), Box<Response>> {
    let auth = load(f)?;
    let bad = |m: &str| Box::new(login::error_page(StatusCode::BAD_REQUEST, m));
    let form = Params::parse(body).map_err(|e| bad(e.description()))?;
    let csrf_ok = form
        .get("csrf")
        .is_some_and(|c| secrets::ct_eq(c, &auth.csrf));
    if !csrf_ok {
        return Err(bad("Invalid or expired form. Go back and sign in again."));
    }
    let q =
        Params::parse(query.unwrap_or_default().as_bytes()).map_err(|e| bad(e.description()))?;
    let step = current(f, &auth).await?;
    if step == Step::Done {
        // Done meanwhile (an address verified from the mail's link): nothing is left to skip.
        return Err(Box::new(advance(f, auth, None).await));
    }
    if step.page() != Some((at, q.get("execution").unwrap_or_default())) {
        return Err(bad(
            "This is not the current step of your sign-in. Go back and continue from there.",
        ));
    }
    Ok((auth, form, step))
}

/// The step `auth` owes now; the error page when the sign-in can't go on.
pub async fn current(f: &Flow<'_>, auth: &AuthSession) -> Result<Step, Box<Response>> {
    match flow::next_step(f.st, f.dir, auth, None).await {
        Ok(Some(step)) => Ok(step),
        Ok(None) => Err(Box::new(disabled())),
        Err(_) => Err(Box::new(internal())),
    }
}

/// `resp` with `auth` stored in the sign-in cookie.
pub fn with_cookie(f: &Flow<'_>, auth: &AuthSession, mut resp: Response) -> Response {
    let Ok(sealed) = auth.seal(f.st) else {
        return internal();
    };
    let age = (auth.expires_at - f.st.now()).max(0);
    match login::set_cookie(AUTH_COOKIE, &sealed, &f.dir.realm, Some(age)) {
        Some(c) => {
            resp.headers_mut().append(header::SET_COOKIE, c);
            resp
        }
        None => internal(),
    }
}

/// A 303 to `location` (after a form, the next page is a GET).
fn see_other(location: &str) -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = header::HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    login::secure_headers(r.headers_mut());
    r
}

/// Goes on with `auth`: to the next step's page, or, when nothing is owed, to the client with
/// a code. `fresh`: the user row the caller has just read (the password step), else it is read.
pub async fn advance(
    f: &Flow<'_>,
    auth: AuthSession,
    fresh: Option<&portcullis_store::UserRow>,
) -> Response {
    let step = match flow::next_step(f.st, f.dir, &auth, fresh).await {
        Ok(Some(step)) => step,
        Ok(None) => return disabled(),
        Err(_) => return internal(),
    };
    match step.page() {
        Some((endpoint, execution)) => {
            let to = step_path(&f.dir.realm, endpoint, execution);
            with_cookie(f, &auth, see_other(&to))
        }
        None => finish(f, auth).await,
    }
}

/// Every step done: the SSO session (new, or the one a step-up raises), the `LOGIN` event, and
/// the code's redirect; the sign-in and CSRF cookies are cleared.
async fn finish(f: &Flow<'_>, auth: AuthSession) -> Response {
    let params = Params::from_pairs(&auth.params);
    let req = match auth_request::validate(f.dir, &params, f.iss.clone()) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let Ok((session, cookie)) = session_for(f, &auth).await else {
        return internal();
    };
    let ip = auth.ip.as_deref();
    let realm = f.dir.realm.as_str();
    let client = auth.client_id();
    if credentials::record_login(f.st, realm, &auth.user_id, client, ip, &auth.amr)
        .await
        .is_err()
    {
        return internal();
    }
    let mut resp = match auth_request::issue_code(f.st, f.dir, &req, &session).await {
        Ok(r) => r,
        Err(_) => return internal(),
    };
    let h = resp.headers_mut();
    let set = [
        cookie.and_then(|c| login::set_cookie(SESSION_COOKIE, &c, realm, None)),
        login::set_cookie(AUTH_COOKIE, "", realm, Some(0)),
        login::set_cookie(CSRF_COOKIE, "", realm, Some(0)),
    ];
    for c in set.into_iter().flatten() {
        h.append(header::SET_COOKIE, c);
    }
    resp
}

/// The session the sign-in ends in, and its new cookie: a step-up raises the live session it
/// started from (keeping its cookie); otherwise a new session replaces the browser's old one
/// (fixation defence).
async fn session_for(
    f: &Flow<'_>,
    auth: &AuthSession,
) -> anyhow::Result<(SessionRow, Option<String>)> {
    if let Some(id) = &auth.upgrade_session
        && let Some(mut s) = sessions::live_by_id(f.st, f.dir, id).await?
        && s.user_id == auth.user_id
    {
        sessions::raise(f.st, &mut s, &auth.amr).await?;
        return Ok((s, None));
    }
    let old = login::cookie(f.headers, SESSION_COOKIE);
    let (s, c) = sessions::replace(f.st, f.dir, old, &auth.user_id, &auth.amr).await?;
    Ok((s, Some(c)))
}
