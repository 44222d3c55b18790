//! `P/auth`: validates the authorization request, reuses a live SSO session or shows the login
//! form, and redirects back with a single-use code (plus `state`, `session_state` and RFC 9207
//! `iss`) in the query or, with `response_mode=fragment` (keycloak-js's default), the
//! fragment. Requests that cannot be trusted to redirect get an error page instead. Credentials,
//! sessions and codes are `domain`'s; validation and pages are here.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::login::{self, CARRIED, CSRF_COOKIE, Page, SESSION_COOKIE};
use super::params::Params;
use super::realm::{self, Realm};
use super::redirect;
use super::urls::{ClientIp, Listener, bases, client_ip, listener};
use crate::domain::clients;
use crate::domain::codes::{self, CodeRequest};
use crate::domain::credentials;
use crate::domain::directory::Directory;
use crate::domain::passkeys;
use crate::domain::sessions;
use crate::domain::state::State;
use crate::domain::tokens::effective_scope;
use crate::secrets;
use portcullis_store::{ClientConfig, ClientRow, SessionRow};

/// A validated authorization request.
struct Request<'d> {
    client: Cow<'d, ClientRow>,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    scope: String,
    challenge: Option<(String, String)>,
    prompt: Option<String>,
    max_age: Option<i64>,
    iss: String,
    /// `response_mode=fragment`: the answer goes in the redirect's fragment.
    fragment: bool,
}

impl Request<'_> {
    fn redirect(&self, params: &[(&str, &str)]) -> Response {
        let mut all: Vec<(&str, &str)> = params.to_vec();
        if let Some(s) = &self.state {
            all.push(("state", s));
        }
        all.push(("iss", &self.iss));
        let to = if self.fragment {
            redirect::with_fragment(&self.redirect_uri, &all)
        } else {
            redirect::with_params(&self.redirect_uri, &all)
        };
        match to {
            Some(loc) => found(&loc),
            None => login::error_page(StatusCode::BAD_REQUEST, "Invalid redirect_uri"),
        }
    }

    fn error(&self, code: &str, description: &str) -> Response {
        self.redirect(&[("error", code), ("error_description", description)])
    }
}

fn found(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    login::secure_headers(r.headers_mut());
    r
}

/// The client's registered redirect URIs, relative ones (`/realms/r/account/*`, as Keycloak's
/// built-in clients have) resolved against its root URL, whose `${authBaseUrl}` is the
/// request's frontend base (`…/auth`); without a root URL, against that base.
fn absolute_uris(c: &ClientConfig, frontend: &str) -> Vec<String> {
    let root = c
        .root_url
        .as_deref()
        .unwrap_or("${authBaseUrl}")
        .replace("${authBaseUrl}", frontend)
        .replace("${authAdminUrl}", frontend);
    c.redirect_uris
        .iter()
        .map(|r| match r.starts_with('/') {
            true => format!("{}{r}", root.trim_end_matches('/')),
            false => r.clone(),
        })
        .collect()
}

// The rejection is a whole response (error page or error redirect), boxed to keep `Result` small.
fn validate<'d>(dir: &'d Directory, p: &Params, iss: String) -> Result<Request<'d>, Box<Response>> {
    let page = |m: &str| Box::new(login::error_page(StatusCode::BAD_REQUEST, m));
    let client = p
        .get("client_id")
        .and_then(|id| clients::browser_client(dir, id))
        .filter(|c| c.config.enabled)
        .ok_or_else(|| page("Client not found."))?;
    let frontend = iss
        .strip_suffix(&format!("/realms/{}", dir.realm))
        .unwrap_or(&iss);
    let registered = &absolute_uris(&client.config, frontend);
    let redirect_uri = match p.get("redirect_uri") {
        Some(r) if redirect::allowed(registered, r) => r.to_string(),
        Some(_) => return Err(page("Invalid parameter: redirect_uri")),
        None => match registered.as_slice() {
            [only] if !only.ends_with('*') && redirect::allowed(registered, only) => only.clone(),
            _ => return Err(page("Invalid parameter: redirect_uri")),
        },
    };
    let mut req = Request {
        client,
        redirect_uri,
        state: p.get("state").map(str::to_string),
        nonce: p.get("nonce").map(str::to_string),
        scope: effective_scope(p.get("scope")),
        challenge: None,
        prompt: p.get("prompt").map(str::to_string),
        max_age: None,
        iss,
        fragment: false,
    };
    match p.get("response_mode") {
        None | Some("query") => {}
        Some("fragment") => req.fragment = true,
        Some(_) => {
            return Err(Box::new(
                req.error("invalid_request", "Invalid parameter: response_mode"),
            ));
        }
    }
    if p.get("response_type") != Some("code") {
        return Err(Box::new(req.error(
            "unsupported_response_type",
            "Client is not allowed to initiate browser login with given response_type.",
        )));
    }
    if !req.client.config.standard_flow {
        return Err(Box::new(req.error("unauthorized_client", "Client is not allowed to initiate browser login with given response_type. Standard flow is disabled for the client.")));
    }
    let c = &req.client.config;
    let must_s256 = c.public_client || c.pkce_method.as_deref() == Some("S256");
    match (p.get("code_challenge"), p.get("code_challenge_method")) {
        (None, _) if must_s256 => {
            return Err(Box::new(
                req.error("invalid_request", "Missing parameter: code_challenge"),
            ));
        }
        (None, _) => {}
        (Some(c), m) => {
            let m = m.unwrap_or("plain");
            let shape_ok = (43..=128).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !(m == "S256" || (m == "plain" && !must_s256)) {
                return Err(Box::new(req.error(
                    "invalid_request",
                    "Invalid parameter: code challenge method is not supported.",
                )));
            }
            if !shape_ok {
                return Err(Box::new(
                    req.error("invalid_request", "Invalid parameter: code_challenge"),
                ));
            }
            req.challenge = Some((c.to_string(), m.to_string()));
        }
    }
    if let Some(a) = p.get("max_age") {
        req.max_age =
            Some(a.parse().map_err(|_| {
                Box::new(req.error("invalid_request", "Invalid parameter: max_age"))
            })?);
    }
    Ok(req)
}

