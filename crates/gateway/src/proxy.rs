//! The public listener's request path. Each phase only wires work done in the submodules:
//! guard (normalize, refuse), route, authenticate, authorize, then forward with the
//! gateway's own forwarded and identity headers.

pub mod embedded;
pub mod forwarded;
pub mod guard;
pub mod head_deadline;
pub mod headers;
pub mod identity;
pub mod limit;
pub mod mtls;
pub mod respond;
pub mod session;
pub mod trace;
pub mod upstream;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::protocols::l4::socket::SocketAddr as PSocketAddr;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType};

use crate::reload::Live;
use crate::snapshot::Snapshot;
use guard::Refusal;
use portcullis_authn::Principal;
use portcullis_core::metrics::{method_label, metrics};
use portcullis_core::normalize;
use portcullis_core::route::{self, AuthMode, Route, Upstream};

/// The public listener's `ProxyHttp`.
pub struct PublicProxy {
    pub live: Arc<Live>,
    /// "https" when the public listener terminates TLS.
    pub proto: &'static str,
    pub audit: bool,
    /// The embedded issuer, when `[issuer]` is enabled (`embedded:issuer` routes).
    pub issuer: Option<Arc<crate::embed::EmbeddedIssuer>>,
    /// Rate limits (DESIGN §12).
    pub limits: Arc<crate::limit::Limits>,
    /// Browser sessions: the provider, live sessions, assertion key (`crate::session`).
    pub sessions: Arc<crate::session::Runtime>,
    /// OpenTelemetry spans (DESIGN §15), when `[tracing]` is set.
    pub tracing: Option<Arc<trace::Tracing>>,
}

/// Per-request state, carried through the phases.
pub struct Ctx {
    start: Instant,
    /// Only ASCII graphic bytes (checked when made), so `request_id_str` never loses it.
    pub request_id: http::HeaderValue,
    snapshot: Option<Arc<Snapshot>>,
    route: Option<Arc<Route>>,
    /// Path + query to send upstream, when it differs from what the client sent.
    forward_target: Option<String>,
    upstream: Option<Arc<Upstream>>,
    /// For the audit line when no `Upstream` served (the embedded issuer).
    upstream_label: Option<&'static str>,
    /// The peer's address, and whether it is a trusted proxy (computed once per request).
    client_ip: Option<std::net::IpAddr>,
    trusted_peer: bool,
    /// Who the bearer token stands for, on `jwt` routes, and what it holds under the policies.
    principal: Option<Arc<Principal>>,
    standing: Option<Arc<identity::Standing>>,
    /// The `RateLimit` fields of an allowed answer on a rate-limited route.
    rate: Option<limit::Allowed>,
    /// What a session adds to the upstream request and the response (session routes).
    session_out: Option<Box<session::SessionOut>>,
    /// The connection's verified client certificate, when it presented one.
    client_cert: Option<Arc<crate::tls::ClientCert>>,
    tried: u64,
    /// Decision and reason for the audit line.
    decision: &'static str,
    reason: &'static str,
    /// The request's span, when tracing is on.
    trace: Option<Box<trace::RequestSpan>>,
    _in_flight: InFlight,
}

impl Ctx {
    /// The request id as text, for the audit line and error bodies.
    fn request_id_str(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }
}

/// Counts a request as in flight until its context is dropped (drain on SIGTERM waits on it).
struct InFlight;

impl InFlight {
    fn new() -> Self {
        metrics().in_flight.inc();
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics().in_flight.dec();
    }
}

fn client_ip(session: &Session) -> Option<std::net::IpAddr> {
    match session.client_addr() {
        Some(PSocketAddr::Inet(a)) => Some(a.ip()),
        _ => None,
    }
}

fn server_port(session: &Session) -> u16 {
    match session.server_addr() {
        Some(PSocketAddr::Inet(a)) => a.port(),
        _ => 0,
    }
}

/// The request's host: `:authority` (HTTP/2, absolute-form) or the Host header.
fn request_host(req: &RequestHeader) -> Option<&str> {
    req.uri.authority().map(|a| a.as_str()).or_else(|| {
        req.headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
    })
}

