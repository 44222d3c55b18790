//! Forward auth, `GET /.portcullis/auth` (DESIGN §10), for nginx `auth_request`, Traefik
//! `forwardAuth`, Caddy `forward_auth` and Envoy `ext_authz` (HTTP): the original request is
//! read from `X-Original-URL` (with `X-Original-Method`) or `X-Forwarded-Method`, `-Proto`,
//! `-Host` and `-Uri`, from trusted proxies only (anyone else gets 403); it is decided with
//! the matching route exactly as the proxy would, and answered 200 with the identity headers,
//! 401 (with `Location` to sign in, for navigations) or 403.

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderName, HeaderValue, header};
use serde_json::json;

use super::current::{Lookup, current};
use super::redirect::{Origin, valid_host};
use super::{Reply, Req, Runtime, assertion};
use crate::proxy::identity::{IDENTITY_HEADERS, Standing};
use crate::snapshot::Snapshot;
use portcullis_core::identity::Principal;
use portcullis_core::normalize::{normalize_path, under_prefix};
use portcullis_core::route::{AuthMode, Route};

/// The request another proxy asks about.
struct Original<'a> {
    method: http::Method,
    proto: Cow<'a, str>,
    host: Cow<'a, str>,
    /// Path and query.
    uri: Cow<'a, str>,
}

fn header_str<'h>(req: &'h Req<'_>, name: &str) -> Option<&'h str> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The original request, from `X-Original-URL` or the `X-Forwarded-*` set.
fn original<'r>(req: &'r Req<'_>) -> Option<Original<'r>> {
    let method = header_str(req, "x-original-method")
        .or_else(|| header_str(req, "x-forwarded-method"))
        .unwrap_or("GET");
    let method = http::Method::from_bytes(method.as_bytes()).ok()?;
    if let Some(url) = header_str(req, "x-original-url") {
        let u = url::Url::parse(url).ok()?;
        let host = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str()?),
            None => u.host_str()?.to_string(),
        };
        let uri = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        return Some(Original {
            method,
            proto: Cow::Owned(u.scheme().to_string()),
            host: Cow::Owned(host),
            uri: Cow::Owned(uri),
        });
    }
    Some(Original {
        method,
        proto: Cow::Borrowed(
            header_str(req, "x-forwarded-proto")?
                .split(',')
                .next()?
                .trim(),
        ),
        host: Cow::Borrowed(
            header_str(req, "x-forwarded-host")?
                .split(',')
                .next()?
                .trim(),
        ),
        uri: Cow::Borrowed(header_str(req, "x-forwarded-uri")?),
    })
}

fn refuse(status: u16, error: &'static str, words: &str, reason: &'static str) -> Reply {
    Reply::new(status, reason).json(&json!({"error": error, "error_description": words}))
}

/// Decides the original request of a forward-auth call.
pub async fn decide(rt: &Runtime, snap: &Snapshot, req: &Req<'_>) -> Reply {
    if !req.trusted_peer {
        return refuse(
            403,
            "forbidden",
            "forward auth answers trusted proxies only (forwarded.trusted_proxies)",
            "forward_untrusted",
        );
    }
    let o = match original(req) {
        Some(o) => o,
        None => {
            return refuse(
                400,
                "bad_request",
                "say which request to decide: X-Original-URL, or X-Forwarded-Method, -Proto, -Host and -Uri",
                "forward_no_original",
            );
        }
    };
    let (route, path) = match route_of(snap, &o) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let inner = Req {
        method: &o.method,
        path: &path,
        target: &o.uri,
        query: o.uri.split_once('?').map(|(_, q)| q),
        headers: req.headers,
        origin: Origin {
            proto: &o.proto,
            host: &o.host,
        },
        client_ip: req.client_ip,
        trusted_peer: false,
    };
    if route.auth == AuthMode::Public {
        return Reply::new(200, "forward_public");
    }
    let who = match caller(rt, snap, route, &inner).await {
        Ok(who) => who,
        Err(r) => return r,
    };
    allowed(rt, snap, route, &inner, who)
}

