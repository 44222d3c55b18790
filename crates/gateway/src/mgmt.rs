//! The management listener: health, metrics, config status, reload, and the embedded
//! issuer's admin API with its token endpoints. Loopback by default and never reachable
//! through the public listener.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use http::{Response, StatusCode, header};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;

use crate::reload::Live;
use portcullis_core::metrics::metrics;

/// Readiness latch: ready once every component that must be up has reported in.
#[derive(Default)]
pub struct Readiness {
    pub listeners_bound: AtomicBool,
    pub store_reachable: AtomicBool,
    /// Remote JWKS fetched once (or the bounded first attempt gave up: tokens of an issuer
    /// that is down are refused either way, and the keys are refetched on demand).
    pub keys_attempted: AtomicBool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.listeners_bound.load(Ordering::Acquire)
            && self.store_reachable.load(Ordering::Acquire)
            && self.keys_attempted.load(Ordering::Acquire)
    }
}

pub struct Management {
    pub live: Arc<Live>,
    pub ready: Arc<Readiness>,
    /// Serves the issuer's admin API (`/admin/realms/...`, `/auth/admin/realms/...`) and the
    /// token endpoints admin tools use (`/realms/...`, `/auth/realms/...`) here, never publicly.
    pub issuer: Option<Arc<crate::embed::EmbeddedIssuer>>,
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<Vec<u8>> {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_default()
}

#[async_trait]
impl ServeHttp for Management {
    async fn response(&self, s: &mut ServerSession) -> Response<Vec<u8>> {
        let method = s.req_header().method.clone();
        let path = s.req_header().uri.path().to_string();
        match (method.as_str(), path.as_str()) {
            ("GET" | "HEAD", "/health/live") => {
                json_response(StatusCode::OK, &json!({"status": "live"}))
            }
            ("GET" | "HEAD", "/health/ready") => {
                if self.ready.is_ready() {
                    json_response(StatusCode::OK, &json!({"status": "ready"}))
                } else {
                    json_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &json!({
                            "status": "not_ready",
                            "listeners_bound": self.ready.listeners_bound.load(Ordering::Acquire),
                            "store_reachable": self.ready.store_reachable.load(Ordering::Acquire),
                            "keys_attempted": self.ready.keys_attempted.load(Ordering::Acquire),
                        }),
                    )
                }
            }
            ("GET", "/metrics") => {
                let body = metrics().render();
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                    .header(header::CONTENT_LENGTH, body.len())
                    .body(body)
                    .unwrap_or_default()
            }
            ("GET", "/admin/config") => {
                let st = self.live.status();
                let snap = self.live.snapshot();
                let routes: Vec<_> = snap
                    .routes
                    .routes()
                    .iter()
                    .map(|r| json!({"name": &*r.name, "prefix": r.prefix, "host": r.host, "auth": r.auth.as_str(), "defined_at": r.defined_at}))
                    .collect();
                json_response(
                    StatusCode::OK,
                    &json!({
                        "generation": st.generation,
                        "loaded_at": st.loaded_at,
                        "sources": st.sources,
                        "last_error": st.last_error,
                        "last_error_at": st.last_error_at,
                        "routes": routes,
                        "certificates": self.live.certificates(),
                    }),
                )
            }
            ("POST", "/admin/reload") => match self.live.reload("admin").await {
                Ok(generation) => json_response(
                    StatusCode::OK,
                    &json!({"status": "reloaded", "generation": generation}),
                ),
                Err(d) => json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({
                        "status": "refused",
                        "generation": self.live.snapshot().generation,
                        "errors": d.error_strings(),
                    }),
                ),
            },
            ("POST", "/admin/explain") => self.explain(s).await,
            (_, p) if self.issuer.is_some() && is_issuer_admin(p) => self.issuer_admin(s).await,
            (
                _,
                "/health/live" | "/health/ready" | "/metrics" | "/admin/config" | "/admin/reload"
                | "/admin/explain",
            ) => json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"error": "method_not_allowed"}),
            ),
            _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
        }
    }
}