impl PublicProxy {
    /// Everything that may refuse a request before an upstream is chosen; `Ok(true)` when a
    /// response was already written (a gateway-owned path, a redirect to sign in).
    async fn admit(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        snap: &Snapshot,
    ) -> Result<bool, Refusal> {
        let limits = &self.live.config.limits;
        guard::check_framing(session, limits.max_header_bytes)?;
        // Bound the wait for the body and for the next request on this connection. Keep-alive
        // that is off stays off: the client's `Connection: close` or HTTP/1.0, and Pingora's
        // shutdown (SIGTERM, or an upgrade), which answers with `Connection: close` so that
        // the client moves to the successor instead of a connection about to close.
        session.set_read_timeout(Some(limits.body_read_timeout));
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(limits.keepalive_timeout.as_secs()));
        }

        let is_h2 = session.as_downstream().is_http2();
        let req = session.req_header();
        let (path, changed) = guard::normalized_target(req, is_h2)?;
        if let Some(ep) = crate::session::endpoints::which(&path) {
            let path = path.into_owned();
            // Boxed, like the issuer's and the refusal's below: rare branches whose futures
            // would otherwise size the future allocated for every request's `request_filter`.
            Box::pin(session::serve_endpoint(self, session, ctx, snap, ep, &path)).await?;
            return Ok(true);
        }
        if snap
            .blocked_prefixes
            .iter()
            .any(|p| normalize::under_prefix(&path, p))
        {
            return Err(Refusal::blocked());
        }
        let Some(route) = snap.routes.find(request_host(req), &path) else {
            return Err(Refusal::no_route());
        };
        let route = Arc::clone(route);
        let query = req.uri.query();
        let upstream_path = route.upstream_path(&path);
        if changed || route.strip_prefix || upstream_path.len() != path.len() {
            let mut t =
                String::with_capacity(upstream_path.len() + query.map_or(0, |q| q.len() + 1));
            t.push_str(upstream_path);
            if let Some(q) = query {
                t.push('?');
                t.push_str(q);
            }
            ctx.forward_target = Some(t);
        }
        // Set before authentication: a 401/403 is counted and audited under its route.
        ctx.route = Some(Arc::clone(&route));
        if route.auth == AuthMode::Mtls || route.require_client_cert {
            mtls::admit(ctx, snap, &route, session.req_header().method.as_str())?;
        }
        let principal = match route.auth {
            // An mtls route's certificate was authorized by `mtls::admit`.
            AuthMode::Public | AuthMode::Mtls => return Ok(false),
            AuthMode::Jwt => self.bearer(session, snap).await?,
            AuthMode::Session | AuthMode::SessionOrJwt => {
                match session::authenticate(self, session, ctx, snap, &route).await? {
                    session::Outcome::Principal(p) => p,
                    session::Outcome::Answered => return Ok(true),
                }
            }
        };
        let method = session.req_header().method.as_str();
        let standing = identity::Standing::of(&snap.policies, &principal);
        let decision = standing.decide(&snap.policies, &route.name, method);
        ctx.principal = Some(principal);
        ctx.standing = Some(standing);
        if !decision.allowed {
            route.metrics.get(&route.name).authz_deny.inc();
            return Err(Refusal::forbidden(decision.reason));
        }
        route.metrics.get(&route.name).authz_allow.inc();
        Ok(false)
    }

    /// Who the request's bearer token stands for (401 without a valid one).
    async fn bearer(&self, session: &Session, snap: &Snapshot) -> Result<Arc<Principal>, Refusal> {
        let authz = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        snap.authn.authenticate(authz).await.map_err(|e| {
            metrics()
                .authn_failures
                .with_label_values(&[e.reason])
                .inc();
            Refusal::unauthorized(e.reason, e.description)
        })
    }

    /// What the forwarded headers say about the downstream connection.
    fn downstream<'a>(
        &self,
        session: &Session,
        ctx: &Ctx,
        host: Option<&'a str>,
    ) -> forwarded::Downstream<'a> {
        forwarded::Downstream {
            client_ip: ctx.client_ip,
            trusted: ctx.trusted_peer,
            proto: self.proto,
            host,
            port: server_port(session),
        }
    }
}

