//! The account console at `B/account/` (Keycloak's path): server-rendered pages where the
//! signed-in user sees their account, changes their password, adds and removes passkeys and
//! authenticator apps (TOTP), and sees and ends their sessions.
//!
//! Who is signed in is the realm's SSO session (`PORTCULLIS_SESSION`). Without one, the console
//! sends the browser through the realm's own sign-in (the authorization endpoint, client
//! `account-console`, back to `B/account/` only: no open redirect), so every step of the login
//! flow applies; the console never redeems the code (its PKCE verifier is thrown away), the
//! session cookie is what it wanted. Every POST carries a CSRF token bound to the session (a
//! digest of its cookie, which a cross-site page cannot read); no GET changes anything; ids in
//! forms are checked against the session's user by `domain::account` and
//! `domain::passkeys`.

mod page;
mod totp;

pub use totp::{add_totp, remove_totp, totp_page};

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::login::{self, SESSION_COOKIE};
use super::params::Params;
use super::passkeys::{csrf_ok_value, json_error, relying_party, started};
use super::realm::{self, Realm};
use super::urls::{ClientIp, Listener, bases, client_ip, listener};
use crate::domain::account::{self, SessionView};
use crate::domain::clients::ACCOUNT_CONSOLE;
use crate::domain::passkeys::{self, Failure};
use crate::domain::state::State;
use crate::secrets;
use page::{Frame, base};
use portcullis_store::{SessionRow, UserRow};

/// The signed-in user of a console request.
struct Signed {
    session: SessionRow,
    user: UserRow,
    csrf: String,
}

/// The console's CSRF token for the session whose cookie is `cookie`.
fn csrf_token(cookie: &str) -> String {
    secrets::token_hash(&format!("portcullis account csrf\0{cookie}"))
}

use super::login::internal;

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    login::secure_headers(r.headers_mut());
    r
}

/// To the realm's sign-in, and back to the console.
fn to_login(
    st: &State,
    headers: &HeaderMap,
    ext: Option<Extension<Listener>>,
    realm: &str,
) -> Response {
    let iss = bases(st.frontend_url.as_deref(), headers, listener(ext)).realm(realm);
    let (Ok(state), Ok(verifier)) = (secrets::random_token(), secrets::random_token()) else {
        return internal();
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let back = format!("{iss}/account/");
    let query = [
        ("client_id", ACCOUNT_CONSOLE),
        ("redirect_uri", back.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    see_other(&format!("{iss}/protocol/openid-connect/auth?{q}"))
}

/// The signed-in user, or the response that sends the browser to sign in.
async fn who(
    st: &State,
    realm: &Realm<realm::Page>,
    headers: &HeaderMap,
    ext: Option<Extension<Listener>>,
) -> Result<Signed, Response> {
    let Some(cookie) = login::cookie(headers, SESSION_COOKIE) else {
        return Err(to_login(st, headers, ext, &realm.name));
    };
    match account::signed_in(st, &realm.dir, cookie).await {
        Ok(Some((session, user))) => Ok(Signed {
            session,
            user,
            csrf: csrf_token(cookie),
        }),
        Ok(None) => Err(to_login(st, headers, ext, &realm.name)),
        Err(_) => Err(internal()),
    }
}

/// A console POST: the signed-in user and the form, once its CSRF token checks out.
async fn posted(
    st: &State,
    realm: &Realm<realm::Page>,
    headers: &HeaderMap,
    ext: Option<Extension<Listener>>,
    body: &[u8],
) -> Result<(Signed, Params), Response> {
    let s = who(st, realm, headers, ext).await?;
    let p = Params::parse(body)
        .map_err(|e| login::error_page(StatusCode::BAD_REQUEST, e.description()))?;
    if !csrf_ok_value(p.get("csrf"), &s.csrf) {
        return Err(login::error_page(
            StatusCode::BAD_REQUEST,
            "Invalid or expired form. Go back, reload the page and try again.",
        ));
    }
    Ok((s, p))
}

/// The notices a redirect after a change names (`?done=`); nothing else is ever shown.
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "password" => Some("Your password was changed."),
        "passkey-added" => Some("The passkey was added."),
        "passkey-removed" => Some("The passkey was removed."),
        "totp-added" => Some("The authenticator app was added."),
        "totp-removed" => Some("The authenticator app was removed."),
        "session-ended" => Some("The session was ended."),
        "others-ended" => Some("All other sessions were ended."),
        _ => None,
    }
}

/// What a console page reads of its query.
#[derive(Default, serde::Deserialize)]
pub struct Q {
    done: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

impl Q {
    /// A query that does not parse is no query.
    fn parse(query: Option<String>) -> Q {
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default()
    }
}

fn frame<'a>(
    realm: &'a Realm<realm::Page>,
    s: &'a Signed,
    section: &'a str,
    title: &'a str,
    q: &'a Q,
) -> Frame<'a> {
    Frame {
        realm: &realm.name,
        display: super::pages::display_name(&realm.dir),
        section,
        title,
        csrf: &s.csrf,
        notice: notice(q.done.as_deref()),
        error: None,
        script: false,
    }
}

