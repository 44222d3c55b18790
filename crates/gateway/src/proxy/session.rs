//! The session phase of the public listener (DESIGN §10), Pingora's side of `crate::session`:
//! the gateway-owned `/.portcullis/` paths answered before routing, the session (or bearer
//! token, on `session_or_jwt` routes) of a request to a session route, the redirect to sign in
//! for navigations, and what the forwarded request and its response carry (the access token,
//! the identity assertion, re-sealed cookies; never the gateway's own cookies upstream).

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use pingora::Result;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::forwarded::X_REQUEST_ID;
use super::guard::Refusal;
use super::{Ctx, PublicProxy, request_host};
use crate::session::current::{Lookup, current};
use crate::session::endpoints::{self, Endpoint};
use crate::session::redirect::{Origin, valid_host};
use crate::session::{Reply, Req, SessionConfig, assertion, cookie, flow, forward};
use crate::snapshot::Snapshot;
use portcullis_core::identity::Principal;
use portcullis_core::metrics::metrics;
use portcullis_core::route::{AuthMode, Route};

/// Largest form a gateway-owned path reads (the sign-out form is one field).
const MAX_FORM: usize = 16 * 1024;

/// What a request's session adds to the request sent upstream and to its response.
#[derive(Default)]
pub struct SessionOut {
    pub set_cookies: Vec<HeaderValue>,
    /// `Authorization: Bearer …` on `pass_access_token` routes.
    pub bearer: Option<HeaderValue>,
}

/// What the session phase made of a request to a session route.
pub enum Outcome {
    Principal(Arc<Principal>),
    /// A response was written (the redirect to sign in).
    Answered,
}

/// The scheme and host the client used: the listener's own, or from a trusted proxy's
/// `X-Forwarded-Proto` and `-Host`; `None` when the host is not a host. Borrowed (lower-cased
/// only when it has capitals): this runs on every request to a session route.
fn origin_parts<'s>(
    proxy: &PublicProxy,
    session: &'s Session,
    trusted: bool,
) -> Option<(&'static str, Cow<'s, str>)> {
    let req = session.req_header();
    let fwd = |name: &str| {
        trusted
            .then(|| req.headers.get(name)?.to_str().ok()?.split(',').next())
            .flatten()
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let proto = match fwd("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        _ => proxy.proto,
    };
    let host = fwd("x-forwarded-host").or_else(|| request_host(req))?;
    if !valid_host(host) {
        return None;
    }
    let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    };
    Some((proto, host))
}

/// `https://host` of the request, for the identity assertion's `iss`.
pub(super) fn origin_url(proxy: &PublicProxy, session: &Session, trusted: bool) -> Option<String> {
    origin_parts(proxy, session, trusted).map(|(p, h)| format!("{p}://{h}"))
}

/// The scheme and host the client used (`origin_parts`), or 400 when the host is not a host
/// name.
fn origin_or_refuse<'s>(
    proxy: &PublicProxy,
    session: &'s Session,
    trusted: bool,
) -> Result<(&'static str, Cow<'s, str>), Refusal> {
    origin_parts(proxy, session, trusted)
        .ok_or_else(|| Refusal::upstream(400, "bad_host", "the Host header is not a host name"))
}

/// The request as `crate::session` reads it, at the normalized `path` and from `origin`.
fn session_req<'a>(session: &'a Session, ctx: &Ctx, path: &'a str, origin: Origin<'a>) -> Req<'a> {
    let h = session.req_header();
    Req {
        method: &h.method,
        path,
        target: h.uri.path_and_query().map_or("/", |p| p.as_str()),
        query: h.uri.query(),
        headers: &h.headers,
        origin,
        client_ip: ctx.client_ip,
        trusted_peer: ctx.trusted_peer,
    }
}

/// Answers a gateway-owned path.
pub(super) async fn serve_endpoint(
    proxy: &PublicProxy,
    session: &mut Session,
    ctx: &mut Ctx,
    snap: &Snapshot,
    ep: Endpoint,
    path: &str,
) -> Result<(), Refusal> {
    ctx.upstream_label = Some("portcullis");
    let body = if session.req_header().method == http::Method::POST {
        read_form(session).await?
    } else {
        Bytes::new()
    };
    let (proto, host) = origin_or_refuse(proxy, session, ctx.trusted_peer)?;
    let req = session_req(session, ctx, path, Origin { proto, host: &host });
    let rt = &proxy.sessions;
    let reply = match ep {
        Endpoint::Auth => forward::decide(rt, snap, &req).await,
        _ => endpoints::serve(rt, snap.session.as_deref(), ep, &req, &body).await,
    };
    write(session, ctx, reply).await
}

