//! The rate-limit phase (DESIGN §12): after authentication and authorization, before the
//! upstream. Over the limit: 429 with a JSON body, `Retry-After`, and the IETF
//! `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers-11), which
//! allowed answers carry too. Also the limit on the embedded issuer's token endpoint and login
//! form, keyed by the OAuth client of the request or its address.

use std::net::IpAddr;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use pingora::Result;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::forwarded::{Downstream, X_FORWARDED_FOR, X_REQUEST_ID, is_trusted};
use super::{Ctx, respond};
use crate::limit::local::bucket_ip;
use crate::limit::{self, Decision, Key, Limiter, Limits};
use ipnet::IpNet;
use portcullis_core::config::rate_limit::RateKey;

pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// The fields an allowed answer carries, set by [`enforce`] and added to the response.
pub struct Allowed {
    pub policy: HeaderValue,
    pub limit: HeaderValue,
}

impl Allowed {
    pub fn set_headers(self, h: &mut HeaderMap) {
        h.insert(RATELIMIT_POLICY, self.policy);
        h.insert(RATELIMIT, self.limit);
    }
}

/// Counts the request against its route's limit. `Ok(true)`: it was over, and the 429 is
/// written. Routes without a limit return at once.
pub async fn enforce(
    limits: &Limits,
    trusted: &[IpNet],
    session: &mut Session,
    ctx: &mut Ctx,
) -> Result<bool> {
    // Most routes have no limit: they pay this one check and nothing else.
    let Some(route) = ctx.route.as_ref().filter(|r| r.rate_limit.is_some()) else {
        return Ok(false);
    };
    let route = std::sync::Arc::clone(route);
    let Some(l) = limits.route(&route) else {
        return Ok(false);
    };
    let key = match l.spec.key {
        RateKey::Route => Key::Route,
        RateKey::Principal => Key::Text(ctx.principal.as_ref().map_or(&limit::NO_KEY, |p| &p.sub)),
        RateKey::Client => Key::Text(
            ctx.principal
                .as_ref()
                .and_then(|p| p.azp.as_ref())
                .unwrap_or(&limit::NO_KEY),
        ),
        RateKey::Ip => {
            let xff = session.req_header().headers.get_all(X_FORWARDED_FOR);
            Key::Ip(client_address(
                xff.iter(),
                ctx.client_ip,
                ctx.trusted_peer,
                trusted,
            ))
        }
    };
    let d = limits.check(l, key).await;
    if d.allowed {
        ctx.rate = Some(Allowed {
            policy: l.policy.clone(),
            limit: l.header(&d),
        });
        return Ok(false);
    }
    count_limited(ctx, "rate_limit");
    too_many(session, l, &d, ctx.request_id_str()).await?;
    Ok(true)
}

/// A refused request in the metric and the audit line.
pub fn count_limited(ctx: &mut Ctx, reason: &'static str) {
    if let Some(route) = &ctx.route {
        route.metrics.get(&route.name).rate_limited.inc();
    }
    ctx.decision = "rate_limited";
    ctx.reason = reason;
}

/// The address a limit counts by (DESIGN §6): the peer's, unless the peer is a trusted proxy;
/// then the nearest address in `X-Forwarded-For` that is not one of ours. Never taken from a
/// header an untrusted peer sent.
pub fn client_address<'a>(
    xff: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    peer: Option<IpAddr>,
    trusted_peer: bool,
    trusted: &[IpNet],
) -> IpAddr {
    let unknown = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
    let Some(mut nearest) = peer else {
        return unknown;
    };
    if !trusted_peer {
        return bucket_ip(nearest);
    }
    // Right to left: each hop was added by the proxy after it; stop at the first that is not
    // a trusted proxy, or at anything that is not an address (what precedes it is unverified).
    for v in xff.rev() {
        let Ok(s) = v.to_str() else { break };
        for hop in s.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    nearest = ip;
                    if !is_trusted(trusted, Some(ip)) {
                        return bucket_ip(ip);
                    }
                }
                Err(_) => return bucket_ip(nearest),
            }
        }
    }
    bucket_ip(nearest)
}