/// `GET B/account` and `B/account/`: the overview. Coming back from sign-in (`code` or
/// `error` in the query), it first drops the query.
pub async fn overview(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = Q::parse(query);
    if q.code.is_some() || q.error.is_some() {
        return see_other(&format!("{}/", base(&realm.name)));
    }
    let s = match who(&st, &realm, &headers, ext).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let f = frame(&realm, &s, "", "Your account", &q);
    page::render(&f, &page::overview(&s.user))
}

/// `GET B/account/password`.
pub async fn password_page(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = Q::parse(query);
    let s = match who(&st, &realm, &headers, ext).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let f = frame(&realm, &s, "password", "Change your password", &q);
    page::render(&f, &page::password_form(&realm.name, &s.csrf))
}

/// `POST B/account/password`: `current`, `new`, `confirm`.
pub async fn change_password(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (s, p) = match posted(&st, &realm, &headers, ext, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let ip = client_ip(ip.map(|e| e.0), &headers);
    let field = |k| p.get(k).unwrap_or_default();
    let changed = account::change_password(
        &st,
        &realm.dir,
        &s.user,
        field("current"),
        field("new"),
        field("confirm"),
        ip.as_deref(),
    )
    .await;
    match changed {
        Ok(Ok(())) => see_other(&format!("{}/password?done=password", base(&realm.name))),
        Ok(Err(message)) => {
            let q = Q::default();
            let mut f = frame(&realm, &s, "password", "Change your password", &q);
            f.error = Some(&message);
            let form = page::password_form(&realm.name, &s.csrf);
            page::render(&f, &form)
        }
        Err(_) => internal(),
    }
}

/// The passkeys page, with an error when a change was refused.
async fn passkeys_page_with(
    st: &State,
    realm: &Realm<realm::Page>,
    s: &Signed,
    available: bool,
    q: &Q,
    error: Option<&str>,
) -> Response {
    let keys = match passkeys::list(st, &realm.dir, &s.user.id).await {
        Ok(k) => k,
        Err(_) => return internal(),
    };
    let mut f = frame(realm, s, "passkeys", "Passkeys", q);
    f.error = error;
    f.script = available;
    let content = page::passkeys(&realm.name, &s.csrf, &keys, available);
    page::render(&f, &content)
}

/// `GET B/account/passkeys`.
pub async fn passkeys_page(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = Q::parse(query);
    let available = relying_party(&st, &headers, ext, &realm.name).is_some();
    match who(&st, &realm, &headers, ext).await {
        Ok(s) => passkeys_page_with(&st, &realm, &s, available, &q, None).await,
        Err(r) => r,
    }
}

/// `POST B/account/passkeys/options`: starts registering a passkey (JSON for the script).
pub async fn passkey_options(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(rp) = relying_party(&st, &headers, ext, &realm.name) else {
        return json_error(StatusCode::BAD_REQUEST, Failure::Unavailable.user_message());
    };
    let s = match posted(&st, &realm, &headers, ext, &body).await {
        Ok((s, _)) => s,
        Err(_) => {
            return json_error(
                StatusCode::FORBIDDEN,
                "Your session has ended or the form expired. Reload the page.",
            );
        }
    };
    match passkeys::start_registration(&st, &realm.dir, &rp, &s.user).await {
        Ok(started_) => started(&started_),
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred.",
        ),
    }
}