/// The original request's route and normalized path (400 for a malformed original, 403 when
/// no route serves it: forward auth denies by default).
fn route_of<'s>(snap: &'s Snapshot, o: &Original<'_>) -> Result<(&'s Arc<Route>, String), Reply> {
    if !matches!(&*o.proto, "http" | "https") || !valid_host(&o.host) || !o.uri.starts_with('/') {
        return Err(refuse(
            400,
            "bad_request",
            "the original URL is not an http(s) URL",
            "forward_bad_original",
        ));
    }
    let raw_path = o.uri.split('?').next().unwrap_or("/");
    let Ok(path) = normalize_path(raw_path) else {
        return Err(refuse(
            400,
            "bad_request",
            "the original path is not acceptable",
            "forward_bad_path",
        ));
    };
    match snap.routes.find(Some(&o.host), &path) {
        Some(r) if !snap.blocked_prefixes.iter().any(|b| under_prefix(&path, b)) => {
            Ok((r, path.into_owned()))
        }
        _ => Err(refuse(
            403,
            "forbidden",
            "no route for the original request",
            "forward_no_route",
        )),
    }
}

/// Who made the original request, by its route's mode.
struct Caller {
    principal: Arc<Principal>,
    set_cookies: Vec<HeaderValue>,
    pass_token: Option<HeaderValue>,
}

/// The caller of the original request: its bearer token or its session; 401 without either
/// (with `Location` to sign in, for a navigation to a session route).
async fn caller(
    rt: &Runtime,
    snap: &Snapshot,
    route: &Route,
    inner: &Req<'_>,
) -> Result<Caller, Reply> {
    let bearer = inner.headers.get(header::AUTHORIZATION);
    let mut set_cookies = Vec::new();
    let mut pass_token = None;
    let principal = match (route.auth, snap.session.as_deref()) {
        (AuthMode::Jwt, _) => bearer_principal(snap, bearer).await,
        (AuthMode::SessionOrJwt, _) if bearer.is_some() => bearer_principal(snap, bearer).await,
        (_, Some(cfg)) => match current(rt, cfg, inner).await {
            Lookup::Found(f) => {
                set_cookies = f.set_cookies;
                pass_token = f.live.bearer.clone().filter(|_| route.pass_access_token);
                Ok(Arc::clone(&f.live.principal))
            }
            Lookup::None { clear } => {
                set_cookies = clear;
                Err("not signed in")
            }
        },
        (_, None) => Err("sessions are not configured"),
    };
    match principal {
        Ok(principal) => Ok(Caller {
            principal,
            set_cookies,
            pass_token,
        }),
        Err(why) => {
            let mut r =
                refuse(401, "unauthorized", why, "forward_unauthenticated").cookies(set_cookies);
            if route.auth.takes_session() && inner.is_navigation() {
                let origin = inner.origin.url();
                let rd: String = url::form_urlencoded::byte_serialize(
                    format!("{origin}{}", inner.target).as_bytes(),
                )
                .collect();
                let to = format!("{origin}{}sign_in?rd={rd}", super::PREFIX);
                if let Ok(v) = HeaderValue::from_str(&to) {
                    r.headers.push((header::LOCATION, v));
                }
            }
            Err(r)
        }
    }
}

/// The route's policy decides: 403, or 200 with what the proxy would send upstream (identity
/// headers, the access token, the assertion) for the asking proxy to pass on.
fn allowed(rt: &Runtime, snap: &Snapshot, route: &Route, inner: &Req<'_>, c: Caller) -> Reply {
    let standing = Standing::of(&snap.policies, &c.principal);
    let decision = standing.decide(&snap.policies, &route.name, inner.method.as_str());
    if !decision.allowed {
        return refuse(
            403,
            "forbidden",
            "no rule allows this request",
            "forward_denied",
        )
        .cookies(c.set_cookies);
    }
    let mut r = Reply::new(200, "forward_allowed").cookies(c.set_cookies);
    for (name, value) in IDENTITY_HEADERS.iter().zip(&standing.headers) {
        if let Some(v) = value {
            r.headers.push((name.clone(), v.clone()));
        }
    }
    if let Some(t) = c.pass_token {
        r.headers.push((header::AUTHORIZATION, t));
    }
    if route.identity_assertion
        && let Some(signer) = &rt.assertion
        && let Some(a) = signer.assertion(
            &inner.origin.url(),
            &route.name,
            &c.principal,
            &standing.held.roles,
            rt.now(),
        )
    {
        r.headers
            .push((HeaderName::from_static(assertion::HEADER), a));
    }
    r
}

async fn bearer_principal(
    snap: &Snapshot,
    authorization: Option<&HeaderValue>,
) -> Result<Arc<Principal>, &'static str> {
    snap.authn
        .authenticate(authorization.map(|v| v.as_bytes()))
        .await
        .map_err(|e| e.description)
}