/// Writes the 429: JSON body, `Retry-After` (whole seconds, rounded up), the IETF fields.
/// The connection stays open: the client did nothing wrong with it.
pub async fn too_many(
    session: &mut Session,
    l: &Limiter,
    d: &Decision,
    request_id: &str,
) -> Result<()> {
    let retry = limit::ceil_seconds(d.reset).max(1);
    let description = format!("rate limit exceeded; retry after {retry} s");
    let body = respond::error_body("too_many_requests", &description, request_id);
    let mut resp = ResponseHeader::build(429, Some(8))?;
    resp.insert_header(header::CONTENT_TYPE, "application/json")?;
    resp.insert_header(header::CONTENT_LENGTH, body.len().to_string())?;
    resp.insert_header(header::CACHE_CONTROL, "no-store")?;
    resp.insert_header(X_REQUEST_ID, request_id)?;
    resp.insert_header(header::RETRY_AFTER, retry.to_string())?;
    resp.insert_header(RATELIMIT_POLICY, l.policy.clone())?;
    resp.insert_header(RATELIMIT, l.header(d))?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(Bytes::from(body)), true)
            .await?;
    }
    Ok(())
}

/// Whether `[issuer] rate_limit` counts this request: a POST to a realm's token endpoint, to
/// its login form (the authorization endpoint's POST), or to a form that sends mail ("forgot
/// password" and registration).
pub fn issuer_counts(method: &http::Method, path: &str) -> bool {
    if method != http::Method::POST {
        return false;
    }
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let Some(rest) = path.strip_prefix("/auth/realms/") else {
        return false;
    };
    let Some((realm, endpoint)) = rest.split_once('/') else {
        return false;
    };
    !realm.is_empty()
        && matches!(
            endpoint,
            "protocol/openid-connect/token"
                | "protocol/openid-connect/auth"
                | "login-actions/reset-credentials"
                | "login-actions/registration"
        )
}

/// The OAuth client a token or login request names: HTTP Basic's user (RFC 6749 §2.3.1,
/// form-encoded), else the body's `client_id`; bounded, so a key never grows large.
pub fn oauth_client(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    const MAX: usize = 256;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, b64) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(b64)
        })
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| {
            let raw = String::from_utf8(raw).ok()?;
            let (id, _secret) = raw.split_once(':')?;
            url::form_urlencoded::parse(id.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
        });
    let id = basic.or_else(|| {
        url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
    })?;
    (!id.is_empty() && id.len() <= MAX).then_some(id)
}

/// What `[issuer] rate_limit` needs from the request path.
#[derive(Clone, Copy)]
pub struct IssuerGate<'a> {
    pub limits: &'a Limits,
    /// `forwarded.trusted_proxies`, for the client address.
    pub trusted: &'a [IpNet],
}

/// `[issuer] rate_limit` on a request for the embedded issuer whose body has been read.
/// `Ok(true)`: over the limit, and the 429 is written.
pub async fn issuer_gate(
    gate: IssuerGate<'_>,
    session: &mut Session,
    target: &str,
    body: &[u8],
    d: &Downstream<'_>,
    request_id: &HeaderValue,
) -> Result<bool> {
    let limits = gate.limits;
    let Some(l) = limits.issuer() else {
        return Ok(false);
    };
    if !issuer_counts(&session.req_header().method, target) {
        return Ok(false);
    }
    let id;
    let key = match l.spec.key {
        RateKey::Client => {
            id = oauth_client(&session.req_header().headers, body);
            Key::Text(id.as_ref().unwrap_or(&limit::NO_KEY))
        }
        _ => {
            let xff = session.req_header().headers.get_all(X_FORWARDED_FOR);
            Key::Ip(client_address(
                xff.iter(),
                d.client_ip,
                d.trusted,
                gate.trusted,
            ))
        }
    };
    let d = limits.check(l, key).await;
    if d.allowed {
        return Ok(false);
    }
    too_many(session, l, &d, request_id.to_str().unwrap_or_default()).await?;
    Ok(true)
}

#[cfg(test)]
mod tests;