/// The session of a request to a session route; a navigation without one is sent to sign in
/// (answered here), any other request gets 401.
pub(super) async fn authenticate(
    proxy: &PublicProxy,
    session: &mut Session,
    ctx: &mut Ctx,
    snap: &Snapshot,
    route: &Route,
) -> Result<Outcome, Refusal> {
    if route.auth == AuthMode::SessionOrJwt
        && session
            .req_header()
            .headers
            .contains_key(header::AUTHORIZATION)
    {
        return proxy.bearer(session, snap).await.map(Outcome::Principal);
    }
    let Some(cfg) = snap.session.as_deref() else {
        return Err(Refusal::unauthorized(
            "no_session",
            "sign-in is not configured",
        ));
    };
    let (proto, host) = origin_or_refuse(proxy, session, ctx.trusted_peer)?;
    let path = session.req_header().uri.path();
    let req = session_req(session, ctx, path, Origin { proto, host: &host });
    let rt = &proxy.sessions;
    match current(rt, cfg, &req).await {
        Lookup::Found(f) => {
            ctx.session_out = Some(Box::new(SessionOut {
                set_cookies: f.set_cookies,
                bearer: f.live.bearer.clone().filter(|_| route.pass_access_token),
            }));
            Ok(Outcome::Principal(Arc::clone(&f.live.principal)))
        }
        Lookup::None { clear } => {
            metrics()
                .authn_failures
                .with_label_values(&["no_session"])
                .inc();
            if !req.is_navigation() {
                return Err(no_session(route));
            }
            let reply = flow::start(rt, cfg, &req, req.target).await.cookies(clear);
            write(session, ctx, reply).await?;
            Ok(Outcome::Answered)
        }
    }
}

/// 401 for an API call without a session (a `session_or_jwt` route also names its bearer scheme).
fn no_session(route: &Route) -> Refusal {
    let description = "sign in first: no valid session";
    let mut r = Refusal::unauthorized("no_session", description);
    r.error = "unauthorized";
    if route.auth == AuthMode::Session {
        r.www_authenticate = None;
    }
    r
}

/// Reads a small request body (a form).
async fn read_form(session: &mut Session) -> Result<Bytes, Refusal> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_FORM {
                    return Err(Refusal::upstream(
                        413,
                        "form_too_large",
                        "the form is too large",
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(body)),
            Err(_) => {
                return Err(Refusal::upstream(
                    400,
                    "bad_body",
                    "the request body could not be read",
                ));
            }
        }
    }
}

/// Writes a reply of the session code as the whole response.
async fn write(session: &mut Session, ctx: &mut Ctx, reply: Reply) -> Result<(), Refusal> {
    ctx.reason = reply.reason;
    ctx.decision = if reply.status < 400 { "allow" } else { "deny" };
    let written = async {
        let mut resp = ResponseHeader::build(reply.status, Some(reply.headers.len() + 3))?;
        for (name, value) in reply.headers {
            resp.append_header(name, value)?;
        }
        resp.insert_header(header::CONTENT_LENGTH, reply.body.len().to_string())?;
        resp.insert_header(X_REQUEST_ID, ctx.request_id.clone())?;
        let head_only = session.req_header().method == http::Method::HEAD;
        session
            .write_response_header(Box::new(resp), head_only || reply.body.is_empty())
            .await?;
        if !head_only && !reply.body.is_empty() {
            session.write_response_body(Some(reply.body), true).await?;
        }
        Ok::<(), Box<pingora::Error>>(())
    };
    written
        .await
        .map_err(|_| Refusal::upstream(502, "write_failed", "the response could not be written"))
}

/// The request to an upstream: the gateway's cookies removed; on session routes the access
/// token (with `pass_access_token`); with `identity_assertion`, the assertion. A client-sent
/// assertion is gone already: `guard::strip_identity_headers` runs first.
pub(super) fn edit_upstream(
    h: &mut HeaderMap,
    snap: &Snapshot,
    ctx: &Ctx,
    route: &Route,
    rt: &crate::session::Runtime,
    origin: impl FnOnce() -> Option<String>,
) {
    if let Some(cfg) = snap.session.as_deref() {
        strip_own_cookies(h, cfg);
    }
    if let Some(bearer) = ctx.session_out.as_ref().and_then(|s| s.bearer.clone()) {
        h.insert(header::AUTHORIZATION, bearer);
    }
    if route.identity_assertion
        && let (Some(p), Some(s), Some(signer)) = (&ctx.principal, &ctx.standing, &rt.assertion)
        && let Some(origin) = origin()
        && let Some(a) = signer.assertion(&origin, &route.name, p, &s.held.roles, rt.now())
    {
        h.insert(HeaderName::from_static(assertion::HEADER), a);
    }
}

/// Removes the session cookie (and its chunks and pre-auth cookies) from the `Cookie` headers:
/// an upstream could replay them to the gateway as the user.
fn strip_own_cookies(h: &mut HeaderMap, cfg: &SessionConfig) {
    let name = cfg.settings.cookie_name.as_str();
    if !h
        .get_all(header::COOKIE)
        .iter()
        .any(|v| memchr_str(v.as_bytes(), name.as_bytes()))
    {
        return;
    }
    let joined = {
        let kept: Vec<&str> = h
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .filter(|p| !p.is_empty() && !cookie::is_own(p.split('=').next().unwrap_or(""), name))
            .collect();
        (!kept.is_empty()).then(|| HeaderValue::from_str(&kept.join("; ")))
    };
    h.remove(header::COOKIE);
    if let Some(Ok(v)) = joined {
        h.insert(header::COOKIE, v);
    }
}

fn memchr_str(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The `Set-Cookie`s of a re-sealed session, added to the upstream's response.
pub(super) fn edit_response(h: &mut HeaderMap, ctx: &Ctx) {
    if let Some(out) = &ctx.session_out {
        for c in &out.set_cookies {
            h.append(header::SET_COOKIE, c.clone());
        }
    }
}