/// A code for `session`, and the redirect that carries it back.
async fn issue_code(
    st: &State,
    dir: &Directory,
    req: &Request<'_>,
    session: &SessionRow,
) -> anyhow::Result<Response> {
    let bound = CodeRequest {
        client_id: &req.client.client_id,
        redirect_uri: &req.redirect_uri,
        scope: &req.scope,
        nonce: req.nonce.as_deref(),
        challenge: req
            .challenge
            .as_ref()
            .map(|(c, m)| (c.as_str(), m.as_str())),
    };
    let code = codes::issue(st, dir, &bound, session).await?;
    let mut resp = req.redirect(&[("code", &code), ("session_state", &session.id)]);
    // Set again on every sign-in through the session, so the status iframe sees it.
    if let Some(c) = login::session_state_cookie(&dir.realm, Some(&session.id)) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

fn internal() -> Response {
    login::error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "An internal error occurred.",
    )
}

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
        realm: &dir.realm,
        action: &action,
        hidden,
        csrf,
        username: p.get("username").or(p.get("login_hint")).unwrap_or(""),
        error,
        passkey_options: options.as_deref(),
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
    let p = match Params::parse(&body) {
        Ok(p) => p,
        Err(e) => return login::error_page(StatusCode::BAD_REQUEST, e.description()),
    };
    let csrf_ok = match (p.get("csrf"), login::cookie(&headers, CSRF_COOKIE)) {
        (Some(a), Some(b)) => secrets::ct_eq(a, b),
        _ => false,
    };
    if !csrf_ok {
        return login::error_page(
            StatusCode::BAD_REQUEST,
            "Invalid or expired form. Go back and sign in again.",
        );
    }
    let b = bases(st.frontend_url.as_deref(), &headers, listener(ext));
    let rp = passkeys::relying_party(&b.frontend, &realm.name);
    // Hidden fields come back from the browser: validate them all over again.
    let req = match validate(dir, &p, b.realm(&realm.name)) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let csrf = p.get("csrf").unwrap_or_default();
    let ip = client_ip(ip.map(|e| e.0), &headers);
    let checked = if p.get("webauthn_credential").is_some() {
        // Passwordless: the passkey's answer instead of username and password.
        let client = &req.client.client_id;
        super::passkeys::sign_in(&st, dir, rp.as_ref(), &p, ip.as_deref(), client).await
    } else {
        credentials::check(
            &st,
            dir,
            p.get("username").unwrap_or_default(),
            p.get("password").unwrap_or_default(),
            ip.as_deref(),
            &req.client.client_id,
        )
        .await
        .map(|r| r.map_err(|f| f.user_message()))
    };
    let user = match checked {
        Ok(Ok(u)) => u,
        Ok(Err(message)) => return form_page(dir, &p, csrf, Some(message), rp.is_some()),
        Err(_) => return internal(),
    };
    // A login always starts a new session (fixation defence): the old one ends.
    let old = login::cookie(&headers, SESSION_COOKIE);
    let Ok((session, cookie)) = sessions::replace(&st, dir, old, &user.id).await else {
        return internal();
    };
    let mut resp = match issue_code(&st, dir, &req, &session).await {
        Ok(r) => r,
        Err(_) => return internal(),
    };
    if let Some(c) = login::set_cookie(SESSION_COOKIE, &cookie, &dir.realm, None) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    // The CSRF cookie has done its job.
    if let Some(c) = login::set_cookie(CSRF_COOKIE, "", &dir.realm, Some(0)) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}