impl Management {
    async fn issuer_admin(&self, s: &mut ServerSession) -> Response<Vec<u8>> {
        let Some(issuer) = &self.issuer else {
            return json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"}));
        };
        let body = match read_body(s, 256 * 1024).await {
            Ok(b) => b,
            Err(msg) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "bad_request", "error_description": msg}),
                );
            }
        };
        let req = http::Request::from_parts(
            s.req_header().as_owned_parts(),
            axum::body::Body::from(body),
        );
        let client = match s.client_addr() {
            Some(pingora::protocols::l4::socket::SocketAddr::Inet(a)) => Some(a.ip()),
            _ => None,
        };
        match issuer
            .call(req, crate::embed::Listener::Internal, client, true)
            .await
        {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                let mut out = Response::from_parts(parts, body.to_vec());
                out.headers_mut()
                    .insert(header::CONTENT_LENGTH, body.len().into());
                out
            }
            Err(e) => {
                tracing::error!("issuer admin API: {e:#}");
                json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"error": "internal_error"}),
                )
            }
        }
    }

    async fn explain(&self, s: &mut ServerSession) -> Response<Vec<u8>> {
        let body = match read_body(s, 64 * 1024).await {
            Ok(b) => b,
            Err(msg) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "bad_request", "error_description": msg}),
                );
            }
        };
        let q: crate::explain::Query = match serde_json::from_slice(&body) {
            Ok(q) => q,
            Err(e) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({
                        "error": "bad_request",
                        "error_description": format!("expected {{\"method\", \"path\", \"host\"?, \"token\"?}}: {e}"),
                    }),
                );
            }
        };
        let snap = self.live.snapshot();
        snap.authn.prefetch(std::time::Duration::from_secs(2)).await;
        let e = crate::explain::explain(&snap, &q);
        json_response(
            StatusCode::OK,
            &serde_json::to_value(&e).unwrap_or_default(),
        )
    }
}

/// The issuer's admin plane: Keycloak's Admin REST API (`/admin/realms…`, or under `/auth`)
/// and the token endpoints admin tools get their bearer tokens from (`/realms/…`, or under
/// `/auth`). The management listener only; the public one never routes these.
fn is_issuer_admin(p: &str) -> bool {
    let p = p.strip_prefix("/auth").unwrap_or(p);
    p == "/admin/realms" || p.starts_with("/admin/realms/") || p.starts_with("/realms/")
}

/// Reads a request body up to `max` bytes.
async fn read_body(s: &mut ServerSession, max: usize) -> Result<Vec<u8>, &'static str> {
    let mut body = Vec::new();
    loop {
        match s.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err("body too large");
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(_) => return Err("cannot read body"),
        }
    }
}

/// The optional plain-HTTP listener: every request gets a 308 to the same URL over https.
pub struct HttpsRedirect {
    pub https_port: u16,
}

#[async_trait]
impl ServeHttp for HttpsRedirect {
    async fn response(&self, s: &mut ServerSession) -> Response<Vec<u8>> {
        // One request per connection: the head deadline then covers all a client can send.
        crate::proxy::head_deadline::head_done(s);
        s.set_keepalive(None);
        let req = s.req_header();
        let host = req
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .map(|h| {
                // Drop the client's port: the redirect goes to the https listener's.
                let bare = if h.starts_with('[') {
                    h.split_inclusive(']').next().unwrap_or(h)
                } else {
                    h.split(':').next().unwrap_or(h)
                };
                bare.to_string()
            });
        let Some(host) = host else {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "bad_request", "error_description": "missing or invalid Host"}),
            );
        };
        let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let target = if target.starts_with('/') { target } else { "/" };
        let location = if self.https_port == 443 {
            format!("https://{host}{target}")
        } else {
            format!("https://{host}:{}{target}", self.https_port)
        };
        Response::builder()
            .status(StatusCode::PERMANENT_REDIRECT)
            .header(header::LOCATION, location)
            .header(header::CONTENT_LENGTH, 0)
            .body(Vec::new())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::is_issuer_admin;

    #[test]
    fn the_admin_plane_paths() {
        for p in [
            "/admin/realms",
            "/admin/realms/r/users",
            "/auth/admin/realms/r/users/",
            "/realms/master/protocol/openid-connect/token",
            "/auth/realms/master/protocol/openid-connect/token",
        ] {
            assert!(is_issuer_admin(p), "{p}");
        }
        for p in [
            "/admin/reload",
            "/admin/config",
            "/auth/admin",
            "/realmsx",
            "/metrics",
        ] {
            assert!(!is_issuer_admin(p), "{p}");
        }
    }
}