#[async_trait]
impl ProxyHttp for PublicProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            start: Instant::now(),
            request_id: http::HeaderValue::from_static(""),
            snapshot: None,
            route: None,
            forward_target: None,
            upstream: None,
            upstream_label: None,
            client_ip: None,
            trusted_peer: false,
            principal: None,
            standing: None,
            rate: None,
            session_out: None,
            client_cert: None,
            tried: 0,
            decision: "allow",
            reason: "",
            trace: None,
            _in_flight: InFlight::new(),
        }
    }

    // No compression module: the gateway passes bodies through untouched.
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        head_deadline::head_done(session.as_downstream());
        let snap = self.live.snapshot();
        ctx.client_ip = client_ip(session);
        ctx.trusted_peer = forwarded::is_trusted(&snap.trusted_proxies, ctx.client_ip);
        ctx.request_id = guard::request_id(session, ctx.trusted_peer);
        if let Some(t) = &self.tracing {
            let req = session.req_header();
            ctx.trace = Some(t.begin(&req.headers, method_label(&req.method), ctx.trusted_peer));
        }
        ctx.client_cert = mtls::client_cert(session);
        let admitted = self.admit(session, ctx, &snap).await;
        // `enforce` checks for a limit too; asking here first spares the routes without one
        // (most) the construction and poll of its future on every request.
        if matches!(admitted, Ok(false))
            && ctx.route.as_ref().is_some_and(|r| r.rate_limit.is_some())
            && limit::enforce(&self.limits, &snap.trusted_proxies, session, ctx).await?
        {
            return Ok(true);
        }
        ctx.snapshot = Some(snap);
        match admitted {
            Ok(true) => Ok(true),
            Ok(false) => match (&ctx.route, &self.issuer) {
                (Some(r), Some(issuer)) if matches!(r.target, route::Target::EmbeddedIssuer) => {
                    let target = ctx.forward_target.clone().unwrap_or_else(|| {
                        session
                            .req_header()
                            .uri
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_string()
                    });
                    let host = request_host(session.req_header()).map(str::to_owned);
                    let d = self.downstream(session, ctx, host.as_deref());
                    let gate = limit::IssuerGate {
                        limits: &self.limits,
                        trusted: ctx
                            .snapshot
                            .as_ref()
                            .map_or(&[][..], |s| s.trusted_proxies.as_slice()),
                    };
                    let served = Box::pin(embedded::serve(
                        session,
                        issuer,
                        &target,
                        &d,
                        &ctx.request_id,
                        gate,
                    ))
                    .await?;
                    if served == embedded::Served::RateLimited {
                        limit::count_limited(ctx, "issuer_rate_limit");
                    }
                    ctx.upstream_label = Some("embedded:issuer");
                    Ok(true)
                }
                _ => Ok(false),
            },
            Err(refusal) => {
                ctx.decision = "deny";
                ctx.reason = refusal.reason;
                if let Some(label) = refusal.guard_label {
                    metrics().guard_refusals.with_label_values(&[label]).inc();
                }
                Box::pin(respond::refusal(session, &refusal, ctx.request_id_str())).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let route = ctx
            .route
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(404), "no route"))?;
        let Some((i, up)) = route.pick(ctx.tried) else {
            return Err(Error::explain(
                ErrorType::HTTPStatus(502),
                "no upstream left to try",
            ));
        };
        ctx.tried |= 1u64 << (i as u32 % 64);
        let has_body = session.is_upgrade_req() || !session.is_body_empty();
        let idle = self.live.config.limits.upstream_idle_timeout;
        let peer = upstream::peer(route, up, has_body, idle);
        ctx.upstream = Some(Arc::clone(up));
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let (Some(up), Some(route)) = (&ctx.upstream, &ctx.route) {
            up.mark_down();
            metrics()
                .upstream_failures
                .with_label_values(&[&route.name, "connect"])
                .inc();
            tracing::warn!(route.name = %route.name, upstream = %up.url, "upstream connect failed: {e}");
            // Another upstream may answer: let Pingora call upstream_peer again.
            if route.pick_would_have_more(ctx.tried) {
                e.set_retry(true);
            }
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let uri = match ctx.forward_target.as_deref() {
            Some(t) => Some(
                t.parse::<http::Uri>()
                    .map_err(|_| Error::explain(ErrorType::HTTPStatus(400), "bad target"))?,
            ),
            None => None,
        };
        let request_id = ctx.request_id.clone();
        let is_upgrade = session.is_upgrade_req();
        let d = self.downstream(session, ctx, request_host(session.req_header()));
        let prefix = ctx
            .route
            .as_ref()
            .filter(|r| r.strip_prefix && r.prefix != "/")
            .map(|r| r.prefix.as_str());
        let standing = ctx.standing.as_deref();
        let snap = ctx.snapshot.as_deref();
        let client_cert = ctx.client_cert.as_deref();
        let span = ctx.trace.as_deref();
        let te_trailers = ctx
            .route
            .as_ref()
            .is_some_and(|r| upstream::wants_te_trailers(r, &session.req_header().headers));
        headers::edit_request(up, uri, |h| {
            forwarded::strip_hop_by_hop(h, is_upgrade);
            if te_trailers {
                upstream::restore_te_trailers(h);
            }
            forwarded::apply(h, &d, prefix);
            guard::strip_identity_headers(h);
            mtls::forward(h, client_cert);
            if let Some(s) = standing {
                s.set_headers(h);
            }
            if let (Some(snap), Some(route)) = (snap, &ctx.route) {
                let origin = || session::origin_url(self, session, ctx.trusted_peer);
                session::edit_upstream(h, snap, ctx, route, &self.sessions, origin);
            }
            h.insert(forwarded::X_REQUEST_ID, request_id);
            if let Some(s) = span {
                s.inject(h);
            }
        })
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let id = ctx.request_id.clone();
        let rate = ctx.rate.take();
        headers::edit_response(resp, |h| {
            h.insert(forwarded::X_REQUEST_ID, id);
            if let Some(r) = rate {
                r.set_headers(h);
            }
            session::edit_response(h, ctx);
        })
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let refusal = guard::refusal_for_error(e);
        if refusal.status == 0 {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        if let (Some(route), true) = (&ctx.route, refusal.status >= 500) {
            let kind = if refusal.status == 504 {
                "timeout"
            } else {
                "error"
            };
            metrics()
                .upstream_failures
                .with_label_values(&[&route.name, kind])
                .inc();
        }
        ctx.reason = refusal.reason;
        let _ = respond::refusal(session, &refusal, ctx.request_id_str()).await;
        FailToProxy {
            error_code: refusal.status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        head_deadline::request_done(session.as_downstream_mut());
        let status = session.response_written().map_or_else(
            || e.map_or(0, |e| guard::refusal_for_error(e).status),
            |r| r.status.as_u16(),
        );
        let route = ctx.route.as_ref().map_or("none", |r| &*r.name);
        let m = metrics();
        let method = method_label(&session.req_header().method);
        match &ctx.route {
            Some(r) if status == 200 && method == "GET" => r.get_ok.get(&r.name).inc(),
            _ => m
                .http_requests
                .with_label_values(&[route, method, respond::status_label(status)])
                .inc(),
        }
        let elapsed = ctx.start.elapsed();
        if let Some(span) = ctx.trace.take() {
            span.finish(trace::Outcome {
                method,
                route: ctx.route.as_ref().map(|r| &r.name),
                decision: ctx.decision,
                reason: ctx.reason,
                upstream: ctx
                    .upstream
                    .as_ref()
                    .map(|u| u.url.as_str())
                    .or(ctx.upstream_label),
                status,
                request_id: ctx.request_id_str(),
            });
        }
        match &ctx.route {
            Some(r) => r
                .metrics
                .get(&r.name)
                .duration
                .observe(elapsed.as_secs_f64()),
            None => m
                .http_duration
                .with_label_values(&[route])
                .observe(elapsed.as_secs_f64()),
        }
        if self.audit {
            // The X-Auth-Request-Groups value already holds them joined; joined here only
            // when that header was withheld (no groups, or one with control bytes).
            let joined;
            let groups = match (
                &ctx.principal,
                ctx.standing.as_ref().and_then(|s| s.groups_header()),
            ) {
                (Some(_), Some(header)) => Some(header),
                (Some(p), None) => {
                    joined = p.groups.join(",");
                    Some(joined.as_str())
                }
                (None, _) => None,
            };
            crate::audit::request(&crate::audit::RequestRecord {
                request_id: ctx.request_id_str(),
                listener: "public",
                client_ip: ctx.client_ip,
                method: session.req_header().method.as_str(),
                // The path as the client sent it, without the query (queries carry codes and tokens).
                path: session.req_header().uri.path(),
                route,
                status,
                decision: ctx.decision,
                reason: ctx.reason,
                sub: ctx.principal.as_ref().map(|p| p.sub.as_str()),
                user: ctx.principal.as_ref().map(|p| p.user()),
                groups,
                upstream: ctx
                    .upstream
                    .as_ref()
                    .map(|u| u.url.as_str())
                    .or(ctx.upstream_label),
                duration: elapsed,
            });
        }
    }
}
