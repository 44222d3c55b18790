//! The authorization request, validated (`validate`: client, redirect URI, response type and
//! mode, PKCE, `max_age`, the level of authentication demanded), and the redirect that answers
//! it with a code (`issue_code`). Shared by `authorize` (the password step and SSO) and
//! `login_actions` (the end of the sign-in flow).

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::login;
use super::params::Params;
use super::redirect;
use crate::domain::clients;
use crate::domain::codes::{self, CodeRequest};
use crate::domain::directory::Directory;
use crate::domain::flow;
use crate::domain::state::State;
use crate::domain::tokens::effective_scope;
use portcullis_store::{ClientConfig, ClientRow, SessionRow};

/// A validated authorization request.
pub(crate) struct Request<'d> {
    pub(crate) client: Cow<'d, ClientRow>,
    pub(crate) redirect_uri: String,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) scope: String,
    pub(crate) challenge: Option<(String, String)>,
    pub(crate) prompt: Option<String>,
    pub(crate) max_age: Option<i64>,
    pub(crate) iss: String,
    /// `response_mode=fragment`: the answer goes in the redirect's fragment.
    pub(crate) fragment: bool,
    /// The level of authentication demanded (`acr_values`, else the client's default).
    pub(crate) acr_level: i64,
}

impl Request<'_> {
    pub(crate) fn redirect(&self, params: &[(&str, &str)]) -> Response {
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

    pub(crate) fn error(&self, code: &str, description: &str) -> Response {
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
pub(crate) fn validate<'d>(
    dir: &'d Directory,
    p: &Params,
    iss: String,
) -> Result<Request<'d>, Box<Response>> {
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
    let acr_level = flow::demanded_level(
        &dir.settings.accounts,
        p.get("acr_values"),
        &client.config.default_acr_values,
    );
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
        acr_level,
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
pub(crate) async fn issue_code(
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