/// `POST B/account/passkeys`: finishes a registration (`label`, `webauthn_handle`,
/// `webauthn_credential`).
pub async fn add_passkey(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rp = relying_party(&st, &headers, ext, &realm.name);
    let (s, p) = match posted(&st, &realm, &headers, ext, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let q = Q::default();
    let Some(rp) = rp else {
        let message = Some(Failure::Unavailable.user_message());
        return passkeys_page_with(&st, &realm, &s, false, &q, message).await;
    };
    let field = |k| p.get(k).unwrap_or_default();
    let added = passkeys::finish_registration(
        &st,
        &realm.dir,
        &rp,
        &s.user.id,
        field("webauthn_handle"),
        field("webauthn_credential"),
        field("label"),
    )
    .await;
    match added {
        Ok(Ok(_)) => see_other(&format!(
            "{}/passkeys?done=passkey-added",
            base(&realm.name)
        )),
        Ok(Err(f)) => passkeys_page_with(&st, &realm, &s, true, &q, Some(f.user_message())).await,
        Err(_) => internal(),
    }
}

/// `POST B/account/passkeys/remove`: `id`, one of the user's passkeys.
pub async fn remove_passkey(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let available = relying_party(&st, &headers, ext, &realm.name).is_some();
    let (s, p) = match posted(&st, &realm, &headers, ext, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = p.get("id").unwrap_or_default();
    match passkeys::remove(&st, &realm.dir, &s.user.id, id).await {
        Ok(true) => see_other(&format!(
            "{}/passkeys?done=passkey-removed",
            base(&realm.name)
        )),
        Ok(false) => {
            let q = Q::default();
            let message = Some("That passkey does not exist.");
            passkeys_page_with(&st, &realm, &s, available, &q, message).await
        }
        Err(_) => internal(),
    }
}

async fn sessions_page_with(
    st: &State,
    realm: &Realm<realm::Page>,
    s: &Signed,
    q: &Q,
    error: Option<&str>,
) -> Response {
    let list: Vec<SessionView> = match account::sessions_of(st, &realm.dir, &s.user.id).await {
        Ok(l) => l,
        Err(_) => return internal(),
    };
    let mut f = frame(realm, s, "sessions", "Sessions", q);
    f.error = error;
    let content = page::sessions(&realm.name, &s.csrf, &list, &s.session.id);
    page::render(&f, &content)
}

/// `GET B/account/sessions`.
pub async fn sessions_page(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = Q::parse(query);
    match who(&st, &realm, &headers, ext).await {
        Ok(s) => sessions_page_with(&st, &realm, &s, &q, None).await,
        Err(r) => r,
    }
}

/// `POST B/account/sessions/end`: `id`, one of the user's sessions.
pub async fn end_session(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (s, p) = match posted(&st, &realm, &headers, ext, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = p.get("id").unwrap_or_default();
    match account::end_session(&st, &realm.dir, &s.user.id, id).await {
        Ok(true) if id == s.session.id => see_other(&format!("{}/", base(&realm.name))),
        Ok(true) => see_other(&format!(
            "{}/sessions?done=session-ended",
            base(&realm.name)
        )),
        Ok(false) => {
            let q = Q::default();
            let message = Some("That session does not exist or has ended.");
            sessions_page_with(&st, &realm, &s, &q, message).await
        }
        Err(_) => internal(),
    }
}

/// `POST B/account/sessions/end-others`.
pub async fn end_other_sessions(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (s, _) = match posted(&st, &realm, &headers, ext, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match account::end_other_sessions(&st, &realm.dir, &s.user.id, &s.session.id).await {
        Ok(_) => see_other(&format!("{}/sessions?done=others-ended", base(&realm.name))),
        Err(_) => internal(),
    }
}

/// `POST B/account/sign-out`: ends this session; the console then asks to sign in again.
pub async fn sign_out(
    AxState(st): AxState<Arc<State>>,
    realm: Realm<realm::Page>,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (s, _) = match posted(&st, &realm, &headers, ext, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if account::end_session(&st, &realm.dir, &s.user.id, &s.session.id)
        .await
        .is_err()
    {
        return internal();
    }
    let mut r = see_other(&format!("{}/", base(&realm.name)));
    let h = r.headers_mut();
    for c in [
        login::set_cookie(SESSION_COOKIE, "", &realm.name, Some(0)),
        login::session_state_cookie(&realm.name, None),
    ]
    .into_iter()
    .flatten()
    {
        h.append(header::SET_COOKIE, c);
    }
    r
}
